//! Folding samples together: the accumulator behind every [`Summary`] of the report (a run, an
//! RT vCPU, a group), and the interval time series of a run.
//!
//! Histograms are merged by adding counts (HdrHistogram's `add`), which is exact at the
//! histogram's precision. Samples above the histogram range (overflow) are kept out of the
//! histogram but in the counts; the summary ranks them above every recorded sample
//! ([`crate::histo::Summary`]).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::{IntervalPoint, RunTimeline, VcpuKey};
use crate::histo::{new_histogram, percentile, Quantile, Summary};
use crate::result::RunRecord;
use crate::wire::CpuResult;

/// Adds `h` into `dst`; returns the count of values `dst` cannot hold (a foreign range), which
/// the caller counts as overflow.
pub(crate) fn add_hist(dst: &mut Histogram<u64>, h: &Histogram<u64>) -> u64 {
    if dst.add(h).is_ok() {
        return 0;
    }
    let mut lost = 0;
    for v in h.iter_recorded() {
        if dst
            .record_n(v.value_iterated_to(), v.count_at_value())
            .is_err()
        {
            lost += v.count_at_value();
        }
    }
    lost
}

/// Accumulates samples of one or more `CpuResult`s.
#[derive(Debug, Clone)]
pub struct Acc {
    pub(crate) hist: Histogram<u64>,
    pub(crate) overflow: u64,
    pub(crate) duration_ns: u64,
    pub(crate) min_ns: Option<u64>,
    pub(crate) max_ns: u64,
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            hist: new_histogram(),
            overflow: 0,
            duration_ns: 0,
            min_ns: None,
            max_ns: 0,
        }
    }
}

impl Acc {
    /// Adds a histogram; values it cannot hold (a foreign range) count as overflow.
    fn add_hist(&mut self, h: &Histogram<u64>) {
        self.overflow += add_hist(&mut self.hist, h);
    }

    /// Adds one CPU's whole-run result; `duration_ns` is added to the measured time.
    pub fn add_result(&mut self, r: &CpuResult, duration_ns: u64) {
        self.add_hist(&r.histogram.0);
        self.overflow += r.overflow;
        self.duration_ns += duration_ns;
        if r.samples > 0 {
            self.min_ns = Some(self.min_ns.map_or(r.min_ns, |m| m.min(r.min_ns)));
            self.max_ns = self.max_ns.max(r.max_ns);
        }
    }

    /// Merges another accumulator.
    pub fn merge(&mut self, o: &Acc) {
        self.add_hist(&o.hist);
        self.overflow += o.overflow;
        self.duration_ns += o.duration_ns;
        if let Some(m) = o.min_ns {
            self.min_ns = Some(self.min_ns.map_or(m, |x| x.min(m)));
        }
        self.max_ns = self.max_ns.max(o.max_ns);
    }

    /// The summary: the one [`Summary`] every output shows.
    pub fn stats(&self) -> Summary {
        Summary::new(
            &self.hist,
            self.overflow,
            self.min_ns.unwrap_or(0),
            self.max_ns,
            self.duration_ns,
        )
    }

    /// The merged histogram.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }
}

/// Where a run's RT vCPU results come from: every guest's final results.
pub(crate) fn rt_results(rec: &RunRecord) -> impl Iterator<Item = (VcpuKey, &CpuResult)> {
    rec.guests.iter().flat_map(|g| {
        g.results.iter().map(move |r| {
            (
                VcpuKey {
                    guest: g.guest.clone(),
                    vcpu: r.cpu,
                },
                r,
            )
        })
    })
}

/// The samples so far of the RT vCPUs whose final result did not arrive (a run interrupted
/// while it measured, a checkpoint's run): their series' merged interval histograms, with the
/// time they cover. Min and max are then at HDR precision (bucket bottom and top).
fn so_far(rec: &RunRecord) -> impl Iterator<Item = (VcpuKey, Acc)> + '_ {
    rec.guests.iter().flat_map(|g| {
        g.series
            .iter()
            .filter(|s| !g.results.iter().any(|r| r.cpu == s.cpu))
            .filter_map(move |s| {
                let h = &s.merged.as_ref()?.0;
                let first = s.points.first().map_or(0, |p| p.start_offset_ns);
                let acc = Acc {
                    hist: h.clone(),
                    overflow: s.overflow(),
                    duration_ns: s.end_offset_ns().saturating_sub(first),
                    min_ns: (!h.is_empty()).then(|| h.min()),
                    max_ns: if h.is_empty() { 0 } else { h.max() },
                };
                let key = VcpuKey {
                    guest: g.guest.clone(),
                    vcpu: s.cpu,
                };
                Some((key, acc))
            })
    })
}

