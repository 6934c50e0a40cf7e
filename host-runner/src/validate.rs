//! Plausibility checks on what a guest sends: every number in a frame is untrusted input.
//!
//! The frame decoder (`pinlat::wire`) already guarantees a frame is well-formed: its length and
//! CRC match, its JSON fits the schema, every integer is a non-negative `u64`/`u32` (so negative,
//! fractional and NaN values are refused there as bad JSON) and every histogram decodes within
//! its size cap. What it cannot know is whether the message makes sense for *this* run: a
//! `final` from a CPU that is not one of the guest's RT vCPUs, a sample count that does not
//! match the histogram it comes with, a top-N list longer than the agent may keep, an interval
//! that ends before it starts. A message that fails here is dropped and counted by the runner
//! (`guest_run`), and the reason is recorded as a warning of the run; a run that is missing a
//! `final` because of it fails at the `collect` stage as any run with missing results does.
//!
//! A `load` (what a housekeeping load that measures itself achieved) is held to the same rules
//! as a `final`: a load the run switched on, once, on housekeeping CPUs only, only the
//! operations that load does, each operation's count the histogram's plus its overflow, its
//! exact extremes in the histogram's end buckets, its bytes within what that many operations
//! can move, and net's frames adding up (`received + lost <= sent`, `rtt` count = received).

use std::fmt;

use pinlat::agentcfg::{AgentConfig, MAX_TOP_N};
use pinlat::config::WorkloadKind;
use pinlat::cpuset::CpuSet;
use pinlat::histo::Hist;
use pinlat::wire::{CpuResult, IntervalReport, LoadKind, LoadResult, OpKind, OpStats};

/// What a run expects from one guest's agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// The guest's RT vCPUs: the only CPUs that measure.
    pub rt_cpus: CpuSet,
    /// The run's workload.
    pub workload: WorkloadKind,
    /// The run deadline's slack beyond twice the planned time, ns (see
    /// `engine::RUN_DEADLINE_SLACK`).
    pub deadline_slack_ns: u64,
    /// Configured preheat + measured duration, ns.
    pub planned_ns: u64,
    /// Most intervals one CPU can report in the run.
    pub max_intervals: u64,
}

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
        why: String,
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

impl Expect {
    /// Checks a `hello`: the wire schema, the run config it echoes (it must be the one that
    /// was sent: the agent measured what the runner asked for) and that it is the first.
    pub fn check_hello(
        &self,
        h: &pinlat::wire::Hello,
        sent: &pinlat::agentcfg::AgentConfig,
        already: bool,
    ) -> Result<(), Implausible> {
        if already {
            return Err(Implausible::DuplicateHello);
        }
        if h.schema_version != pinlat::wire::SCHEMA_VERSION {
            return Err(Implausible::Schema {
                got: h.schema_version,
                want: pinlat::wire::SCHEMA_VERSION,
            });
        }
        if &h.config != sent {
            return Err(Implausible::ConfigMismatch);
        }
        Ok(())
    }

    /// The longest a measurement can have lasted: the run's own deadline, twice the planned
    /// preheat + duration plus the deadline slack, counted from the hello.
    fn limit_ns(&self) -> u64 {
        self.planned_ns
            .saturating_mul(2)
            .saturating_add(self.deadline_slack_ns)
    }

    fn rt(&self, what: &'static str, cpu: u32) -> Result<(), Implausible> {
        if self.rt_cpus.contains(cpu) {
            Ok(())
        } else {
            Err(Implausible::NotRtCpu {
                what,
                cpu,
                rt_cpus: self.rt_cpus.clone(),
            })
        }
    }

    fn workload(&self, what: &'static str, got: WorkloadKind) -> Result<(), Implausible> {
        if got == self.workload {
            Ok(())
        } else {
            Err(Implausible::WrongWorkload {
                what,
                got,
                want: self.workload,
            })
        }
    }

