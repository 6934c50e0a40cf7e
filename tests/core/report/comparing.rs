//! `pinlat compare` on the fixtures: a planted regression, a layout broken in NEW, growth below the floor, and the cause of a newly failing layout.

use super::*;

/// The names of the rows of `c` that regressed.
fn regressed(c: &compare::Comparison) -> Vec<&str> {
    c.rows
        .iter()
        .filter(|r| r.regressed())
        .map(|r| r.name.as_str())
        .collect()
}

#[test]
fn compare_flags_a_planted_regression() {
    let base = copy_fixture("runs-basic");
    let base_r = report::build(base.path(), &mut |_| {}).unwrap();
    // Same runs: no regression.
    let same = compare::compare(&base_r, &base_r, &opts(10.0));
    assert!(!same.has_regression());
    assert_eq!(same.rows.len(), 12);
    // Plant a worse timer tail for isolate under mgmt-poll.
    let new = copy_fixture("runs-basic");
    for rep in 1..=2 {
        let mut s = fixtures::basic_specs()
            .into_iter()
            .find(|s| {
                s.layout == "isolate"
                    && s.scenario == ScenarioKind::MgmtPoll
                    && s.workload == WorkloadKind::Timer
                    && s.rep == rep
            })
            .unwrap();
        s.tail_ns = (40_000, 45_000);
        let rec = fixtures::record("fixture-basic", &s);
        std::fs::write(
            new.path().join("runs").join(rec.file_name()),
            serde_json::to_string(&rec).unwrap(),
        )
        .unwrap();
    }
    let new_r = report::build(new.path(), &mut |_| {}).unwrap();
    let c = compare::compare(&base_r, &new_r, &opts(10.0));
    assert!(c.has_regression());
    assert_eq!(regressed(&c), ["isolate.mgmt-poll.timer"]);
    let text = compare::render_text(&c, "base", "new");
    assert!(
        text.contains("isolate.mgmt-poll.timer  REGRESSION"),
        "{text}"
    );
    // Reading report.json back gives the same comparison.
    report::write_all(new.path()).unwrap();
    let back = Report::read_json(&new.path().join("report.json")).unwrap();
    assert_eq!(compare::compare(&base_r, &back, &opts(10.0)), c);
}

/// Every run of share's mgmt-poll timer failed in NEW: the row is no longer silently "only in
/// base" but a regression naming the row and the runs' failure, unless --allow-missing. The
/// same for one failed run of two, for run files missing from a planned row, and for a row
/// NEW does not have at all.
#[test]
fn compare_fails_a_layout_broken_in_new() {
    let base = report::build(&root().join("tests/fixtures/runs-basic"), &mut |_| {}).unwrap();
    let row = |s: &fixtures::Spec| {
        s.layout == "share"
            && s.scenario == ScenarioKind::MgmtPoll
            && s.workload == WorkloadKind::Timer
    };
    let cause = |new: &Report, allow_missing: bool| {
        let o = compare::Options {
            allow_missing,
            ..opts(10.0)
        };
        let c = compare::compare(&base, new, &o);
        let lost: Vec<&compare::Lost> = c.lost.iter().collect();
        assert_eq!(lost.len(), 1, "{}", compare::render_text(&c, "b", "n"));
        assert_eq!(c.has_regression(), !allow_missing);
        assert_eq!(lost[0].name, "share.mgmt-poll.timer");
        (lost[0].cause.clone(), compare::render_text(&c, "b", "n"))
    };

    let dir = copy_fixture("runs-basic");
    super::verdicts::plant(dir.path(), row, |s| s.failed = true);
    let new = report::build(dir.path(), &mut |_| {}).unwrap();
    let (c, text) = cause(&new, false);
    assert_eq!(
        c,
        "2 of 2 runs failed in NEW (boot: no agent hello before the 60 s boot deadline)"
    );
    let rows = compare::compare(&base, &new, &opts(10.0)).rows;
    assert!(rows.iter().all(|r| r.name != "share.mgmt-poll.timer"));
    assert!(
        text.contains("share.mgmt-poll.timer: 2 of 2 runs failed in NEW (boot: no agent hello before the 60 s boot deadline)  REGRESSION"),
        "{text}"
    );
    let (_, text) = cause(&new, true);
    assert!(text.contains("(allowed: --allow-missing)"), "{text}");

    let dir = copy_fixture("runs-basic");
    super::verdicts::plant(dir.path(), |s| row(s) && s.rep == 2, |s| s.failed = true);
    let new = report::build(dir.path(), &mut |_| {}).unwrap();
    assert_eq!(
        cause(&new, false).0,
        "1 of 2 runs failed in NEW (boot: no agent hello before the 60 s boot deadline); none lost in BASE"
    );

    let dir = copy_fixture("runs-basic");
    for rep in 1..=2 {
        std::fs::remove_file(
            dir.path()
                .join(format!("runs/share.mgmt-poll.timer.r{rep}.json")),
        )
        .unwrap();
    }
    let new = report::build(dir.path(), &mut |_| {}).unwrap();
    assert_eq!(
        cause(&new, false).0,
        "2 planned run(s) without a readable run file in NEW"
    );
    std::fs::remove_file(dir.path().join("plan.json")).unwrap();
    let new = report::build(dir.path(), &mut |_| {}).unwrap();
    assert_eq!(
        cause(&new, false).0,
        "absent in NEW (BASE has 2 run(s) of it)"
    );
}

