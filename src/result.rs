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
    /// The scenario's load stopped early or never reached full strength on a guest (a migration
    /// that failed or stalled): the run measured, but under less disturbance than asked.
    ScenarioPartial {
        /// The scenario.
        scenario: ScenarioKind,
        /// Guest name.
        guest: String,
        /// What happened.
        why: String,
    },
    /// `migrate` moved far less than its `max-bandwidth` allowed
    /// ([`MigrateStats::below_bandwidth`]).
    MigrateBelowBandwidth {
        /// Guest name.
        guest: String,
        /// What the sink received per second, KiB/s.
        achieved_kib_s: u64,
        /// The configured `max-bandwidth`, MiB/s.
        max_bandwidth_mib_s: u32,
    },
    /// The RT pCPUs could not be traced (no tracefs, no privilege) or the trace was cut short:
    /// the culprits of stolen time are not named (or only in part).
    Trace {
        /// What happened, and the fix.
        problem: String,
    },
    /// The scenario switched a housekeeping load on, the run finished, and the agent sent no
    /// result for it: that side of the trade-off is missing from this run.
    LoadMissing {
        /// Guest name.
        guest: String,
        /// Which load.
        load: crate::wire::LoadKind,
    },
    /// A housekeeping load with a target rate (`guest-net`'s `rate_pps`) achieved less than
    /// [`LOAD_BELOW_RATE_FRACTION`] of it: the housekeeping side was starved, or the target is
    /// more than the guest can do.
    LoadBelowRate {
        /// Guest name.
        guest: String,
        /// Which load.
        load: crate::wire::LoadKind,
        /// Completed operations per second (net: round trips).
        achieved_per_s: u64,
        /// The rate asked for, per second.
        target_per_s: u64,
    },
}

/// Fraction of a load's target rate below which the run warns ([`Warning::LoadBelowRate`]).
pub const LOAD_BELOW_RATE_FRACTION: f64 = 0.5;

/// The warning for `load` of `guest` when it achieved less than [`LOAD_BELOW_RATE_FRACTION`] of
/// its target rate; `None` for a load without a target or one that kept up.
pub fn load_below_rate(guest: &str, load: &LoadResult) -> Option<Warning> {
    let target = load.target_per_s.filter(|&t| t > 0)?;
    let op = match load.load {
        crate::wire::LoadKind::Net => crate::wire::OpKind::Rtt,
        crate::wire::LoadKind::Io => return None,
    };
    let achieved = load.rate_per_s(op);
    (achieved < target as f64 * LOAD_BELOW_RATE_FRACTION).then(|| Warning::LoadBelowRate {
        guest: guest.to_string(),
        load: load.load,
        achieved_per_s: achieved.round() as u64,
        target_per_s: target,
    })
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
            Warning::ScenarioPartial {
                scenario,
                guest,
                why,
            } => write!(
                f,
                "guest {guest}: scenario {scenario} was not fully applied ({why}): this run measured under less disturbance than asked; see the console log and QEMU's stderr"
            ),
            Warning::MigrateBelowBandwidth {
                guest,
                achieved_kib_s,
                max_bandwidth_mib_s,
            } => write!(
                f,
                "guest {guest}: migrate moved {:.1} MiB/s, {:.0} % of its max-bandwidth {max_bandwidth_mib_s} MiB/s: the migration thread or the runner's sink was short of CPU, or the guest's memory is mostly zero pages; the emulator carried less load than configured (lower max-bandwidth, or give the housekeeping pCPUs more room)",
                *achieved_kib_s as f64 / 1024.0,
                *achieved_kib_s as f64 / 1024.0 * 100.0 / f64::from((*max_bandwidth_mib_s).max(1))
            ),
            Warning::Trace { problem } => write!(f, "host trace: {problem}"),
            Warning::LoadMissing { guest, load } => write!(
                f,
                "guest {guest}: the scenario switched the {} load on, but the agent sent no result for it: the housekeeping I/O of this run is not measured (see the console log)",
                load.as_str()
            ),
            Warning::LoadBelowRate {
                guest,
                load,
                achieved_per_s,
                target_per_s,
            } => write!(
                f,
                "guest {guest}: the {} load achieved {achieved_per_s}/s of its {target_per_s}/s target: the housekeeping vCPUs or the emulator threads serving the device were short of CPU under this layout (see the Housekeeping I/O section), or the target is more than this guest can do",
                load.as_str()
            ),
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
    /// `mgmt-storm` counters of this guest's storm, when that scenario ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mgmt_storm: Option<MgmtStormStats>,
    /// `migrate` counters of this guest's migrations, when that scenario ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate: Option<MigrateStats>,
    /// CPU time of every QEMU thread during the measurement, by thread kind: the evidence of
    /// which threads a disturbance loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_cpu: Option<ThreadCpu>,
    /// What the runner's NIC echo saw, when the guest had a NIC (`guest-net`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_echo: Option<EchoStats>,
}

