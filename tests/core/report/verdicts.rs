//! Verdicts on the fixtures: backed by the spread, never on a max-bound percentile or too few samples, stability beside them, and never across clocks.

use super::*;

#[test]
fn verdicts_are_backed_by_the_spread() {
    let (_dir, r) = build_basic();
    let timer = r
        .verdicts
        .iter()
        .find(|v| v.scenario == "mgmt-poll" && v.workload == WorkloadKind::Timer)
        .unwrap();
    assert_eq!(timer.ranking[0].layout, "isolate");
    assert_eq!(timer.ranking.last().unwrap().layout, "share");
    let iso = timer
        .comparisons
        .iter()
        .find(|c| c.layout == "isolate")
        .unwrap();
    assert_eq!(iso.against, "share");
    assert_eq!(iso.significance, Significance::Significant);
    assert!(
        iso.statement.starts_with("isolate cut p99.99 from 1"),
        "{}",
        iso.statement
    );
    // busy-poll has the same distribution everywhere: no significant difference.
    let bp = r
        .verdicts
        .iter()
        .find(|v| v.scenario == "mgmt-poll" && v.workload == WorkloadKind::BusyPoll)
        .unwrap();
    assert!(
        bp.comparisons
            .iter()
            .all(|c| c.significance == Significance::NotSignificant),
        "{}",
        bp.statement
    );
    assert!(
        bp.statement.contains("unchanged across layouts"),
        "{}",
        bp.statement
    );
    // Budgets: share exceeds the timer budget under mgmt-poll, isolate holds it.
    let g = |l: &str, s: ScenarioKind| {
        r.groups
            .iter()
            .find(|g| {
                g.layout == l && g.scenario == s.as_str() && g.workload == WorkloadKind::Timer
            })
            .unwrap()
    };
    let share = g("share", ScenarioKind::MgmtPoll);
    assert_eq!(share.budget.status, BudgetStatus::Exceeded);
    let p = &share.budget.checks[0];
    assert_eq!(p.what, "p99.99");
    assert!(p.exceeded_by_ns().unwrap() > 60_000);
    assert_eq!(
        g("isolate", ScenarioKind::MgmtPoll).budget.status,
        BudgetStatus::Held
    );
    // Merged counts: 2 repetitions × 2 RT vCPUs × 50 000 samples.
    assert_eq!(share.stats.samples, 200_000);
    assert_eq!(share.per_vcpu.len(), 2);
    assert_eq!(share.spread.repetitions, 2);
    assert!(share.stats.min_ns <= share.stats.p50_ns.value_ns.unwrap());
    assert!(share.stats.p9999_ns.value_ns.unwrap() <= share.stats.max_ns);
    assert_eq!(share.top.len(), 10);
    assert!(share
        .top
        .windows(2)
        .all(|w| w[0].latency_ns >= w[1].latency_ns));
}

/// p99.99 of 10 000 samples has at most one sample beyond it: it is marked max-bound in every
/// output, the verdict ranks at the highest percentile that is not and says which, and
/// `compare` does not judge it.
#[test]
fn max_bound_percentiles_are_marked_and_never_judged() {
    let dir = copy_fixture("runs-tcg");
    let r = report::write_all(dir.path()).unwrap();
    let share = r.groups.iter().find(|g| g.layout == "share").unwrap();
    assert_eq!(share.stats.samples, 10_000);
    assert!(share.stats.p9999_ns.max_bound, "{:?}", share.stats.p9999_ns);
    assert!(share.stats.p9999_ns.samples_beyond < 10);
    assert!(!share.stats.p99_ns.max_bound);
    let v = &r.verdicts[0];
    let q = v
        .percentile
        .expect("a percentile with 10 samples beyond it");
    assert!(q < Quantile::P9999, "{q}");
    assert!(r.groups.iter().all(|g| !g.stats.at(q).max_bound));
    assert!(
        v.statement.contains(&format!("lowest {q} ")),
        "{}",
        v.statement
    );
    assert!(!v.statement.contains("p99.99"), "{}", v.statement);
    assert_eq!(v.comparisons[0].percentile, q);

    let md = read(&dir.path().join("report.md"));
    assert!(md.contains("† max-bound: fewer than 10 samples"), "{md}");
    let html = read(&dir.path().join("report.html"));
    assert!(
        html.contains("title=\"max-bound: "),
        "no marker in report.html"
    );
    assert!(
        html.contains("max-bound: fewer than 10 samples"),
        "no legend in report.html"
    );
    let junit = read(&dir.path().join("junit.xml"));
    assert!(
        junit.contains("<property name=\"max_bound\" value=\"p99.99\"/>"),
        "{junit}"
    );
    assert!(junit.contains(&format!(
        "<property name=\"verdict_percentile\" value=\"{q}\"/>"
    )));
    let json: serde_json::Value =
        serde_json::from_str(&read(&dir.path().join("report.json"))).unwrap();
    let g0 = &json["groups"][0]["stats"]["p9999_ns"];
    assert_eq!(g0["max_bound"], serde_json::Value::Bool(true), "{g0}");

    // A NEW whose p99.99 doubled: a change in the one or two largest samples, not judged.
    let mut new = r.clone();
    for g in &mut new.groups {
        g.stats.p9999_ns.value_ns = g.stats.p9999_ns.value_ns.map(|v| v * 2);
    }
    let c = compare::compare(&r, &new, &opts(10.0));
    assert!(
        !c.has_regression(),
        "{}",
        compare::render_text(&c, "b", "n")
    );
    let ch = c.rows[0]
        .changes
        .iter()
        .find(|c| c.metric == Quantile::P9999)
        .unwrap();
    assert!(!ch.regression);
    assert!(ch.not_judged.as_deref().unwrap().starts_with("max-bound"));
    assert!(compare::render_text(&c, "b", "n").contains("max-bound (BASE has"));
}

