//! Verdicts: per (scenario, workload) a ranking of the layouts by tail latency with a
//! sentence, backed by the numbers, on whether emulator isolation helped. Budgets are in
//! [`super::budget`]; an unstable layout ([`super::stability`]) is named beside the
//! significance of its comparison.
//!
//! Which percentile: the highest shown percentile that is not max-bound in any measured layout
//! of the (scenario, workload) — p99.99 with enough samples, p99.9 or lower with fewer, none
//! when every one has fewer than [`crate::histo::MAX_BOUND_BEYOND`] samples beyond it. A verdict
//! never rests on a percentile the few largest samples decide; it names the one it used.
//!
//! Which runs: only runs measured with the same clock source. When the layouts of a (scenario,
//! workload), or the repetitions of one layout, used different clocks (TSC and
//! `CLOCK_MONOTONIC`), nothing is ranked: the verdict says "not comparable: clocks differ".
//!
//! The significance rule is deliberately simple and stated in every sentence: a difference at
//! the chosen percentile between two layouts counts only when it is larger than the spread
//! (max − min) of that percentile between the repetitions of either layout. With a single
//! repetition there is no spread: the difference is reported as unqualified, never as a win.
//!
//! Variants: with `[[variants]]` the ranked unit is the arm, a layout × variant, named
//! `layout/variant` ([`super::arm_name`]; the layout alone without variants), ranked by the same
//! percentile, spread and stability rules as layouts. Each arm is compared against the base
//! layout (below) of its own variant, and against its own layout's baseline variant (the
//! config's first `[[variants]]`): "on vcpu0, mlock against base: p99.99 −12.0% (…, beyond the
//! spread between repetitions, …)" says what a variant buys on a layout, with the same
//! significance rule.
//!
//! Which layouts: a layout none of whose runs measured is not dropped. It is ranked last, after
//! every measured layout, in [`Verdict::failed`] (the ranking keeps only layouts with a value
//! to rank by), and the sentence says so first, with the count and the cause: "custom
//! 'colocated': the guest did not survive (2 of 2 runs: guest kernel panic during boot — timer
//! check failed), ranked last". A layout that failed only some of its runs is ranked by the
//! runs that measured and flagged unstable beside them ([`super::failures`]).

use serde::{Deserialize, Serialize};

use super::failures::{self, FailedLayout};
use super::stability::Stability;
use super::{us_opt, Group, Range};
use crate::config::{LayoutKind, WorkloadKind};
use crate::histo::Quantile;
use crate::wire::ClockSource;

/// Whether a difference is larger than the noise between repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Significance {
    /// Larger than the spread between repetitions of both layouts.
    Significant,
    /// Within the spread: no significant difference.
    NotSignificant,
    /// Fewer than 2 repetitions (no spread), or a value in the overflow: cannot be judged.
    Unqualified,
}

/// One layout in a ranking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranked {
    /// 1 = lowest tail latency.
    pub rank: usize,
    /// Layout name.
    pub layout: String,
    /// Layout rule.
    pub layout_kind: LayoutKind,
    /// The tuning variant, `None` when the config has no variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The value at the verdict's percentile, ns (`None`: overflow).
    pub value_ns: Option<u64>,
    /// Largest sample, ns.
    pub max_ns: u64,
    /// Spread of the verdict's percentile between repetitions.
    pub spread: Option<Range>,
    /// Repetitions measured.
    pub repetitions: usize,
    /// Stability of the layout's maxima across repetitions.
    pub stability: Stability,
    /// Runs of the layout that failed (not in its numbers): more than 0 flags the layout
    /// unstable.
    #[serde(default)]
    pub failed_runs: usize,
}

impl Ranked {
    /// The arm, as every output names it ([`super::arm_name`]).
    pub fn arm(&self) -> String {
        super::arm_name(&self.layout, self.variant.as_deref())
    }
}

/// One arm's tail against a baseline's, at the verdict's percentile: another layout of the
/// same variant (or without variants), or the same layout's baseline variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// The layout.
    pub layout: String,
    /// The layout of the baseline it is compared with (the same layout when variants are
    /// compared).
    pub against: String,
    /// The tuning variant, `None` when the config has no variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The baseline's variant: the same as `variant` when layouts are compared, the baseline
    /// variant when variants are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub against_variant: Option<String>,
    /// The percentile compared.
    pub percentile: Quantile,
    /// Baseline value, ns.
    pub from_ns: Option<u64>,
    /// This layout's value, ns.
    pub to_ns: Option<u64>,
    /// The larger spread of the percentile between repetitions of the two, ns.
    pub noise_ns: Option<u64>,
    /// The judgement.
    pub significance: Significance,
    /// The sentence.
    pub statement: String,
}

