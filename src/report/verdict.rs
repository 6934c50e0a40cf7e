//! Verdicts: per (scenario, workload) a ranking of the layouts by tail latency with a sentence,
//! backed by the numbers, on whether emulator isolation helped. Budgets are in
//! [`super::budget`].
//!
//! The significance rule is deliberately simple and stated in every sentence: a difference in
//! p99.99 between two layouts counts only when it is larger than the spread (max − min) of
//! p99.99 between the repetitions of either layout. With a single repetition there is no spread:
//! the difference is reported as unqualified, never as a win.

use serde::{Deserialize, Serialize};

use super::{us, us_opt, Group, Range};
use crate::config::{LayoutKind, ScenarioKind, WorkloadKind};

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
    /// p99.99, ns (`None`: overflow).
    pub p9999_ns: Option<u64>,
    /// Largest sample, ns.
    pub max_ns: u64,
    /// Spread of p99.99 between repetitions.
    pub spread_p9999: Option<Range>,
    /// Repetitions measured.
    pub repetitions: usize,
}

/// One layout's p99.99 against a baseline layout's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// The layout.
    pub layout: String,
    /// The baseline it is compared with.
    pub against: String,
    /// Baseline p99.99, ns.
    pub from_ns: Option<u64>,
    /// This layout's p99.99, ns.
    pub to_ns: Option<u64>,
    /// The larger spread of p99.99 between repetitions of the two, ns.
    pub noise_ns: Option<u64>,
    /// The judgement.
    pub significance: Significance,
    /// The sentence.
    pub statement: String,
}

/// Ranking and statements for one (scenario, workload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The scenario the runs were measured under.
    pub scenario: ScenarioKind,
    /// The workload measured on the RT vCPUs.
    pub workload: WorkloadKind,
    /// Layouts with samples, lowest p99.99 first.
    pub ranking: Vec<Ranked>,
    /// Layouts with no measured run.
    pub no_data: Vec<String>,
    /// Each layout against the baseline (`share`, else `float`, else the worst-ranked layout).
    pub comparisons: Vec<Comparison>,
    /// The whole verdict in one sentence.
    pub statement: String,
}

fn compare(g: &Group, base: &Group) -> Comparison {
    let (from, to) = (base.stats.p9999_ns.value_ns, g.stats.p9999_ns.value_ns);
    let noise = match (base.spread.p9999, g.spread.p9999) {
        (Some(a), Some(b)) => Some(a.width_ns().max(b.width_ns())),
        _ => None,
    };
    let (l, b) = (&g.layout, &base.layout);
    let (significance, statement) = match (from, to, noise) {
        (Some(f), Some(t), Some(n)) if f.abs_diff(t) > n => (
            Significance::Significant,
            format!(
                "{l} {} p99.99 from {} µs to {} µs against {b} (beyond the spread between repetitions, {} µs)",
                if t < f { "cut" } else { "raised" },
                us(f),
                us(t),
                us(n)
            ),
        ),
        (Some(f), Some(t), Some(n)) => (
            Significance::NotSignificant,
            format!(
                "{l} against {b}: no significant difference (p99.99 {} µs vs {} µs, within the spread between repetitions, {} µs)",
                us(t),
                us(f),
                us(n)
            ),
        ),
        (Some(f), Some(t), None) => {
            let why = if base.spread.repetitions < 2 || g.spread.repetitions < 2 {
                "fewer than 2 repetitions, no spread to judge significance: run with repetitions ≥ 2"
            } else {
                "no spread between repetitions to judge significance: a repetition's p99.99 is in overflow or it has no samples"
            };
            (
                Significance::Unqualified,
                format!(
                    "{l} against {b}: p99.99 {} µs vs {} µs, unqualified ({why})",
                    us(t),
                    us(f)
                ),
            )
        }
        _ => (
            Significance::Unqualified,
            format!(
                "{l} against {b}: p99.99 {} µs vs {} µs, unqualified (a value lies in the histogram's overflow)",
                us_opt(to),
                us_opt(from)
            ),
        ),
    };
    Comparison {
        layout: l.clone(),
        against: b.clone(),
        from_ns: from,
        to_ns: to,
        noise_ns: noise,
        significance,
        statement,
    }
}