    /// Checks one `interval` message.
    pub fn check_interval(&self, iv: &IntervalReport) -> Result<(), Implausible> {
        self.rt("interval", iv.cpu)?;
        self.workload("interval", iv.workload)?;
        let histogram = iv.histogram.0.len();
        if histogram.checked_add(iv.overflow) != Some(iv.samples) {
            return Err(Implausible::SampleCount {
                what: "interval",
                cpu: iv.cpu,
                samples: iv.samples,
                histogram,
                overflow: iv.overflow,
            });
        }
        if iv.end_offset_ns < iv.start_offset_ns {
            return Err(Implausible::IntervalBackwards {
                cpu: iv.cpu,
                index: iv.index,
                start_ns: iv.start_offset_ns,
                end_ns: iv.end_offset_ns,
            });
        }
        if iv.end_offset_ns > self.limit_ns() {
            return Err(Implausible::Duration {
                what: "interval.end_offset_ns",
                cpu: iv.cpu,
                value_ns: iv.end_offset_ns,
                limit_ns: self.limit_ns(),
            });
        }
        if iv.index >= self.max_intervals {
            return Err(Implausible::IntervalIndex {
                cpu: iv.cpu,
                index: iv.index,
                max: self.max_intervals,
            });
        }
        Ok(())
    }

    /// Checks one `load` message against the config the runner sent (`sent`); `seen` are the
    /// loads whose results were already accepted.
    pub fn check_load(
        &self,
        l: &LoadResult,
        sent: &AgentConfig,
        seen: &[LoadKind],
    ) -> Result<(), Implausible> {
        let load = l.load;
        // The largest bytes one operation can move.
        let per_op = match load {
            LoadKind::Io => sent.loads.io.as_ref().map(|io| u64::from(io.block_bytes)),
            LoadKind::Net => sent.loads.net.as_ref().map(|n| u64::from(n.frame_bytes)),
        }
        .ok_or(Implausible::LoadNotConfigured { load })?;
        if seen.contains(&load) {
            return Err(Implausible::DuplicateLoad { load });
        }
        if let Some(&cpu) = l.cpus.iter().find(|&&c| self.rt_cpus.contains(c)) {
            return Err(Implausible::LoadOnRtCpu {
                load,
                cpu,
                rt_cpus: self.rt_cpus.clone(),
            });
        }
        if l.duration_ns > self.limit_ns() {
            return Err(Implausible::LoadDuration {
                load,
                value_ns: l.duration_ns,
                limit_ns: self.limit_ns(),
            });
        }
        for (&op, s) in &l.ops {
            if !load.ops().contains(&op) {
                return Err(Implausible::LoadOp { load, op });
            }
            let bad = |why: String| Implausible::OpStats { load, op, why };
            op_fits(s).map_err(bad)?;
            let max_bytes = if op == OpKind::Flush { 0 } else { per_op };
            if s.count.checked_mul(max_bytes).map_or(true, |m| s.bytes > m) {
                return Err(bad(format!(
                    "{} bytes in {} operations of at most {max_bytes} bytes",
                    s.bytes, s.count
                )));
            }
        }
        let bad = |why: String| Implausible::NetCounts { load, why };
        match (load, &l.net) {
            (LoadKind::Io, None) => {}
            (LoadKind::Io, Some(_)) => return Err(bad("io has no frame counts".into())),
            (LoadKind::Net, None) => return Err(bad("no frame counts".into())),
            (LoadKind::Net, Some(n)) => {
                if n.received.checked_add(n.lost).map_or(true, |x| x > n.sent) {
                    return Err(bad(format!(
                        "{} received and {} lost of {} sent",
                        n.received, n.lost, n.sent
                    )));
                }
                let rtt = l.ops.get(&OpKind::Rtt).map_or(0, |s| s.count);
                if rtt != n.received {
                    return Err(bad(format!(
                        "{rtt} round trips timed but {} frames received",
                        n.received
                    )));
                }
            }
        }
        Ok(())
    }

