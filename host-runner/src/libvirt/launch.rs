//! The libvirt launcher (`pinlat run --launcher libvirt`): each guest is a transient domain
//! made from the plan ([`super::domain`]), started paused with `virsh create --paused`. libvirt
//! pins, inside its own cgroups; pinlat never moves a thread. It reads every QEMU thread back
//! from `/proc` (vCPU and iothread ids from QMP through libvirt's own monitor, `virsh
//! qemu-monitor-command`; QEMU's pid is their thread group) and compares it with the plan: any
//! difference fails the run in `verify` with "libvirt applied X, the plan says Y" per thread.
//! After that, every step (resume, monitor, collect, finish) is the engine's, as for QEMU.
//!
//! QEMU's pid comes from the vCPU threads, not libvirt's pid file: the file lives in the
//! daemon's run directory, which a daemon in its own mount namespace (the tests' private one)
//! does not share.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pinlat::export::libvirt::domain_name;
use pinlat::kinds::{Accel, LauncherKind};
use pinlat::result::{
    GuestRun, LibvirtLaunch, NewThreadPlacement, ObservedThread, RunStatus, Stage, ThreadRole,
    Warning,
};
use pinlat::wire::Command;

use super::domain::domain_xml;
use super::{LibvirtDomain, Versions, Virsh, VirshError};
use crate::engine::backend::{console_tail, GuestBackend, OutputBytes, ResumeError};
use crate::engine::channel::PipeChannel;
use crate::engine::launch::{err, prepare_guest};
use crate::engine::{LaunchRequest, Launched, Launcher};
use crate::follow::log_tail;
use crate::kernel::GuestKernel;
use crate::pin::Pinner;
use crate::qmp::{IoThread, VcpuThread};

/// Test-only: when set to a CPU list, the launcher re-pins the emulator threads there with
/// `virsh emulatorpin --live` after the domain started and before the placement is verified,
/// so a test can make libvirt apply something else than the plan. Never set it otherwise.
pub const TEST_EMULATORPIN_ENV: &str = "PINLAT_TEST_LIBVIRT_EMULATORPIN";

/// What `virsh create` says when RT group scheduling left libvirt's vCPU cgroup no RT time.
const RT_RUNTIME_REFUSED: &str = "Cannot set scheduler parameters";

/// Launches guests as transient libvirt domains.
pub struct LibvirtLauncher {
    /// The connection.
    pub virsh: Virsh,
    /// Its libvirt and hypervisor versions (recorded with every guest).
    pub versions: Versions,
    /// The guest kernel (a guest's own `kernel` key wins).
    pub kernel: GuestKernel,
    /// The static agent's bytes, `/init` of every guest.
    pub agent: Vec<u8>,
    /// The accelerator: `kvm` domains or `qemu` (TCG) domains.
    pub accel: Accel,
}

impl LibvirtLauncher {
    /// Connects to libvirt through virsh and asks its versions ([`Virsh::reach`]).
    pub fn connect(
        virsh: Virsh,
        kernel: GuestKernel,
        agent: Vec<u8>,
        accel: Accel,
    ) -> Result<Self, VirshError> {
        let versions = virsh.reach()?;
        Ok(LibvirtLauncher {
            virsh,
            versions,
            kernel,
            agent,
            accel,
        })
    }
}

/// A thread's role as a sentence's subject.
fn role_name(role: &ThreadRole) -> String {
    match role {
        ThreadRole::Vcpu { vcpu } => format!("vCPU {vcpu}"),
        ThreadRole::Iothread { id } => format!("iothread {id}"),
        ThreadRole::Emulator => "emulator thread".into(),
    }
}

/// "libvirt applied X, the plan says Y" for one thread.
pub fn applied_vs_plan(t: &ObservedThread) -> String {
    let applied = if t.policy.is_realtime() {
        format!("{}:{}", t.policy, t.priority)
    } else {
        t.policy.to_string()
    };
    format!(
        "{} (tid {}, {}): libvirt applied CPUs {} {applied}, the plan says CPUs {} {}",
        role_name(&t.role),
        t.tid,
        t.comm,
        t.cpus,
        t.planned_cpus,
        t.planned_sched
    )
}

/// Why `virsh create` of domain `name` failed, with the fix for the failures seen.
fn create_failed(e: VirshError, name: &str) -> String {
    let mut why = format!("{:#}", anyhow::Error::new(e));
    if why.contains(RT_RUNTIME_REFUSED) {
        why.push_str(
            ". Fix: libvirt's vCPU cgroup has no RT time (cpu.rt_runtime_us=0): set \
             kernel.sched_rt_runtime_us=-1, or leave \"cpu\" out of cgroup_controllers \
             in qemu.conf (`pinlat doctor --launcher libvirt`)",
        );
    }
    if why.contains("already exists") {
        why.push_str(&format!(
            ". Fix: another pinlat runs this config on the same daemon, or a killed one \
             left its domain: `virsh destroy {name}`"
        ));
    }
    why
}

