//! The raw result of one run, as `pinlat run` writes it to `runs/<run>.json` the moment the run
//! ends. It is the single source the reports are derived from (one schema, many
//! views): nothing a report shows may exist only in memory.
//!
//! A run records what was *observed*, next to what was planned: every QEMU thread's
//! `Cpus_allowed_list` and scheduling policy read back from `/proc` after pinning and again when
//! the measurement ended.

use serde::{Deserialize, Serialize};

use crate::config::{LayoutKind, ScenarioKind, WorkloadKind};
use crate::console::{FailureCause, Phase};
use crate::cpuset::CpuSet;
use crate::kinds::Accel;
#[cfg(test)]
use crate::plan::GuestPlacement;

mod boot;
mod guest;
mod scenario;
mod series;
mod warning;

pub use boot::BootPhase;
pub use guest::{
    is_long_run, DriftEvent, EchoStats, GuestRun, HostPolicy, LibvirtLaunch, MeasureWindow,
    NewThread, NewThreadPlacement, ObservedThread, ThreadRole, VcpuThreadStats, FULL_INTERVALS_MAX,
};
pub use scenario::{
    MgmtPollStats, MgmtStormStats, MigrateStats, QueryCalls, ThreadCpu, ThreadKind, ThreadKindCpu,
};
pub use series::{CpuSeries, SeriesPoint, SERIES_MAX_POINTS};
pub use warning::{load_below_rate, Warning, LOAD_BELOW_RATE_FRACTION};

/// Version of this schema; bumped on any incompatible change.
pub const RUN_SCHEMA_VERSION: u32 = 1;

/// Sentence every output made under TCG carries.
pub const TCG_DISCLAIMER: &str = "measured under QEMU TCG (software emulation): these latencies show the harness working and relative effects, not hardware latency";

/// The stage of a run in which it failed, in the order a run goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Preparing the run's files (runtime directory, initramfs, console directory).
    Setup,
    /// Starting QEMU.
    Launch,
    /// Talking to QEMU's monitor (handshake, thread ids, `cont`).
    Qmp,
    /// Applying the placement to QEMU's threads.
    Pin,
    /// Reading the placement back: it differs from the plan.
    Verify,
    /// The guest booting: no agent hello before the boot deadline.
    Boot,
    /// The agent measuring: QEMU exited or the run deadline passed.
    Measure,
    /// Collecting the agent's results: a channel error, a flood, missing results.
    Collect,
    /// The agent reported an error.
    Agent,
    /// The scenario's disturbance could not run as asked.
    Scenario,
    /// SIGINT or SIGTERM stopped the run.
    Interrupted,
}