/// 64 → 74 ns is +16 %, beyond a 10 % threshold, but 10 ns is below the default 500 ns floor:
/// no regression. With a floor of 0 it is one again. The text states the floor.
#[test]
fn compare_ignores_growth_below_the_floor() {
    let base = report::build(&root().join("tests/fixtures/runs-basic"), &mut |_| {}).unwrap();
    let mut new = base.clone();
    let g = new
        .groups
        .iter_mut()
        .find(|g| g.name() == "share.idle.busy-poll")
        .unwrap();
    let p50 = g.stats.p50_ns.value_ns.unwrap();
    assert!(p50 < 100, "{p50}");
    g.stats.p50_ns.value_ns = Some(p50 + 10);
    let c = compare::compare(&base, &new, &opts(10.0));
    assert!(
        !c.has_regression(),
        "{}",
        compare::render_text(&c, "b", "n")
    );
    let text = compare::render_text(&c, "b", "n");
    assert!(
        text.contains("by at least 0.500 µs (--min-delta)"),
        "{text}"
    );
    let floorless = compare::Options {
        min_delta_ns: 0,
        ..opts(10.0)
    };
    let c = compare::compare(&base, &new, &floorless);
    assert_eq!(regressed(&c), ["share.idle.busy-poll"]);
}

/// A layout that measured in BASE and kills its guest in NEW is a regression whose line names
/// the typed cause.
#[test]
fn compare_names_the_cause_of_a_newly_failing_layout() {
    let base = copy_fixture("runs-failures");
    for s in fixtures::failures_specs()
        .into_iter()
        .filter(|s| s.layout == "colocated")
    {
        let rec = fixtures::record("fixture-failures", &fixtures::Spec { failed: false, ..s });
        std::fs::write(
            base.path().join("runs").join(rec.file_name()),
            serde_json::to_string(&rec).unwrap(),
        )
        .unwrap();
    }
    let base_r = report::build(base.path(), &mut |_| {}).unwrap();
    assert!(base_r.verdicts[0].failed.is_empty());
    let new_r = report::build(&root().join("tests/fixtures/runs-failures"), &mut |_| {}).unwrap();
    let c = compare::compare(&base_r, &new_r, &opts(10.0));
    assert!(c.has_regression());
    let text = compare::render_text(&c, "base", "new");
    assert!(
        text.contains("colocated.mgmt-poll.timer: 2 of 2 runs failed in NEW (boot: guest kernel panic during boot — timer check failed)  REGRESSION"),
        "{text}"
    );
}
