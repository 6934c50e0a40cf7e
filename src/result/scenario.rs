//! What the scenarios' disturbances did (`mgmt-poll`, `mgmt-storm`, `migrate`) and where QEMU
//! spent CPU time while they ran.

use serde::{Deserialize, Serialize};

use crate::cpuset::CpuSet;

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
