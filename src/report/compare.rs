//! `pinlat compare BASE NEW`: per (layout, scenario, workload) row, the change of every
//! percentile from one report to another (e.g. across host kernel versions), with the rows whose
//! percentiles grew by more than a threshold flagged as regressions.
//!
//! A percentile regresses when `new > base × (1 + threshold/100)`; one that moved into the
//! histogram's overflow regresses whatever the threshold. The maximum is shown but never
//! flagged: a single sample decides it. For the same reason a max-bound percentile (fewer than
//! [`crate::histo::MAX_BOUND_BEYOND`] samples beyond it, on either side) is shown and skipped,
//! and the text says so. The spread between repetitions is shown next to the change so a
//! reader can tell a regression from noise. A row whose two sides were measured with different
//! clock sources is not compared at all: it says "not comparable: clocks differ".

use serde::Serialize;

use super::verdict::clocks_label;
use super::{us, us_opt, Group, Report};
use crate::histo::{Percentile, Quantile};

/// One percentile of one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// `p50` ... `p99.99`.
    pub metric: &'static str,
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

/// The comparison of two reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Threshold, percent.
    pub threshold_pct: f64,
    /// Rows present in both.
    pub rows: Vec<Row>,
    /// Rows only in the base report (or without samples in the new one).
    pub only_base: Vec<String>,
    /// Rows only in the new report (or without samples in the base one).
    pub only_new: Vec<String>,
    /// Notes (TCG, differing accelerators).
    pub notes: Vec<String>,
}

impl Comparison {
    /// Whether any row regressed.
    pub fn has_regression(&self) -> bool {
        self.rows.iter().any(Row::regressed)
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

fn change(q: Quantile, bp: &Percentile, np: &Percentile, threshold_pct: f64) -> Change {
    let (b, n) = (bp.value_ns, np.value_ns);
    let not_judged = max_bound(bp, np);
    let (change_pct, regression) = match (b, n) {
        (Some(b), Some(n)) => {
            let pct = (b > 0).then(|| (n as f64 - b as f64) * 100.0 / b as f64);
            let limit = b as f64 * (1.0 + threshold_pct / 100.0);
            (pct, n as f64 > limit)
        }
        (Some(_), None) => (None, true),
        _ => (None, false),
    };
    Change {
        metric: q.label(),
        base_ns: b,
        new_ns: n,
        change_pct,
        regression: regression && not_judged.is_none(),
        not_judged,
    }
}

/// `clocks differ (BASE: tsc, NEW: monotonic)` when the two sides were not measured with one
/// and the same clock source.
fn clocks_differ(b: &Group, n: &Group) -> Option<String> {
    (b.clocks.len() != 1 || b.clocks != n.clocks).then(|| {
        format!(
            "clocks differ (BASE: {}, NEW: {})",
            clocks_label(&b.clocks),
            clocks_label(&n.clocks)
        )
    })
}

/// Compares `new` against `base`.
pub fn compare(base: &Report, new: &Report, threshold_pct: f64) -> Comparison {
    let measured = |r: &Report| -> Vec<(String, Group)> {
        r.groups
            .iter()
            .filter(|g| g.stats.samples > 0)
            .map(|g| (g.name(), g.clone()))
            .collect()
    };
    let (b, n) = (measured(base), measured(new));
    let mut rows = Vec::new();
    let mut only_base = Vec::new();
    for (name, bg) in &b {
        match n.iter().find(|(x, _)| x == name) {
            Some((_, ng)) => {
                let not_comparable = clocks_differ(bg, ng);
                let changes = if not_comparable.is_some() {
                    Vec::new()
                } else {
                    Quantile::ALL
                        .into_iter()
                        .map(|q| change(q, &bg.stats.at(q), &ng.stats.at(q), threshold_pct))
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
            None => only_base.push(name.clone()),
        }
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
        threshold_pct,
        rows,
        only_base,
        only_new,
        notes,
    }
}

/// Human-readable table of a comparison (µs).
pub fn render_text(c: &Comparison, base_name: &str, new_name: &str) -> String {
    let mut o = String::new();
    for n in &c.notes {
        o.push_str(&format!("{n}\n"));
    }
    o.push_str(&format!(
        "Comparing {new_name} against {base_name}; latencies in µs, regression = a percentile up by more than {}%\n\n",
        c.threshold_pct
    ));
    for r in &c.rows {
        if let Some(why) = &r.not_comparable {
            o.push_str(&format!("{}  not comparable: {why}\n", r.name));
            continue;
        }
        o.push_str(&format!(
            "{}{}\n",
            r.name,
            if r.regressed() { "  REGRESSION" } else { "" }
        ));
        for ch in &r.changes {
            let pct = match ch.change_pct {
                Some(p) => format!("{p:+.1}%"),
                None => "n/a".to_string(),
            };
            let judged = match (&ch.not_judged, ch.regression) {
                (Some(why), _) => format!("  ({why})"),
                (None, true) => "  <- regression".to_string(),
                (None, false) => String::new(),
            };
            o.push_str(&format!(
                "  {:<7} {:>14} -> {:>14}  {:>8}{judged}\n",
                ch.metric,
                us_opt(ch.base_ns),
                us_opt(ch.new_ns),
                pct,
            ));
        }
        o.push_str(&format!(
            "  {:<7} {:>14} -> {:>14}  (not judged)\n",
            "max",
            us(r.max_ns.0),
            us(r.max_ns.1)
        ));
        let sp = |v: Option<u64>| v.map_or("1 rep".to_string(), us);
        o.push_str(&format!(
            "  p99.99 spread between repetitions: {} -> {}\n",
            sp(r.spread_p9999_ns.0),
            sp(r.spread_p9999_ns.1)
        ));
    }
    for x in &c.only_base {
        o.push_str(&format!("{x}: only in {base_name}\n"));
    }
    for x in &c.only_new {
        o.push_str(&format!("{x}: only in {new_name}\n"));
    }
    let n = c.rows.iter().filter(|r| r.regressed()).count();
    o.push_str(&format!(
        "\n{n} of {} row(s) regressed beyond {}%\n",
        c.rows.len(),
        c.threshold_pct
    ));
    o
}
