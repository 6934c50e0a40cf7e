//! The judgement across hosts on hand-made hosts: each host's own verdict is counted, the
//! hosts that did not win are named with why, and hosts that placed a layout otherwise or did
//! not run it are left out of "of N".

use super::*;
use crate::config::LayoutKind;
use crate::report::budget::{BudgetStatus, BudgetVerdict};
use crate::report::failures::{CauseCount, FailedLayout};
use crate::report::fleet::{FleetHost, HostGroup, HostLayout, LabelSource, RunCounts, Source};
use crate::result::Stage;

const PLACED: &str = "vcpu0: rt: vcpu0 {0} other; emulator {0}; iothreads {0}";

fn cmp(layout: &str, to: Option<u64>, significance: Significance) -> Comparison {
    Comparison {
        layout: layout.into(),
        against: "share".into(),
        variant: None,
        against_variant: None,
        percentile: Quantile::P9999,
        from_ns: Some(100_000),
        to_ns: to,
        noise_ns: Some(5_000),
        significance,
        statement: String::new(),
    }
}

fn host(label: &str, comparisons: Vec<Comparison>) -> FleetHost {
    let layout = |name: &str, placement: &str| HostLayout {
        name: name.into(),
        kind: LayoutKind::Custom,
        placement: placement.into(),
        budget: BudgetStatus::NoBudget,
    };
    let group = |l: &str| HostGroup {
        layout: l.into(),
        scenario: "idle".into(),
        workload: WorkloadKind::Timer,
        ok_runs: 2,
        failed_runs: 0,
        failures: Vec::new(),
        clocks: Vec::new(),
        samples: 10,
        p999: Default::default(),
        max_ns: 1,
        p999_spread: None,
        unstable: None,
        budget: BudgetVerdict::default(),
    };
    FleetHost {
        label: label.into(),
        label_source: LabelSource::Given,
        dir: label.into(),
        source: Source::ReportJson,
        run_id: "r".into(),
        facts: None,
        checks: Default::default(),
        accels: Vec::new(),
        guest_preempt_rt: None,
        runs: RunCounts::default(),
        skipped: Vec::new(),
        budgets: Default::default(),
        layouts: vec![layout("share", "share"), layout("vcpu0", PLACED)],
        groups: vec![group("share"), group("vcpu0")],
        verdicts: vec![Verdict {
            scenario: "idle".into(),
            workload: WorkloadKind::Timer,
            percentile: Some(Quantile::P9999),
            not_comparable: None,
            ranking: Vec::new(),
            no_data: Vec::new(),
            failed: Vec::new(),
            comparisons,
            statement: String::new(),
        }],
        reported_failed: None,
    }
}

/// A host whose verdict judged vcpu0 at `to_ns` against share's 100 µs.
fn vs_share(label: &str, to_ns: u64, significance: Significance) -> FleetHost {
    host(label, vec![cmp("vcpu0", Some(to_ns), significance)])
}

fn judged(hosts: Vec<FleetHost>) -> Judgement {
    let r = FleetReport::new(hosts, Vec::new());
    assert_eq!(r.judgements.len(), 1, "{:?}", r.judgements);
    r.judgements[0].clone()
}

#[test]
fn each_hosts_own_significance_is_counted_and_the_others_named() {
    let j = judged(vec![
        vs_share("a", 20_000, Significance::Significant),
        vs_share("b", 30_000, Significance::Significant),
        vs_share("c", 98_000, Significance::NotSignificant),
        vs_share("d", 150_000, Significance::Significant),
    ]);
    assert_eq!((j.won, j.of), (2, 4));
    assert_eq!(
        j.statement,
        "idle × timer: vcpu0 beat share on 2 of 4 host(s) at p99.99 (each host's own verdict: a difference beyond its spread between repetitions); lost on d; no significant difference on c"
    );
    let outcomes: Vec<Outcome> = j.hosts.iter().map(|h| h.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Won,
            Outcome::Won,
            Outcome::NoDifference,
            Outcome::Lost
        ]
    );
}

#[test]
fn hosts_that_placed_it_otherwise_or_did_not_run_it_are_not_counted() {
    let mut other = vs_share("c", 20_000, Significance::Significant);
    other.layouts[1].placement = "vcpu0: rt: vcpu0 {0} other; emulator {1}; iothreads {1}".into();
    let mut without = host("d", Vec::new());
    without.layouts.truncate(1);
    without.groups.truncate(1);
    let mut one_rep = vs_share("e", 20_000, Significance::Unqualified);
    one_rep.verdicts[0].comparisons[0].noise_ns = None;
    let j = judged(vec![
        vs_share("a", 20_000, Significance::Significant),
        vs_share("b", 20_000, Significance::Significant),
        other,
        without,
        one_rep,
    ]);
    assert_eq!((j.won, j.of), (2, 3));
    assert!(
        j.statement.ends_with(
            "; not judged on e (fewer than 2 repetitions: no spread to judge by); not comparable on c; not run on d"
        ),
        "{}",
        j.statement
    );
    assert_eq!(
        j.hosts[2].why.as_deref(),
        Some("vcpu0 placed otherwise than on most hosts")
    );
}

#[test]
fn a_layout_whose_guest_died_lost_and_the_baselines_death_is_a_win() {
    let died = |layout: &str| FailedLayout {
        rank: Some(2),
        layout: layout.into(),
        layout_kind: LayoutKind::Custom,
        variant: None,
        failed: 2,
        runs: 2,
        causes: vec![CauseCount {
            cause: "guest kernel panic during boot".into(),
            stage: Some(Stage::Boot),
            guest: true,
            runs: vec!["x.r1".into(), "x.r2".into()],
        }],
        statement: String::new(),
    };
    let mut lost = host("b", Vec::new());
    lost.verdicts[0].failed = vec![died("vcpu0")];
    let mut won = host("c", Vec::new());
    won.verdicts[0].failed = vec![died("share")];
    let j = judged(vec![
        vs_share("a", 20_000, Significance::Significant),
        lost,
        won,
    ]);
    assert_eq!((j.won, j.of), (2, 3));
    assert!(
        j.statement
            .contains("; lost on b (its guest did not survive (guest kernel panic during boot))"),
        "{}",
        j.statement
    );
    assert_eq!(j.hosts[2].outcome, Outcome::Won);
}

#[test]
fn different_percentiles_are_named() {
    let mut b = vs_share("b", 20_000, Significance::Significant);
    b.verdicts[0].percentile = Some(Quantile::P999);
    let j = judged(vec![
        vs_share("a", 20_000, Significance::Significant),
        vs_share("c", 20_000, Significance::Significant),
        b,
    ]);
    assert!(
        j.statement
            .contains("on 3 of 3 host(s) at p99.99 (p99.9 on b)"),
        "{}",
        j.statement
    );
}
