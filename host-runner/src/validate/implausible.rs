//! Why a guest's message was refused: [`Implausible`] and the sentence it reads as.

use std::fmt;

use pinlat::config::WorkloadKind;
use pinlat::cpuset::CpuSet;
use pinlat::wire::{LoadKind, OpKind};

/// Why a guest's message was refused. `Display` says what was wrong, with the numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Implausible {
    /// The message names a CPU that is not an RT vCPU of the guest.
    NotRtCpu {
        /// `final`, `interval` or `final.peer_cpu`.
        what: &'static str,
        /// The CPU it named.
        cpu: u32,
        /// The guest's RT vCPUs.
        rt_cpus: CpuSet,
    },
    /// The message is for another workload than the run's.
    WrongWorkload {
        /// `final` or `interval`.
        what: &'static str,
        /// The workload it named.
        got: WorkloadKind,
        /// The run's workload.
        want: WorkloadKind,
    },
    /// `samples` is not the histogram's count plus `overflow`.
    SampleCount {
        /// `final` or `interval`.
        what: &'static str,
        /// The CPU.
        cpu: u32,
        /// `samples` as sent.
        samples: u64,
        /// Values in the histogram.
        histogram: u64,
        /// `overflow` as sent.
        overflow: u64,
    },
    /// `min_ns` above `max_ns`, or the histogram holds values above `max_ns`.
    MinMax {
        /// The CPU.
        cpu: u32,
        /// `min_ns` as sent.
        min_ns: u64,
        /// `max_ns` as sent.
        max_ns: u64,
        /// The histogram's largest value (lowest equivalent of its bucket), ns.
        histogram_max_ns: u64,
    },
    /// An exact extreme outside the histogram bucket that holds it.
    ExtremeOffHistogram {
        /// The CPU.
        cpu: u32,
        /// `min_ns` or `max_ns`.
        what: &'static str,
        /// The value sent, ns.
        value_ns: u64,
        /// The bucket the histogram holds it in, ns (inclusive).
        bucket_ns: (u64, u64),
    },
    /// More top events than the agent may keep, or than samples.
    TopTooLong {
        /// The CPU.
        cpu: u32,
        /// Entries sent.
        len: usize,
        /// The limit that applied.
        limit: u64,
    },
    /// A top event larger than `max_ns`, or the list not largest-first.
    TopOrder {
        /// The CPU.
        cpu: u32,
        /// Index of the first bad entry.
        index: usize,
        /// Its latency, ns.
        latency_ns: u64,
        /// `max_ns` as sent.
        max_ns: u64,
    },
    /// A duration or offset beyond anything the run could have measured.
    Duration {
        /// `final.duration_ns` or `interval.end_offset_ns`.
        what: &'static str,
        /// The CPU.
        cpu: u32,
        /// The value sent, ns.
        value_ns: u64,
        /// The largest plausible value, ns.
        limit_ns: u64,
    },
    /// An interval that ends before it starts.
    IntervalBackwards {
        /// The CPU.
        cpu: u32,
        /// Interval index.
        index: u64,
        /// Start, ns.
        start_ns: u64,
        /// End, ns.
        end_ns: u64,
    },
    /// An interval index beyond the most intervals the run can have.
    IntervalIndex {
        /// The CPU.
        cpu: u32,
        /// Index sent.
        index: u64,
        /// The most intervals one CPU can report.
        max: u64,
    },
    /// A second `final` for a CPU that already sent one.
    DuplicateFinal {
        /// The CPU.
        cpu: u32,
    },
    /// A `hello` with a wire schema this runner does not speak.
    Schema {
        /// The version sent.
        got: u32,
        /// The version this runner speaks.
        want: u32,
    },
    /// A `hello` whose echoed run config is not the one the runner put into the guest.
    ConfigMismatch,
    /// A second `hello`.
    DuplicateHello,
    /// A `load` for a load the run did not switch on.
    LoadNotConfigured {
        /// The load it named.
        load: LoadKind,
    },
    /// A second `load` for the same load.
    DuplicateLoad {
        /// The load.
        load: LoadKind,
    },
    /// A `load` that claims to have run on an RT vCPU.
    LoadOnRtCpu {
        /// The load.
        load: LoadKind,
        /// The CPU it named.
        cpu: u32,
        /// The guest's RT vCPUs.
        rt_cpus: CpuSet,
    },
    /// A `load` with an operation that load does not do.
    LoadOp {
        /// The load.
        load: LoadKind,
        /// The operation.
        op: OpKind,
    },
    /// An operation's numbers that do not fit together.
    OpStats {
        /// The load.
        load: LoadKind,
        /// The operation.
        op: OpKind,
        /// What does not fit, with the numbers.
        why: OpMismatch,
    },
    /// A load's window beyond anything the run could have lasted.
    LoadDuration {
        /// The load.
        load: LoadKind,
        /// The value sent, ns.
        value_ns: u64,
        /// The largest plausible value, ns.
        limit_ns: u64,
    },
    /// Net's frame counts that do not add up, or their absence (or presence for io).
    NetCounts {
        /// The load.
        load: LoadKind,
        /// What does not add up, with the numbers.
        why: String,
    },
}

