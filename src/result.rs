//! The raw result of one run, as `pinlat run` writes it to `runs/<run>.json` the moment the run
//! ends. It is the single source the reports are derived from (one schema, many
//! views): nothing a report shows may exist only in memory.
//!
//! A run records what was *observed*, next to what was planned: every QEMU thread's
//! `Cpus_allowed_list` and scheduling policy read back from `/proc` after pinning and again when
//! the measurement ended.

use serde::{Deserialize, Serialize};

use crate::config::{LayoutKind, Policy, ScenarioKind, WorkloadKind};
use crate::cpuset::CpuSet;
use crate::kinds::Accel;
use crate::plan::{GuestPlacement, Sched};
use crate::wire::{CpuResult, DecoderStats, ErrorReport, Hello, IntervalReport, LoadResult};

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

/// Something the reader of a run should know that did not fail it. `Display` says what
/// happened and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Warning {
    /// The kernel refused SCHED_FIFO for RT vCPU threads (no root, no CAP_SYS_NICE); they ran
    /// SCHED_OTHER, as recorded in the observed placement.
    SchedFifoRefused {
        /// Guest name.
        guest: String,
        /// Threads that ran without their planned policy.
        threads: usize,
    },
    /// What the `host-stress` scenario ran on the host.
    HostStressLoad {
        /// The load, e.g. the stress-ng command line.
        description: String,
    },
    /// The agent sent more interval frames than the run can have; the extra were dropped.
    IntervalsDropped {
        /// Guest name.
        guest: String,
        /// Frames dropped.
        dropped: u64,
        /// The most the run can have.
        expected: usize,
    },
    /// Well-formed agent messages refused as implausible.
    MessagesRefused {
        /// Guest name.
        guest: String,
        /// How many.
        count: u64,
        /// The first reasons.
        reasons: Vec<String>,
    },
    /// Malformed frames on the agent channel, counted and dropped.
    FramesRejected {
        /// Guest name.
        guest: String,
        /// The decoder's counters.
        stats: DecoderStats,
    },
    /// Read-backs of the placement that failed during the run: they judged nothing.
    PlacementUnreadable {
        /// Guest name.
        guest: String,
        /// How many failed.
        count: u64,
        /// The first failure, naming the thread or process.
        first: String,
    },
    /// The placement went unread for longer than the read-back period allows: the runner could
    /// not run (a realtime thread on its CPUs starves it), so a drift in that stretch may have
    /// gone unseen. A pinned vCPU that migrated in it still fails the run.
    PlacementUnobserved {
        /// Guest name.
        guest: String,
        /// The longest stretch without a read-back, ms.
        gap_ms: u64,
        /// When it began, ms after the guest was released.
        from_ms: u64,
    },
    /// The guest kernel reported a lockup, stall or oops while it lived: what an emulator
    /// starved by a SCHED_FIFO vCPU, or a vCPU starved by the emulator, makes a guest print.
    GuestKernel {
        /// Guest name.
        guest: String,
        /// What the kernel reported, counted, with its lines.
        report: crate::console::GuestWarning,
    },
    /// The agent could not hold `/dev/cpu_dma_latency` at 0, so deep C-states may add exit
    /// latency to its numbers (cyclictest warns the same).
    CpuDmaLatencyNotHeld {
        /// Guest name.
        guest: String,
    },
    /// The scenario's disturbance did not run fully, in a run that failed for another reason.
    Disturbance {
        /// What went wrong.
        problem: String,
    },
    /// The RT pCPUs could not be traced (no tracefs, no privilege) or the trace was cut short:
    /// the culprits of stolen time are not named (or only in part).
    Trace {
        /// What happened, and the fix.
        problem: String,
    },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::SchedFifoRefused { guest, threads } => write!(
                f,
                "guest {guest}: SCHED_FIFO refused for {threads} thread(s) (run as root or grant CAP_SYS_NICE): they ran SCHED_OTHER, as observed; --strict makes this a failure"
            ),
            Warning::HostStressLoad { description } => write!(f, "host-stress: {description}"),
            Warning::IntervalsDropped {
                guest,
                dropped,
                expected,
            } => write!(
                f,
                "guest {guest}: {dropped} interval frames beyond the expected {expected} were dropped"
            ),
            Warning::MessagesRefused {
                guest,
                count,
                reasons,
            } => write!(
                f,
                "guest {guest}: {count} implausible agent messages refused: {}{}",
                reasons.join("; "),
                if *count as usize > reasons.len() { "; …" } else { "" }
            ),
            Warning::FramesRejected { guest, stats } => write!(
                f,
                "guest {guest}: {} malformed frames dropped (bad header {}, length {}, CRC {}, JSON {}, oversize {})",
                stats.rejected(),
                stats.bad_header,
                stats.bad_length,
                stats.bad_crc,
                stats.bad_json,
                stats.oversize
            ),
            Warning::PlacementUnreadable {
                guest,
                count,
                first,
            } => write!(
                f,
                "guest {guest}: {count} read-back(s) of the placement failed and judged nothing (first: {first}); check that nothing else moves QEMU's threads"
            ),
            Warning::PlacementUnobserved {
                guest,
                gap_ms,
                from_ms,
            } => write!(
                f,
                "guest {guest}: the placement went unread for {gap_ms} ms from {:.1} s (the runner could not run: a realtime thread on its CPUs?); a drift in that stretch may have gone unseen",
                *from_ms as f64 / 1000.0
            ),
            Warning::GuestKernel { guest, report } => write!(f, "guest {guest}: {report}"),
            Warning::CpuDmaLatencyNotHeld { guest } => write!(
                f,
                "guest {guest}: the agent could not hold /dev/cpu_dma_latency at 0 (kernel without PM QoS, or no permission): deep C-states may add exit latency to these numbers"
            ),
            Warning::Disturbance { problem } => f.write_str(problem),
            Warning::Trace { problem } => write!(f, "host trace: {problem}"),
        }
    }
}

