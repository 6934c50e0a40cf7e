//! What a run warns of without failing: [`Warning`], and the rule for a load far below its
//! target rate.

use serde::{Deserialize, Serialize};

use crate::config::ScenarioKind;
use crate::wire::{DecoderStats, LoadResult};

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
    /// ([`MigrateStats::below_bandwidth`](super::MigrateStats::below_bandwidth)).
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