impl fmt::Display for Implausible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Implausible::NotRtCpu { what, cpu, rt_cpus } => write!(
                f,
                "{what} for CPU {cpu}, which is not an RT vCPU of the guest (RT vCPUs: {rt_cpus})"
            ),
            Implausible::WrongWorkload { what, got, want } => {
                write!(f, "{what} for workload {got}, but the run measures {want}")
            }
            Implausible::SampleCount {
                what,
                cpu,
                samples,
                histogram,
                overflow,
            } => write!(
                f,
                "{what} from CPU {cpu} claims {samples} samples but its histogram holds {histogram} and overflow {overflow}"
            ),
            Implausible::MinMax {
                cpu,
                min_ns,
                max_ns,
                histogram_max_ns,
            } => write!(
                f,
                "final from CPU {cpu}: min_ns {min_ns}, max_ns {max_ns} and histogram max {histogram_max_ns} ns do not fit together"
            ),
            Implausible::ExtremeOffHistogram {
                cpu,
                what,
                value_ns,
                bucket_ns,
            } => write!(
                f,
                "final from CPU {cpu}: {what} {value_ns} ns is outside the histogram's bucket {}..={} ns for it",
                bucket_ns.0, bucket_ns.1
            ),
            Implausible::TopTooLong { cpu, len, limit } => write!(
                f,
                "final from CPU {cpu} has {len} top events, at most {limit} are possible"
            ),
            Implausible::TopOrder {
                cpu,
                index,
                latency_ns,
                max_ns,
            } => write!(
                f,
                "final from CPU {cpu}: top[{index}] = {latency_ns} ns is out of order or above max_ns {max_ns}"
            ),
            Implausible::Duration {
                what,
                cpu,
                value_ns,
                limit_ns,
            } => write!(
                f,
                "{what} {value_ns} from CPU {cpu} is beyond the {limit_ns} ns the run could last"
            ),
            Implausible::IntervalBackwards {
                cpu,
                index,
                start_ns,
                end_ns,
            } => write!(
                f,
                "interval {index} from CPU {cpu} ends ({end_ns} ns) before it starts ({start_ns} ns)"
            ),
            Implausible::IntervalIndex { cpu, index, max } => write!(
                f,
                "interval {index} from CPU {cpu} is beyond the {max} intervals the run can have"
            ),
            Implausible::DuplicateFinal { cpu } => {
                write!(f, "a second final from CPU {cpu}")
            }
            Implausible::Schema { got, want } => {
                write!(f, "hello with wire schema {got}, this runner speaks {want}")
            }
            Implausible::ConfigMismatch => write!(
                f,
                "hello echoes a run config other than the one the runner put into the guest"
            ),
            Implausible::DuplicateHello => write!(f, "a second hello"),
            Implausible::LoadNotConfigured { load } => write!(
                f,
                "load result for {load}, which the run config did not switch on"
            ),
            Implausible::DuplicateLoad { load } => write!(f, "a second load result for {load}"),
            Implausible::LoadOnRtCpu { load, cpu, rt_cpus } => write!(
                f,
                "load {load} claims CPU {cpu}, an RT vCPU of the guest (RT vCPUs: {rt_cpus}): loads run on housekeeping vCPUs"
            ),
            Implausible::LoadOp { load, op } => {
                write!(f, "load {load} reports {op} operations, which it does not do")
            }
            Implausible::OpStats { load, op, why } => write!(f, "load {load} {op}: {why}"),
            Implausible::LoadDuration {
                load,
                value_ns,
                limit_ns,
            } => write!(
                f,
                "load {load} duration_ns {value_ns} is beyond the {limit_ns} ns the run could last"
            ),
            Implausible::NetCounts { load, why } => write!(f, "load {load}: {why}"),
        }
    }
}

/// How one operation's numbers (`OpStats`) fail to fit together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpMismatch {
    /// `count` is not the histogram's count plus the overflow.
    Count {
        /// `count`.
        count: u64,
        /// Values in the histogram.
        histogram: u64,
        /// `overflow`.
        overflow: u64,
    },
    /// No operations, yet extremes or bytes.
    NoneButValues {
        /// `min_ns`.
        min_ns: u64,
        /// `max_ns`.
        max_ns: u64,
        /// `bytes`.
        bytes: u64,
    },
    /// `min_ns` above `max_ns`.
    MinAboveMax {
        /// `min_ns`.
        min_ns: u64,
        /// `max_ns`.
        max_ns: u64,
    },
    /// `min_ns` outside the histogram's lowest bucket.
    MinOutsideHistogram {
        /// `min_ns`.
        min_ns: u64,
    },
    /// `max_ns` neither in the histogram's highest bucket nor, with overflow, above its range.
    MaxOutsideHistogram {
        /// `max_ns`.
        max_ns: u64,
    },
    /// More bytes than `count` operations of the load's size can move.
    Bytes {
        /// `bytes`.
        bytes: u64,
        /// `count`.
        count: u64,
        /// The most one operation moves (0 for a flush).
        max_bytes: u64,
    },
}

impl fmt::Display for OpMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpMismatch::Count {
                count,
                histogram,
                overflow,
            } => write!(
                f,
                "claims {count} operations but its histogram holds {histogram} and overflow {overflow}"
            ),
            OpMismatch::NoneButValues {
                min_ns,
                max_ns,
                bytes,
            } => write!(
                f,
                "no operations but min_ns {min_ns}, max_ns {max_ns}, {bytes} bytes"
            ),
            OpMismatch::MinAboveMax { min_ns, max_ns } => {
                write!(f, "min_ns {min_ns} above max_ns {max_ns}")
            }
            OpMismatch::MinOutsideHistogram { min_ns } => {
                write!(f, "min_ns {min_ns} is outside the histogram's lowest bucket")
            }
            OpMismatch::MaxOutsideHistogram { max_ns } => write!(
                f,
                "max_ns {max_ns} does not fit the histogram's highest value or overflow"
            ),
            OpMismatch::Bytes {
                bytes,
                count,
                max_bytes,
            } => write!(
                f,
                "{bytes} bytes in {count} operations of at most {max_bytes} bytes"
            ),
        }
    }
}
