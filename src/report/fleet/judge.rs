//! A layout judged across hosts: "vcpu0 beat share on 9 of 10 hosts".
//!
//! Each host has already judged its layouts ([`crate::report::verdict`]): per scenario ×
//! workload, each layout against the baseline (`share`, else `float`, else the worst ranked)
//! at the highest percentile that is not max-bound, significant only when the difference is
//! larger than the spread of that percentile between the host's repetitions. The fleet does not
//! judge again on pooled numbers; it counts those judgements, host by host:
//! - **won**: significantly lower on the host (or the baseline's guest did not survive there);
//! - **lost**: significantly higher (or the layout's guest did not survive there);
//! - **no significant difference**: within the host's spread;
//! - **not judged**: one repetition, a value in the overflow, clocks differ, every percentile
//!   max-bound: the host could not judge;
//! - **not comparable**: either layout is placed on the host otherwise than on most hosts;
//! - **not run**: the host did not run one of them, or this scenario × workload.
//!
//! "on 9 of 10 hosts" counts the hosts that ran both comparably (won, lost, no significant
//! difference, not judged); the sentence names every host that did not win.

use serde::{Deserialize, Serialize};

use super::compat::names;
use super::{FleetHost, FleetReport};
use crate::config::WorkloadKind;
use crate::histo::Quantile;
use crate::report::failures::causes_text;
use crate::report::verdict::{Comparison, Significance, Verdict};

/// Host names listed per clause before "and N more".
const LISTED: usize = 10;

/// What one host's verdict says of a layout against its baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Significantly better, or the baseline's guest did not survive.
    Won,
    /// Significantly worse, or the layout's guest did not survive.
    Lost,
    /// Within the host's spread between repetitions.
    NoDifference,
    /// The host could not judge.
    NotJudged,
    /// A layout is placed otherwise on the host than on most hosts.
    NotComparable,
    /// The host did not run both.
    NotRun,
}

/// One host's part of a judgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostOutcome {
    /// The host.
    pub host: String,
    /// What its verdict says.
    pub outcome: Outcome,
    /// The percentile its verdict used, when it judged.
    pub percentile: Option<Quantile>,
    /// Why, for every outcome but won, lost and no difference by significance.
    pub why: Option<String>,
}

/// One layout against its baseline in one scenario × workload, across hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judgement {
    /// The scenario.
    pub scenario: String,
    /// The workload.
    pub workload: WorkloadKind,
    /// The layout judged.
    pub layout: String,
    /// The baseline it was judged against.
    pub against: String,
    /// Every merged host, in label order.
    pub hosts: Vec<HostOutcome>,
    /// Hosts where it won.
    pub won: usize,
    /// Hosts that ran both comparably (won, lost, no difference, not judged).
    pub of: usize,
    /// The sentence.
    pub statement: String,
}

fn outcome_of(c: &Comparison) -> (Outcome, Option<String>) {
    match c.significance {
        Significance::Significant => match (c.to_ns, c.from_ns) {
            (Some(t), Some(f)) if t < f => (Outcome::Won, None),
            _ => (Outcome::Lost, None),
        },
        Significance::NotSignificant => (Outcome::NoDifference, None),
        Significance::Unqualified => (
            Outcome::NotJudged,
            Some(if c.to_ns.is_none() || c.from_ns.is_none() {
                "a value in the histogram's overflow".into()
            } else {
                "fewer than 2 repetitions: no spread to judge by".into()
            }),
        ),
    }
}

/// What `v`, the host's verdict, says of `layout` against `against` when it has no comparison
/// of the two.
fn without_comparison(v: &Verdict, layout: &str, against: &str) -> (Outcome, Option<String>) {
    let failed = |l: &str| v.failed.iter().find(|f| f.arm() == l);
    match (failed(layout), failed(against)) {
        (Some(f), None) => (
            Outcome::Lost,
            Some(format!(
                "its guest did not survive ({})",
                causes_text(&f.causes)
            )),
        ),
        (None, Some(f)) => (
            Outcome::Won,
            Some(format!(
                "{against}'s guest did not survive ({})",
                causes_text(&f.causes)
            )),
        ),
        (Some(_), Some(_)) => (Outcome::NotJudged, Some("both failed".into())),
        (None, None) => (
            Outcome::NotJudged,
            Some(match (&v.not_comparable, v.percentile) {
                (Some(why), _) => why.clone(),
                (None, None) => "every percentile max-bound or nothing measured".into(),
                (None, Some(_)) => format!("its verdict did not compare {layout} with {against}"),
            }),
        ),
    }
}