/// With few samples, no percentile may have 10 samples beyond it: nothing is ranked, and the
/// verdict says so instead of naming a winner.
#[test]
fn too_few_samples_rank_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let specs: Vec<fixtures::Spec> = fixtures::tcg_specs()
        .into_iter()
        .filter(|s| !s.failed)
        .map(|s| fixtures::Spec { samples: 8, ..s })
        .collect();
    let budget = "[budgets.timer]\npercentile = 99.99\npercentile_us = 1000\n";
    fixtures::write_dir(dir.path(), "few", &specs, budget).unwrap();
    let r = report::build(dir.path(), &mut |_| {}).unwrap();
    // A budget on a max-bound percentile is still checked, and says it is as strict as a max.
    let check = &r.groups[0].budget.checks[0];
    assert_eq!(check.max_bound_beyond, Some(0));
    assert!(
        check.describe().contains("p99.99 is max-bound"),
        "{}",
        check.describe()
    );
    let v = &r.verdicts[0];
    assert_eq!(v.percentile, None);
    assert!(v.ranking.is_empty());
    assert!(
        v.statement
            .contains("not ranked: every percentile is max-bound"),
        "{}",
        v.statement
    );
    // The tables still list every measured layout.
    assert_eq!(r.table_rows(v).len(), 2);
}

/// Rewrites runs of the committed basic set in `dir` with `f` applied to their specs.
pub(super) fn plant(
    dir: &Path,
    pick: impl Fn(&fixtures::Spec) -> bool,
    f: impl Fn(&mut fixtures::Spec),
) {
    for mut s in fixtures::basic_specs().into_iter().filter(|s| pick(s)) {
        f(&mut s);
        let rec = fixtures::record("fixture-basic", &s);
        std::fs::write(
            dir.join("runs").join(rec.file_name()),
            serde_json::to_string(&rec).unwrap(),
        )
        .unwrap();
    }
}