/// Ranks and compares the layouts of every (scenario, workload), in the groups' order.
pub fn verdicts(groups: &[Group]) -> Vec<Verdict> {
    let mut keys: Vec<(ScenarioKind, WorkloadKind)> = Vec::new();
    for g in groups {
        if !keys.contains(&(g.scenario, g.workload)) {
            keys.push((g.scenario, g.workload));
        }
    }
    keys.sort();
    keys.into_iter()
        .map(|(s, w)| {
            let gs: Vec<&Group> = groups
                .iter()
                .filter(|g| g.scenario == s && g.workload == w)
                .collect();
            verdict_of(s, w, &gs)
        })
        .collect()
}

fn verdict_of(scenario: ScenarioKind, workload: WorkloadKind, gs: &[&Group]) -> Verdict {
    let mut measured: Vec<&Group> = gs.iter().copied().filter(|g| g.stats.samples > 0).collect();
    let no_data = gs
        .iter()
        .filter(|g| g.stats.samples == 0)
        .map(|g| g.layout.clone())
        .collect();
    // Lowest p99.99 first; an overflowed p99.99 ranks last; ties by max, then name.
    measured.sort_by(|a, b| {
        let key = |g: &Group| {
            let v = g.stats.p9999_ns.value_ns;
            (v.is_none(), v, g.stats.max_ns)
        };
        key(a).cmp(&key(b)).then_with(|| a.layout.cmp(&b.layout))
    });
    let ranking: Vec<Ranked> = measured
        .iter()
        .enumerate()
        .map(|(i, g)| Ranked {
            rank: i + 1,
            layout: g.layout.clone(),
            layout_kind: g.layout_kind,
            p9999_ns: g.stats.p9999_ns.value_ns,
            max_ns: g.stats.max_ns,
            spread_p9999: g.spread.p9999,
            repetitions: g.spread.repetitions,
        })
        .collect();
    let base = gs
        .iter()
        .copied()
        .filter(|g| g.stats.samples > 0)
        .find(|g| g.layout_kind == LayoutKind::Share)
        .or_else(|| {
            gs.iter()
                .copied()
                .filter(|g| g.stats.samples > 0)
                .find(|g| g.layout_kind == LayoutKind::Float)
        })
        .or_else(|| measured.last().copied());
    let comparisons: Vec<Comparison> = match base {
        Some(b) => measured
            .iter()
            .filter(|g| g.layout != b.layout)
            .map(|g| compare(g, b))
            .collect(),
        None => Vec::new(),
    };
    let head = format!("{workload} under {scenario}");
    let statement = match (ranking.first(), comparisons.is_empty()) {
        (None, _) => format!("{head}: no layout measured"),
        (Some(r), true) => format!(
            "{head}: only {} measured (p99.99 {} µs); nothing to compare against",
            r.layout,
            us_opt(r.p9999_ns)
        ),
        (Some(_), false)
            if comparisons
                .iter()
                .all(|c| c.significance == Significance::NotSignificant) =>
        {
            format!(
                "{head}: unchanged across layouts (no difference in p99.99 beyond the spread between repetitions); {}",
                join_statements(&comparisons)
            )
        }
        (Some(r), false) => format!(
            "{head}: lowest p99.99 {} ({} µs); {}",
            r.layout,
            us_opt(r.p9999_ns),
            join_statements(&comparisons)
        ),
    };
    Verdict {
        scenario,
        workload,
        ranking,
        no_data,
        comparisons,
        statement,
    }
}

fn join_statements(c: &[Comparison]) -> String {
    c.iter()
        .map(|c| c.statement.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}
