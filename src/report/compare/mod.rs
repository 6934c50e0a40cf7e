//! `pinlat compare BASE NEW`: per (layout, scenario, workload) row, the change of every
//! percentile from one report to another (e.g. across host kernel versions), with the rows whose
//! percentiles grew beyond a threshold flagged as regressions, and the rows NEW lost.
//!
//! A percentile regresses when `new > base × (1 + threshold/100)` and `new − base ≥ min delta`
//! (default [`DEFAULT_MIN_DELTA_NS`]): 30 → 40 ns is +33 % but no regression, it is within a
//! clock read of noise. One that moved into the histogram's overflow regresses whatever the
//! threshold. The maximum is shown but never flagged: a single sample decides it. For the same
//! reason a max-bound percentile (fewer than [`crate::histo::MAX_BOUND_BEYOND`] samples beyond
//! it, on either side) is shown and skipped, and the text says so. The spread between
//! repetitions is shown next to the change so a reader can tell a regression from noise. A row
//! whose two sides were measured with different clock sources is not compared at all: it says
//! "not comparable: clocks differ".
//!
//! A row of BASE that is absent from NEW, whose runs all failed or went missing in NEW, or that
//! lost more runs in NEW than in BASE is a regression too ([`lost`]), unless the caller allows
//! missing rows (`--allow-missing`): a gate that compared only what still measured passed a
//! broken layout.

mod lost;
mod render;

pub use lost::Lost;
pub use render::render_text;

use serde::{Deserialize, Serialize};

use super::verdict::clocks_label;
use super::Report;
use crate::histo::{Percentile, Quantile};
use crate::wire::ClockSource;

/// One percentile of one row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// `p50` ... `p99.99`.
    pub metric: Quantile,
    /// Base value, ns (`None`: overflow).
    pub base_ns: Option<u64>,
    /// New value, ns (`None`: overflow).
    pub new_ns: Option<u64>,
    /// Relative change, percent (`None` when a value is in the overflow or the base is 0).
    pub change_pct: Option<f64>,
    /// Beyond the threshold.
    pub regression: bool,
    /// Why the change was not judged (a max-bound percentile), else `None`.
    pub not_judged: Option<String>,
}

/// One (layout, scenario, workload) in both reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// `layout.scenario.workload`.
    pub name: String,
    /// Why the two sides cannot be compared (`clocks differ (BASE: tsc, NEW: monotonic)`):
    /// then no change is computed and the row is never a regression.
    pub not_comparable: Option<String>,
    /// The compared percentiles.
    pub changes: Vec<Change>,
    /// Base and new maximum, ns (shown, not judged).
    pub max_ns: (u64, u64),
    /// Spread of p99.99 between repetitions, base and new, ns.
    pub spread_p9999_ns: (Option<u64>, Option<u64>),
}

impl Row {
    /// Whether any percentile regressed.
    pub fn regressed(&self) -> bool {
        self.changes.iter().any(|c| c.regression)
    }
}

/// Growth of a percentile below which it is never a regression, ns (`--min-delta`).
pub const DEFAULT_MIN_DELTA_NS: u64 = 500;

/// How a comparison judges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Relative growth of a percentile beyond which it regresses, percent.
    pub threshold_pct: f64,
    /// Absolute growth below which a percentile never regresses, ns.
    pub min_delta_ns: u64,
    /// Rows absent, failed or missing in NEW are reported but are not regressions.
    pub allow_missing: bool,
}

impl Options {
    /// `threshold_pct` with the default floor, missing rows not allowed.
    pub fn with_threshold(threshold_pct: f64) -> Options {
        Options {
            threshold_pct,
            min_delta_ns: DEFAULT_MIN_DELTA_NS,
            allow_missing: false,
        }
    }
}

/// The comparison of two reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Threshold, percent.
    pub threshold_pct: f64,
    /// Floor of a regression, ns.
    pub min_delta_ns: u64,
    /// Whether lost rows were allowed.
    pub allow_missing: bool,
    /// Rows measured in both.
    pub rows: Vec<Row>,
    /// Rows NEW lost: absent, failed or missing in NEW, or with more failed runs than in BASE.
    pub lost: Vec<Lost>,
    /// Rows measured only in the new report (absent or without samples in the base one).
    pub only_new: Vec<String>,
    /// Notes (TCG, differing accelerators).
    pub notes: Vec<String>,
}

impl Comparison {
    /// Whether any row regressed or was lost (unless lost rows are allowed).
    pub fn has_regression(&self) -> bool {
        self.rows.iter().any(Row::regressed) || self.lost.iter().any(|l| l.regression)
    }
}

