//! The run engine: one run of the matrix, from launching its guests to its final
//! [`RunRecord`] — including when it goes wrong.
//!
//! A run launches every guest of the layout paused, with its placement applied and verified
//! ([`Launcher`]: [`launch::QemuLauncher`] for QEMU), releases them together, starts the
//! scenario's disturbance ([`crate::disturb`]), watches the guests until they are done
//! ([`monitor`]), and finishes the record ([`finish`]). In a shared boot ([`boots`] plans
//! them) the guests stay up and the next run is a phase in them ([`phase`]). Guests are driven through the
//! [`backend::GuestBackend`] seam, so the loop's logic is unit-tested without QEMU.
//!
//! Failures never escape as errors: a guest that hangs, crashes or sends garbage costs this
//! run (recorded as failed with its partial data), never the matrix.

pub mod backend;
pub mod boots;
pub mod channel;
pub mod checkpoint;
mod drift;
mod finish;
pub mod launch;
pub mod live;
mod monitor;
pub mod phase;
#[cfg(test)]
mod phase_tests;
#[cfg(test)]
mod soak_tests;
#[cfg(test)]
mod tests;
pub mod tracer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pinlat::agentcfg::AgentConfig;
use pinlat::config::variant::Variant;
use pinlat::config::{Config, Guest, Scenario, Workload, WorkloadKind};
use pinlat::cpuset::CpuSet;
use pinlat::kinds::Accel;
use pinlat::plan::{GuestPlacement, LayoutPlan, Plan};
use pinlat::result::{GuestRun, RunRecord, RunStatus, Warning};
use pinlat::wire::FrameDecoder;

use self::backend::GuestBackend;
use self::live::{LiveGuest, MAX_FRAME_BYTES, MAX_OUTPUT_BYTES};
use crate::disturb::Disturbance;
use crate::pin::VcpuSampler;
use crate::validate::Expect;

/// The slack of the run deadline: a run whose agent has not finished within twice its
/// preheat + duration plus this, counted from its first hello, fails.
pub const RUN_DEADLINE_SLACK: Duration = Duration::from_secs(30);

/// What a launcher is asked to start for one guest of a run.
pub struct LaunchRequest<'a> {
    /// The run's name (`layout.scenario.workload.rN`), for file names.
    pub run: &'a str,
    /// The scenario's name, for messages.
    pub scenario: &'a str,
    /// The guest's index in the config.
    pub index: usize,
    /// The layout the run measures.
    pub layout: &'a LayoutPlan,
    /// The tuning variant the run measures, if the config has variants.
    pub variant: Option<&'a Variant>,
    /// The guest.
    pub guest: &'a Guest,
    /// Its planned placement.
    pub placement: &'a GuestPlacement,
    /// The agent's run config as the disturbance prepared it; the launcher adds what only it
    /// knows (the kernel modules the guest's devices need) and returns it in [`Launched`].
    pub agent: AgentConfig,
    /// `reports/<run-id>/`, where console logs and agent channels are kept.
    pub result_dir: &'a Path,
    /// The scenario's disturbance, to prepare the VM.
    pub disturbance: &'a dyn Disturbance,
    /// Most of the raw agent stream kept in `console/<run>.<guest>.agent`, bytes
    /// ([`channel::SOAK_LOG_BYTES`] in a soak, else all of it).
    pub agent_log_bytes: u64,
}

/// Starts guests: paused, with the placement applied and read back. One implementation per way
/// of starting a VM: QEMU directly ([`launch::QemuLauncher`]) or a libvirt domain
/// ([`crate::libvirt::launch::LibvirtLauncher`]).
pub trait Launcher {
    /// Launches one guest. Fills `record` (process id, console log, placement after pinning)
    /// and may add warnings; on failure returns the failed status, the guest already stopped.
    fn launch(
        &self,
        req: LaunchRequest<'_>,
        record: &mut GuestRun,
        warnings: &mut Vec<Warning>,
    ) -> Result<Launched, RunStatus>;
}

/// A launched guest.
pub struct Launched {
    /// The guest, paused and pinned.
    pub backend: Box<dyn GuestBackend>,
    /// The agent config it was given, exactly (the hello must echo it).
    pub agent: AgentConfig,
}

/// Everything a run needs that does not change between runs.
pub struct RunContext<'a> {
    /// The checked config (with CLI overrides applied).
    pub config: &'a Config,
    /// The plan.
    pub plan: &'a Plan,
    /// The matrix id.
    pub run_id: String,
    /// `reports/<run-id>/`.
    pub result_dir: PathBuf,
    /// How guests are started.
    pub launcher: &'a dyn Launcher,
    /// The accelerator the guests run with.
    pub accel: Accel,
    /// Measured time per run, ms.
    pub duration_ms: u64,
    /// Added to twice the planned preheat + duration to make the host's run deadline
    /// ([`RUN_DEADLINE_SLACK`] in `pinlat run`).
    pub deadline_slack: Duration,
    /// Set when the user asked to stop (SIGINT/SIGTERM).
    pub interrupted: &'a dyn Fn() -> Option<&'static str>,
    /// How the RT pCPUs are traced.
    pub trace: &'a tracer::TraceSettings,
    /// A soak (`--soak`, or a run of more than [`pinlat::result::FULL_INTERVALS_MAX`]
    /// intervals: decided once, by `pinlat run`): the record keeps only each RT vCPU's bounded
    /// series, no interval frame whole, and the raw agent stream its first
    /// [`channel::SOAK_LOG_BYTES`]. Otherwise interval frames are kept whole beside the series.
    pub soak: bool,
    /// Points each RT vCPU's series keeps ([`pinlat::result::SERIES_MAX_POINTS`]).
    pub series_points: usize,
    /// Checkpoints of the run so far and report rebuilds while it measures
    /// (`--report-every`), if asked for.
    pub checkpoints: Option<&'a checkpoint::Checkpoints>,
    /// Told, at most once a second, how far the current run has measured (ns), for the
    /// progress display.
    pub progress: &'a dyn Fn(u64),
    /// The host knobs of the variant being measured, as applied (`pinlat run` sets them per
    /// boot): every record, its checkpoints included, carries them from its start.
    pub host_knobs: &'a std::cell::RefCell<Vec<pinlat::schema::AppliedKnob>>,
}