impl GuestRun {
    /// A guest before its run: `planned`, nothing observed, measured or received yet.
    pub fn new(planned: GuestPlacement) -> Self {
        GuestRun {
            guest: planned.guest.clone(),
            qemu_pid: None,
            planned,
            observed_start: Vec::new(),
            observed_end: Vec::new(),
            vcpu_stats: Vec::new(),
            hello: None,
            results: Vec::new(),
            intervals: Vec::new(),
            loads: Vec::new(),
            agent_errors: Vec::new(),
            frames: Default::default(),
            boot_to_hello_ms: None,
            boot_to_first_sample_ms: None,
            boot_to_done_ms: None,
            boot_to_exit_ms: None,
            console_log: None,
            mgmt_poll: None,
            drift: Vec::new(),
            new_thread_placement: None,
            new_threads: Vec::new(),
            window: None,
            mgmt_storm: None,
            migrate: None,
            thread_cpu: None,
            net_echo: None,
        }
    }
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

/// What a QEMU thread does, for the account of where the emulator's CPU time went. From QMP's
/// thread ids (vCPUs, iothreads), the process id (the main loop) and the names QEMU 7.2 gives
/// its threads with `-name …,debug-threads=on`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ThreadKind {
    /// The vCPU thread of guest vCPU `vcpu` (`CPU 1/TCG`, `CPU 1/KVM`).
    Vcpu {
        /// vCPU index.
        vcpu: u32,
    },
    /// The main loop (the thread whose id is the process id): QMP dispatch, device emulation
    /// without an iothread, timers, the BQL's usual holder.
    MainLoop,
    /// A thread-pool worker (`worker`): blocking I/O of `aio=threads` disks.
    Worker,
    /// A user iothread (`-object iothread`, from QMP `query-iothreads`).
    Iothread,
    /// The outgoing migration thread (`live_migration` in QEMU 7.2, `mig/src/main` from 9.0)
    /// and its helpers (return path, multifd senders).
    Migration,
    /// The RCU reclamation thread (`call_rcu`).
    Rcu,
    /// The monitor's own I/O thread (`IO mon_iothread`): reads and writes QMP sockets.
    Monitor,
    /// Any other QEMU thread.
    #[default]
    Other,
    /// Threads that exited during the measurement, for the CPU time they used after their last
    /// sample (from the process's total, which keeps dead threads' time).
    Exited,
}

impl ThreadKind {
    /// The name reports show: `vCPU 1`, `main loop`, `worker`, `iothread`, `migration`, `rcu`,
    /// `monitor I/O`, `other`, `exited`.
    pub fn label(&self) -> String {
        match self {
            ThreadKind::Vcpu { vcpu } => format!("vCPU {vcpu}"),
            ThreadKind::MainLoop => "main loop".into(),
            ThreadKind::Worker => "worker".into(),
            ThreadKind::Iothread => "iothread".into(),
            ThreadKind::Migration => "migration".into(),
            ThreadKind::Rcu => "rcu".into(),
            ThreadKind::Monitor => "monitor I/O".into(),
            ThreadKind::Other => "other".into(),
            ThreadKind::Exited => "exited".into(),
        }
    }

