//! QEMU's command line: what to launch ([`VmSpec`], built the same way for every guest, the
//! KVM probe and the boot tests) and the argument vector made from it ([`qemu_args`]).
//!
//! Devices ([`crate::devices::Device`]) are written as libvirt writes them: a disk as two
//! `-blockdev` nodes (the `file` protocol node with `aio` and `cache.*`, the `raw` format node
//! on top) and a `-device virtio-blk-pci` with `write-cache` and, if it has one, `iothread`; a
//! NIC as `-netdev stream` (client of the runner's UNIX socket) and `-device virtio-net-pci`
//! without an option ROM (`romfile=`: the guest boots with `-kernel`, never from the network).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use pinlat::config::variant::{guest_params, CmdlinePreset, GuestKnobs, QemuKnobs, Variant};
use pinlat::config::Guest;
use pinlat::cpuset::CpuSet;

use super::Accel;
use crate::devices::{Device, VirtioBlk, VirtioNet};

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
/// Pass it in `extra` of [`guest_cmdline`]; [`guest_append`] does, without `tsc=reliable`
/// for a variant with `guest.tsc_reliable = false` (`noirqdebug` is functional and always
/// stays).
pub const GUEST_PARAMS: &[&str] = &["tsc=reliable", "noirqdebug"];

/// The guest kernel command line for a realtime guest with pinlat's default preset
/// ([`CmdlinePreset::Pinlat`]): see [`preset_cmdline`].
pub fn guest_cmdline(rt_vcpus: &[u32], housekeeping_vcpus: &[u32], extra: &[&str]) -> String {
    preset_cmdline(CmdlinePreset::Pinlat, rt_vcpus, housekeeping_vcpus, extra)
}