/// What a QEMU thread is, as pinlat classifies it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ThreadRole {
    /// The vCPU thread of guest vCPU `vcpu` (from QMP `query-cpus-fast`).
    Vcpu {
        /// vCPU index.
        vcpu: u32,
    },
    /// An iothread (from QMP `query-iothreads`).
    Iothread {
        /// The iothread's QOM id.
        id: String,
    },
    /// Any other QEMU thread: main loop, RCU, workers.
    Emulator,
}

/// A host scheduling policy as read back from the kernel (`SCHED_*` numbers of `<sched.h>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostPolicy {
    /// `SCHED_OTHER` (0).
    Other,
    /// `SCHED_FIFO` (1).
    Fifo,
    /// `SCHED_RR` (2).
    Rr,
    /// `SCHED_BATCH` (3).
    Batch,
    /// `SCHED_IDLE` (5).
    Idle,
    /// `SCHED_DEADLINE` (6).
    Deadline,
    /// Any other number.
    Unknown(u32),
}

impl HostPolicy {
    /// Maps the kernel's policy number (`sched_getscheduler`, stat field 41); the
    /// `SCHED_RESET_ON_FORK` bit is ignored.
    pub fn from_raw(raw: u32) -> Self {
        match raw & !0x4000_0000 {
            0 => HostPolicy::Other,
            1 => HostPolicy::Fifo,
            2 => HostPolicy::Rr,
            3 => HostPolicy::Batch,
            5 => HostPolicy::Idle,
            6 => HostPolicy::Deadline,
            n => HostPolicy::Unknown(n),
        }
    }

    /// Whether this is the policy a plan asked for.
    pub fn is(self, planned: Policy) -> bool {
        matches!(
            (self, planned),
            (HostPolicy::Other, Policy::Other) | (HostPolicy::Fifo, Policy::Fifo)
        )
    }

    /// Whether the policy is realtime (`SCHED_FIFO`, `SCHED_RR`).
    pub fn is_realtime(self) -> bool {
        matches!(self, HostPolicy::Fifo | HostPolicy::Rr)
    }
}

impl std::fmt::Display for HostPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPolicy::Other => f.write_str("other"),
            HostPolicy::Fifo => f.write_str("fifo"),
            HostPolicy::Rr => f.write_str("rr"),
            HostPolicy::Batch => f.write_str("batch"),
            HostPolicy::Idle => f.write_str("idle"),
            HostPolicy::Deadline => f.write_str("deadline"),
            HostPolicy::Unknown(n) => write!(f, "policy-{n}"),
        }
    }
}

/// One thread's placement as read back from `/proc/<pid>/task/<tid>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedThread {
    /// Host thread id.
    pub tid: i32,
    /// `comm` (e.g. `CPU 1/TCG`, `qemu-system-x86`).
    pub comm: String,
    /// What the thread is to QEMU (vCPU n, iothread, emulator), from QMP's thread ids.
    pub role: ThreadRole,
    /// `Cpus_allowed_list`.
    pub cpus: CpuSet,
    /// Policy read back from the kernel.
    pub policy: HostPolicy,
    /// RT priority read back (0 for `other`).
    pub priority: u8,
    /// What the plan wanted for this thread.
    pub planned_cpus: CpuSet,
    /// What the plan wanted for this thread.
    pub planned_sched: Sched,
}

