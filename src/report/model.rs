//! The report's model below the [`Report`](super::Report) itself: runs, groups (one
//! layout/variant/scenario/workload over its repetitions), their spread and timelines, the
//! observed placement, and how an arm or group is named in every output.

use serde::{Deserialize, Serialize};

use super::{failures, stability, BudgetStatus, BudgetVerdict, RunOutcome};
use crate::config::{LayoutKind, WorkloadKind};
use crate::cpuset::CpuSet;
use crate::histo::{Hist, Quantile, Summary};
use crate::kinds::Accel;
use crate::plan::GuestPlacement;
use crate::result::ObservedThread;
use crate::wire::{ClockInfo, ClockSource};

/// One RT vCPU of one guest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VcpuKey {
    /// Guest name.
    pub guest: String,
    /// vCPU index (the CPU number the agent measured on).
    pub vcpu: u32,
}

impl std::fmt::Display for VcpuKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/vCPU{}", self.guest, self.vcpu)
    }
}

/// The name of an arm of the matrix, as every output shows it: the layout name alone when the
/// config has no variants (`vcpu0`), else `layout/variant` (`vcpu0/mlock`). Arms are ranked as
/// layouts are ([`verdict`](super::verdict)).
pub fn arm_name(layout: &str, variant: Option<&str>) -> String {
    match variant {
        None => layout.to_string(),
        Some(v) => format!("{layout}/{v}"),
    }
}

/// `layout.scenario.workload`, or `layout.variant.scenario.workload` with variants: a group's
/// name, its runs' names without the repetition ([`crate::result::run_name`]).
pub fn group_name(
    layout: &str,
    variant: Option<&str>,
    scenario: &str,
    workload: WorkloadKind,
) -> String {
    match variant {
        None => format!("{layout}.{scenario}.{workload}"),
        Some(v) => format!("{layout}.{v}.{scenario}.{workload}"),
    }
}

/// Summary of one run file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// `layout.scenario.workload.rN` (`layout.variant.scenario.workload.rN` with variants).
    pub name: String,
    /// File under `runs/`.
    pub file: String,
    /// Layout name.
    pub layout: String,
    /// The tuning variant, `None` when the config has no variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The scenario the runs were measured under.
    pub scenario: String,
    /// The workload measured on the RT vCPUs.
    pub workload: WorkloadKind,
    /// Repetition, from 1.
    pub repetition: u32,
    /// The accelerator the guests ran with (TCG numbers are not hardware latency).
    pub accel: Accel,
    /// How it ended.
    pub outcome: RunOutcome,
    /// Start, milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// Requested measurement time, ms.
    pub duration_ms: u64,
    /// The clocks its RT vCPUs were measured with, each distinct one once (from the final
    /// results, else from the agent's hello; empty when neither arrived).
    pub clocks: Vec<ClockInfo>,
    /// All RT vCPUs of the run merged (failed runs: what was measured before the failure).
    pub stats: Summary,
    /// Per RT vCPU.
    pub per_vcpu: Vec<(VcpuKey, Summary)>,
    /// Observed threads that differ from the plan (after pinning or at the end).
    pub placement_mismatches: usize,
    /// Involuntary context switches of the RT vCPU threads on the host during the measurement.
    pub rt_vcpu_nonvoluntary_switches: u64,
    /// Migrations of the RT vCPU threads, when the kernel exposed them.
    pub rt_vcpu_migrations: Option<u64>,
    /// `mgmt-poll` rounds completed.
    pub mgmt_poll_rounds: Option<u64>,
    /// Frames dropped by the decoder (bad length/CRC/JSON, oversize).
    pub bad_frames: u64,
    /// The run's warnings.
    pub warnings: Vec<crate::result::Warning>,
}

/// One of the largest samples, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRef {
    /// Run name.
    pub run: String,
    /// RT vCPU.
    pub vcpu: VcpuKey,
    /// When it ended, ns from the start of the run's measurement.
    pub offset_ns: u64,
    /// The sample, ns.
    pub latency_ns: u64,
}

/// One interval of one run, all RT vCPUs merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalPoint {
    /// 0-based interval number.
    pub index: u64,
    /// Start, ns from the start of the measurement.
    pub start_offset_ns: u64,
    /// End, ns from the start of the measurement.
    pub end_offset_ns: u64,
    /// Samples, overflow included.
    pub samples: u64,
    /// 99th percentile of the interval, ns (`None`: in the overflow above the histogram range).
    pub p99_ns: Option<u64>,
    /// Largest value of the interval's histogram, ns (`None` when it only overflowed).
    pub max_ns: Option<u64>,
}

/// The interval time series of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunTimeline {
    /// Run name.
    pub run: String,
    /// Repetition number, from 1.
    pub repetition: u32,
    /// Intervals in order.
    pub points: Vec<IntervalPoint>,
}

/// Range of one statistic over the repetitions of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// Smallest repetition value, ns.
    pub min_ns: u64,
    /// Largest repetition value, ns.
    pub max_ns: u64,
}