impl Stage {
    /// The name records and reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Setup => "setup",
            Stage::Launch => "launch",
            Stage::Qmp => "qmp",
            Stage::Pin => "pin",
            Stage::Verify => "verify",
            Stage::Boot => "boot",
            Stage::Measure => "measure",
            Stage::Collect => "collect",
            Stage::Agent => "agent",
            Stage::Scenario => "scenario",
            Stage::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cause classified from the console (`crate::console`) read as the record's [`Stage`].
impl FailureCause {
    /// The stage the run failed in: [`Stage::Boot`] for a guest failure before the hello,
    /// [`Stage::Measure`] after it, [`Stage::Agent`] for an agent error. `None` for a host-side
    /// failure, whose stage only the caller knows.
    pub fn stage(&self) -> Option<Stage> {
        let by_phase = |phase: &Phase| match phase {
            Phase::Boot => Stage::Boot,
            Phase::Run => Stage::Measure,
        };
        match self {
            FailureCause::KernelPanic { phase, .. }
            | FailureCause::Oops { phase, .. }
            | FailureCause::Stall { phase, .. }
            | FailureCause::QemuExited { phase, .. } => Some(by_phase(phase)),
            FailureCause::AgentError { .. } => Some(Stage::Agent),
            FailureCause::NoHello { .. } => Some(Stage::Boot),
            FailureCause::RunDeadline { .. } => Some(Stage::Measure),
            FailureCause::Infrastructure { .. } => None,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum RunStatus {
    /// Measured to the end, placement verified.
    Ok,
    /// The run failed; whatever was measured before is kept.
    Failed {
        /// The stage it failed in.
        stage: Stage,
        /// What happened, and where useful what the console last showed.
        reason: String,
    },
}

impl RunStatus {
    /// Whether the run measured to the end.
    pub fn is_ok(&self) -> bool {
        matches!(self, RunStatus::Ok)
    }

    /// A failure in `stage`.
    pub fn failed(stage: Stage, reason: impl Into<String>) -> Self {
        RunStatus::Failed {
            stage,
            reason: reason.into(),
        }
    }
}

/// Steal time of the host's CPUs over a run: time the hypervisor ran something else while the
/// CPU wanted to run (`/proc/stat`, 10 ms resolution). Non-zero only when the host is a VM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSteal {
    /// Length of the window, ms: from the first agent hello (before its preheat) until every
    /// guest had sent its results, or the run ended.
    pub window_ms: u64,
    /// Steal time per host CPU over the window, ns.
    pub per_cpu_ns: std::collections::BTreeMap<u32, u64>,
}

impl HostSteal {
    /// Fraction of the window above which steal time is reported as significant.
    pub const SIGNIFICANT_FRACTION: f64 = 0.01;

    /// CPUs of `cpus` whose steal time was significant: (CPU, steal ns, fraction of the window).
    pub fn significant(&self, cpus: &CpuSet) -> Vec<(u32, u64, f64)> {
        let window_ns = self.window_ms.max(1) as f64 * 1e6;
        self.per_cpu_ns
            .iter()
            .filter(|(c, _)| cpus.contains(**c))
            .map(|(&c, &ns)| (c, ns, ns as f64 / window_ns))
            .filter(|&(_, ns, f)| ns > 0 && f >= Self::SIGNIFICANT_FRACTION)
            .collect()
    }
}

/// The raw result of one run (`runs/<name>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// [`RUN_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The matrix this run belongs to (`reports/<run_id>/`).
    pub run_id: String,
    /// `layout.scenario.workload.rN`.
    pub name: String,
    /// Layout name.
    pub layout: String,
    /// Layout rule.
    pub layout_kind: LayoutKind,
    /// The tuning variant (`[[variants]] name`); `None` when the config has no variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The scenario the run was measured under, by name (`[[scenarios]] name`, default its
    /// kinds joined by `+`).
    pub scenario: String,
    /// The disturbances the scenario ran.
    #[serde(default)]
    pub scenario_kinds: Vec<ScenarioKind>,
    /// The workload measured on the RT vCPUs.
    pub workload: WorkloadKind,
    /// Repetition, from 1.
    pub repetition: u32,
    /// Accelerator used.
    pub accel: Accel,
    /// How the run ended.
    pub status: RunStatus,
    /// Why it failed, classified from the guest's console and what the host saw, with the lines
    /// that prove it ([`crate::console`]); `None` for a run that did not fail or failed on the
    /// host's own verdict (placement, scenario).
    #[serde(default)]
    pub failure: Option<FailureCause>,
    /// Start, milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// Wall time of the run, milliseconds.
    pub wall_ms: u64,
    /// Requested measurement time, milliseconds (after preheat).
    pub duration_ms: u64,
    /// Per guest.
    pub guests: Vec<GuestRun>,
    /// `mgmt-poll` counters, when that scenario ran.
    pub mgmt_poll: Option<MgmtPollStats>,
    /// What the user should know of that did not fail the run.
    pub warnings: Vec<Warning>,
    /// The host's steal time during the run, when `/proc/stat` was readable.
    #[serde(default)]
    pub host_steal: Option<HostSteal>,
    /// Peak resident memory of the runner process so far (`VmHWM`), KiB: the harness's own
    /// footprint, which a flooding guest must not be able to grow without bound.
    #[serde(default)]
    pub runner_max_rss_kib: Option<u64>,
    /// `mgmt-storm` counters over every guest, when that scenario ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mgmt_storm: Option<MgmtStormStats>,
    /// `migrate` counters over every guest, when that scenario ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate: Option<MigrateStats>,
    /// What the host tracer saw on the RT pCPUs (who took them, matched to the guest's largest
    /// events), and their SMI counts; `None` in records written before tracing existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_trace: Option<crate::trace::record::RunTrace>,
    /// The host knobs of the run's variant (`variants[i].host`) as they were during the run:
    /// before, asked for, and read back after the write; empty when the variant sets none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_knobs: Vec<crate::schema::AppliedKnob>,
    /// The guest boot the run measured in and its place there; `None` in records written
    /// before boots were shared (each had a boot of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<BootPhase>,
}

impl crate::schema::Versioned for RunRecord {
    const NAME: &'static str = "run record";
    const VERSION: u32 = RUN_SCHEMA_VERSION;
}

impl RunRecord {
    /// File name of the run under `runs/`.
    pub fn file_name(&self) -> String {
        format!("{}.json", self.name)
    }

