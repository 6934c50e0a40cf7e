//! The interval series of one RT vCPU over the whole run, in bounded memory: what a soak of
//! 12 or 24 hours keeps of its interval frames (README "Soak").
//!
//! Each interval frame of the agent (a histogram per report interval, 1 s by default) becomes
//! one point: when it started and ended, its samples, its overflow, its largest sample and its
//! p99. A point covers `width` consecutive intervals; when the series would grow beyond
//! `max_points`, neighbouring points are merged in pairs and `width` doubles (the scheme of a
//! min/max decimating plot, as rrdtool's MAX consolidation keeps the worst of each step). A merged
//! point keeps the **largest** max and the **largest** p99 of what it merges, the sums of
//! samples and overflow, and the span from the first start to the last end: coarsening never
//! loses the maximum, only its position within the point. Memory is `max_points` points per
//! RT vCPU, whatever the run's length.
//!
//! Beside the points, every interval's histogram is merged into `merged` (exact, at the
//! histogram's precision: HDR addition) while the run measures. The agent's final result
//! carries the same samples, so `merged` is only written to the run record when that final
//! result did not arrive: a run interrupted by SIGINT, or the record of a run still measuring
//! (`checkpoint.json`, [`crate::schema::Checkpoint`]).

use serde::{Deserialize, Serialize};

use crate::histo::{new_histogram, percentile, Hist, Quantile};
use crate::wire::IntervalReport;

/// Points kept per RT vCPU by default: a 24 h run at 1 s intervals ends with points of 64
/// intervals (64 s), 1,350 of them.
pub const SERIES_MAX_POINTS: usize = 2048;

/// One point of a series: `intervals` consecutive interval frames of one RT vCPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// Start of its first interval, ns from the start of the measurement.
    pub start_offset_ns: u64,
    /// End of its last interval, ns from the start of the measurement.
    pub end_offset_ns: u64,
    /// Interval frames merged into it.
    pub intervals: u32,
    /// Samples, overflow included.
    pub samples: u64,
    /// Samples above the histogram's range (~60 s): larger than `max_ns`.
    pub overflow: u64,
    /// Largest sample within the histogram's range, ns: the top of its HDR bucket (within
    /// 0.1 % above the sample). `None` when no sample was within range.
    pub max_ns: Option<u64>,
    /// Largest p99 of the intervals merged into it, ns (a point of one interval: that
    /// interval's p99). `None` when no interval's p99 was within range.
    pub p99_ns: Option<u64>,
}

impl SeriesPoint {
    /// The point of one interval frame.
    pub fn of(iv: &IntervalReport) -> SeriesPoint {
        let h = &iv.histogram.0;
        let p99 = percentile(h, iv.overflow, u64::MAX, Quantile::P99.ppm());
        SeriesPoint {
            start_offset_ns: iv.start_offset_ns,
            end_offset_ns: iv.end_offset_ns,
            intervals: 1,
            samples: iv.samples,
            overflow: iv.overflow,
            max_ns: (!h.is_empty()).then(|| h.max()),
            p99_ns: if h.is_empty() { None } else { p99.value_ns },
        }
    }

    /// Merges `o` into this point: the span of both, the sums, the larger max and p99.
    pub fn absorb(&mut self, o: &SeriesPoint) {
        self.start_offset_ns = self.start_offset_ns.min(o.start_offset_ns);
        self.end_offset_ns = self.end_offset_ns.max(o.end_offset_ns);
        self.intervals = self.intervals.saturating_add(o.intervals);
        self.samples = self.samples.saturating_add(o.samples);
        self.overflow = self.overflow.saturating_add(o.overflow);
        self.max_ns = self.max_ns.max(o.max_ns);
        self.p99_ns = self.p99_ns.max(o.p99_ns);
    }
}

/// The series of one RT vCPU of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuSeries {
    /// The vCPU the agent measured on.
    pub cpu: u32,
    /// Most points kept; beyond it, neighbours are merged ([`SERIES_MAX_POINTS`]).
    pub max_points: u32,
    /// Interval frames per point (a power of two; the last point may hold fewer).
    pub width: u32,
    /// Interval frames received.
    pub intervals: u64,
    /// Points in time order.
    pub points: Vec<SeriesPoint>,
    /// Every interval's histogram merged, ns; written only when the agent's final result for
    /// this vCPU did not arrive (the run was interrupted or is still measuring).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<Hist>,
}

impl CpuSeries {
    /// An empty series of `cpu` holding at most `max_points` (at least 2) points; `merged`
    /// accumulates the histograms when `merge` is set.
    pub fn new(cpu: u32, max_points: usize, merge: bool) -> Self {
        CpuSeries {
            cpu,
            max_points: max_points.clamp(2, u32::MAX as usize) as u32,
            width: 1,
            intervals: 0,
            points: Vec::new(),
            merged: merge.then(|| Hist(new_histogram())),
        }
    }

    /// Adds one interval frame of this vCPU (frames arrive in their order).
    pub fn push(&mut self, iv: &IntervalReport) {
        self.intervals += 1;
        if let Some(m) = &mut self.merged {
            // Values outside pinlat's range are already the frame's overflow; a frame the
            // validator passed holds none.
            let _ = crate::report::accumulate::add_hist(&mut m.0, &iv.histogram.0);
        }
        let p = SeriesPoint::of(iv);
        match self.points.last_mut() {
            Some(last) if last.intervals < self.width => last.absorb(&p),
            _ => self.points.push(p),
        }
        if self.points.len() > self.max_points as usize {
            self.coarsen();
        }
    }

    /// Merges neighbouring points in pairs and doubles the width.
    fn coarsen(&mut self) {
        self.width = self.width.saturating_mul(2);
        let old = std::mem::take(&mut self.points);
        self.points = old
            .chunks(2)
            .map(|pair| {
                let mut p = pair[0];
                if let Some(b) = pair.get(1) {
                    p.absorb(b);
                }
                p
            })
            .collect();
    }

    /// The largest in-range sample of the whole series, ns.
    pub fn max_ns(&self) -> Option<u64> {
        self.points.iter().filter_map(|p| p.max_ns).max()
    }

    /// Samples of the whole series, overflow included.
    pub fn samples(&self) -> u64 {
        self.points.iter().map(|p| p.samples).sum()
    }

    /// Overflowed samples of the whole series.
    pub fn overflow(&self) -> u64 {
        self.points.iter().map(|p| p.overflow).sum()
    }

    /// End of the last interval, ns from the start of the measurement: how much of the run
    /// the series covers.
    pub fn end_offset_ns(&self) -> u64 {
        self.points.last().map_or(0, |p| p.end_offset_ns)
    }
}

#[cfg(test)]
#[path = "series_tests.rs"]
mod tests;
