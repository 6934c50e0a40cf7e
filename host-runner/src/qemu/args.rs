//! QEMU's command line: what to launch ([`VmSpec`], built the same way for every guest, the
//! KVM probe and the boot tests) and the argument vector made from it ([`qemu_args`]).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use pinlat::config::Guest;
use pinlat::cpuset::CpuSet;

use super::Accel;

/// Guest kernel parameters pinlat adds to every guest, KVM or TCG alike (one code path):
/// - `tsc=reliable`: under TCG the guest kernel otherwise marks the TSC unstable ("TSCs
///   unsynchronized") and falls back to the HPET clocksource, where `clock_gettime` runs at
///   ~0.95 M calls/s instead of ~11 M calls/s (measured on this 2-CPU host, Debian 6.1 RT
///   guest, QEMU 7.2); it also stops the clocksource watchdog timer. On KVM hosts with an
///   invariant TSC it changes nothing.
/// - `noirqdebug`: with a threaded 8250 handler (PREEMPT_RT) and a busy guest, the spurious-IRQ
///   detector can count the agent port's THRE interrupts as unhandled and disable IRQ 3
///   ("irq 3: nobody cared"), which silently stops the frames; seen here after ~290 KB of
///   back-to-back output under TCG.
///
/// Pass it in `extra` of [`guest_cmdline`].
pub const GUEST_PARAMS: &[&str] = &["tsc=reliable", "noirqdebug"];

/// The guest kernel command line for a realtime guest: the console on ttyS0, no reboot loop on
/// panic (`panic=-1` reboots at once and `-no-reboot` turns that into a QEMU exit), and, when
/// there are RT vCPUs, `isolcpus nohz_full rcu_nocbs` on them and `irqaffinity` on the
/// housekeeping vCPUs (the tuned `realtime-virtual-guest` profile's set). `extra` is appended
/// verbatim, one parameter per element.
pub fn guest_cmdline(rt_vcpus: &[u32], housekeeping_vcpus: &[u32], extra: &[&str]) -> String {
    let list = |cpus: &[u32]| cpus.iter().copied().collect::<CpuSet>().to_string();
    let mut p: Vec<String> = ["console=ttyS0,115200", "panic=-1", "quiet"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if !rt_vcpus.is_empty() {
        let rt = list(rt_vcpus);
        p.push(format!("isolcpus={rt}"));
        p.push(format!("nohz_full={rt}"));
        p.push(format!("rcu_nocbs={rt}"));
    }
    if !housekeeping_vcpus.is_empty() {
        p.push(format!("irqaffinity={}", list(housekeeping_vcpus)));
    }
    p.extend(extra.iter().map(|s| s.to_string()));
    p.join(" ")
}

/// What to launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    /// Guest name (`-name`); also names QEMU's threads' process.
    pub name: String,
    /// The accelerator the guests ran with (TCG numbers are not hardware latency).
    pub accel: Accel,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// The bzImage.
    pub kernel: PathBuf,
    /// The initramfs.
    pub initrd: PathBuf,
    /// The guest kernel command line (see [`guest_cmdline`]).
    pub append: String,
    /// `-cpu` model; `None` means `host` under KVM and QEMU's default under TCG.
    pub cpu_model: Option<String>,
    /// iothread ids to create (`-object iothread,id=…`).
    pub iothreads: Vec<String>,
    /// Where ttyS0 (the guest console) is written; created or truncated.
    pub console_log: PathBuf,
    /// Where ttyS1 (the agent channel) is written; created or truncated.
    pub agent_channel: PathBuf,
    /// Start with vCPUs stopped (`-S`): QEMU creates every vCPU thread but runs no guest
    /// code until QMP `cont`, so threads are pinned before the guest runs, as libvirt does.
    pub start_paused: bool,
    /// Open a second QMP monitor (`mgmt.sock`, see [`Qemu::mgmt_socket`]) for the
    /// `mgmt-poll` scenario, so polling never shares a connection with control commands.
    pub mgmt_qmp: bool,
}

/// The second QMP socket's path for a given main QMP socket: `mgmt.sock` beside it.
pub fn mgmt_socket_path(qmp_socket: &Path) -> PathBuf {
    qmp_socket.with_file_name("mgmt.sock")
}

/// Escapes a value for QEMU's `key=value,…` option syntax (a `,` is written `,,`).
fn opt_value(v: &OsStr) -> OsString {
    let mut out = Vec::with_capacity(v.len());
    for &b in v.as_bytes() {
        out.push(b);
        if b == b',' {
            out.push(b',');
        }
    }
    OsString::from_vec(out)
}

fn opt(prefix: &str, path: &Path) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(opt_value(path.as_os_str()));
    s
}