/// Why a percentile that is max-bound in either report is not judged.
fn max_bound(b: &Percentile, n: &Percentile) -> Option<String> {
    let side = |name: &str, p: &Percentile| {
        p.max_bound
            .then(|| format!("{name} has {} sample(s) beyond it", p.samples_beyond))
    };
    let why: Vec<String> = [side("BASE", b), side("NEW", n)]
        .into_iter()
        .flatten()
        .collect();
    (!why.is_empty()).then(|| format!("max-bound ({}): not judged", why.join(", ")))
}

/// The change from `base_ns` to `new_ns`, percent of the base (`None` when the base is 0).
pub fn change_pct(base_ns: u64, new_ns: u64) -> Option<f64> {
    (base_ns > 0).then(|| (new_ns as f64 - base_ns as f64) * 100.0 / base_ns as f64)
}

/// A change in percent as every comparison prints it: `+12.3%`, or `n/a` when the base was 0.
pub fn pct_text(change_pct: Option<f64>) -> String {
    change_pct.map_or("n/a".to_string(), |p| format!("{p:+.1}%"))
}

/// The rule on two values: `new` grew beyond `base` by more than the threshold and by at least
/// the floor (`new > base × (1 + threshold/100)` and `new − base ≥ min delta`).
pub fn grew(base_ns: u64, new_ns: u64, o: &Options) -> bool {
    let limit = base_ns as f64 * (1.0 + o.threshold_pct / 100.0);
    new_ns as f64 > limit && new_ns.saturating_sub(base_ns) >= o.min_delta_ns
}

/// One percentile judged: a regression when it [`grew`] (or moved into the overflow) and
/// neither side is max-bound.
pub fn change(q: Quantile, bp: &Percentile, np: &Percentile, o: &Options) -> Change {
    let (b, n) = (bp.value_ns, np.value_ns);
    let not_judged = max_bound(bp, np);
    let (change_pct, regression) = match (b, n) {
        (Some(b), Some(n)) => (change_pct(b, n), grew(b, n, o)),
        (Some(_), None) => (None, true),
        _ => (None, false),
    };
    Change {
        metric: q,
        base_ns: b,
        new_ns: n,
        change_pct,
        regression: regression && not_judged.is_none(),
        not_judged,
    }
}

/// `clocks differ (BASE: tsc, NEW: monotonic)` when the two sides were not measured with one
/// and the same clock source.
pub fn clocks_differ(base: &[ClockSource], new: &[ClockSource]) -> Option<String> {
    (base.len() != 1 || base != new).then(|| {
        format!(
            "clocks differ (BASE: {}, NEW: {})",
            clocks_label(base),
            clocks_label(new)
        )
    })
}

/// Compares `new` against `base`.
pub fn compare(base: &Report, new: &Report, o: &Options) -> Comparison {
    let measured = |r: &Report| -> Vec<(String, super::Group)> {
        r.groups
            .iter()
            .filter(|g| g.stats.samples > 0)
            .map(|g| (g.name(), g.clone()))
            .collect()
    };
    let (b, n) = (measured(base), measured(new));
    let mut rows = Vec::new();
    for (name, bg) in &b {
        let Some((_, ng)) = n.iter().find(|(x, _)| x == name) else {
            continue;
        };
        let not_comparable = clocks_differ(&bg.clocks, &ng.clocks);
        let changes = if not_comparable.is_some() {
            Vec::new()
        } else {
            Quantile::ALL
                .into_iter()
                .map(|q| change(q, &bg.stats.at(q), &ng.stats.at(q), o))
                .collect()
        };
        rows.push(Row {
            name: name.clone(),
            not_comparable,
            changes,
            max_ns: (bg.stats.max_ns, ng.stats.max_ns),
            spread_p9999_ns: (
                bg.spread.p9999.map(|r| r.width_ns()),
                ng.spread.p9999.map(|r| r.width_ns()),
            ),
        })
    }
    let only_new = n
        .iter()
        .filter(|(x, _)| !b.iter().any(|(y, _)| y == x))
        .map(|(x, _)| x.clone())
        .collect();
    let mut notes = Vec::new();
    if base.is_tcg() || new.is_tcg() {
        notes.push(format!("Note: {}", crate::result::TCG_DISCLAIMER));
    }
    if base.accels != new.accels {
        notes.push(format!(
            "The reports used different accelerators ({:?} vs {:?}): the numbers are not comparable",
            base.accels, new.accels
        ));
    }
    Comparison {
        threshold_pct: o.threshold_pct,
        min_delta_ns: o.min_delta_ns,
        allow_missing: o.allow_missing,
        rows,
        lost: lost::lost_rows(base, new, o.allow_missing),
        only_new,
        notes,
    }
}
