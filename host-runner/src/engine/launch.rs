//! Launching one guest with QEMU, paused, with its placement applied and proven: the agent's
//! initramfs, QEMU from the guest's [`VmSpec`], the QMP handshake, the vCPU and iothread thread
//! ids, pinning in libvirt's order ([`crate::placement`]) and every thread read back from
//! `/proc` before the guest may run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pinlat::kinds::ThreadPlacement;
use pinlat::result::{GuestRun, NewThreadPlacement, ObservedThread, RunStatus, Stage, Warning};

use super::backend::QemuGuest;
use super::channel::PipeChannel;
use super::{LaunchRequest, Launched, Launcher};
use crate::cgroup::{GuestCgroup, Hierarchy};
use crate::devices::Backends;
use crate::initramfs::Initramfs;
use crate::kernel::GuestKernel;
use crate::pin::Pinner;
use crate::qemu::{AgentChannel, Qemu, QemuBinary, VmSpec};

/// Launches guests as QEMU processes of this host.
pub struct QemuLauncher {
    /// The QEMU binary and its version line.
    pub qemu: QemuBinary,
    /// The guest kernel (a guest's own `kernel` key wins).
    pub kernel: GuestKernel,
    /// The static agent's bytes, `/init` of every guest.
    pub agent: Vec<u8>,
    /// The accelerator every guest runs with.
    pub accel: pinlat::kinds::Accel,
    /// Fail a guest whose RT vCPU threads cannot get SCHED_FIFO instead of recording the
    /// degradation (`--strict`).
    pub strict: bool,
    /// How threads QEMU starts after pinning are kept off the RT pCPUs (`run.thread_placement`).
    pub thread_placement: ThreadPlacement,
}

/// Period of the scan for new QEMU threads when no cpuset cgroup holds them, ms.
pub const SCAN_PERIOD_MS: u64 = 10;

/// Puts the guest's threads into a cpuset cgroup of their own, or says why it scans instead.
fn new_thread_placement(
    choice: ThreadPlacement,
    pinner: &mut Pinner,
    name: &str,
) -> NewThreadPlacement {
    let scan = |why: String| NewThreadPlacement::Scan {
        period_ms: SCAN_PERIOD_MS,
        why,
    };
    if choice == ThreadPlacement::Scan {
        return scan("run.thread_placement = \"scan\"".into());
    }
    let hierarchy = match crate::cgroup::live_hierarchy() {
        Ok(h) => h,
        Err(e) => return scan(e.to_string()),
    };
    let group = match GuestCgroup::create(&hierarchy, name, &pinner.planned_cpus()) {
        Ok(g) => g,
        Err(e) => return scan(format!("{:#}", anyhow::Error::new(e))),
    };
    let dir = group.dir().display().to_string();
    match (pinner.use_cgroup(group), hierarchy) {
        (Err(e), _) => scan(format!("{:#}", anyhow::Error::new(e))),
        (Ok(()), Hierarchy::V1(_)) => NewThreadPlacement::CpusetV1 { group: dir },
        (Ok(()), Hierarchy::V2(_)) => NewThreadPlacement::CgroupV2Threaded { group: dir },
    }
}

/// Every thread of the guest read back, when each is where the plan puts it (or only
/// degraded as recorded); else the failure naming the first that is not, `when` saying at
/// which point ("after pinning", "at the start of phase 2").
pub fn verified(pinner: &Pinner, when: &str) -> Result<Vec<ObservedThread>, RunStatus> {
    let threads = pinner.observe().map_err(|e| err(Stage::Verify)(e.into()))?;
    if let Some(bad) = threads
        .iter()
        .find(|t| !t.matches() && !pinner.is_degraded_only(t))
    {
        return Err(RunStatus::failed(
            Stage::Verify,
            format!(
                "thread {} ({}) observed on CPUs {} policy {}:{} {when}, planned {} {}",
                bad.tid,
                bad.comm,
                bad.cpus,
                bad.policy,
                bad.priority,
                bad.planned_cpus,
                bad.planned_sched
            ),
        ));
    }
    Ok(threads)
}

pub(crate) fn err(stage: Stage) -> impl Fn(anyhow::Error) -> RunStatus {
    move |e| RunStatus::failed(stage, format!("{e:#}"))
}

/// What every launcher prepares before a guest starts: the private runtime directory, the
/// console log and agent channel, the VM description as the scenario wants it, the devices'
/// backends and the initramfs with the agent's final config.
pub struct Prepared {
    /// The private runtime directory (FIFOs, initramfs, sockets).
    pub runtime: crate::qemu::RuntimeDir,
    /// The VM, paused.
    pub spec: VmSpec,
    /// The agent channel.
    pub channel: PipeChannel,
    /// The console log file.
    pub console_log: PathBuf,
    /// The devices' backends.
    pub backends: Backends,
    /// The agent config the initramfs holds.
    pub agent: pinlat::agentcfg::AgentConfig,
}