    /// Every host CPU the run's placements planned a QEMU thread on.
    pub fn planned_cpus(&self) -> CpuSet {
        self.guests
            .iter()
            .fold(CpuSet::new(), |all, g| all.union(&g.planned.all_cpus()))
    }

    /// Every observed thread that differs from the plan, at start or end.
    pub fn placement_mismatches(&self) -> Vec<(&str, &ObservedThread)> {
        self.guests
            .iter()
            .flat_map(|g| {
                g.observed_start
                    .iter()
                    .map(|t| ("after pinning", t))
                    .chain(g.observed_end.iter().map(|t| ("at the end", t)))
            })
            .filter(|(_, t)| !t.matches())
            .collect()
    }
}

/// The name of a run: `layout.scenario.workload.rN`, or `layout.variant.scenario.workload.rN`
/// when the config has variants.
pub fn run_name(
    layout: &str,
    variant: Option<&str>,
    scenario: &str,
    workload: WorkloadKind,
    rep: u32,
) -> String {
    match variant {
        None => format!("{layout}.{scenario}.{workload}.r{rep}"),
        Some(v) => format!("{layout}.{v}.{scenario}.{workload}.r{rep}"),
    }
}

/// A minimal ok run of one guest `rt` (layout `vcpu0`, `migrate`, `busy-poll`), for the
/// report modules' tests.
#[cfg(test)]
pub(crate) fn test_record() -> RunRecord {
    RunRecord {
        schema_version: RUN_SCHEMA_VERSION,
        run_id: "test".into(),
        name: "vcpu0.migrate.busy-poll.r1".into(),
        layout: "vcpu0".into(),
        layout_kind: LayoutKind::Vcpu0,
        variant: None,
        scenario: "migrate".into(),
        scenario_kinds: vec![ScenarioKind::Migrate],
        workload: WorkloadKind::BusyPoll,
        repetition: 1,
        accel: Accel::Tcg,
        status: RunStatus::Ok,
        failure: None,
        started_unix_ms: 0,
        wall_ms: 0,
        duration_ms: 1_000,
        guests: vec![GuestRun::new(GuestPlacement {
            guest: "rt".into(),
            pinned: true,
            vcpus: Vec::new(),
            emulator_cpus: CpuSet::new(),
            iothread_cpus: CpuSet::new(),
        })],
        mgmt_poll: None,
        warnings: Vec::new(),
        host_steal: None,
        runner_max_rss_kib: None,
        host_trace: None,
        host_knobs: Vec::new(),
        mgmt_storm: None,
        migrate: None,
        boot: None,
    }
}

#[cfg(test)]
mod tests;