/// The thread group (process) a thread belongs to.
fn tgid_of(tid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The cgroup QEMU's main thread is in (the cpuset controller's on v1, else the unified one).
fn process_cgroup(pid: i32) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let of = |pred: &dyn Fn(&str) -> bool| {
        text.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
            pred(ctrl).then(|| path.to_owned())
        })
    };
    of(&|c| c.split(',').any(|c| c == "cpuset"))
        .or_else(|| of(&|c| c.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

impl Launcher for LibvirtLauncher {
    fn launch(
        &self,
        req: LaunchRequest<'_>,
        record: &mut GuestRun,
        _warnings: &mut Vec<Warning>,
    ) -> Result<Launched, RunStatus> {
        let (layout, placement, guest) = (req.layout, req.placement, req.guest);
        let p = prepare_guest(&self.kernel, &self.agent, self.accel, req, record)?;
        let (runtime, spec) = (p.runtime, p.spec);
        let mgmt_socket = spec
            .mgmt_qmp
            .then(|| crate::qemu::mgmt_socket_path(&runtime.path().join("qmp.sock")));
        let xml = domain_xml(layout, placement, guest, &spec, mgmt_socket.as_deref());
        let name = domain_name(&layout.name, &guest.name);
        let xml_path = runtime.path().join("domain.xml");
        pinlat::atomic_write::write_atomic(&xml_path, xml.as_bytes()).map_err(|e| {
            err(Stage::Setup)(anyhow::Error::new(e).context("writing the domain XML"))
        })?;
        record.launcher = LauncherKind::Libvirt;
        record.libvirt = Some(LibvirtLaunch {
            uri: self.virsh.uri(),
            libvirt_version: self.versions.libvirt.clone(),
            hypervisor: self.versions.hypervisor.clone(),
            domain: name.clone(),
            domain_xml: xml,
        });
        if let Err(e) = self.virsh.create_paused(&xml_path) {
            return Err(RunStatus::failed(Stage::Launch, create_failed(e, &name)));
        }
        // From here on the domain exists: dropping the guest destroys it, whatever fails.
        let mut g = LibvirtGuest {
            domain: LibvirtDomain {
                virsh: self.virsh.clone(),
                name,
            },
            pid: None,
            started: Instant::now(),
            pinner: None,
            channel: p.channel,
            console_log: p.console_log,
            mgmt_socket,
            backends: p.backends,
            exit: None,
            _runtime: runtime,
        };
        let name = g.domain.name.clone();
        let mut vcpus: Vec<VcpuThread> = self
            .virsh
            .qmp(&name, "query-cpus-fast")
            .map_err(|e| err(Stage::Qmp)(anyhow::Error::new(e)))?;
        vcpus.sort_by_key(|v| v.cpu_index);
        let iothreads: Vec<IoThread> = if guest.iothreads > 0 {
            self.virsh
                .qmp(&name, "query-iothreads")
                .map_err(|e| err(Stage::Qmp)(anyhow::Error::new(e)))?
        } else {
            Vec::new()
        };
        let pid = vcpus
            .first()
            .and_then(|v| tgid_of(v.thread_id))
            .ok_or_else(|| {
                RunStatus::failed(
                    Stage::Qmp,
                    format!("domain {name}: no QEMU process found from its vCPU threads"),
                )
            })?;
        g.pid = Some(pid);
        record.qemu_pid = Some(pid);
        if let Some(cpus) = std::env::var_os(TEST_EMULATORPIN_ENV) {
            let cpus = cpus.to_string_lossy();
            eprintln!(
                "pinlat: {TEST_EMULATORPIN_ENV} is set (a test hook): re-pinning the emulator of \
                 {name} to CPUs {cpus}, so the placement read back is not the plan's"
            );
            self.virsh
                .emulatorpin(&name, &cpus)
                .map_err(|e| err(Stage::Setup)(anyhow::Error::new(e)))?;
        }
        let pinner = Pinner::new(pid, placement.clone(), &vcpus, &iothreads)
            .map_err(|e| err(Stage::Verify)(e.into()))?
            .read_only();
        record.new_thread_placement = Some(NewThreadPlacement::Libvirt {
            group: process_cgroup(pid),
        });
        record.observed_start = pinner.observe().map_err(|e| err(Stage::Verify)(e.into()))?;
        let differences: Vec<String> = record
            .observed_start
            .iter()
            .filter(|t| !t.matches())
            .map(applied_vs_plan)
            .collect();
        if !differences.is_empty() {
            return Err(RunStatus::failed(Stage::Verify, differences.join("; ")));
        }
        g.pinner = Some(pinner);
        if let Some(sock) = &g.mgmt_socket {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(sock, std::fs::Permissions::from_mode(0o600));
        }
        Ok(Launched {
            backend: Box::new(g),
            agent: p.agent,
        })
    }
}

/// A guest running as a libvirt domain, paused until [`GuestBackend::resume`].
pub struct LibvirtGuest {
    domain: LibvirtDomain,
    pid: Option<i32>,
    started: Instant,
    pinner: Option<Pinner>,
    channel: PipeChannel,
    console_log: PathBuf,
    mgmt_socket: Option<PathBuf>,
    backends: crate::devices::Backends,
    exit: Option<String>,
    // Declared last: removed only once the domain is gone.
    _runtime: crate::qemu::RuntimeDir,
}

impl LibvirtGuest {
    fn process_alive(&self) -> bool {
        self.pid
            .is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
    }
}

impl GuestBackend for LibvirtGuest {
    fn started(&self) -> Instant {
        self.started
    }

    fn read_channel(&mut self, out: &mut Vec<u8>, max: usize) -> std::io::Result<usize> {
        self.channel.read_new(out, max)
    }

    fn output_bytes(&self) -> OutputBytes {
        OutputBytes::of(&self.console_log, &self.channel)
    }

    fn exited(&mut self) -> Option<String> {
        if self.exit.is_none() && !self.process_alive() {
            // libvirt reaps QEMU: its exit status is libvirt's; the domain is destroyed on
            // poweroff, reboot or crash.
            self.exit = Some("QEMU exited (libvirt domain ended)".into());
        }
        self.exit.clone()
    }

    fn wait_exit(&mut self, deadline: Instant) -> bool {
        loop {
            if self.exited().is_some() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(&mut self) {
        if self.process_alive() || self.pid.is_none() {
            let _ = self.domain.virsh.destroy(&self.domain.name);
        }
        let _ = self.wait_exit(Instant::now() + Duration::from_secs(10));
        // libvirt drops a transient domain only once it has handled QEMU's exit: until then the
        // next run's domain of the same name cannot be created. Wait for it (destroying it
        // again if it lingers).
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut destroyed_at = Instant::now();
        while Instant::now() < deadline {
            match self.domain.virsh.domstate(&self.domain.name) {
                Err(VirshError::Failed { .. }) => return,
                _ if destroyed_at.elapsed() > Duration::from_secs(3) => {
                    let _ = self.domain.virsh.destroy(&self.domain.name);
                    destroyed_at = Instant::now();
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn console_tail(&self) -> String {
        console_tail(&self.console_log)
    }

    fn console(&self) -> Vec<u8> {
        log_tail(&self.console_log, pinlat::console::SCAN_TAIL_BYTES as u64).into_bytes()
    }

    fn resume(&mut self) -> Result<(), ResumeError> {
        self.domain
            .virsh
            .resume(&self.domain.name)
            .map_err(|e| ResumeError(anyhow::Error::new(e)))
    }

    fn send(&mut self, cmd: &Command) -> std::io::Result<()> {
        self.channel.send(cmd)
    }

    fn mgmt_socket(&self) -> Option<PathBuf> {
        self.mgmt_socket.clone()
    }

    fn pinner(&mut self) -> Option<&mut Pinner> {
        self.pinner.as_mut()
    }

    fn net_echo(&self) -> Option<pinlat::result::EchoStats> {
        self.backends.echo_stats()
    }

    fn libvirt_domain(&self) -> Option<LibvirtDomain> {
        Some(self.domain.clone())
    }
}

impl Drop for LibvirtGuest {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinlat::cpuset::CpuSet;
    use pinlat::plan::Sched;
    use pinlat::result::HostPolicy;

    #[test]
    fn a_refused_create_names_the_fix() {
        let failed = |stderr: &str| VirshError::Failed {
            args: "create /run/p/domain.xml --paused".into(),
            status: "exit status: 1".into(),
            stderr: stderr.into(),
        };
        let left = create_failed(
            failed("error: operation failed: domain 'pinlat-vcpu0-rt' already exists with uuid 1"),
            "pinlat-vcpu0-rt",
        );
        assert!(
            left.ends_with("a killed one left its domain: `virsh destroy pinlat-vcpu0-rt`"),
            "{left}"
        );
        let rt = create_failed(
            failed("error: Cannot set scheduler parameters for pid 42: Operation not permitted"),
            "pinlat-vcpu0-rt",
        );
        assert!(
            rt.contains("Fix: libvirt's vCPU cgroup has no RT time"),
            "{rt}"
        );
        assert!(!rt.contains("virsh destroy"), "{rt}");
    }

    #[test]
    fn a_difference_names_the_thread_what_libvirt_did_and_the_plan() {
        let t = ObservedThread {
            tid: 4242,
            comm: "qemu-system-x86".into(),
            role: ThreadRole::Emulator,
            cpus: CpuSet::parse("1").unwrap(),
            policy: HostPolicy::Other,
            priority: 0,
            planned_cpus: CpuSet::parse("0").unwrap(),
            planned_sched: Sched::OTHER,
        };
        assert_eq!(
            applied_vs_plan(&t),
            "emulator thread (tid 4242, qemu-system-x86): libvirt applied CPUs 1 other, \
             the plan says CPUs 0 other"
        );
    }
}