/// Prepares one guest of `req` for any launcher: files, channel, spec, devices, initramfs.
/// Sets `record.console_log`.
pub fn prepare_guest(
    kernel: &GuestKernel,
    agent_binary: &[u8],
    accel: pinlat::kinds::Accel,
    req: LaunchRequest<'_>,
    record: &mut GuestRun,
) -> Result<Prepared, RunStatus> {
    let guest = req.guest;
    let runtime = crate::qemu::runtime_dir().map_err(|e| err(Stage::Setup)(e.into()))?;
    let initrd = runtime.path().join("initrd.cpio");
    let console_rel = format!("console/{}.{}.log", req.run, guest.name);
    let console_log = req.result_dir.join(&console_rel);
    if let Some(dir) = console_log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            err(Stage::Setup)(anyhow::Error::new(e).context(format!("creating {}", dir.display())))
        })?;
    }
    record.console_log = Some(console_rel);
    // Kept with the run: the raw frames are the evidence when frames were rejected. The
    // FIFOs are named for the run, which also names the QEMU process on its command line.
    let agent_log: PathBuf = req
        .result_dir
        .join(format!("console/{}.{}.agent", req.run, guest.name));
    let channel = PipeChannel::create(
        &runtime
            .path()
            .join(format!("{}.{}.agent", req.run, guest.name)),
        &agent_log,
        req.agent_log_bytes,
    )
    .map_err(|e| err(Stage::Setup)(e.into()))?;
    let mut spec = VmSpec::for_guest(
        guest,
        accel,
        &kernel.path,
        initrd.clone(),
        console_log.clone(),
        AgentChannel::Pipe(channel.base().to_path_buf()),
    )
    .with_variant(req.variant)
    .paused();
    // The variant's guest knobs: its command line preset and parameters.
    if let Some(v) = req.variant {
        spec = spec.with_guest_knobs(guest, &v.guest);
    }
    req.disturbance.prepare_vm(req.index, &mut spec);
    // The devices' backends exist before QEMU opens them; their drivers' modules go into
    // the initramfs and the agent loads them before it says hello.
    let backends = Backends::start(&mut spec.devices, runtime.path()).map_err(|e| {
        err(Stage::Setup)(
            anyhow::Error::new(e)
                .context(format!("scenario {}: the guest's devices", req.scenario)),
        )
    })?;
    let plan = kernel
        .module_plan(&crate::devices::needs(
            &spec.devices,
            &format!("{} of guest {}", req.scenario, guest.name),
        ))
        .map_err(|e| err(Stage::Setup)(e.into()))?;
    let mut agent = req.agent;
    agent.modules = plan.names();
    Initramfs::for_agent(agent_binary.to_vec(), agent.to_json().into_bytes())
        .with_modules(&plan)
        .write_file(&initrd)
        .map_err(|e| err(Stage::Setup)(anyhow::Error::new(e).context("writing the initramfs")))?;
    Ok(Prepared {
        runtime,
        spec,
        channel,
        console_log,
        backends,
        agent,
    })
}

impl Launcher for QemuLauncher {
    fn launch(
        &self,
        req: LaunchRequest<'_>,
        record: &mut GuestRun,
        warnings: &mut Vec<Warning>,
    ) -> Result<Launched, RunStatus> {
        let guest = req.guest;
        let placement = req.placement;
        let run = req.run;
        let p = prepare_guest(&self.kernel, &self.agent, self.accel, req, record)?;
        record.variant_qemu_args = crate::qemu::knobs::knob_args(&p.spec.knobs, p.spec.memory_mib);
        let mut qemu = Qemu::spawn_in(&self.qemu, &p.spec, p.runtime)
            .map_err(|e| err(Stage::Launch)(e.into()))?;
        record.qemu_pid = Some(qemu.pid());
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut qmp = qemu
            .connect_qmp(deadline, Duration::from_secs(5))
            .map_err(|e| err(Stage::Qmp)(e.into()))?;
        let vcpus = qmp
            .query_cpus_fast()
            .map_err(|e| err(Stage::Qmp)(anyhow::Error::new(e).context("query-cpus-fast")))?;
        let iothreads = if guest.iothreads > 0 {
            qmp.query_iothreads()
                .map_err(|e| err(Stage::Qmp)(anyhow::Error::new(e).context("query-iothreads")))?
        } else {
            Vec::new()
        };
        let mut pinner = Pinner::new(qemu.pid(), placement.clone(), &vcpus, &iothreads)
            .map_err(|e| err(Stage::Pin)(e.into()))?
            .strict(self.strict);
        pinner.pin_all().map_err(|e| err(Stage::Pin)(e.into()))?;
        record.new_thread_placement = Some(new_thread_placement(
            self.thread_placement,
            &mut pinner,
            &format!("pinlat-{}-{}-{}", std::process::id(), run, guest.name),
        ));
        record.observed_start = verified(&pinner, "after pinning")?;
        if !pinner.sched_refused().is_empty() {
            warnings.push(Warning::SchedFifoRefused {
                guest: guest.name.clone(),
                threads: pinner.sched_refused().len(),
            });
        }
        Ok(Launched {
            backend: Box::new(QemuGuest {
                qemu,
                pinner,
                control: Some(qmp),
                channel: p.channel,
                console_log: p.console_log,
                backends: p.backends,
            }),
            agent: p.agent,
        })
    }
}