impl ObservedThread {
    /// Whether what was observed is what was planned.
    pub fn matches(&self) -> bool {
        self.cpus == self.planned_cpus
            && self.policy.is(self.planned_sched.policy)
            && (self.planned_sched.policy == Policy::Other
                || self.priority == self.planned_sched.priority)
    }
}

/// Host-side statistics of one vCPU thread during the measurement: from the agent's first
/// interval report (the end of the measurement's first interval) to its first final result, so
/// boot and preheat are not counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcpuThreadStats {
    /// vCPU index.
    pub vcpu: u32,
    /// Host thread id.
    pub tid: i32,
    /// Whether the vCPU is realtime.
    pub realtime: bool,
    /// Voluntary context switches during the measurement.
    pub voluntary_ctxt_switches: u64,
    /// Involuntary context switches (preemptions) during the measurement.
    pub nonvoluntary_ctxt_switches: u64,
    /// Migrations during the measurement, when the kernel exposes them (`/proc/.../sched`).
    pub migrations: Option<u64>,
    /// CPUs the thread was seen running on (sampled from `/proc/.../stat` field 39).
    pub cpus_seen: CpuSet,
    /// Number of samples behind `cpus_seen`.
    pub samples: u64,
}

/// One guest of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestRun {
    /// Guest name.
    pub guest: String,
    /// QEMU process id.
    pub qemu_pid: Option<i32>,
    /// The plan for this guest.
    pub planned: GuestPlacement,
    /// Every QEMU thread, read back right after pinning.
    pub observed_start: Vec<ObservedThread>,
    /// Every QEMU thread, read back when the measurement ended.
    pub observed_end: Vec<ObservedThread>,
    /// vCPU thread statistics.
    pub vcpu_stats: Vec<VcpuThreadStats>,
    /// The agent's hello (guest facts), if it arrived.
    pub hello: Option<Hello>,
    /// Final per-CPU results from the agent.
    pub results: Vec<CpuResult>,
    /// Interval histograms, in arrival order (kept when the run failed mid-way).
    pub intervals: Vec<IntervalReport>,
    /// What the housekeeping loads that measure themselves (`io`, `net`) achieved, one per
    /// load, in arrival order (kept when the run failed mid-way).
    #[serde(default)]
    pub loads: Vec<LoadResult>,
    /// Errors the agent reported.
    pub agent_errors: Vec<ErrorReport>,
    /// Frame decoder counters (bad frames are counted and dropped).
    pub frames: DecoderStats,
    /// Milliseconds from QEMU start to the agent's hello.
    pub boot_to_hello_ms: Option<u64>,
    /// Milliseconds from QEMU start to the first interval of samples.
    pub boot_to_first_sample_ms: Option<u64>,
    /// Milliseconds from QEMU start to the agent's `done` frame.
    #[serde(default)]
    pub boot_to_done_ms: Option<u64>,
    /// Milliseconds from QEMU start until QEMU had exited (or was killed).
    #[serde(default)]
    pub boot_to_exit_ms: Option<u64>,
    /// Console (ttyS0) log file, relative to the report directory.
    pub console_log: Option<String>,
    /// `mgmt-poll` counters of this guest's poller, when that scenario ran.
    #[serde(default)]
    pub mgmt_poll: Option<MgmtPollStats>,
    /// Every time a thread's placement was seen to differ from the plan while the guest ran,
    /// from the periodic read-backs (any drift fails the run).
    #[serde(default)]
    pub drift: Vec<DriftEvent>,
    /// How threads QEMU starts after pinning are kept off the RT pCPUs.
    #[serde(default)]
    pub new_thread_placement: Option<NewThreadPlacement>,
    /// Threads QEMU started after pinning, and how long each took to be placed.
    #[serde(default)]
    pub new_threads: Vec<NewThread>,
    /// The agent's measurement window in the host's time, when its results carried one.
    #[serde(default)]
    pub window: Option<MeasureWindow>,
    /// What the runner's NIC echo saw, when the guest had a NIC (`guest-net`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_echo: Option<EchoStats>,
}