impl Range {
    /// `max − min`, ns.
    pub fn width_ns(&self) -> u64 {
        self.max_ns - self.min_ns
    }
}

/// The spread between repetitions of a group (ok runs with samples only). A range is `None`
/// with fewer than 2 repetitions or when a repetition's value is in the overflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spread {
    /// Repetitions the spread is computed over.
    pub repetitions: usize,
    /// p50 over the repetitions.
    pub p50: Option<Range>,
    /// p90 over the repetitions.
    pub p90: Option<Range>,
    /// p99 over the repetitions.
    pub p99: Option<Range>,
    /// p99.9 over the repetitions.
    pub p999: Option<Range>,
    /// p99.99 over the repetitions.
    pub p9999: Option<Range>,
    /// max over the repetitions.
    pub max: Option<Range>,
}

impl Spread {
    /// The spread of one shown percentile.
    pub fn of(&self, q: Quantile) -> Option<Range> {
        match q {
            Quantile::P50 => self.p50,
            Quantile::P90 => self.p90,
            Quantile::P99 => self.p99,
            Quantile::P999 => self.p999,
            Quantile::P9999 => self.p9999,
        }
    }
}

/// Merged results of one (layout, variant, scenario, workload) over its repetitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Layout name.
    pub layout: String,
    /// Layout rule.
    pub layout_kind: LayoutKind,
    /// The tuning variant, `None` when the config has no variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The scenario the runs were measured under.
    pub scenario: String,
    /// The workload measured on the RT vCPUs.
    pub workload: WorkloadKind,
    /// Names of the runs that measured to the end (these are merged).
    pub ok_runs: Vec<String>,
    /// Names of the runs that failed (not merged).
    pub failed_runs: Vec<String>,
    /// Why they failed, each cause once with its runs ([`failures`]).
    #[serde(default)]
    pub failures: Vec<failures::CauseCount>,
    /// The clock sources of the merged runs, each once, in order: more than one, or another
    /// than a compared group's, and the group is not ranked against it.
    pub clocks: Vec<ClockSource>,
    /// Every RT vCPU of every ok repetition merged.
    pub stats: Summary,
    /// Per RT vCPU, merged over ok repetitions.
    pub per_vcpu: Vec<VcpuGroup>,
    /// The largest events, largest first (at most [`aggregate::TOP_EVENTS`](super::aggregate::TOP_EVENTS)).
    pub top: Vec<EventRef>,
    /// Spread between repetitions.
    pub spread: Spread,
    /// Whether the repetitions' maxima agree (beside the spread: [`stability`]).
    pub stability: stability::Stability,
    /// Interval time series, one per ok run.
    pub timeline: Vec<RunTimeline>,
    /// The merged histogram (ns; overflow not in it).
    pub histogram: Hist,
    /// Budget verdict, filled by [`verdict`](super::verdict).
    pub budget: BudgetVerdict,
}

impl Group {
    /// `layout.scenario.workload`, or `layout.variant.scenario.workload` with variants (the
    /// run names' prefix, and the stem of the group's files).
    pub fn name(&self) -> String {
        group_name(
            &self.layout,
            self.variant.as_deref(),
            &self.scenario,
            self.workload,
        )
    }

    /// The arm it measured, as every output names it ([`arm_name`]).
    pub fn arm(&self) -> String {
        arm_name(&self.layout, self.variant.as_deref())
    }

    /// Its name within its layout's row of a table: `scenario.workload`, or
    /// `variant.scenario.workload` with variants.
    pub fn name_in_layout(&self) -> String {
        match &self.variant {
            None => format!("{}.{}", self.scenario, self.workload),
            Some(v) => format!("{v}.{}.{}", self.scenario, self.workload),
        }
    }

    /// Whether it measured the arm (`layout`, `variant`).
    pub fn is_arm(&self, layout: &str, variant: Option<&str>) -> bool {
        self.layout == layout && self.variant.as_deref() == variant
    }
}

/// One RT vCPU of a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VcpuGroup {
    /// Which vCPU.
    pub vcpu: VcpuKey,
    /// Statistics over the ok repetitions.
    pub stats: Summary,
    /// Merged histogram, ns.
    pub histogram: Hist,
}

/// Observed placement of one guest, for the placement diagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestView {
    /// Guest name.
    pub guest: String,
    /// What the plan wanted.
    pub planned: GuestPlacement,
    /// Threads as read back at the end of the measurement (after pinning when the run ended
    /// before).
    pub threads: Vec<ObservedThread>,
    /// Per vCPU: the pCPUs its thread was seen running on.
    pub vcpu_cpus_seen: Vec<(u32, CpuSet)>,
}

/// One layout's observed placement, from its first run (an ok one when there is one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayoutView {
    /// Layout name.
    pub name: String,
    /// Layout rule.
    pub kind: LayoutKind,
    /// The run the placement was read from.
    pub from_run: String,
    /// Per guest.
    pub guests: Vec<GuestView>,
    /// Threads differing from the plan, summed over every run of the layout.
    pub mismatches: usize,
    /// Budget verdict over every group of the layout.
    pub budget: BudgetStatus,
}