impl Comparison {
    /// The arm compared ([`super::arm_name`]).
    pub fn arm(&self) -> String {
        super::arm_name(&self.layout, self.variant.as_deref())
    }

    /// The arm it is compared against.
    pub fn against_arm(&self) -> String {
        super::arm_name(&self.against, self.against_variant.as_deref())
    }
}

/// Ranking and statements for one (scenario, workload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The scenario the runs were measured under.
    pub scenario: String,
    /// The workload measured on the RT vCPUs.
    pub workload: WorkloadKind,
    /// The percentile the ranking and comparisons use: the highest one not max-bound in any
    /// measured layout (`None`: every one is, or nothing can be ranked).
    pub percentile: Option<Quantile>,
    /// Why the layouts were not ranked although measured (clocks differ), else `None`.
    pub not_comparable: Option<String>,
    /// Layouts with samples, lowest value at `percentile` first (empty when not comparable or
    /// no percentile qualifies).
    pub ranking: Vec<Ranked>,
    /// Arms with no sample that are not in `failed` (runs that measured nothing), by
    /// [`super::arm_name`].
    pub no_data: Vec<String>,
    /// Layouts none of whose runs measured, each with the count and cause of its failures:
    /// ranked after every layout of `ranking`, tied among themselves, in layout order.
    #[serde(default)]
    pub failed: Vec<FailedLayout>,
    /// Each layout against the baseline (`share`, else `float`, else the worst-ranked layout)
    /// of the same variant; then, with variants, each arm against its layout's baseline
    /// variant.
    pub comparisons: Vec<Comparison>,
    /// The whole verdict in one sentence.
    pub statement: String,
}

/// `tsc`, `monotonic`, `monotonic+tsc` or `unknown`: the clock sources of a group.
pub fn clocks_label(c: &[ClockSource]) -> String {
    if c.is_empty() {
        return "unknown".to_string();
    }
    c.iter()
        .map(|s| clock_name(*s))
        .collect::<Vec<_>>()
        .join("+")
}

/// `tsc` or `monotonic`.
pub fn clock_name(c: ClockSource) -> &'static str {
    match c {
        ClockSource::Tsc => "tsc",
        ClockSource::Monotonic => "monotonic",
    }
}

/// `None` when every group was measured with one and the same clock source, else the reason:
/// `clocks differ (share: tsc, vcpu0: monotonic)`.
pub fn clocks_differ(gs: &[&Group]) -> Option<String> {
    let first = gs.first()?;
    let same = gs
        .iter()
        .all(|g| g.clocks.len() == 1 && g.clocks == first.clocks);
    (!same).then(|| {
        let each: Vec<String> = gs
            .iter()
            .map(|g| format!("{}: {}", g.arm(), clocks_label(&g.clocks)))
            .collect();
        format!("clocks differ ({})", each.join(", "))
    })
}

/// The highest shown percentile that no group has max-bound.
pub fn judged_percentile(gs: &[&Group]) -> Option<Quantile> {
    Quantile::ALL
        .into_iter()
        .rev()
        .find(|&q| gs.iter().all(|g| !g.stats.at(q).max_bound))
}

/// Ranks and compares the arms of every (scenario, workload), in the groups' order;
/// `variants` is the variant axis, its baseline first (empty without variants).
pub fn verdicts(groups: &[Group], variants: &[String]) -> Vec<Verdict> {
    let mut keys: Vec<(String, WorkloadKind)> = Vec::new();
    for g in groups {
        if !keys
            .iter()
            .any(|(s, w)| *s == g.scenario && *w == g.workload)
        {
            keys.push((g.scenario.clone(), g.workload));
        }
    }
    keys.sort();
    keys.into_iter()
        .map(|(s, w)| {
            let gs: Vec<&Group> = groups
                .iter()
                .filter(|g| g.scenario == s && g.workload == w)
                .collect();
            verdict_of(s, w, &gs, variants)
        })
        .collect()
}

/// `; vcpu0 unstable across repetitions (…)` for every unstable layout, and `; vcpu0
/// unstable: 1 of 2 runs failed (…)` for every layout that failed some of its runs.
fn instability(measured: &[&Group]) -> String {
    measured
        .iter()
        .flat_map(|g| {
            let maxima = (g.stability.unstable == Some(true))
                .then(|| format!("; {} {}", g.arm(), g.stability.describe()));
            let failed = failures::partial(g).map(|p| format!("; {} unstable: {p}", g.arm()));
            maxima.into_iter().chain(failed)
        })
        .collect()
}