fn host_outcome(
    r: &FleetReport,
    h: &FleetHost,
    (scenario, workload): (&str, WorkloadKind),
    (layout, against): (&str, &str),
) -> HostOutcome {
    let mut percentile = None;
    let (outcome, why) = match h.verdict(scenario, workload) {
        None => (
            Outcome::NotRun,
            Some(format!("did not run {scenario} × {workload}")),
        ),
        Some(_) if h.layout(layout).is_none() || h.layout(against).is_none() => (
            Outcome::NotRun,
            Some(format!(
                "did not run {}",
                if h.layout(layout).is_none() {
                    layout
                } else {
                    against
                }
            )),
        ),
        Some(_) if !r.placed_as_fleet(h, layout) || !r.placed_as_fleet(h, against) => (
            Outcome::NotComparable,
            Some(format!(
                "{} placed otherwise than on most hosts",
                if r.placed_as_fleet(h, layout) {
                    against
                } else {
                    layout
                }
            )),
        ),
        Some(v) => {
            percentile = v.percentile;
            match v
                .comparisons
                .iter()
                .find(|c| c.arm() == layout && c.against_arm() == against)
            {
                Some(c) => outcome_of(c),
                None => without_comparison(v, layout, against),
            }
        }
    };
    HostOutcome {
        host: h.label.clone(),
        outcome,
        percentile,
        why,
    }
}

/// `at p99.99`, or `at p99.99 (p99.9 on lab2)` when hosts ranked at different percentiles.
fn percentile_clause(hosts: &[HostOutcome]) -> String {
    let judged: Vec<&HostOutcome> = hosts
        .iter()
        .filter(|h| h.percentile.is_some() && h.outcome != Outcome::NotJudged)
        .collect();
    let mut qs: Vec<(Quantile, Vec<String>)> = Vec::new();
    for h in &judged {
        let q = h.percentile.expect("filtered");
        match qs.iter_mut().find(|(x, _)| *x == q) {
            Some(e) => e.1.push(h.host.clone()),
            None => qs.push((q, vec![h.host.clone()])),
        }
    }
    qs.sort_by_key(|(_, hs)| std::cmp::Reverse(hs.len()));
    match qs.split_first() {
        None => String::new(),
        Some(((q, _), [])) => format!(" at {q}"),
        Some(((q, _), rest)) => format!(
            " at {q} ({})",
            rest.iter()
                .map(|(q, hs)| format!("{q} on {}", names(hs, LISTED)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn statement(j: &Judgement) -> String {
    // The hosts of one outcome, those with the same reason together: `a, b (why); c`.
    let list = |o: Outcome| -> Vec<String> {
        let mut by_why: Vec<(Option<&str>, Vec<String>)> = Vec::new();
        for h in j.hosts.iter().filter(|h| h.outcome == o) {
            let why = match o {
                Outcome::Lost | Outcome::Won | Outcome::NotJudged => h.why.as_deref(),
                _ => None,
            };
            match by_why.iter_mut().find(|(w, _)| *w == why) {
                Some(e) => e.1.push(h.host.clone()),
                None => by_why.push((why, vec![h.host.clone()])),
            }
        }
        by_why
            .into_iter()
            .map(|(why, hs)| match why {
                Some(w) => format!("{} ({w})", names(&hs, LISTED)),
                None => names(&hs, LISTED),
            })
            .collect()
    };
    let mut s = format!(
        "{} × {}: {} beat {} on {} of {} host(s){} (each host's own verdict: a difference beyond its spread between repetitions)",
        j.scenario,
        j.workload,
        j.layout,
        j.against,
        j.won,
        j.of,
        percentile_clause(&j.hosts)
    );
    for (o, what) in [
        (Outcome::Lost, "lost on"),
        (Outcome::NoDifference, "no significant difference on"),
        (Outcome::NotJudged, "not judged on"),
        (Outcome::NotComparable, "not comparable on"),
        (Outcome::NotRun, "not run on"),
    ] {
        let hs = list(o);
        if !hs.is_empty() {
            s.push_str(&format!("; {what} {}", hs.join("; ")));
        }
    }
    s
}

/// Every layout against its baseline, per (scenario, workload), for every pair any host's
/// verdict compared.
pub fn judge(r: &FleetReport) -> Vec<Judgement> {
    let mut out = Vec::new();
    for (scenario, workload) in &r.cells {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for h in &r.hosts {
            for c in h
                .verdict(scenario, *workload)
                .map_or(&[][..], |v| &v.comparisons)
            {
                let p = (c.arm(), c.against_arm());
                if !pairs.contains(&p) {
                    pairs.push(p);
                }
            }
        }
        for (layout, against) in pairs {
            let hosts: Vec<HostOutcome> = r
                .hosts
                .iter()
                .map(|h| host_outcome(r, h, (scenario, *workload), (&layout, &against)))
                .collect();
            let count = |o: Outcome| hosts.iter().filter(|h| h.outcome == o).count();
            let mut j = Judgement {
                scenario: scenario.clone(),
                workload: *workload,
                won: count(Outcome::Won),
                of: hosts.len() - count(Outcome::NotComparable) - count(Outcome::NotRun),
                layout,
                against,
                hosts,
                statement: String::new(),
            };
            j.statement = statement(&j);
            out.push(j);
        }
    }
    out
}

#[cfg(test)]
#[path = "judge_tests.rs"]
mod tests;
