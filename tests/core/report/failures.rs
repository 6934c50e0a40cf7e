//! Failed runs as results: a broken layout ranked last with its cause, in every output.

use super::*;

/// The failures set: `colocated` never booted (a guest kernel panic at the timer check in both
/// runs), `vcpu0` lost one run of two to an RCU stall and warned of one in the other, `isolate`
/// measured both. The broken layout is the verdict's first words and ranks last; the partial one
/// is ranked by what it measured and flagged unstable; both are over budget; every output
/// shows the cause in the layout's section with its evidence.
#[test]
fn golden_failures_rank_a_broken_layout_last_with_its_cause() {
    let dir = copy_fixture("runs-failures");
    let r = report::write_all(dir.path()).unwrap();
    let md = read(&dir.path().join("report.md"));
    let junit = read(&dir.path().join("junit.xml"));
    golden("failures.report.md", &md);
    golden("failures.junit.xml", &junit);
    assert_eq!(r.outcome(), Outcome::RunFailed);

    let v = &r.verdicts[0];
    let ranked: Vec<&str> = v.ranking.iter().map(|x| x.layout.as_str()).collect();
    assert_eq!(ranked, ["isolate", "vcpu0"]);
    assert_eq!(v.failed.len(), 1, "{v:?}");
    let f = &v.failed[0];
    assert_eq!(
        (f.layout.as_str(), f.rank, f.failed, f.runs),
        ("colocated", Some(3), 2, 2)
    );
    assert!(
        v.statement.starts_with(
            "timer under mgmt-poll: custom 'colocated': the guest did not survive (2 of 2 runs: guest kernel panic during boot — timer check failed), ranked last; "
        ),
        "{}",
        v.statement
    );
    assert!(!v.no_data.contains(&"colocated".to_string()));
    let vcpu0 = v.ranking.iter().find(|x| x.layout == "vcpu0").unwrap();
    assert_eq!(vcpu0.failed_runs, 1);
    assert!(
        v.statement
            .contains("; vcpu0 unstable: 1 of 2 runs failed (guest RCU stall during the run)"),
        "{}",
        v.statement
    );

    // A failed run is over any budget.
    let g = |l: &str| r.groups.iter().find(|g| g.layout == l).unwrap();
    assert_eq!(g("isolate").budget.status, BudgetStatus::Held);
    for (l, failed) in [("vcpu0", 1), ("colocated", 2)] {
        let b = &g(l).budget;
        assert_eq!(b.status, BudgetStatus::Exceeded, "{l}");
        assert_eq!((b.failed_runs, b.runs), (failed, 2), "{l}");
    }
    assert!(g("colocated").budget.checks.is_empty());

    // Markdown: the table's last row, then the cause with its evidence, in the section.
    let section = &md[md.find("## mgmt-poll × timer").unwrap()..md.find("## Runs").unwrap()];
    let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| ")).collect();
    assert!(
        rows.last()
            .unwrap()
            .starts_with("| 3 | colocated | 0 of 2 | 0 |"),
        "{section}"
    );
    assert!(
        rows.last().unwrap().contains("❌ 2 of 2 runs failed"),
        "{section}"
    );
    assert!(
        section.contains("| 2 | vcpu0 | 1 of 2 |")
            && section.contains("⚠️ unstable: 1 of 2 runs failed"),
        "{section}"
    );
    assert!(
        section.contains("- ❌ **custom 'colocated' (rank 3, last): the guest did not survive (2 of 2 runs: guest kernel panic during boot — timer check failed)**"),
        "{section}"
    );
    assert!(
        section.contains("    Kernel panic - not syncing: IO-APIC + timer doesn't work!"),
        "{section}"
    );
    assert!(
        section.contains("Guest kernel warnings, by layout"),
        "{section}"
    );
    assert!(
        section.contains("vcpu0: `vcpu0.mgmt-poll.timer.r1` guest rt: guest RCU stall"),
        "{section}"
    );

    // HTML: the same in the section, the row spanning the numbers.
    let html = read(&dir.path().join("report.html"));
    let section = &html[html.find("<h2>mgmt-poll × timer</h2>").unwrap()
        ..html.find("<h2 id=\"placement\">").unwrap()];
    assert!(
        section.contains("<td class=n>3</td><td>colocated</td><td class=n>0 of 2</td><td colspan=\"12\" class=\"bad\">custom &apos;colocated&apos;: the guest did not survive"),
        "{section}"
    );
    assert!(
        section.contains("Kernel panic - not syncing: IO-APIC + timer doesn&apos;t work!"),
        "{section}"
    );
    assert!(section.contains("guest RCU stall"), "{section}");

    // JUnit: a guest failure is a failure with the cause; the budget rides along.
    assert!(
        junit.contains("<failure type=\"guest-failed\" message=\"2 of 2 runs failed: guest kernel panic during boot — timer check failed\">"),
        "{junit}"
    );
    assert!(
        junit.contains("<failure type=\"guest-failed\" message=\"1 of 2 runs failed: guest RCU stall during the run\">"),
        "{junit}"
    );
    assert!(!junit.contains("<error "), "{junit}");

    // report.json carries the failed layout, its rank and the typed causes.
    let json: serde_json::Value =
        serde_json::from_str(&read(&dir.path().join("report.json"))).unwrap();
    assert_eq!(json["verdicts"][0]["failed"][0]["layout"], "colocated");
    assert_eq!(json["verdicts"][0]["failed"][0]["rank"], 3);
    let run = json["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "colocated.mgmt-poll.timer.r1")
        .unwrap();
    assert_eq!(run["outcome"]["failure"]["cause"], "kernel-panic");
    assert_eq!(
        Report::read_json(&dir.path().join("report.json")).unwrap(),
        r
    );
}

/// Run records written before causes were typed have no `failure`: the verdict quotes the
/// status reason, cut short, and still ranks the layout last.
#[test]
fn a_record_without_a_typed_cause_is_quoted_by_its_reason() {
    let dir = copy_fixture("runs-failures");
    for rep in 1..=2 {
        let path = dir
            .path()
            .join(format!("runs/colocated.mgmt-poll.timer.r{rep}.json"));
        let mut v: serde_json::Value = serde_json::from_str(&read(&path)).unwrap();
        v.as_object_mut().unwrap().remove("failure");
        std::fs::write(&path, v.to_string()).unwrap();
    }
    let r = report::build(dir.path(), &mut |_| {}).unwrap();
    let v = &r.verdicts[0];
    assert_eq!(v.failed[0].rank, Some(3));
    assert!(
        v.statement.starts_with(
            "timer under mgmt-poll: custom 'colocated': the guest did not survive (2 of 2 runs: guest rt: guest kernel panic during boot: IO-APIC + timer doesn't work! (timer c…), ranked last"
        ),
        "{}",
        v.statement
    );
}

/// When no layout measured, the failed ones are still named, unranked.
#[test]
fn with_nothing_measured_the_failures_are_the_verdict() {
    let dir = copy_fixture("runs-failures");
    for l in ["isolate", "vcpu0"] {
        for rep in 1..=2 {
            std::fs::remove_file(
                dir.path()
                    .join(format!("runs/{l}.mgmt-poll.timer.r{rep}.json")),
            )
            .unwrap();
        }
    }
    let r = report::build(dir.path(), &mut |_| {}).unwrap();
    let v = &r.verdicts[0];
    assert!(v.ranking.is_empty());
    assert_eq!(v.failed[0].rank, None);
    assert_eq!(
        v.statement,
        "timer under mgmt-poll: custom 'colocated': the guest did not survive (2 of 2 runs: guest kernel panic during boot — timer check failed), ranked last; no layout measured"
    );
}