/// The guest kernel command line: the console on ttyS0, no reboot loop on panic (`panic=-1`
/// reboots at once and `-no-reboot` turns that into a QEMU exit), then the `preset`'s
/// isolation parameters where there are RT vCPUs (`<rt>`) and housekeeping vCPUs (`<hk>`):
/// - [`CmdlinePreset::Pinlat`]: `isolcpus=<rt> nohz_full=<rt> rcu_nocbs=<rt>
///   irqaffinity=<hk>`;
/// - [`CmdlinePreset::RealtimeVirtualGuest`]: tuned's `realtime-virtual-guest` set as its doc
///   comment derives it, `isolcpus=managed_irq,domain,<rt> nohz=on nohz_full=<rt>
///   rcu_nocbs=<rt> irqaffinity=<hk> nosoftlockup skew_tick=1
///   rcupdate.rcu_normal_after_boot=1` and its sysctls as `sysctl.*` parameters;
/// - [`CmdlinePreset::None`]: no isolation parameters.
///
/// `extra` is appended verbatim, one parameter per element.
pub fn preset_cmdline(
    preset: CmdlinePreset,
    rt_vcpus: &[u32],
    housekeeping_vcpus: &[u32],
    extra: &[&str],
) -> String {
    let list = |cpus: &[u32]| cpus.iter().copied().collect::<CpuSet>().to_string();
    let mut p: Vec<String> = ["console=ttyS0,115200", "panic=-1", "quiet"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rt = (!rt_vcpus.is_empty()).then(|| list(rt_vcpus));
    let hk = (!housekeeping_vcpus.is_empty()).then(|| list(housekeeping_vcpus));
    match preset {
        CmdlinePreset::Pinlat => {
            if let Some(rt) = &rt {
                p.push(format!("isolcpus={rt}"));
                p.push(format!("nohz_full={rt}"));
                p.push(format!("rcu_nocbs={rt}"));
            }
            if let Some(hk) = &hk {
                p.push(format!("irqaffinity={hk}"));
            }
        }
        CmdlinePreset::RealtimeVirtualGuest => {
            if let Some(rt) = &rt {
                p.push(format!("isolcpus=managed_irq,domain,{rt}"));
                p.push("nohz=on".into());
                p.push(format!("nohz_full={rt}"));
                p.push(format!("rcu_nocbs={rt}"));
            }
            if let Some(hk) = &hk {
                p.push(format!("irqaffinity={hk}"));
            }
            p.extend(
                [
                    "nosoftlockup",
                    "skew_tick=1",
                    "rcupdate.rcu_normal_after_boot=1",
                    "sysctl.kernel.sched_rt_runtime_us=-1",
                    "sysctl.kernel.timer_migration=0",
                    "sysctl.kernel.nmi_watchdog=0",
                    "sysctl.vm.stat_interval=10",
                ]
                .iter()
                .map(|s| s.to_string()),
            );
        }
        CmdlinePreset::None => {}
    }
    p.extend(extra.iter().map(|s| s.to_string()));
    p.join(" ")
}

/// The whole guest command line of `guest` under the guest knobs of a variant (the defaults
/// without variants): [`preset_cmdline`] of `knobs.preset` with [`GUEST_PARAMS`] (without
/// `tsc=reliable` when `knobs.tsc_reliable` is false), the guest's own `cmdline_extra`, then
/// the knobs' parameters ([`guest_params`]: idle, `mce=off`, `timer_migration`, the variant's
/// `cmdline_extra`), so a knob comes after the preset it overrides.
pub fn guest_append(guest: &Guest, knobs: &GuestKnobs) -> String {
    let rt: Vec<u32> = guest.realtime.iter().collect();
    let hk: Vec<u32> = guest.housekeeping().iter().collect();
    let knob_params = guest_params(knobs);
    let mut extra: Vec<&str> = GUEST_PARAMS
        .iter()
        .copied()
        .filter(|p| knobs.tsc_reliable || *p != "tsc=reliable")
        .collect();
    extra.extend(guest.cmdline_extra.split_whitespace());
    extra.extend(knob_params.iter().map(String::as_str));
    preset_cmdline(knobs.preset, &rt, &hk, &extra)
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
    /// `-cpu` model; `None` means `host` under KVM and QEMU's default under TCG. The
    /// `cpu_host` knob of [`VmSpec::knobs`] replaces it.
    pub cpu_model: Option<String>,
    /// The tuning variant's QEMU knobs ([`super::knobs::knob_args`]); the default sets none.
    pub knobs: QemuKnobs,
    /// iothread ids to create (`-object iothread,id=…`).
    pub iothreads: Vec<String>,
    /// Where ttyS0 (the guest console) is written; created or truncated.
    pub console_log: PathBuf,
    /// Where ttyS1 (the agent channel) is written; created or truncated.
    pub agent_channel: AgentChannel,
    /// Start with vCPUs stopped (`-S`): QEMU creates every vCPU thread but runs no guest
    /// code until QMP `cont`, so threads are pinned before the guest runs, as libvirt does.
    pub start_paused: bool,
    /// Open a second QMP monitor (`mgmt.sock`, see [`Qemu::mgmt_socket`]) for the
    /// `mgmt-poll` scenario, so polling never shares a connection with control commands.
    pub mgmt_qmp: bool,
    /// Devices beyond the serial ports, in PCI order (see [`VmSpec::with_devices`]).
    pub devices: Vec<Device>,
}

/// Where the guest's `ttyS1` (the agent's frames) goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentChannel {
    /// Output only, to a file QEMU writes (never blocks the guest, never drops bytes): the KVM
    /// probe and guests that need no commands.
    File(PathBuf),
    /// Both ways through two FIFOs, `<base>.out` (guest → runner) and `<base>.in` (runner →
    /// guest, for [`pinlat::wire::Command`]s), which the runner creates and opens before QEMU
    /// starts (`-chardev pipe`).
    Pipe(PathBuf),
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
    match cpu {
        // The variant's `-cpu host,…` comes with the other knobs.
        Some(cpu) if !spec.knobs.cpu_host => push(&["-cpu", &cpu]),
        _ => {}
    }
    push(&[
        "-smp",
        &spec.vcpus.to_string(),
        "-m",
        &spec.memory_mib.to_string(),
    ]);
    let knobs = super::knobs::knob_args(&spec.knobs, spec.memory_mib);
    push(&knobs.iter().map(String::as_str).collect::<Vec<_>>());
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
    a.push(match &spec.agent_channel {
        AgentChannel::File(path) => opt("file,id=agent,path=", path),
        AgentChannel::Pipe(base) => opt("pipe,id=agent,path=", base),
    });
    a.push("-serial".into());
    a.push("chardev:agent".into());
    a.extend(device_args(&spec.devices));
    if spec.start_paused {
        a.push("-S".into());
    }
    let mut sockets = Vec::new();
    if spec.mgmt_qmp {
        sockets.push(mgmt_socket_path(qmp_socket));
    }
    sockets.push(qmp_socket.to_owned());
    for sock in sockets {
        a.extend(qmp_args(&sock));
    }
    a
}

/// `-qmp unix:<socket>,server=on,wait=off`.
pub fn qmp_args(socket: &Path) -> [OsString; 2] {
    let mut q = opt("unix:", socket);
    q.push(",server=on,wait=off");
    ["-qmp".into(), q]
}