    /// Whether this kind is one of the emulator threads a layout's emulator set places (every
    /// kind but vCPUs and iothreads).
    pub fn is_emulator(&self) -> bool {
        !matches!(self, ThreadKind::Vcpu { .. } | ThreadKind::Iothread)
    }
}

/// CPU time and scheduling of the QEMU threads of one kind during the measurement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadKindCpu {
    /// The kind.
    #[serde(flatten)]
    pub kind: ThreadKind,
    /// Threads of this kind seen during the measurement.
    pub threads: u32,
    /// User + system CPU time, ns (`utime + stime` of `/proc/<pid>/task/<tid>/stat`, at the
    /// clock tick's resolution, 10 ms at `USER_HZ` 100).
    pub cpu_ns: u64,
    /// Time on a CPU, ns (`schedstat` field 1, exact). 0 for [`ThreadKind::Exited`].
    pub run_ns: u64,
    /// Time runnable but waiting for a CPU, ns (`schedstat` field 2).
    pub wait_ns: u64,
    /// Times scheduled onto a CPU (`schedstat` field 3).
    pub timeslices: u64,
    /// Voluntary context switches (blocked).
    pub voluntary_ctxt_switches: u64,
    /// Involuntary context switches (preempted).
    pub nonvoluntary_ctxt_switches: u64,
    /// Host CPUs a thread of this kind was seen running on (sampled; a CPU counts when the
    /// thread ran since the previous sample).
    pub cpus_seen: CpuSet,
}

impl ThreadKindCpu {
    /// The best CPU time known, ns: `run_ns` (exact) when the kernel gave it, else `cpu_ns`.
    pub fn time_ns(&self) -> u64 {
        if self.run_ns > 0 {
            self.run_ns
        } else {
            self.cpu_ns
        }
    }
}

/// Where one guest's QEMU spent CPU time during the measurement: sampled from the agent's
/// first interval report to its first final result (the vCPU statistics' window), per thread
/// kind. Threads started inside the window count from zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadCpu {
    /// Host time between the first and the last sample, ns.
    pub window_ns: u64,
    /// Samples taken.
    pub samples: u64,
    /// The whole process's user + system CPU time over the window, ns (`/proc/<pid>/stat`,
    /// clock-tick resolution; includes threads that exited).
    pub process_cpu_ns: u64,
    /// Per kind, vCPUs first, in [`ThreadKind`] order.
    pub kinds: Vec<ThreadKindCpu>,
}

impl ThreadCpu {
    /// The entry of one kind, when any thread of it was seen.
    pub fn kind(&self, kind: &ThreadKind) -> Option<&ThreadKindCpu> {
        self.kinds.iter().find(|k| &k.kind == kind)
    }
}

/// One query of a `mgmt-storm`: how often it ran and what it cost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryCalls {
    /// The query, e.g. `query-stats {"target":"vm"}`.
    pub query: String,
    /// Calls answered with a `return`.
    pub calls: u64,
    /// Calls answered with an error (after the first, which decides whether it is supported).
    pub errors: u64,
    /// Time from sending the command to its reply, summed over calls, ns.
    pub total_ns: u64,
    /// Longest call, ns.
    pub max_ns: u64,
}

/// `mgmt-storm` counters: QMP queries issued back to back, round-robin, as fast as QEMU
/// answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MgmtStormStats {
    /// The queries issued, in round-robin order.
    pub queries: Vec<String>,
    /// Queries dropped because this QEMU rejected them on first use, with its error.
    pub unsupported: Vec<String>,
    /// Calls answered with a `return`.
    pub calls: u64,
    /// Calls answered with an error, or lost to a broken connection.
    pub errors: u64,
    /// How long the storm ran, ms (in a run's total: the longest guest's storm).
    pub elapsed_ms: u64,
    /// Host CPUs the storm's threads were pinned to (empty: not pinned).
    pub cpus: CpuSet,
    /// Per-call latency (send to reply), ns.
    pub latency: crate::histo::Summary,
    /// Per-call latency histogram, ns.
    pub latency_histogram: crate::histo::Hist,
    /// Per query.
    pub per_query: Vec<QueryCalls>,
}

