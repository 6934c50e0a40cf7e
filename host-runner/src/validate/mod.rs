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

use pinlat::agentcfg::{AgentConfig, MAX_TOP_N};
use pinlat::config::WorkloadKind;
use pinlat::cpuset::CpuSet;
use pinlat::histo::Hist;
use pinlat::wire::{CpuResult, IntervalReport, LoadKind, LoadResult, OpKind, OpStats};

mod implausible;

pub use implausible::{Implausible, OpMismatch};

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
            let bad = |why: OpMismatch| Implausible::OpStats { load, op, why };
            op_fits(s).map_err(bad)?;
            let max_bytes = if op == OpKind::Flush { 0 } else { per_op };
            if s.count.checked_mul(max_bytes).map_or(true, |m| s.bytes > m) {
                return Err(bad(OpMismatch::Bytes {
                    bytes: s.bytes,
                    count: s.count,
                    max_bytes,
                }));
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
fn op_fits(s: &OpStats) -> Result<(), OpMismatch> {
    let Hist(h) = &s.histogram;
    if h.len().checked_add(s.overflow) != Some(s.count) {
        return Err(OpMismatch::Count {
            count: s.count,
            histogram: h.len(),
            overflow: s.overflow,
        });
    }
    if s.count == 0 {
        return if s.min_ns == 0 && s.max_ns == 0 && s.bytes == 0 {
            Ok(())
        } else {
            Err(OpMismatch::NoneButValues {
                min_ns: s.min_ns,
                max_ns: s.max_ns,
                bytes: s.bytes,
            })
        };
    }
    if s.min_ns > s.max_ns {
        return Err(OpMismatch::MinAboveMax {
            min_ns: s.min_ns,
            max_ns: s.max_ns,
        });
    }
    if !h.is_empty() {
        let in_bucket =
            |v: u64, at: u64| h.lowest_equivalent(at) <= v && v <= h.highest_equivalent(at);
        if !in_bucket(s.min_ns, h.min()) {
            return Err(OpMismatch::MinOutsideHistogram { min_ns: s.min_ns });
        }
        let max_ok = if s.overflow == 0 {
            in_bucket(s.max_ns, h.max())
        } else {
            s.max_ns > h.high()
        };
        if !max_ok {
            return Err(OpMismatch::MaxOutsideHistogram { max_ns: s.max_ns });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
