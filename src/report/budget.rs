//! Budgets per (layout, scenario, workload): the config's `[budgets.<workload>]` limits checked
//! against the merged samples of a group.
//!
//! A percentile budget is checked at the configured percentile, by rank, as every table shows
//! it. When that percentile is max-bound (fewer than [`crate::histo::MAX_BOUND_BEYOND`] samples
//! beyond it) the check still counts — over the limit means that more samples than the
//! percentile allows are over it, exactly what the budget forbids — but it says so: with that
//! few samples the budget is as strict as a budget on the max.
//!
//! A failed run is over any budget: a layout that kills its guest in one repetition of ten has
//! not held a latency budget, whatever the other nine measured. A group with a budget and a
//! failed run is exceeded, and says how many runs failed beside its checks.

use serde::{Deserialize, Serialize};

use super::{us, Group};
use crate::config::Budget as BudgetSpec;
use crate::histo::{percentile, ppm_of_percent};

/// Whether a budget held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BudgetStatus {
    /// Every check held.
    Held,
    /// At least one check was exceeded.
    Exceeded,
    /// No budget is set for the workload.
    #[default]
    NoBudget,
    /// A budget is set but no run measured, and none failed (runs that measured nothing).
    NoData,
}

impl BudgetStatus {
    /// Short label.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetStatus::Held => "held",
            BudgetStatus::Exceeded => "EXCEEDED",
            BudgetStatus::NoBudget => "no budget",
            BudgetStatus::NoData => "no data",
        }
    }
}

/// One check of a budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetCheck {
    /// `max` or a percentile label such as `p99.99`.
    pub what: String,
    /// The limit, ns.
    pub limit_ns: u64,
    /// The observed value, ns (`None`: in the overflow above the histogram's range, which
    /// exceeds any limit).
    pub observed_ns: Option<u64>,
    /// Whether the observed value is within the limit.
    pub held: bool,
    /// A percentile check whose percentile is max-bound: the samples beyond it, else `None`.
    #[serde(default)]
    pub max_bound_beyond: Option<u64>,
}

impl BudgetCheck {
    /// How far over the limit, ns (`None` when held or when the value is in the overflow).
    pub fn exceeded_by_ns(&self) -> Option<u64> {
        match self.observed_ns {
            Some(v) if v > self.limit_ns => Some(v - self.limit_ns),
            _ => None,
        }
    }

    /// `p99.99 120.000 µs > budget 100.000 µs by 20.000 µs`.
    pub fn describe(&self) -> String {
        let text = match (self.held, self.observed_ns) {
            (true, Some(v)) => format!(
                "{} {} µs ≤ budget {} µs (margin {} µs)",
                self.what,
                us(v),
                us(self.limit_ns),
                us(self.limit_ns - v)
            ),
            (_, Some(v)) => format!(
                "{} {} µs > budget {} µs by {} µs",
                self.what,
                us(v),
                us(self.limit_ns),
                us(v.saturating_sub(self.limit_ns))
            ),
            (_, None) => format!(
                "{} lies above the histogram's range (overflow) > budget {} µs",
                self.what,
                us(self.limit_ns)
            ),
        };
        match self.max_bound_beyond {
            Some(n) => format!(
                "{text} ({} is max-bound: {n} sample(s) beyond it, so the budget is as strict as one on the max)",
                self.what
            ),
            None => text,
        }
    }
}

/// The budget verdict of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetVerdict {
    /// The worst budget status of the layout's groups.
    pub status: BudgetStatus,
    /// Each check.
    pub checks: Vec<BudgetCheck>,
    /// Runs of the group that failed: each is over the budget (0 without a budget).
    #[serde(default)]
    pub failed_runs: usize,
    /// Runs of the group read, measured or failed (0 without a budget).
    #[serde(default)]
    pub runs: usize,
}

impl BudgetVerdict {
    /// `1 of 2 runs failed (a failed run is over any budget)`, when a run failed.
    pub fn failed_text(&self) -> Option<String> {
        (self.failed_runs > 0).then(|| {
            format!(
                "{} of {} runs failed (a failed run is over any budget)",
                self.failed_runs, self.runs
            )
        })
    }

    /// The checks that were exceeded, described.
    pub fn exceeded(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.held)
            .map(|c| c.describe())
            .collect()
    }

    /// Every check described, then the failed runs: what a reader needs to see why.
    pub fn describe(&self) -> Vec<String> {
        self.checks
            .iter()
            .map(BudgetCheck::describe)
            .chain(self.failed_text())
            .collect()
    }
}

/// `p99.99` for 99.99.
pub fn percentile_label(p: f64) -> String {
    format!("p{p}")
}

/// Checks a group against its workload's budget.
pub fn budget_verdict(g: &Group, budget: Option<&BudgetSpec>) -> BudgetVerdict {
    let Some(b) = budget else {
        return BudgetVerdict::default();
    };
    let failed_runs = g.failed_runs.len();
    let runs = g.ok_runs.len() + failed_runs;
    if g.stats.samples == 0 && failed_runs == 0 {
        return BudgetVerdict {
            status: BudgetStatus::NoData,
            checks: Vec::new(),
            failed_runs,
            runs,
        };
    }
    // Without samples there is nothing to check: the failed runs alone are over the budget.
    let measured = g.stats.samples > 0;
    let mut checks = Vec::new();
    if let Some((p, limit_ns)) = b.percentile.filter(|_| measured) {
        // The same value the report's tables show: by rank, bounded by the exact max.
        let at = percentile(
            &g.histogram.0,
            g.stats.overflow,
            g.stats.max_ns,
            ppm_of_percent(p),
        );
        checks.push(BudgetCheck {
            what: percentile_label(p),
            limit_ns,
            observed_ns: at.value_ns,
            held: at.value_ns.is_some_and(|v| v <= limit_ns),
            max_bound_beyond: at.max_bound.then_some(at.samples_beyond),
        });
    }
    if let Some(limit_ns) = b.max_ns.filter(|_| measured) {
        checks.push(BudgetCheck {
            what: "max".to_string(),
            limit_ns,
            observed_ns: Some(g.stats.max_ns),
            held: g.stats.max_ns <= limit_ns,
            max_bound_beyond: None,
        });
    }
    let status = if failed_runs == 0 && checks.iter().all(|c| c.held) {
        BudgetStatus::Held
    } else {
        BudgetStatus::Exceeded
    };
    BudgetVerdict {
        status,
        checks,
        failed_runs,
        runs,
    }
}

/// A layout's budget status over its groups: exceeded if any is, no data if any has none, held
/// if any held, else no budget.
pub fn layout_status<'a>(groups: impl Iterator<Item = &'a Group>) -> BudgetStatus {
    let s: Vec<BudgetStatus> = groups.map(|g| g.budget.status).collect();
    [
        BudgetStatus::Exceeded,
        BudgetStatus::NoData,
        BudgetStatus::Held,
    ]
    .into_iter()
    .find(|x| s.contains(x))
    .unwrap_or(BudgetStatus::NoBudget)
}
