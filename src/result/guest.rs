//! One guest of a run: its QEMU threads as read back, their drift from the plan, the threads
//! QEMU started after pinning, and what the guest measured and sent.

use serde::{Deserialize, Serialize};

use super::{CpuSeries, MgmtPollStats, MgmtStormStats, MigrateStats, ThreadCpu};
use crate::config::Policy;
use crate::cpuset::CpuSet;
use crate::plan::{GuestPlacement, Sched};
use crate::wire::{CpuResult, DecoderStats, ErrorReport, Hello, IntervalReport, LoadResult};

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
    /// Interval histograms, in arrival order (kept when the run failed mid-way). A soak, or
    /// any run of more than [`FULL_INTERVALS_MAX`] intervals per RT vCPU, keeps none: its
    /// `series` holds them, bounded.
    pub intervals: Vec<IntervalReport>,
    /// Per RT vCPU, every interval frame as a bounded series over the whole run ([`CpuSeries`]);
    /// empty in records written before series existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<CpuSeries>,
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
    /// The agent's peak resident memory in the guest, KiB, from its `done` frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_max_rss_kib: Option<u64>,
    /// What the runner's NIC echo saw, when the guest had a NIC (`guest-net`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_echo: Option<EchoStats>,
    /// Who started the guest and applied its placement (`qemu` in records written before
    /// there was a choice, and left out when `qemu`).
    #[serde(default, skip_serializing_if = "crate::kinds::LauncherKind::is_qemu")]
    pub launcher: crate::kinds::LauncherKind,
    /// The libvirt domain the guest ran as, when libvirt launched it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub libvirt: Option<LibvirtLaunch>,
    /// The QEMU arguments the run's variant added (`-overcommit …`, `-cpu host,…`, the
    /// huge-page memory backend), exactly as passed, when pinlat started QEMU itself; empty
    /// without a variant or knobs. Under libvirt, `libvirt.domain_xml` says the same in
    /// libvirt's terms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variant_qemu_args: Vec<String>,
}

/// A guest libvirt launched: the connection, the versions and the domain XML, exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibvirtLaunch {
    /// The libvirt URI, e.g. `qemu:///system`.
    pub uri: String,
    /// The daemon's libvirt version, e.g. `9.0.0`.
    pub libvirt_version: String,
    /// The hypervisor as libvirt reports it, e.g. `QEMU 7.2.22`.
    pub hypervisor: String,
    /// The domain's name.
    pub domain: String,
    /// The domain XML given to `virsh create`.
    pub domain_xml: String,
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
            series: Vec::new(),
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
            agent_max_rss_kib: None,
            net_echo: None,
            launcher: Default::default(),
            libvirt: None,
            variant_qemu_args: Vec::new(),
        }
    }
}

/// Most interval frames per RT vCPU a run keeps whole (histograms and all) in
/// [`GuestRun::intervals`]: 10 minutes at the default 1 s. One decoded interval histogram
/// takes ~220 KiB of the runner's memory (pinlat's 1 ns–60 s range at 3 digits), so a longer
/// run, or a soak (`pinlat run --soak`), keeps only the bounded [`CpuSeries`].
pub const FULL_INTERVALS_MAX: u64 = 600;

/// Whether a run of `duration_ms` in intervals of `interval_ms` is long enough to be a soak:
/// more than [`FULL_INTERVALS_MAX`] intervals per RT vCPU (`pinlat run --soak` makes any run
/// one).
pub fn is_long_run(duration_ms: u64, interval_ms: u64) -> bool {
    duration_ms / interval_ms.max(1) > FULL_INTERVALS_MAX
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
    /// libvirt's own cgroups hold QEMU's threads (the launcher `libvirt`): a new thread starts
    /// in the group of the thread that made it, which libvirt's `emulatorpin` confines; pinlat
    /// only reads them back.
    Libvirt {
        /// The emulator's group as `/proc/<pid>/cgroup` names it, e.g.
        /// `/machine/qemu-1-pinlat-share-rt.libvirt-qemu/emulator`.
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