/// QEMU's argument vector (without the program) for `spec`, with QMP on `qmp_socket` (and,
/// with `spec.mgmt_qmp`, a second monitor on [`mgmt_socket_path`], created first so it exists
/// once `qmp_socket` does).
pub fn qemu_args(spec: &VmSpec, qmp_socket: &Path) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
    push(&[
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
    ]);
    let name = spec.name.replace(',', "_");
    push(&["-name", &format!("{name},debug-threads=on")]);
    push(&["-accel", spec.accel.qemu_arg()]);
    let cpu = spec
        .cpu_model
        .clone()
        .or_else(|| (spec.accel == Accel::Kvm).then(|| "host".to_owned()));
    if let Some(cpu) = cpu {
        push(&["-cpu", &cpu]);
    }
    push(&[
        "-smp",
        &spec.vcpus.to_string(),
        "-m",
        &spec.memory_mib.to_string(),
    ]);
    for id in &spec.iothreads {
        push(&["-object", &format!("iothread,id={}", id.replace(',', "_"))]);
    }
    a.push("-kernel".into());
    a.push(spec.kernel.clone().into_os_string());
    a.push("-initrd".into());
    a.push(spec.initrd.clone().into_os_string());
    a.push("-append".into());
    a.push(spec.append.clone().into());
    a.push("-chardev".into());
    a.push(opt("file,id=console,path=", &spec.console_log));
    a.push("-serial".into());
    a.push("chardev:console".into());
    a.push("-chardev".into());
    a.push(opt("file,id=agent,path=", &spec.agent_channel));
    a.push("-serial".into());
    a.push("chardev:agent".into());
    // ttyS2: the sink of the agent's `io` housekeeping load (guest-io scenario). Every byte is
    // an emulated UART access that QEMU's emulator handles, and nothing is kept.
    a.push("-chardev".into());
    a.push("null,id=ioload".into());
    a.push("-serial".into());
    a.push("chardev:ioload".into());
    if spec.start_paused {
        a.push("-S".into());
    }
    let mut sockets = Vec::new();
    if spec.mgmt_qmp {
        sockets.push(mgmt_socket_path(qmp_socket));
    }
    sockets.push(qmp_socket.to_owned());
    for sock in sockets {
        a.push("-qmp".into());
        let mut q = opt("unix:", &sock);
        q.push(",server=on,wait=off");
        a.push(q);
    }
    a
}

impl VmSpec {
    /// The VM of one config guest, the one way every guest is described (runs, the KVM probe,
    /// boot tests): its vCPUs and memory, iothreads `iothread1..N`, its own kernel if the
    /// config names one (else `kernel`), and the realtime guest command line
    /// ([`guest_cmdline`]) with [`GUEST_PARAMS`] and the guest's `cmdline_extra`. Runs with
    /// vCPUs started; see [`VmSpec::paused`].
    pub fn for_guest(
        guest: &Guest,
        accel: Accel,
        kernel: &Path,
        initrd: PathBuf,
        console_log: PathBuf,
        agent_channel: PathBuf,
    ) -> VmSpec {
        let rt: Vec<u32> = guest.realtime.iter().collect();
        let hk: Vec<u32> = guest.housekeeping().iter().collect();
        let mut extra: Vec<&str> = GUEST_PARAMS.to_vec();
        extra.extend(guest.cmdline_extra.split_whitespace());
        VmSpec {
            name: format!("pinlat-{}", guest.name),
            accel,
            vcpus: guest.vcpus,
            memory_mib: guest.memory_mib,
            kernel: guest.kernel.clone().unwrap_or_else(|| kernel.to_path_buf()),
            initrd,
            append: guest_cmdline(&rt, &hk, &extra),
            cpu_model: None,
            iothreads: (1..=guest.iothreads)
                .map(|i| format!("iothread{i}"))
                .collect(),
            console_log,
            agent_channel,
            start_paused: false,
            mgmt_qmp: false,
        }
    }

    /// Starts with vCPUs stopped (`-S`) until QMP `cont`.
    pub fn paused(mut self) -> Self {
        self.start_paused = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_guest_becomes_one_spec() {
        let cfg = pinlat::config::Config::from_toml_str(
            "[[guests]]\nname = \"g\"\nvcpus = 3\niothreads = 2\ncmdline_extra = \"idle=poll\"\n[[layouts]]\nkind = \"vcpu0\"\n",
        )
        .unwrap();
        let s = VmSpec::for_guest(
            &cfg.guests[0],
            Accel::Tcg,
            Path::new("/k"),
            "/i".into(),
            "/c".into(),
            "/a".into(),
        )
        .paused();
        assert_eq!(s.name, "pinlat-g");
        assert_eq!(s.iothreads, ["iothread1", "iothread2"]);
        assert_eq!(s.kernel, Path::new("/k"));
        assert!(s.start_paused && !s.mgmt_qmp);
        assert!(s
            .append
            .contains("isolcpus=1-2 nohz_full=1-2 rcu_nocbs=1-2 irqaffinity=0"));
        assert!(
            s.append.ends_with("tsc=reliable noirqdebug idle=poll"),
            "{}",
            s.append
        );
    }
}