/// A thread whose placement differed from the plan during a run, from the first read-back that
/// saw it to the first that did not (or the end of the run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftEvent {
    /// Host thread id.
    pub tid: i32,
    /// The thread's name (`CPU 1/TCG`, `worker`).
    pub comm: String,
    /// What the thread is to QEMU.
    pub role: ThreadRole,
    /// CPUs it was allowed on while drifted (`Cpus_allowed_list`).
    pub observed_cpus: CpuSet,
    /// Its policy while drifted.
    pub observed_policy: HostPolicy,
    /// Its RT priority while drifted (0 for `other`).
    pub observed_priority: u8,
    /// What the plan wants.
    pub planned_cpus: CpuSet,
    /// What the plan wants.
    pub planned_sched: Sched,
    /// When it was first seen drifted, ms after the guest was released.
    pub from_ms: u64,
    /// How long it stayed drifted, ms (to the last read-back that saw it so).
    pub duration_ms: u64,
    /// Whether it was still drifted (or gone) when the run ended.
    pub unresolved: bool,
}

/// How threads QEMU starts after pinning are kept off the RT pCPUs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mechanism", rename_all = "kebab-case")]
pub enum NewThreadPlacement {
    /// QEMU's threads in a cgroup v1 `cpuset` hierarchy, as libvirt does: the emulator set for
    /// the process, a child group per vCPU and iothread. A thread inherits its creator's group.
    CpusetV1 {
        /// The guest's group, e.g. `/sys/fs/cgroup/cpuset/pinlat-<run>-<guest>`.
        group: String,
    },
    /// The same in a cgroup v2 threaded subtree.
    CgroupV2Threaded {
        /// The guest's group.
        group: String,
    },
    /// No usable cpuset cgroup: QEMU's threads are scanned every `period_ms` and new ones placed.
    Scan {
        /// Scan period, ms.
        period_ms: u64,
        /// Why cgroups were not used.
        why: String,
    },
}

/// A thread QEMU started after pinning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewThread {
    /// Host thread id.
    pub tid: i32,
    /// Its name when first seen.
    pub comm: String,
    /// When it was first seen, ms after the guest was released.
    pub seen_ms: u64,
    /// CPUs it was allowed on when first seen.
    pub cpus_when_seen: CpuSet,
    /// How long after it was first seen its placement was applied and read back, µs (0 when it
    /// already had its planned CPUs).
    pub placed_after_us: u64,
}

/// What the runner's NIC echo service saw (the host end of `guest-net`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EchoStats {
    /// Connections QEMU made.
    pub connections: u64,
    /// Frames echoed.
    pub frames: u64,
    /// Payload bytes echoed (without the 4-byte length prefixes).
    pub bytes: u64,
}

/// The agent's measurement window mapped to the host's clocks. Under TCG the guest's clock is
/// mapped through the time its hello arrived, so the window is known to `uncertainty_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasureWindow {
    /// Start, ms since the Unix epoch.
    pub start_unix_ms: u64,
    /// End, ms since the Unix epoch.
    pub end_unix_ms: u64,
    /// How far the mapping may be off, ms.
    pub uncertainty_ms: u64,
}

/// `mgmt-poll` counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MgmtPollStats {
    /// Target rate, queries per second.
    pub rate_hz: u32,
    /// Poll rounds completed.
    pub rounds: u64,
    /// QMP commands that returned an error.
    pub errors: u64,
    /// The QMP commands each round issued.
    pub queries: Vec<String>,
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
    pub failure: Option<crate::console::FailureCause>,
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
    /// What the host tracer saw on the RT pCPUs (who took them, matched to the guest's largest
    /// events), and their SMI counts; `None` in records written before tracing existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_trace: Option<crate::trace::record::RunTrace>,
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

/// The name of a run: `layout.scenario.workload.rN`.
pub fn run_name(layout: &str, scenario: &str, workload: WorkloadKind, rep: u32) -> String {
    format!("{layout}.{scenario}.{workload}.r{rep}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatch_detects_cpus_and_policy() {
        let mut t = ObservedThread {
            tid: 1,
            comm: "CPU 1/TCG".into(),
            role: ThreadRole::Vcpu { vcpu: 1 },
            cpus: CpuSet::parse("1").unwrap(),
            policy: HostPolicy::Fifo,
            priority: 1,
            planned_cpus: CpuSet::parse("1").unwrap(),
            planned_sched: Sched::fifo(1),
        };
        assert!(t.matches());
        t.priority = 2;
        assert!(!t.matches());
        t.priority = 1;
        t.cpus = CpuSet::parse("0-1").unwrap();
        assert!(!t.matches());
        t.cpus = CpuSet::parse("1").unwrap();
        t.policy = HostPolicy::Other;
        assert!(!t.matches());
        t.policy = HostPolicy::Rr;
        assert!(!t.matches());
    }

    #[test]
    fn run_names() {
        assert_eq!(
            run_name("vcpu0", "mgmt-poll", WorkloadKind::BusyPoll, 2),
            "vcpu0.mgmt-poll.busy-poll.r2"
        );
    }
}
