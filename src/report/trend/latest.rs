//! The latest point of a series against the median of its history (every earlier point that
//! measured), judged by `pinlat compare`'s own rule ([`compare::change`]): a percentile regresses
//! when it grew beyond the threshold and by at least the floor; max-bound percentiles and the
//! maximum are shown, never judged.
//!
//! - The history is the earlier points measured with the latest's clock source; earlier points
//!   measured with another clock are left out and counted. When none is left, or the latest was
//!   measured with more than one clock, the row is "not comparable", as compare says it.
//! - The history's percentile is the median of the points' values (the mean of the two middle
//!   ones for an even count; in the overflow when a middle one is), with the median of their
//!   samples beyond it, max-bound below [`crate::histo::MAX_BOUND_BEYOND`] as every percentile.
//! - A latest point whose runs all failed, or that is absent from the latest directory, while
//!   the history measured, is lost: a regression unless missing rows are allowed, as in compare.
//!   So is a latest point that failed more of its runs than the history's median point did.

use serde::{Deserialize, Serialize};

use super::changepoint::median;
use super::{PointStatus, SeriesPoint};
use crate::histo::{Percentile, Quantile, MAX_BOUND_BEYOND};
use crate::report::compare::{self, Change, Options};

/// The latest point of a series against its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latest {
    /// Index of the latest directory (the last in trend order).
    pub at: usize,
    /// Earlier points the history's median is taken over.
    pub history: usize,
    /// Earlier points that measured with another clock source, left out of the history.
    pub other_clock: usize,
    /// Why the latest cannot be judged on its percentiles (no history, clocks differ), else
    /// `None`.
    pub not_judged: Option<String>,
    /// The judged percentiles: BASE is the history's median, NEW the latest.
    pub changes: Vec<Change>,
    /// The history's median maximum and the latest's, ns (shown, never judged).
    pub max_ns: Option<(u64, u64)>,
    /// Why the latest lost the series (failed, absent, more failed runs), else `None`.
    pub lost: Option<String>,
    /// Whether it counts for the exit code: a percentile regressed, or the series was lost and
    /// missing rows are not allowed.
    pub regression: bool,
}

/// The median of the history's percentiles at one quantile.
fn median_percentile(ps: &[Percentile]) -> Percentile {
    let mut v: Vec<&Percentile> = ps.iter().collect();
    // Overflow (`None`) above every value.
    v.sort_by_key(|p| p.value_ns.map_or((1, 0), |x| (0, x)));
    let n = v.len();
    let (lo, hi) = (v[(n - 1) / 2], v[n / 2]);
    let value_ns = match (lo.value_ns, hi.value_ns) {
        (Some(a), Some(b)) => Some(median(&[a, b])),
        _ => None,
    };
    let mut beyond: Vec<u64> = ps.iter().map(|p| p.samples_beyond).collect();
    beyond.sort_unstable();
    let samples_beyond = beyond[(n - 1) / 2];
    Percentile {
        value_ns,
        samples_beyond,
        max_bound: samples_beyond < MAX_BOUND_BEYOND,
    }
}

/// How `p` lost the series, given the history's measured points (`None`: it did not).
fn lost(p: &SeriesPoint, history: &[&SeriesPoint]) -> Option<String> {
    if history.is_empty() {
        return None;
    }
    match &p.status {
        PointStatus::Absent => Some("absent in the latest directory".to_string()),
        PointStatus::Failed { cause } => Some(format!(
            "{} of {} runs failed in the latest directory ({cause})",
            p.failed_runs,
            p.failed_runs + p.ok_runs
        )),
        PointStatus::Measured => {
            let typical = median(
                &history
                    .iter()
                    .map(|h| h.failed_runs as u64)
                    .collect::<Vec<_>>(),
            );
            (p.failed_runs as u64 > typical).then(|| {
                format!(
                    "{} of {} runs failed in the latest directory; the history's median point failed {typical}",
                    p.failed_runs,
                    p.failed_runs + p.ok_runs
                )
            })
        }
    }
}

/// Judges the last of `points` (one per directory, in trend order) against the earlier ones.
pub fn judge(points: &[SeriesPoint], o: &Options) -> Option<Latest> {
    let (last, earlier) = points.split_last()?;
    let measured: Vec<&SeriesPoint> = earlier
        .iter()
        .filter(|p| p.status == PointStatus::Measured)
        .collect();
    let lost = lost(last, &measured);
    let mut l = Latest {
        at: points.len() - 1,
        history: 0,
        other_clock: 0,
        not_judged: None,
        changes: Vec::new(),
        max_ns: None,
        regression: lost.is_some() && !o.allow_missing,
        lost,
    };
    let Some(stats) = last
        .stats
        .as_ref()
        .filter(|_| last.status == PointStatus::Measured)
    else {
        return Some(l);
    };
    let history: Vec<&SeriesPoint> = measured
        .iter()
        .filter(|p| p.clocks == last.clocks)
        .copied()
        .collect();
    l.other_clock = measured.len() - history.len();
    l.history = history.len();
    let why_not = match (measured.last(), history.is_empty()) {
        (None, _) => Some("no earlier point measured: nothing to judge against".to_string()),
        (Some(prev), true) => compare::clocks_differ(&prev.clocks, &last.clocks),
        (Some(_), false) => compare::clocks_differ(&last.clocks, &last.clocks),
    };
    if let Some(why) = why_not {
        l.not_judged = Some(why);
        return Some(l);
    }
    let hist_stats: Vec<&crate::histo::Summary> =
        history.iter().filter_map(|p| p.stats.as_ref()).collect();
    l.changes = Quantile::ALL
        .into_iter()
        .map(|q| {
            let ps: Vec<Percentile> = hist_stats.iter().map(|s| s.at(q)).collect();
            compare::change(q, &median_percentile(&ps), &stats.at(q), o)
        })
        .collect();
    let maxes: Vec<u64> = hist_stats.iter().map(|s| s.max_ns).collect();
    l.max_ns = Some((median(&maxes), stats.max_ns));
    l.regression |= l.changes.iter().any(|c| c.regression);
    Some(l)
}

#[cfg(test)]
#[path = "latest_tests.rs"]
mod tests;
