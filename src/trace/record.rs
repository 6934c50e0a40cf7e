//! What a run keeps of its host trace (`runs/<run>.json`, [`crate::result::RunRecord::host_trace`]):
//! per RT pCPU where the measurement window went ([`CpuAttribution`]) with the stolen
//! intervals around the guest's largest event, the guest's largest events next to their host
//! culprits and how guest time was mapped to host time, the trace's own statistics, what was
//! captured on threshold, and the SMI count of each RT pCPU.
//!
//! Everything here is bounded: a run keeps at most [`MAX_STRIP_INTERVALS`] intervals per
//! pCPU, [`MAX_MATCHED_EVENTS`] matched events per RT vCPU with [`MAX_CULPRITS`] culprits each,
//! whatever the trace held.

use serde::{Deserialize, Serialize};

use super::account::{Interval, Window};
use super::attribute::CpuAttribution;
use super::matcher::GuestMatch;
use crate::cpuset::CpuSet;

/// Intervals kept per pCPU for the timeline strip around the largest event.
pub const MAX_STRIP_INTERVALS: usize = 200;
/// Largest guest events matched per RT vCPU.
pub const MAX_MATCHED_EVENTS: usize = 10;
/// Culprits kept per matched event.
pub const MAX_CULPRITS: usize = 3;

/// The host trace of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunTrace {
    /// Whether the RT pCPUs were traced, and if not why.
    pub status: TraceStatus,
    /// The tracefs instance used (`pinlat-<pid>-<run>`), removed at the end of the run.
    #[serde(default)]
    pub instance: Option<String>,
    /// The CPUs traced (`tracing_cpumask`).
    #[serde(default)]
    pub cpus: CpuSet,
    /// Trace events enabled, `group/name`.
    #[serde(default)]
    pub events: Vec<String>,
    /// Event specs this kernel does not have (`kvm/kvm_exit` without KVM, ...).
    #[serde(default)]
    pub events_missing: Vec<String>,
    /// Counts of the recording.
    #[serde(default)]
    pub stats: TraceStats,
    /// Per guest of the run, in config order.
    #[serde(default)]
    pub guests: Vec<GuestTrace>,
    /// The capture threshold, ns (`--trace-threshold`, else the workload's budget `max`).
    #[serde(default)]
    pub threshold_ns: Option<u64>,
    /// Moments an interval crossed the threshold, and what was kept of each.
    #[serde(default)]
    pub captures: Vec<Capture>,
    /// Crossings beyond the captures kept (counted only).
    #[serde(default)]
    pub captures_dropped: u64,
    /// `trace/<run>.txt`, relative to the results directory, when a capture was written.
    #[serde(default)]
    pub capture_file: Option<String>,
    /// Why there is no `trace/<run>.dat` (KernelShark's format).
    #[serde(default)]
    pub dat_note: Option<String>,
    /// SMI count of every RT pCPU over the run.
    #[serde(default)]
    pub smi: Vec<SmiCount>,
}

/// Whether a run was traced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum TraceStatus {
    /// Recorded on the RT pCPUs.
    Recorded,
    /// `--no-trace`.
    #[default]
    Off,
    /// The host could not trace (no tracefs, no privilege); the run went on without it.
    Unavailable {
        /// Why.
        reason: String,
    },
    /// The recording failed part-way; what was read is attributed.
    Failed {
        /// Why.
        reason: String,
    },
}

impl TraceStatus {
    /// Whether events were recorded.
    pub fn is_recorded(&self) -> bool {
        matches!(self, TraceStatus::Recorded | TraceStatus::Failed { .. })
    }
}

/// Counts of one recording.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceStats {
    /// Bytes of trace text read from the instance.
    pub bytes: u64,
    /// Bytes not kept because the run's trace reached its bound.
    #[serde(default)]
    pub bytes_dropped: u64,
    /// Events parsed (the whole recording, not only the windows).
    pub events: u64,
    /// Lines that were not events, markers or comments.
    pub malformed: u64,
    /// Lost-events markers in the text (`CPU:N [LOST M EVENTS]`).
    pub lost_markers: u64,
    /// Events lost according to those markers.
    pub lost_events: u64,
    /// Events the ring buffers overwrote or dropped (`per_cpu/cpuN/stats`), summed over the
    /// traced CPUs.
    pub overrun: u64,
    /// Timestamp resolution of the text, ns (1000: the kernel prints µs).
    pub resolution_ns: u64,
}

/// How the agent's times (the guest's `CLOCK_MONOTONIC`) were put on the host's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockMapping {
    /// How: `frames` (from the hello and interval frames' arrival) today.
    pub method: String,
    /// Host `CLOCK_MONOTONIC` minus guest `CLOCK_MONOTONIC`, ns.
    pub offset_ns: i64,
    /// How far a mapped time may be off, ns (both ways).
    pub uncertainty_ns: u64,
    /// Frames the offset was estimated from.
    pub frames: u32,
    /// Smallest (host arrival − guest time) over those frames, ns.
    pub delay_min_ns: i64,
    /// Their median, ns.
    pub delay_median_ns: i64,
    /// What the reader should know of the method.
    pub note: String,
    /// The refinement against the trace, when one shift lined events up.
    #[serde(default)]
    pub aligned: Option<Aligned>,
}