fn verdict_of(
    scenario: String,
    workload: WorkloadKind,
    gs: &[&Group],
    variants: &[String],
) -> Verdict {
    let mut measured: Vec<&Group> = gs.iter().copied().filter(|g| g.stats.samples > 0).collect();
    let mut failed: Vec<FailedLayout> = gs
        .iter()
        .filter(|g| failures::all_failed(g))
        .map(|g| FailedLayout::of(g))
        .collect();
    let no_data = gs
        .iter()
        .filter(|g| g.stats.samples == 0 && !failures::all_failed(g))
        .map(|g| g.arm())
        .collect();
    let head = format!("{workload} under {scenario}");
    // The failed layouts come first in the sentence: they are the strongest result.
    let lost = failures::clause(&failed).map_or(String::new(), |c| format!("{c}; "));
    let not_comparable = clocks_differ(&measured);
    let percentile = if not_comparable.is_some() {
        None
    } else {
        judged_percentile(&measured)
    };
    let unstable = instability(&measured);
    let mut verdict = Verdict {
        scenario,
        workload,
        percentile,
        not_comparable: not_comparable.clone(),
        ranking: Vec::new(),
        no_data,
        failed: Vec::new(),
        comparisons: Vec::new(),
        statement: String::new(),
    };
    if measured.is_empty() {
        verdict.statement = format!(
            "{head}: {lost}no {} measured",
            if variants.is_empty() { "layout" } else { "arm" }
        );
        verdict.failed = failed;
        return verdict;
    }
    if let Some(why) = not_comparable {
        verdict.statement = format!(
            "{head}: {lost}not comparable: {why}; runs measured with different clocks are never ranked{unstable}"
        );
        verdict.failed = failed;
        return verdict;
    }
    let Some(q) = percentile else {
        verdict.statement = format!(
            "{head}: {lost}not ranked: every percentile is max-bound (fewer than {} samples beyond it) in some layout, so the few largest samples would decide; measure longer{unstable}",
            crate::histo::MAX_BOUND_BEYOND
        );
        verdict.failed = failed;
        return verdict;
    };
    // Lowest value first; an overflowed value ranks last; ties by max, then name.
    measured.sort_by(|a, b| {
        let key = |g: &Group| {
            let v = g.stats.at(q).value_ns;
            (v.is_none(), v, g.stats.max_ns)
        };
        key(a).cmp(&key(b)).then_with(|| a.arm().cmp(&b.arm()))
    });
    verdict.ranking = measured
        .iter()
        .enumerate()
        .map(|(i, g)| Ranked {
            rank: i + 1,
            layout: g.layout.clone(),
            layout_kind: g.layout_kind,
            variant: g.variant.clone(),
            value_ns: g.stats.at(q).value_ns,
            max_ns: g.stats.max_ns,
            spread: g.spread.of(q),
            repetitions: g.spread.repetitions,
            stability: g.stability,
            failed_runs: g.failed_runs.len(),
        })
        .collect();
    for f in &mut failed {
        f.rank = Some(measured.len() + 1);
    }
    verdict.failed = failed;
    verdict.comparisons = compare::comparisons(gs, &measured, q, variants);
    let c = &verdict.comparisons;
    let first = &verdict.ranking[0];
    let unit = if variants.is_empty() { "layout" } else { "arm" };
    verdict.statement = if c.is_empty() && !lost.is_empty() {
        format!(
            "{head}: {lost}{} ranks first, the only {unit} measured ({q} {} µs){unstable}",
            first.arm(),
            us_opt(first.value_ns)
        )
    } else if c.is_empty() {
        format!(
            "{head}: only {} measured ({q} {} µs); nothing to compare against{unstable}",
            first.arm(),
            us_opt(first.value_ns)
        )
    } else if c
        .iter()
        .all(|c| c.significance == Significance::NotSignificant)
    {
        format!(
            "{head}: {lost}unchanged across {} (no difference in {q} beyond the spread between repetitions); {}{unstable}",
            if lost.is_empty() { format!("{unit}s") } else { format!("the measured {unit}s") },
            join_statements(c)
        )
    } else {
        format!(
            "{head}: {lost}lowest {q} {} ({} µs); {}{unstable}",
            first.arm(),
            us_opt(first.value_ns),
            join_statements(c)
        )
    };
    verdict
}

fn join_statements(c: &[Comparison]) -> String {
    c.iter()
        .map(|c| c.statement.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

#[path = "verdict_compare.rs"]
mod compare;

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