/// The arguments of `devices`, in order: disks `disk<i>`/`vblk<i>`, NICs `net<i>`/`vnet<i>`.
pub fn device_args(devices: &[Device]) -> Vec<OsString> {
    let mut a = Vec::new();
    let (mut disks, mut nics) = (0, 0);
    for device in devices {
        match device {
            Device::VirtioBlk(d) => {
                disk_args(&mut a, d, disks);
                disks += 1;
            }
            Device::VirtioNet(n) => {
                nic_args(&mut a, n, nics);
                nics += 1;
            }
        }
    }
    a
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// `-blockdev` file + raw nodes `disk<i>-file`/`disk<i>`, `-device virtio-blk-pci` `vblk<i>`.
fn disk_args(a: &mut Vec<OsString>, d: &VirtioBlk, i: usize) {
    let cache = format!(
        "cache.direct={},cache.no-flush=off",
        on_off(d.cache.direct())
    );
    a.push("-blockdev".into());
    let mut file = opt(
        &format!("driver=file,node-name=disk{i}-file,filename="),
        &d.image,
    );
    file.push(format!(",aio={},{cache}", d.aio.as_str()));
    a.push(file);
    a.push("-blockdev".into());
    a.push(format!("driver=raw,node-name=disk{i},file=disk{i}-file,{cache}").into());
    let mut dev = format!(
        "virtio-blk-pci,id=vblk{i},drive=disk{i},write-cache={}",
        on_off(d.cache.write_cache())
    );
    if let Some(io) = &d.iothread {
        dev.push_str(&format!(",iothread={}", io.replace(',', "_")));
    }
    a.push("-device".into());
    a.push(dev.into());
}

/// `-netdev stream` `net<i>` connecting to the runner's socket, `-device virtio-net-pci`
/// `vnet<i>` with a locally administered MAC `52:54:00:70:6c:<i>`.
fn nic_args(a: &mut Vec<OsString>, n: &VirtioNet, i: usize) {
    a.push("-netdev".into());
    a.push(opt(
        &format!("stream,id=net{i},server=off,addr.type=unix,addr.path="),
        &n.socket,
    ));
    a.push("-device".into());
    a.push(
        format!(
            "virtio-net-pci,id=vnet{i},netdev=net{i},mac=52:54:00:70:6c:{:02x},romfile=",
            i & 0xff
        )
        .into(),
    );
}

impl VmSpec {
    /// The VM of one config guest, the one way every guest is described (runs, the KVM probe,
    /// boot tests): its vCPUs and memory, iothreads `iothread1..N`, its own kernel if the
    /// config names one (else `kernel`), and the realtime guest command line
    /// ([`guest_append`] with the default guest knobs; a variant's through
    /// [`VmSpec::with_guest_knobs`]). Runs with
    /// vCPUs started; see [`VmSpec::paused`].
    pub fn for_guest(
        guest: &Guest,
        accel: Accel,
        kernel: &Path,
        initrd: PathBuf,
        console_log: PathBuf,
        agent_channel: AgentChannel,
    ) -> VmSpec {
        VmSpec {
            name: format!("pinlat-{}", guest.name),
            accel,
            vcpus: guest.vcpus,
            memory_mib: guest.memory_mib,
            kernel: guest.kernel.clone().unwrap_or_else(|| kernel.to_path_buf()),
            initrd,
            append: guest_append(guest, &GuestKnobs::default()),
            cpu_model: None,
            knobs: QemuKnobs::default(),
            iothreads: (1..=guest.iothreads)
                .map(|i| format!("iothread{i}"))
                .collect(),
            console_log,
            agent_channel,
            start_paused: false,
            mgmt_qmp: false,
            devices: Vec::new(),
        }
    }

    /// With the QEMU knobs of `variant` (none without one): one code path for KVM and TCG,
    /// the QEMU and the libvirt launcher.
    pub fn with_variant(mut self, variant: Option<&Variant>) -> Self {
        self.knobs = variant.map(|v| v.qemu.clone()).unwrap_or_default();
        self
    }

    /// The guest kernel command line of `guest` under a variant's guest knobs
    /// ([`guest_append`]) instead of the default one [`VmSpec::for_guest`] wrote. Only
    /// `append` changes.
    pub fn with_guest_knobs(mut self, guest: &Guest, knobs: &GuestKnobs) -> Self {
        self.append = guest_append(guest, knobs);
        self
    }

    /// Starts with vCPUs stopped (`-S`) until QMP `cont`.
    pub fn paused(mut self) -> Self {
        self.start_paused = true;
        self
    }

    /// Adds `devices`. A disk without an iothread gets the VM's first one (`iothread1` of
    /// [`VmSpec::for_guest`]) if the VM has any, so a guest with `iothreads >= 1` has its disk
    /// served by `iothread1` and that iothread's pinning matters.
    pub fn with_devices(mut self, devices: impl IntoIterator<Item = Device>) -> Self {
        for d in devices {
            self.add_device(d);
        }
        self
    }

    /// Adds one device, with [`VmSpec::with_devices`]'s iothread rule.
    pub fn add_device(&mut self, mut d: Device) {
        if let Device::VirtioBlk(disk) = &mut d {
            if disk.iothread.is_none() {
                disk.iothread = self.iothreads.first().cloned();
            }
        }
        self.devices.push(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::{Aio, Cache};

    /// The spec of the first guest of config `toml`, with made-up paths.
    fn guest_spec(toml: &str) -> VmSpec {
        let cfg = pinlat::config::Config::from_toml_str(toml).unwrap();
        VmSpec::for_guest(
            &cfg.guests[0],
            Accel::Tcg,
            Path::new("/k"),
            "/i".into(),
            "/c".into(),
            AgentChannel::File("/a".into()),
        )
    }

    fn spec(iothreads: &[&str]) -> VmSpec {
        let mut s =
            guest_spec("[[guests]]\nname = \"g\"\nvcpus = 2\n[[layouts]]\nkind = \"vcpu0\"\n");
        s.iothreads = iothreads.iter().map(|s| s.to_string()).collect();
        s
    }

    fn strs(a: Vec<OsString>) -> Vec<String> {
        a.into_iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect()
    }

    /// The device part of the argument vector: everything from the first `-blockdev` or
    /// `-netdev` up to the QMP monitor.
    fn device_args(s: &VmSpec) -> Vec<String> {
        let a = strs(qemu_args(s, Path::new("/run/p/qmp.sock")));
        let to = a.iter().position(|x| x == "-qmp").unwrap();
        let from = a
            .iter()
            .position(|x| x == "-blockdev" || x == "-netdev")
            .unwrap_or(to);
        a[from..to].to_vec()
    }

    #[test]
    fn disk_and_nic_arguments() {
        let dir = Path::new("/run/pinlat-x,y");
        let s = spec(&["iothread1"]).with_devices([
            Device::VirtioBlk(VirtioBlk::in_dir(dir, 64)),
            Device::VirtioNet(VirtioNet::in_dir(dir)),
        ]);
        assert_eq!(
            device_args(&s),
            [
                "-blockdev",
                "driver=file,node-name=disk0-file,filename=/run/pinlat-x,,y/disk0.raw,aio=threads,\
                 cache.direct=on,cache.no-flush=off",
                "-blockdev",
                "driver=raw,node-name=disk0,file=disk0-file,cache.direct=on,cache.no-flush=off",
                "-device",
                "virtio-blk-pci,id=vblk0,drive=disk0,write-cache=on,iothread=iothread1",
                "-netdev",
                "stream,id=net0,server=off,addr.type=unix,addr.path=/run/pinlat-x,,y/net0.sock",
                "-device",
                "virtio-net-pci,id=vnet0,netdev=net0,mac=52:54:00:70:6c:00,romfile=",
            ]
        );
    }

    #[test]
    fn disk_options_and_the_iothread_rule() {
        let mut disk = VirtioBlk::in_dir(Path::new("/d"), 8);
        disk.cache = Cache::Writethrough;
        disk.aio = Aio::IoUring;
        // Without iothreads: QEMU's main loop serves it.
        let s = spec(&[]).with_devices([Device::VirtioBlk(disk.clone())]);
        let a = device_args(&s);
        assert!(
            a[1].ends_with(",aio=io_uring,cache.direct=off,cache.no-flush=off"),
            "{a:?}"
        );
        assert_eq!(a[5], "virtio-blk-pci,id=vblk0,drive=disk0,write-cache=off");
        // An explicit iothread is kept; two disks get their own nodes.
        disk.iothread = Some("iothread2".into());
        disk.aio = Aio::Native;
        disk.cache = Cache::Directsync;
        let s = spec(&["iothread1", "iothread2"])
            .with_devices([Device::VirtioBlk(disk.clone()), Device::VirtioBlk(disk)]);
        let a = device_args(&s);
        assert!(a[1].contains(",aio=native,cache.direct=on"), "{a:?}");
        assert_eq!(
            a[11],
            "virtio-blk-pci,id=vblk1,drive=disk1,write-cache=off,iothread=iothread2"
        );
        // No devices, no device arguments.
        assert!(device_args(&spec(&["iothread1"])).is_empty());
    }

    #[test]
    fn a_config_guest_becomes_one_spec() {
        let s = guest_spec(
            "[[guests]]\nname = \"g\"\nvcpus = 3\niothreads = 2\ncmdline_extra = \"idle=poll\"\n[[layouts]]\nkind = \"vcpu0\"\n",
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