/// The frames' mapping refined against the trace (`pinlat::trace::analyse::align`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aligned {
    /// Shift added to the frames' offset, ns.
    pub shift_ns: i64,
    /// Guest events it was chosen over.
    pub events: u32,
    /// Of those, events it lines up with a stolen interval of their length.
    pub lined_up: u32,
    /// The frames' uncertainty before the refinement (the shift was searched within it), ns.
    pub frames_uncertainty_ns: u64,
    /// After the shift, the largest distance between a large guest event's end and the one
    /// stolen interval of its length near it, ns: how far the guest's clock wandered against
    /// the host's within the run. The mapping's uncertainty is at least this. `None` in
    /// records written before it was measured, or when no event had one such interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residual_ns: Option<u64>,
    /// Events that residual was taken over.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub residual_events: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What the trace says of one guest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestTrace {
    /// Guest name.
    pub guest: String,
    /// Its measurement window on the host's clock (the trace's), when its results came.
    pub window: Option<Window>,
    /// How guest time was mapped.
    pub mapping: Option<ClockMapping>,
    /// Per RT pCPU (an RT vCPU pinned to one pCPU).
    pub pcpus: Vec<PcpuTrace>,
    /// The guest's largest events next to their host culprits.
    pub matches: Vec<EventMatch>,
    /// Why something is missing (an RT vCPU not pinned to one pCPU, no window, ...).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// One RT pCPU of one guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PcpuTrace {
    /// The RT vCPU pinned there.
    pub vcpu: u32,
    /// Where the window went. `intervals` holds only those of [`PcpuTrace::strip`].
    pub attribution: CpuAttribution,
    /// The stretch around the guest's largest event on this pCPU, for a timeline strip.
    pub strip: Option<Strip>,
}

/// The stolen intervals of a stretch of one pCPU's window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strip {
    /// Start of the stretch, host ns.
    pub from_ns: u64,
    /// End, host ns.
    pub to_ns: u64,
    /// The guest event the stretch is centred on: its start and end, host ns.
    pub event_ns: (u64, u64),
    /// Stolen intervals overlapping the stretch, in time order (at most
    /// [`MAX_STRIP_INTERVALS`]).
    pub intervals: Vec<Interval>,
}

/// One of the guest's largest events and the host culprits that overlap it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMatch {
    /// The RT vCPU that measured it.
    pub vcpu: u32,
    /// The pCPU its thread was pinned to.
    pub pcpu: u32,
    /// When it ended, ns from the start of the measurement (as the agent reports it).
    pub offset_ns: u64,
    /// Its length, ns.
    pub latency_ns: u64,
    /// The host intervals overlapping it (at most [`MAX_CULPRITS`]), the tolerance used.
    pub host: GuestMatch,
}

/// An interval that crossed the capture threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capture {
    /// Guest name.
    pub guest: String,
    /// The RT vCPU.
    pub vcpu: u32,
    /// Interval number on that vCPU.
    pub interval: u64,
    /// The interval's largest latency, ns.
    pub max_ns: u64,
    /// When the runner saw the frame, host ns: the marker's time.
    pub marked_at_ns: u64,
    /// Whether the kernel took the marker (`trace_marker`); when not, it is a `# pinlat-marker`
    /// comment line in the capture file at that time.
    pub marker_in_kernel: bool,
    /// The span kept in the capture file, host ns.
    pub kept_ns: Option<(u64, u64)>,
}

/// The SMI count of one RT pCPU over a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum SmiCount {
    /// `MSR_SMI_COUNT` (0x34) read before and after.
    Counted {
        /// The pCPU.
        cpu: u32,
        /// Before the guests were released.
        before: u64,
        /// After the measurement.
        after: u64,
    },
    /// Not available (no `/dev/cpu/N/msr`, not readable, or the MSR does not read).
    NotAvailable {
        /// The pCPU.
        cpu: u32,
        /// Why.
        why: String,
    },
}

impl SmiCount {
    /// SMIs during the run; `None` when not available (never 0 for "unknown").
    pub fn delta(&self) -> Option<u64> {
        match self {
            SmiCount::Counted { before, after, .. } => Some(after.wrapping_sub(*before)),
            SmiCount::NotAvailable { .. } => None,
        }
    }

    /// The pCPU.
    pub fn cpu(&self) -> u32 {
        match self {
            SmiCount::Counted { cpu, .. } | SmiCount::NotAvailable { cpu, .. } => *cpu,
        }
    }
}