/// The host pCPUs a disturbance's own threads run on: the configured housekeeping pCPUs, else
/// the usable pCPUs that no RT vCPU of this layout may run on (none in a `float` layout, whose
/// RT vCPUs may run anywhere). A runner thread beside a SCHED_FIFO vCPU would barely run.
pub fn housekeeping_cpus(plan: &Plan, layout: &LayoutPlan) -> CpuSet {
    if !plan.housekeeping_cpus.is_empty() {
        return plan.housekeeping_cpus.clone();
    }
    let rt = layout
        .guests
        .iter()
        .flat_map(|g| g.vcpus.iter().filter(|v| v.realtime))
        .fold(CpuSet::new(), |all, v| all.union(&v.cpus));
    plan.usable_cpus.difference(&rt)
}

/// What the run expects of one guest's agent.
fn live_guest(
    ctx: &RunContext<'_>,
    backend: Box<dyn GuestBackend>,
    record: GuestRun,
    workload: &Workload,
    guest: &Guest,
    sent: AgentConfig,
) -> LiveGuest {
    let rt = guest.realtime.len();
    let finals_expected = match workload.kind {
        WorkloadKind::Ring => 1,
        _ => rt,
    };
    let intervals_per_cpu = (ctx.duration_ms / ctx.config.run.interval_ms.max(1)) as usize + 4;
    // A soak keeps only the series: one decoded interval histogram is ~220 KiB of memory.
    let keep_whole = !ctx.soak;
    LiveGuest {
        backend,
        record,
        decoder: FrameDecoder::with_max_frame_bytes(MAX_FRAME_BYTES),
        sampler: VcpuSampler::default(),
        thread_cpu: Default::default(),
        done: false,
        finals_expected,
        max_output_bytes: MAX_OUTPUT_BYTES
            .max((intervals_per_cpu * rt.max(1)) as u64 * live::MAX_OUTPUT_PER_INTERVAL_BYTES),
        max_intervals: if keep_whole {
            intervals_per_cpu * rt.max(1) * 2
        } else {
            0
        },
        dropped_intervals: 0,
        series_points: ctx.series_points,
        arrived: Vec::new(),
        expect: Expect {
            rt_cpus: guest.realtime.clone(),
            workload: workload.kind,
            planned_ns: workload
                .preheat_ms
                .saturating_add(ctx.duration_ms)
                .saturating_mul(1_000_000),
            deadline_slack_ns: ctx.deadline_slack.as_nanos() as u64,
            // Late hand-offs stretch intervals, never add any: twice the nominal count is slack.
            max_intervals: intervals_per_cpu as u64 * 2,
        },
        refused: 0,
        refused_reasons: Vec::new(),
        sent,
        hello_at: None,
        hello_mono_ns: None,
        released: None,
        drift: Default::default(),
        read_errors: (0, None),
        end: None,
        from: live::PhaseStart::default(),
    }
}

/// Executes one run of the matrix in a guest of its own and returns its record. Never fails:
/// failures are recorded. (A boot of one phase: [`phase::execute_boot`] runs shared ones.)
pub fn execute(
    ctx: &RunContext<'_>,
    layout: &LayoutPlan,
    variant: Option<&Variant>,
    scenario: &Scenario,
    workload: &Workload,
    repetition: u32,
) -> RunRecord {
    let boot = boots::BootPlan {
        layout,
        variant,
        repetition,
        phases: vec![boots::PhasePlan { scenario, workload }],
        boot_per: pinlat::kinds::BootPer::Measurement,
        order_seed: None,
    };
    let mut out = None;
    let _ = phase::execute_boot(ctx, &boot, &mut |_| {}, &mut |r| {
        out = Some(r);
        std::ops::ControlFlow::Continue(())
    });
    out.expect("a boot of one phase ends with its record")
}

/// A short result line for progress output: the max of the RT CPUs, or the failure.
pub fn summary_line(r: &RunRecord) -> String {
    match &r.status {
        RunStatus::Failed { stage, reason } => format!("FAILED ({stage}): {reason}"),
        RunStatus::Ok => {
            let mut worst: BTreeMap<&str, u64> = BTreeMap::new();
            let mut samples = 0u64;
            for g in &r.guests {
                for c in &g.results {
                    let e = worst.entry(g.guest.as_str()).or_default();
                    *e = (*e).max(c.max_ns);
                    samples += c.samples;
                }
            }
            let max = worst.values().copied().max().unwrap_or(0);
            format!(
                "ok: {samples} samples, max {:.1} µs, {:.1} s",
                max as f64 / 1000.0,
                r.wall_ms as f64 / 1000.0
            )
        }
    }
}