    /// Checks one `final` message; `seen` are the CPUs whose finals were already accepted.
    pub fn check_final(&self, r: &CpuResult, seen: &CpuSet) -> Result<(), Implausible> {
        self.rt("final", r.cpu)?;
        if let Some(peer) = r.peer_cpu {
            self.rt("final.peer_cpu", peer)?;
        }
        self.workload("final", r.workload)?;
        if seen.contains(r.cpu) {
            return Err(Implausible::DuplicateFinal { cpu: r.cpu });
        }
        let h = &r.histogram.0;
        let histogram = h.len();
        if histogram.checked_add(r.overflow) != Some(r.samples) {
            return Err(Implausible::SampleCount {
                what: "final",
                cpu: r.cpu,
                samples: r.samples,
                histogram,
                overflow: r.overflow,
            });
        }
        let histogram_max_ns = if h.is_empty() {
            0
        } else {
            h.lowest_equivalent(h.max())
        };
        if (r.samples > 0 && r.min_ns > r.max_ns) || histogram_max_ns > r.max_ns {
            return Err(Implausible::MinMax {
                cpu: r.cpu,
                min_ns: r.min_ns,
                max_ns: r.max_ns,
                histogram_max_ns,
            });
        }
        // The exact extremes lie in the histogram's first and last buckets (the max in none
        // when samples overflowed: then it is above the histogram's range).
        if !h.is_empty() {
            let bucket = |v: u64| (h.lowest_equivalent(v), h.highest_equivalent(v));
            let off = |what, value_ns, b: (u64, u64)| Implausible::ExtremeOffHistogram {
                cpu: r.cpu,
                what,
                value_ns,
                bucket_ns: b,
            };
            let (lo, hi) = bucket(h.min());
            if r.min_ns < lo || r.min_ns > hi {
                return Err(off("min_ns", r.min_ns, (lo, hi)));
            }
            if r.overflow == 0 {
                let (lo, hi) = bucket(h.max());
                if r.max_ns < lo || r.max_ns > hi {
                    return Err(off("max_ns", r.max_ns, (lo, hi)));
                }
            } else if r.max_ns <= h.high() {
                return Err(off("max_ns", r.max_ns, (h.high() + 1, u64::MAX)));
            }
        }
        let limit = (MAX_TOP_N as u64).min(r.samples);
        if r.top.len() as u64 > limit {
            return Err(Implausible::TopTooLong {
                cpu: r.cpu,
                len: r.top.len(),
                limit,
            });
        }
        let mut prev = r.max_ns;
        for (index, t) in r.top.iter().enumerate() {
            if t.latency_ns > prev {
                return Err(Implausible::TopOrder {
                    cpu: r.cpu,
                    index,
                    latency_ns: t.latency_ns,
                    max_ns: r.max_ns,
                });
            }
            prev = t.latency_ns;
        }
        if r.duration_ns > self.limit_ns() {
            return Err(Implausible::Duration {
                what: "final.duration_ns",
                cpu: r.cpu,
                value_ns: r.duration_ns,
                limit_ns: self.limit_ns(),
            });
        }
        if let Some((index, t)) = r
            .top
            .iter()
            .enumerate()
            .find(|(_, t)| t.offset_ns > self.limit_ns())
        {
            return Err(Implausible::Duration {
                what: if index == 0 {
                    "final.top[0].offset_ns"
                } else {
                    "final.top[].offset_ns"
                },
                cpu: r.cpu,
                value_ns: t.offset_ns,
                limit_ns: self.limit_ns(),
            });
        }
        Ok(())
    }
}