/// Per-run statistics: all RT vCPUs merged, and each one (from the final results, else what
/// was measured so far).
pub(crate) fn run_stats(rec: &RunRecord) -> (Acc, BTreeMap<VcpuKey, Acc>) {
    let mut per: BTreeMap<VcpuKey, Acc> = BTreeMap::new();
    let mut all = Acc::default();
    let mut longest = rt_results(rec)
        .map(|(_, r)| r.duration_ns)
        .max()
        .unwrap_or(0);
    for (k, r) in rt_results(rec) {
        per.entry(k).or_default().add_result(r, r.duration_ns);
        all.add_result(r, 0);
    }
    for (k, a) in so_far(rec) {
        longest = longest.max(a.duration_ns);
        all.merge(&Acc {
            duration_ns: 0,
            ..a.clone()
        });
        per.entry(k).or_default().merge(&a);
    }
    all.duration_ns = longest;
    (all, per)
}

/// One interval slot of a run being merged over its RT vCPUs.
struct Slot {
    start_ns: u64,
    end_ns: u64,
    samples: u64,
    overflow: u64,
    hist: Histogram<u64>,
}

/// The interval series of a run, RT vCPUs merged per interval of time. Intervals are bucketed
/// by when they started, not by their index: a late hand-off stretches one CPU's interval, and
/// index N then covers different time on different CPUs.
pub(crate) fn timeline(rec: &RunRecord) -> RunTimeline {
    let interval_ns = rec
        .guests
        .iter()
        .find_map(|g| g.hello.as_ref())
        .map(|h| h.config.report_interval_ms.saturating_mul(1_000_000))
        .filter(|&n| n > 0)
        .unwrap_or(1_000_000_000);
    let mut slots: BTreeMap<u64, Slot> = BTreeMap::new();
    for g in &rec.guests {
        for iv in &g.intervals {
            let slot = iv.start_offset_ns.saturating_add(interval_ns / 2) / interval_ns;
            let e = slots.entry(slot).or_insert_with(|| Slot {
                start_ns: u64::MAX,
                end_ns: 0,
                samples: 0,
                overflow: 0,
                hist: new_histogram(),
            });
            e.start_ns = e.start_ns.min(iv.start_offset_ns);
            e.end_ns = e.end_ns.max(iv.end_offset_ns);
            e.samples += iv.samples;
            e.overflow += iv.overflow + add_hist(&mut e.hist, &iv.histogram.0);
        }
    }
    RunTimeline {
        run: rec.name.clone(),
        repetition: rec.repetition,
        points: slots
            .into_iter()
            .map(|(index, s)| {
                // An interval's exact max is not reported: HDR's bucket tops, unbounded.
                let p99 = percentile(&s.hist, s.overflow, u64::MAX, Quantile::P99.ppm());
                IntervalPoint {
                    index,
                    start_offset_ns: s.start_ns,
                    end_offset_ns: s.end_ns,
                    samples: s.samples,
                    p99_ns: if s.hist.is_empty() && s.overflow == 0 {
                        None
                    } else {
                        p99.value_ns
                    },
                    max_ns: (!s.hist.is_empty()).then(|| s.hist.max()),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_exact_min_max_and_counts() {
        let mut a = Acc::default();
        let mut b = Acc::default();
        a.hist.record_n(100, 10).unwrap();
        a.min_ns = Some(100);
        a.max_ns = 100;
        b.hist.record(5_000).unwrap();
        b.overflow = 1;
        b.min_ns = Some(5_000);
        b.max_ns = 70_000_000_000;
        a.merge(&b);
        let s = a.stats();
        assert_eq!(s.samples, 12);
        assert_eq!(s.overflow, 1);
        assert_eq!(s.min_ns, 100);
        assert_eq!(s.max_ns, 70_000_000_000);
        assert_eq!(s.p50_ns.value_ns, Some(100));
        assert_eq!(s.p9999_ns.value_ns, None);
    }
}