impl MgmtStormStats {
    /// Calls answered per second over the storm's run (for a run's total: the guests' storms
    /// together).
    pub fn calls_per_s(&self) -> f64 {
        if self.elapsed_ms == 0 {
            0.0
        } else {
            self.calls as f64 * 1000.0 / self.elapsed_ms as f64
        }
    }
}

/// `migrate` counters: live migrations of a running guest to a sink that discards, one pass
/// after another.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateStats {
    /// `max-bandwidth` asked of QEMU, MiB/s.
    pub max_bandwidth_mib_s: u32,
    /// `downtime-limit` asked of QEMU, ms.
    pub downtime_limit_ms: u64,
    /// Migrations started.
    pub passes_started: u64,
    /// Passes that converged: QEMU stopped the guest for switchover (`pre-switchover`) and the
    /// runner cancelled them there, which resumes the guest.
    pub passes_converged: u64,
    /// Passes cancelled (at switchover, on a stall, or when the measurement ended).
    pub passes_cancelled: u64,
    /// Passes that completed anyway (the guest left in `postmigrate` and resumed with `cont`).
    pub passes_completed: u64,
    /// Passes that failed.
    pub passes_failed: u64,
    /// Bytes the sink received, all passes.
    pub bytes: u64,
    /// From the first migration to the end of the last, ms.
    pub elapsed_ms: u64,
    /// Times QEMU stopped the guest during a pass (`STOP` events).
    pub pauses: u64,
    /// Time the guest was stopped, summed (`STOP` to `RESUME`, QEMU's timestamps), µs.
    pub paused_us: u64,
    /// Longest stop, µs.
    pub max_pause_us: u64,
    /// Why the migrations ended before the measurement did, when they did.
    pub failure: Option<String>,
}

impl MigrateStats {
    /// Fraction of `max-bandwidth` below which the achieved rate is warned about.
    pub const BELOW_BANDWIDTH_FRACTION: f64 = 0.5;

    /// What the sink received per second, MiB/s.
    pub fn achieved_mib_s(&self) -> f64 {
        if self.elapsed_ms == 0 {
            0.0
        } else {
            self.bytes as f64 / (1u64 << 20) as f64 * 1000.0 / self.elapsed_ms as f64
        }
    }