/// One repetition of vcpu0's idle timer with twice the tail: its max is above 1.1 × the other
/// repetition's, so 1 of 2 repetitions (half) is above: unstable, in every output.
#[test]
fn unstable_repetitions_are_reported_beside_the_verdict() {
    let dir = copy_fixture("runs-basic");
    plant(
        dir.path(),
        |s| {
            s.layout == "vcpu0"
                && s.scenario == ScenarioKind::Idle
                && s.workload == WorkloadKind::Timer
                && s.rep == 2
        },
        |s| s.tail_ns = (30_000, 40_000),
    );
    let r = report::write_all(dir.path()).unwrap();
    let g = |l: &str| {
        r.groups
            .iter()
            .find(|g| g.layout == l && g.scenario == "idle" && g.workload == WorkloadKind::Timer)
            .unwrap()
    };
    let vcpu0 = g("vcpu0");
    assert_eq!(
        vcpu0.stability.unstable,
        Some(true),
        "{:?}",
        vcpu0.stability
    );
    assert_eq!((vcpu0.stability.above, vcpu0.stability.repetitions), (1, 2));
    assert_eq!(g("share").stability.unstable, Some(false));
    let v = r
        .verdicts
        .iter()
        .find(|v| v.scenario == "idle" && v.workload == WorkloadKind::Timer)
        .unwrap();
    assert!(
        v.statement.contains(
            "vcpu0 unstable across repetitions (1 of 2 repetitions' max above 1.1 × the smallest"
        ),
        "{}",
        v.statement
    );
    assert_eq!(
        v.ranking
            .iter()
            .find(|x| x.layout == "vcpu0")
            .unwrap()
            .stability,
        vcpu0.stability
    );
    let md = read(&dir.path().join("report.md"));
    assert!(md.contains("| ⚠️ unstable (1 of 2) |"), "{md}");
    let html = read(&dir.path().join("report.html"));
    assert!(html.contains("<span class=\"bad\" title=\"unstable across repetitions"));
    let junit = read(&dir.path().join("junit.xml"));
    assert!(junit.contains("<property name=\"stability\" value=\"unstable\"/>"));
    let json: serde_json::Value =
        serde_json::from_str(&read(&dir.path().join("report.json"))).unwrap();
    let unstable: Vec<&serde_json::Value> = json["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["stability"]["unstable"] == serde_json::Value::Bool(true))
        .collect();
    assert_eq!(unstable.len(), 1);
    assert_eq!(unstable[0]["layout"], "vcpu0");
}

/// vcpu0's mgmt-poll timer runs measured with the TSC while the others used CLOCK_MONOTONIC:
/// nothing is ranked or compared across that, in the verdict and in `compare`; every run
/// table shows each run's clock.
#[test]
fn runs_measured_with_different_clocks_are_never_ranked_or_compared() {
    let dir = copy_fixture("runs-basic");
    let pick = |s: &fixtures::Spec| {
        s.layout == "vcpu0"
            && s.scenario == ScenarioKind::MgmtPoll
            && s.workload == WorkloadKind::Timer
    };
    plant(dir.path(), pick, |s| {
        s.clock = pinlat::wire::ClockSource::Tsc;
        // Far worse, too: still not a regression, since it cannot be compared.
        s.tail_ns = (400_000, 500_000);
    });
    let r = report::write_all(dir.path()).unwrap();
    let v = r
        .verdicts
        .iter()
        .find(|v| v.scenario == "mgmt-poll" && v.workload == WorkloadKind::Timer)
        .unwrap();
    assert!(v.ranking.is_empty() && v.comparisons.is_empty(), "{v:?}");
    assert_eq!(v.percentile, None);
    assert_eq!(
        v.not_comparable.as_deref(),
        Some("clocks differ (isolate: monotonic, share: monotonic, vcpu0: tsc)")
    );
    assert!(
        v.statement.starts_with("timer under mgmt-poll: not comparable: clocks differ (isolate: monotonic, share: monotonic, vcpu0: tsc)"),
        "{}",
        v.statement
    );
    // Other (scenario, workload)s are still ranked.
    assert!(r
        .verdicts
        .iter()
        .filter(|v| v.not_comparable.is_none())
        .all(|v| !v.ranking.is_empty()));

    let md = read(&dir.path().join("report.md"));
    assert!(
        md.contains("| vcpu0.mgmt-poll.timer.r1 | ok | tsc 2.000 GHz ±12 ppm | 100000 |"),
        "{md}"
    );
    assert!(
        md.contains("| share.mgmt-poll.timer.r1 | ok | monotonic | 100000 |"),
        "{md}"
    );
    // The table still lists the layouts, unranked.
    assert!(md.contains("| – | vcpu0 | 2 | 200000 |"), "{md}");
    let html = read(&dir.path().join("report.html"));
    assert!(
        html.contains("<td>vcpu0.mgmt-poll.timer.r2</td><td>ok</td><td>tsc 2.000 GHz ±12 ppm</td>")
    );
    let junit = read(&dir.path().join("junit.xml"));
    assert!(junit.contains(
        "<property name=\"clock.vcpu0.mgmt-poll.timer.r2\" value=\"tsc 2.000 GHz ±12 ppm\"/>"
    ));
    assert!(junit.contains("<property name=\"clock\" value=\"monotonic\"/>"));
    let json: serde_json::Value =
        serde_json::from_str(&read(&dir.path().join("report.json"))).unwrap();
    let run = json["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "vcpu0.mgmt-poll.timer.r1")
        .unwrap();
    assert_eq!(run["clocks"][0]["source"], "tsc");
    let hlog = read(&dir.path().join("vcpu0.mgmt-poll.timer.r1.hlog"));
    assert!(hlog.contains("#[Clock: tsc 2.000 GHz ±12 ppm]"), "{hlog}");

    // compare: the row says why it is not compared, and is no regression.
    let base = report::build(&root().join("tests/fixtures/runs-basic"), &mut |_| {}).unwrap();
    let c = compare::compare(&base, &r, &opts(10.0));
    let row = c
        .rows
        .iter()
        .find(|x| x.name == "vcpu0.mgmt-poll.timer")
        .unwrap();
    assert_eq!(
        row.not_comparable.as_deref(),
        Some("clocks differ (BASE: monotonic, NEW: tsc)")
    );
    assert!(!row.regressed());
    assert!(
        !c.has_regression(),
        "{}",
        compare::render_text(&c, "b", "n")
    );
    assert!(compare::render_text(&c, "b", "n").contains(
        "vcpu0.mgmt-poll.timer  not comparable: clocks differ (BASE: monotonic, NEW: tsc)"
    ));
}