/// Whether one operation's numbers fit together: `count` is the histogram's count plus the
/// overflow, and the exact extremes lie in the histogram's end buckets (the max above its range
/// when operations overflowed).
fn op_fits(s: &OpStats) -> Result<(), String> {
    let Hist(h) = &s.histogram;
    if h.len().checked_add(s.overflow) != Some(s.count) {
        return Err(format!(
            "claims {} operations but its histogram holds {} and overflow {}",
            s.count,
            h.len(),
            s.overflow
        ));
    }
    if s.count == 0 {
        return if s.min_ns == 0 && s.max_ns == 0 && s.bytes == 0 {
            Ok(())
        } else {
            Err(format!(
                "no operations but min_ns {}, max_ns {}, {} bytes",
                s.min_ns, s.max_ns, s.bytes
            ))
        };
    }
    if s.min_ns > s.max_ns {
        return Err(format!("min_ns {} above max_ns {}", s.min_ns, s.max_ns));
    }
    if !h.is_empty() {
        let in_bucket =
            |v: u64, at: u64| h.lowest_equivalent(at) <= v && v <= h.highest_equivalent(at);
        if !in_bucket(s.min_ns, h.min()) {
            return Err(format!(
                "min_ns {} is outside the histogram's lowest bucket",
                s.min_ns
            ));
        }
        let max_ok = if s.overflow == 0 {
            in_bucket(s.max_ns, h.max())
        } else {
            s.max_ns > h.high()
        };
        if !max_ok {
            return Err(format!(
                "max_ns {} does not fit the histogram's highest value or overflow",
                s.max_ns
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinlat::histo::{new_histogram, Hist};
    use pinlat::wire::{ClockInfo, ClockSource, TopEvent};

    fn expect() -> Expect {
        Expect {
            rt_cpus: CpuSet::parse("1-2").unwrap(),
            workload: WorkloadKind::BusyPoll,
            planned_ns: 6_000_000_000,
            deadline_slack_ns: 30_000_000_000,
            max_intervals: 10,
        }
    }

    fn hist(values: &[u64]) -> Hist {
        let mut h = new_histogram();
        for v in values {
            h.record(*v).unwrap();
        }
        Hist(h)
    }

    fn good_final() -> CpuResult {
        CpuResult {
            cpu: 1,
            workload: WorkloadKind::BusyPoll,
            peer_cpu: None,
            clock: ClockInfo {
                source: ClockSource::Monotonic,
                tsc_hz: None,
                invariant_tsc: false,
                calibration_spread_ppm: None,
            },
            duration_ns: 5_000_000_000,
            start_mono_ns: None,
            end_mono_ns: None,
            cpu_dma_latency_held: None,
            samples: 4,
            min_ns: 100,
            max_ns: 90_000,
            overflow: 0,
            backwards: 0,
            missed_periods: 0,
            top: vec![
                TopEvent {
                    offset_ns: 10,
                    latency_ns: 90_000,
                },
                TopEvent {
                    offset_ns: 20,
                    latency_ns: 500,
                },
            ],
            intervals: 5,
            late_intervals: 0,
            histogram: hist(&[100, 200, 500, 90_000]),
        }
    }

    fn good_interval() -> IntervalReport {
        IntervalReport {
            cpu: 2,
            workload: WorkloadKind::BusyPoll,
            index: 3,
            start_offset_ns: 3_000_000_000,
            end_offset_ns: 4_000_000_000,
            samples: 3,
            overflow: 1,
            histogram: hist(&[1, 2]),
        }
    }

    #[test]
    fn a_real_agent_message_passes() {
        let e = expect();
        assert_eq!(e.check_final(&good_final(), &CpuSet::new()), Ok(()));
        assert_eq!(e.check_interval(&good_interval()), Ok(()));
        // An empty final (no samples) is legitimate: the agent sends min 0, max 0.
        let mut r = good_final();
        r.samples = 0;
        r.min_ns = 0;
        r.max_ns = 0;
        r.top.clear();
        r.histogram = Hist::default();
        assert_eq!(e.check_final(&r, &CpuSet::new()), Ok(()));
        // Overflowed samples are in max_ns, not in the histogram.
        let mut r = good_final();
        r.overflow = 2;
        r.samples = 6;
        r.max_ns = 70_000_000_000;
        assert_eq!(e.check_final(&r, &CpuSet::new()), Ok(()));
    }

    #[test]
    fn samples_must_match_the_histogram() {
        let mut r = good_final();
        r.samples = 1_000_000;
        let err = expect().check_final(&r, &CpuSet::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "final from CPU 1 claims 1000000 samples but its histogram holds 4 and overflow 0"
        );
        // An overflow that wraps u64 is refused, not added.
        let mut r = good_final();
        r.overflow = u64::MAX;
        r.samples = 3;
        assert!(matches!(
            expect().check_final(&r, &CpuSet::new()),
            Err(Implausible::SampleCount { .. })
        ));
        let mut iv = good_interval();
        iv.samples = 2;
        assert!(matches!(
            expect().check_interval(&iv),
            Err(Implausible::SampleCount {
                what: "interval",
                ..
            })
        ));
    }

    #[test]
    fn cpus_must_be_rt_vcpus_of_the_guest() {
        let mut r = good_final();
        r.cpu = 0;
        assert_eq!(
            expect()
                .check_final(&r, &CpuSet::new())
                .unwrap_err()
                .to_string(),
            "final for CPU 0, which is not an RT vCPU of the guest (RT vCPUs: 1-2)"
        );
        let mut r = good_final();
        r.peer_cpu = Some(4_000_000_000);
        assert!(matches!(
            expect().check_final(&r, &CpuSet::new()),
            Err(Implausible::NotRtCpu {
                what: "final.peer_cpu",
                ..
            })
        ));
        let mut iv = good_interval();
        iv.cpu = 7;
        assert!(matches!(
            expect().check_interval(&iv),
            Err(Implausible::NotRtCpu {
                what: "interval",
                cpu: 7,
                ..
            })
        ));
    }

    #[test]
    fn workload_must_be_the_runs() {
        let mut r = good_final();
        r.workload = WorkloadKind::Timer;
        assert_eq!(
            expect()
                .check_final(&r, &CpuSet::new())
                .unwrap_err()
                .to_string(),
            "final for workload timer, but the run measures busy-poll"
        );
    }

    #[test]
    fn a_cpu_sends_one_final() {
        let seen: CpuSet = [1].into_iter().collect();
        assert_eq!(
            expect().check_final(&good_final(), &seen),
            Err(Implausible::DuplicateFinal { cpu: 1 })
        );
    }

    #[test]
    fn min_max_and_histogram_agree() {
        let mut r = good_final();
        r.min_ns = 100_000;
        assert!(matches!(
            expect().check_final(&r, &CpuSet::new()),
            Err(Implausible::MinMax { .. })
        ));
        // A histogram holding a second-long value while max_ns claims 90 µs.
        let mut r = good_final();
        r.histogram = hist(&[100, 200, 500, 1_000_000_000]);
        assert!(matches!(
            expect().check_final(&r, &CpuSet::new()),
            Err(Implausible::MinMax { .. })
        ));
    }

    #[test]
    fn a_huge_or_disordered_top_list_is_refused() {
        let mut r = good_final();
        r.top = vec![TopEvent::default(); 5];
        assert_eq!(
            expect().check_final(&r, &CpuSet::new()),
            Err(Implausible::TopTooLong {
                cpu: 1,
                len: 5,
                limit: 4
            })
        );
        let mut r = good_final();
        r.overflow = 100_000;
        r.samples = 100_004;
        r.max_ns = 70_000_000_000;
        r.top = vec![TopEvent::default(); MAX_TOP_N + 1];
        assert!(matches!(
            expect().check_final(&r, &CpuSet::new()),
            Err(Implausible::TopTooLong { limit: 1000, .. })
        ));
        let mut r = good_final();
        r.top[1].latency_ns = 95_000;
        assert!(matches!(
            expect().check_final(&r, &CpuSet::new()),
            Err(Implausible::TopOrder { index: 1, .. })
        ));
    }

    #[test]
    fn a_duration_past_the_runs_own_deadline_is_refused() {
        // Planned 6 s: the run deadline is 2 × 6 s + 30 s. An hour passed the old 24 h slack.
        let mut r = good_final();
        r.duration_ns = 3_600_000_000_000;
        assert!(matches!(
            expect().check_final(&r, &CpuSet::new()),
            Err(Implausible::Duration {
                limit_ns: 42_000_000_000,
                ..
            })
        ));
        r.duration_ns = 41_000_000_000;
        assert!(expect().check_final(&r, &CpuSet::new()).is_ok());
    }

    #[test]
    fn extremes_must_lie_in_the_histograms_end_buckets() {
        let mut r = good_final();
        r.min_ns -= 1;
        let e = expect().check_final(&r, &CpuSet::new()).unwrap_err();
        assert!(
            matches!(e, Implausible::ExtremeOffHistogram { what: "min_ns", .. }),
            "{e}"
        );
        let mut r = good_final();
        r.max_ns += 10_000;
        let e = expect().check_final(&r, &CpuSet::new()).unwrap_err();
        assert!(
            matches!(e, Implausible::ExtremeOffHistogram { what: "max_ns", .. }),
            "{e}"
        );
    }

    #[test]
    fn durations_beyond_the_run_are_refused() {
        let mut r = good_final();
        r.duration_ns = u64::MAX;
        assert!(matches!(
            expect().check_final(&r, &CpuSet::new()),
            Err(Implausible::Duration {
                what: "final.duration_ns",
                ..
            })
        ));
        let mut r = good_final();
        r.top[0].offset_ns = u64::MAX;
        assert!(matches!(
            expect().check_final(&r, &CpuSet::new()),
            Err(Implausible::Duration { .. })
        ));
        let mut iv = good_interval();
        iv.end_offset_ns = 1;
        assert!(matches!(
            expect().check_interval(&iv),
            Err(Implausible::IntervalBackwards { index: 3, .. })
        ));
        let mut iv = good_interval();
        iv.index = 10;
        assert_eq!(
            expect().check_interval(&iv).unwrap_err().to_string(),
            "interval 10 from CPU 2 is beyond the 10 intervals the run can have"
        );
    }

    #[test]
    fn hello_must_echo_the_sent_config_once() {
        use pinlat::agentcfg::AgentConfig;
        use pinlat::wire::{ClockInfo, ClockSource, Hello, SystemFacts, SCHEMA_VERSION};
        let sent = AgentConfig::new(WorkloadKind::BusyPoll, vec![1], 1000);
        let hello = |config: AgentConfig, schema_version| Hello {
            schema_version,
            agent_version: "0".into(),
            facts: SystemFacts {
                kernel_release: String::new(),
                kernel_version: String::new(),
                preempt_rt: true,
                clocksource: "tsc".into(),
                cmdline: String::new(),
                isolated_cpus: "1".into(),
                cpu_count: 2,
                clock: ClockInfo {
                    source: ClockSource::Tsc,
                    tsc_hz: Some(1),
                    invariant_tsc: true,
                    calibration_spread_ppm: None,
                },
                devices: Default::default(),
            },
            config,
            sent_mono_ns: None,
        };
        let e = expect();
        assert_eq!(
            e.check_hello(&hello(sent.clone(), SCHEMA_VERSION), &sent, false),
            Ok(())
        );
        assert_eq!(
            e.check_hello(&hello(sent.clone(), SCHEMA_VERSION), &sent, true),
            Err(Implausible::DuplicateHello)
        );
        assert!(matches!(
            e.check_hello(&hello(sent.clone(), SCHEMA_VERSION + 1), &sent, false),
            Err(Implausible::Schema { .. })
        ));
        let mut other = sent.clone();
        other.duration_ms = u64::MAX;
        assert_eq!(
            e.check_hello(&hello(other, SCHEMA_VERSION), &sent, false),
            Err(Implausible::ConfigMismatch)
        );
    }

    fn op(values: &[u64], bytes_each: u64) -> OpStats {
        OpStats {
            count: values.len() as u64,
            bytes: values.len() as u64 * bytes_each,
            errors: 0,
            first_error: None,
            min_ns: values.iter().copied().min().unwrap_or(0),
            max_ns: values.iter().copied().max().unwrap_or(0),
            overflow: 0,
            histogram: hist(values),
        }
    }

    fn loads_sent() -> pinlat::agentcfg::AgentConfig {
        let mut sent = pinlat::agentcfg::AgentConfig::new(WorkloadKind::BusyPoll, vec![1], 1000);
        sent.housekeeping_cpus = vec![0];
        sent.loads.io = Some(Default::default());
        sent.loads.net = Some(Default::default());
        sent
    }

    fn good_io() -> LoadResult {
        LoadResult {
            load: LoadKind::Io,
            device: "/dev/vda".into(),
            direct: Some(true),
            cpus: vec![0],
            duration_ns: 5_000_000_000,
            target_per_s: None,
            ops: [
                (OpKind::Read, op(&[90_000, 120_000, 4_000_000], 4096)),
                (OpKind::Write, op(&[150_000], 4096)),
                (OpKind::Flush, op(&[800_000], 0)),
            ]
            .into(),
            net: None,
        }
    }

    fn good_net() -> LoadResult {
        LoadResult {
            load: LoadKind::Net,
            device: "eth0".into(),
            direct: None,
            cpus: vec![0],
            duration_ns: 5_000_000_000,
            target_per_s: Some(1000),
            ops: [(OpKind::Rtt, op(&[300_000, 310_000], 256))].into(),
            net: Some(pinlat::wire::NetCounts {
                sent: 3,
                received: 2,
                lost: 1,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_real_load_result_passes_and_a_second_is_refused() {
        let (e, sent) = (expect(), loads_sent());
        assert_eq!(e.check_load(&good_io(), &sent, &[]), Ok(()));
        assert_eq!(e.check_load(&good_net(), &sent, &[LoadKind::Io]), Ok(()));
        assert_eq!(
            e.check_load(&good_io(), &sent, &[LoadKind::Io]),
            Err(Implausible::DuplicateLoad { load: LoadKind::Io })
        );
        // Nothing done is plausible: an empty op of a starved load.
        let mut idle = good_io();
        for s in idle.ops.values_mut() {
            *s = op(&[], 4096);
        }
        assert_eq!(e.check_load(&idle, &sent, &[]), Ok(()));
    }

    #[test]
    fn a_load_the_run_did_not_switch_on_is_refused() {
        let mut sent = loads_sent();
        sent.loads.net = None;
        assert_eq!(
            expect()
                .check_load(&good_net(), &sent, &[])
                .unwrap_err()
                .to_string(),
            "load result for net, which the run config did not switch on"
        );
    }

    #[test]
    fn a_load_on_an_rt_vcpu_or_with_foreign_operations_is_refused() {
        let (e, sent) = (expect(), loads_sent());
        let mut r = good_io();
        r.cpus = vec![0, 2];
        assert!(matches!(
            e.check_load(&r, &sent, &[]),
            Err(Implausible::LoadOnRtCpu { cpu: 2, .. })
        ));
        let mut r = good_io();
        r.ops.insert(OpKind::Rtt, op(&[1], 60));
        assert_eq!(
            e.check_load(&r, &sent, &[]).unwrap_err().to_string(),
            "load io reports rtt operations, which it does not do"
        );
    }

    #[test]
    fn operation_counts_must_match_their_histograms() {
        let (e, sent) = (expect(), loads_sent());
        let refused = |f: &dyn Fn(&mut OpStats)| {
            let mut r = good_io();
            f(r.ops.get_mut(&OpKind::Read).unwrap());
            match e.check_load(&r, &sent, &[]) {
                Err(Implausible::OpStats {
                    op: OpKind::Read,
                    why,
                    ..
                }) => why,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            refused(&|s| s.count = 1_000_000),
            "claims 1000000 operations but its histogram holds 3 and overflow 0"
        );
        assert!(refused(&|s| s.count = u64::MAX).contains("claims"));
        assert!(refused(&|s| s.overflow = u64::MAX).contains("overflow"));
        assert!(refused(&|s| s.min_ns = 1).contains("min_ns"));
        assert!(refused(&|s| s.max_ns = 9_000_000).contains("max_ns"));
        assert!(refused(&|s| s.min_ns = 5_000_000).contains("min_ns"));
        // More bytes than three 4 KiB reads can move.
        assert!(refused(&|s| s.bytes = 3 * 4096 + 1).contains("bytes"));
        assert!(refused(&|s| {
            *s = op(&[], 0);
            s.max_ns = 5;
        })
        .contains("no operations"));
        // Overflowed operations are in max_ns, above the histogram's range.
        let mut r = good_io();
        let s = r.ops.get_mut(&OpKind::Read).unwrap();
        s.overflow = 1;
        s.count = 4;
        s.max_ns = 70_000_000_000;
        assert_eq!(e.check_load(&r, &sent, &[]), Ok(()));
        // A flush moves no bytes.
        let mut r = good_io();
        r.ops.get_mut(&OpKind::Flush).unwrap().bytes = 1;
        assert!(e.check_load(&r, &sent, &[]).is_err());
    }

    #[test]
    fn net_frames_must_add_up() {
        let (e, sent) = (expect(), loads_sent());
        let why = |f: &dyn Fn(&mut LoadResult)| {
            let mut r = good_net();
            f(&mut r);
            match e.check_load(&r, &sent, &[]) {
                Err(Implausible::NetCounts { why, .. }) => why,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            why(&|r| r.net.as_mut().unwrap().lost = 2),
            "2 received and 2 lost of 3 sent"
        );
        assert!(why(&|r| r.net.as_mut().unwrap().received = u64::MAX).contains("received"));
        assert_eq!(
            why(&|r| {
                let n = r.net.as_mut().unwrap();
                n.received = 1;
                n.lost = 0;
            }),
            "2 round trips timed but 1 frames received"
        );
        assert_eq!(why(&|r| r.net = None), "no frame counts");
        let mut io = good_io();
        io.net = Some(Default::default());
        assert!(matches!(
            e.check_load(&io, &sent, &[]),
            Err(Implausible::NetCounts { .. })
        ));
        // Frames of 256 bytes at most.
        let mut r = good_net();
        r.ops.get_mut(&OpKind::Rtt).unwrap().bytes = 2 * 256 + 1;
        assert!(matches!(
            e.check_load(&r, &sent, &[]),
            Err(Implausible::OpStats { .. })
        ));
    }

    #[test]
    fn a_load_window_past_the_runs_deadline_is_refused() {
        let mut r = good_net();
        r.duration_ns = 3_600_000_000_000;
        assert!(matches!(
            expect().check_load(&r, &loads_sent(), &[]),
            Err(Implausible::LoadDuration {
                limit_ns: 42_000_000_000,
                ..
            })
        ));
    }
}