    /// Whether the achieved rate is below [`Self::BELOW_BANDWIDTH_FRACTION`] of
    /// `max-bandwidth`.
    pub fn below_bandwidth(&self) -> bool {
        self.max_bandwidth_mib_s > 0
            && self.achieved_mib_s()
                < Self::BELOW_BANDWIDTH_FRACTION * f64::from(self.max_bandwidth_mib_s)
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
        mgmt_storm: None,
        migrate: None,
    }
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
    fn thread_kinds_serialize_flat_and_read_back() {
        let k = ThreadKindCpu {
            kind: ThreadKind::Vcpu { vcpu: 1 },
            threads: 1,
            run_ns: 7,
            cpus_seen: CpuSet::parse("1").unwrap(),
            ..Default::default()
        };
        let json = serde_json::to_value(&k).unwrap();
        assert_eq!(json["kind"], "vcpu");
        assert_eq!(json["vcpu"], 1);
        assert_eq!(serde_json::from_value::<ThreadKindCpu>(json).unwrap(), k);
        let main = serde_json::to_value(ThreadKindCpu {
            kind: ThreadKind::MainLoop,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(main["kind"], "main-loop");
        assert_eq!(ThreadKind::Monitor.label(), "monitor I/O");
        assert!(ThreadKind::Migration.is_emulator() && !ThreadKind::Iothread.is_emulator());
        // The exact schedstat time wins over the tick-resolution one when there is one.
        assert_eq!(k.time_ns(), 7);
        let exited = ThreadKindCpu {
            kind: ThreadKind::Exited,
            cpu_ns: 10_000_000,
            ..Default::default()
        };
        assert_eq!(exited.time_ns(), 10_000_000);
    }

    #[test]
    fn storm_rates() {
        let s = MgmtStormStats {
            calls: 500,
            elapsed_ms: 2_000,
            ..Default::default()
        };
        assert_eq!(s.calls_per_s(), 250.0);
        assert_eq!(MgmtStormStats::default().calls_per_s(), 0.0);
    }

    #[test]
    fn achieved_rates_and_the_bandwidth_warning() {
        let mut m = MigrateStats {
            max_bandwidth_mib_s: 32,
            bytes: 64 << 20,
            elapsed_ms: 4_000,
            ..Default::default()
        };
        assert!((m.achieved_mib_s() - 16.0).abs() < 1e-9);
        // 50 % exactly is not below half.
        assert!(!m.below_bandwidth());
        m.bytes -= 1;
        assert!(m.below_bandwidth());
        m.elapsed_ms = 0;
        assert_eq!(m.achieved_mib_s(), 0.0);
        let w = Warning::MigrateBelowBandwidth {
            guest: "rt".into(),
            achieved_kib_s: 8 * 1024,
            max_bandwidth_mib_s: 32,
        };
        let text = w.to_string();
        assert!(
            text.contains("8.0 MiB/s, 25 % of its max-bandwidth 32 MiB/s"),
            "{text}"
        );
    }

    #[test]
    fn a_partial_scenario_is_named_in_the_record_and_the_text() {
        let w = Warning::ScenarioPartial {
            scenario: ScenarioKind::Migrate,
            guest: "rt".into(),
            why: "migration failed: boom".into(),
        };
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(json["kind"], "scenario-partial");
        assert_eq!(json["scenario"], "migrate");
        assert!(w
            .to_string()
            .contains("scenario migrate was not fully applied"));
    }

    #[test]
    fn run_names() {
        assert_eq!(
            run_name("vcpu0", "mgmt-poll", WorkloadKind::BusyPoll, 2),
            "vcpu0.mgmt-poll.busy-poll.r2"
        );
    }

    fn net_load(target: Option<u64>, round_trips: u64) -> LoadResult {
        let stats = crate::wire::OpStats {
            count: round_trips,
            bytes: 0,
            errors: 0,
            first_error: None,
            min_ns: 0,
            max_ns: 0,
            overflow: 0,
            histogram: crate::histo::Hist(crate::histo::new_histogram()),
        };
        LoadResult {
            load: crate::wire::LoadKind::Net,
            device: "eth0".into(),
            direct: None,
            cpus: vec![0],
            duration_ns: 2_000_000_000,
            target_per_s: target,
            ops: [(crate::wire::OpKind::Rtt, stats)].into(),
            net: None,
        }
    }

    #[test]
    fn a_load_far_below_its_target_rate_is_a_warning() {
        // 2 s window: 900 round trips is 450/s of 1000, under half.
        let w = load_below_rate("rt", &net_load(Some(1000), 900)).unwrap();
        assert_eq!(
            w,
            Warning::LoadBelowRate {
                guest: "rt".into(),
                load: crate::wire::LoadKind::Net,
                achieved_per_s: 450,
                target_per_s: 1000,
            }
        );
        assert!(
            w.to_string()
                .contains("achieved 450/s of its 1000/s target"),
            "{w}"
        );
        // Half or more, or no target (io goes as fast as it can): nothing to say.
        assert_eq!(load_below_rate("rt", &net_load(Some(1000), 1000)), None);
        assert_eq!(load_below_rate("rt", &net_load(None, 1)), None);
    }
}
