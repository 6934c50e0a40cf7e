//! The fleet's rules on the test fleet ([`super::write_fleet`]): labels, failed hosts, outliers,
//! judgements across hosts, what is not comparable, the outcome; and that a host's report.json
//! is read instead of its runs.

use pinlat::config::WorkloadKind;
use pinlat::report::fleet::judge::Outcome;
use pinlat::report::fleet::outlier::{Direction, Metric};
use pinlat::report::fleet::{
    self, compat::DifferenceKind, FailedBy, FleetOutcome, HostArg, LabelSource, Source,
};

use super::merged;
use pinlat::report::fleet::FleetReport;

fn every_host_is_labelled_and_every_failure_kept(r: &FleetReport) {
    let labels: Vec<(&str, LabelSource)> = r
        .hosts
        .iter()
        .map(|h| (h.label.as_str(), h.label_source))
        .collect();
    assert_eq!(
        labels,
        [
            ("lab1 (lab1)", LabelSource::Disambiguated),
            ("lab1 (lab1-rerun)", LabelSource::Disambiguated),
            ("lab2", LabelSource::Hostname),
            ("lab3", LabelSource::Hostname),
            ("lab4", LabelSource::Hostname),
            ("lab5", LabelSource::Hostname),
            ("lab6", LabelSource::Hostname),
        ]
    );
    let failed: Vec<(&str, FailedBy)> = r
        .failed_hosts
        .iter()
        .map(|f| (f.label.as_str(), f.by))
        .collect();
    assert_eq!(
        failed,
        [
            ("empty", FailedBy::Directory),
            ("lab9", FailedBy::Option),
            ("missing", FailedBy::Directory),
        ]
    );
    assert!(r.failed_hosts[0]
        .reason
        .contains("not a pinlat results directory"));
    assert_eq!(r.failed_hosts[1].reason, "unreachable");
    assert!(r.failed_hosts[2].reason.contains("does not exist"));
    // lab3 was given as failed, and its results are kept.
    let lab3 = r.hosts.iter().find(|h| h.label == "lab3").unwrap();
    assert_eq!(lab3.reported_failed.as_deref(), Some("fetch incomplete"));
    assert_eq!(lab3.runs.ok, 24);
    assert_eq!(r.outcome(), FleetOutcome::Failed);
}

fn sources_are_the_report_when_current_else_the_runs(r: &FleetReport) {
    let source = |l: &str| &r.hosts.iter().find(|h| h.label == l).unwrap().source;
    assert_eq!(source("lab2"), &Source::ReportJson);
    assert_eq!(
        source("lab5"),
        &Source::Runs {
            why: "no report.json".into()
        }
    );
    assert_eq!(
        source("lab1 (lab1-rerun)"),
        &Source::Runs {
            why: "report.json has schema version 99, this pinlat reads version 2".into()
        }
    );
    let lab1 = r.hosts.iter().find(|h| h.label == "lab1 (lab1)").unwrap();
    let d = lab1.checks.doctor.as_ref().unwrap();
    assert_eq!((d.fail, d.warn, d.pass), (1, 1, 1));
}

/// The test fleet, built once, checked rule by rule.
#[test]
fn the_test_fleet_merges_by_the_rules() {
    let (_tmp, r) = merged();
    every_host_is_labelled_and_every_failure_kept(&r);
    sources_are_the_report_when_current_else_the_runs(&r);
    the_host_beyond_the_fleets_spread_is_flagged_and_only_it(&r);
    layouts_are_judged_across_hosts_by_each_hosts_verdict(&r);
    what_is_not_comparable_is_named(&r);
}

/// With report.json present, the run files are not read: damaging every one of them changes
/// nothing, and a host read from its runs gives the same numbers as from its report.
#[test]
fn a_current_report_json_is_read_instead_of_the_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let (args, _) = super::write_fleet(tmp.path());
    let lab2 = args.iter().find(|a| a.dir.ends_with("lab2")).unwrap();
    let before = fleet::load::load_host(&lab2.dir).unwrap();
    for e in std::fs::read_dir(lab2.dir.join("runs")).unwrap() {
        std::fs::write(e.unwrap().path(), "{ damaged").unwrap();
    }
    let after = fleet::load::load_host(&lab2.dir).unwrap();
    assert_eq!(after, before);
    assert_eq!(after.runs.failed, 1);
    // lab1 through runs/: the same numbers as through its report.
    let lab1 = HostArg::parse(&tmp.path().join("lab1").display().to_string()).unwrap();
    let from_report = fleet::load::load_host(&lab1.dir).unwrap();
    std::fs::remove_file(lab1.dir.join("report.json")).unwrap();
    let from_runs = fleet::load::load_host(&lab1.dir).unwrap();
    assert_eq!(from_runs.groups, from_report.groups);
    assert_eq!(from_runs.verdicts, from_report.verdicts);
    assert_eq!(from_runs.layouts, from_report.layouts);
}

fn the_host_beyond_the_fleets_spread_is_flagged_and_only_it(r: &FleetReport) {
    let flagged: Vec<(&str, &str, &str, WorkloadKind, Metric, Direction)> = r
        .outliers
        .iter()
        .map(|o| {
            (
                o.host.as_str(),
                o.layout.as_str(),
                o.scenario.as_str(),
                o.workload,
                o.metric,
                o.direction,
            )
        })
        .collect();
    assert_eq!(
        flagged,
        [
            (
                "lab4",
                "vcpu0",
                "mgmt-poll",
                WorkloadKind::Timer,
                Metric::P999,
                Direction::Above
            ),
            (
                "lab4",
                "vcpu0",
                "mgmt-poll",
                WorkloadKind::Timer,
                Metric::Max,
                Direction::Above
            ),
        ],
        "{:#?}",
        r.outliers
    );
    let o = &r.outliers[0];
    // Judged among the KVM hosts that placed vcpu0 as most do: lab5 (TCG) and lab6 (vcpu0
    // placed otherwise, no mgmt-poll) are not among them.
    assert_eq!(o.spread.hosts, 5);
    assert!(o.value_ns.unwrap() > o.spread.median_ns + o.spread.limit_ns);
}

fn layouts_are_judged_across_hosts_by_each_hosts_verdict(r: &FleetReport) {
    let j = r
        .judgements
        .iter()
        .find(|j| {
            j.scenario == "mgmt-poll" && j.workload == WorkloadKind::Timer && j.layout == "vcpu0"
        })
        .unwrap();
    assert_eq!(j.against, "share");
    let of = |l: &str| j.hosts.iter().find(|h| h.host == l).unwrap().outcome;
    assert_eq!(of("lab1 (lab1)"), Outcome::Won);
    assert_eq!(of("lab4"), Outcome::Lost);
    assert_eq!(of("lab1 (lab1-rerun)"), Outcome::NotJudged);
    assert_eq!(of("lab6"), Outcome::NotRun);
    assert!(
        j.statement
            .starts_with("mgmt-poll × timer: vcpu0 beat share on 4 of 6 host(s) at p99.99"),
        "{}",
        j.statement
    );
    assert!(j.statement.contains("; lost on lab4"), "{}", j.statement);
    assert!(j.statement.contains("; not run on lab6"), "{}", j.statement);
    // Under idle, lab6's vcpu0 is another placement: not comparable, not counted.
    let idle = r
        .judgements
        .iter()
        .find(|j| j.scenario == "idle" && j.workload == WorkloadKind::Timer && j.layout == "vcpu0")
        .unwrap();
    let lab6 = idle.hosts.iter().find(|h| h.host == "lab6").unwrap();
    assert_eq!(lab6.outcome, Outcome::NotComparable);
    assert!(
        idle.statement.contains("not comparable on lab6"),
        "{}",
        idle.statement
    );
}

fn what_is_not_comparable_is_named(r: &FleetReport) {
    let of = |k: DifferenceKind| -> Vec<&str> {
        r.differences
            .iter()
            .filter(|d| d.kind == k)
            .map(|d| d.text.as_str())
            .collect()
    };
    let placement = of(DifferenceKind::Placement);
    assert_eq!(placement.len(), 1, "{placement:?}");
    assert!(
        placement[0].starts_with("layout vcpu0 is placed differently on lab6 (isolate: rt:"),
        "{}",
        placement[0]
    );
    assert!(of(DifferenceKind::Missing)
        .iter()
        .any(|t| t.starts_with("lab6 did not run scenario(s) mgmt-poll")));
    assert!(of(DifferenceKind::Budgets)[0].contains("lab1 (lab1-rerun) (timer: max ≤ 100.000 µs)"));
    assert!(of(DifferenceKind::Accel)
        .iter()
        .all(|t| t.starts_with("lab5: accel tcg")));
    assert!(!of(DifferenceKind::Accel).is_empty());
    assert!(of(DifferenceKind::Source)
        .iter()
        .any(|t| t.contains("schema version 99")));
    // Every output says TCG numbers are not hardware latency, in its header.
    let note = r.tcg_note().unwrap();
    assert!(
        note.starts_with("1 of 7 hosts ran under TCG (lab5)"),
        "{note}"
    );
    let md = fleet::markdown::render(r);
    let junit = fleet::junit::render(r);
    let html = fleet::html::render(r).unwrap();
    for (name, text) in [("md", &md), ("junit", &junit), ("html", &html)] {
        let head: String = text.chars().take(1_000).collect();
        assert!(head.contains(&note), "{name}: {head}");
    }
    // A figure per scenario × workload, the outliers ringed in one of them.
    assert_eq!(html.matches("<svg").count(), r.cells.len());
    assert!(
        html.contains("beyond the fleet&apos;s spread")
            || html.contains("beyond the fleet's spread")
    );
}

#[test]
fn a_fleet_that_held_exits_0_and_one_over_budget_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = Vec::new();
    for (i, name) in ["a", "b"].iter().enumerate() {
        let dir = tmp.path().join(name);
        let mut facts = pinlat_test_infra::fixtures::host_facts();
        facts.local.hostname = Some(name.to_string());
        // Only isolate, whose tails stay within the basic budgets; host b also runs share,
        // which exceeds them.
        let specs: Vec<_> = pinlat_test_infra::fixtures::basic_specs()
            .into_iter()
            .filter(|s| s.layout == "isolate" || (i == 1 && s.layout == "share"))
            .collect();
        pinlat_test_infra::fixtures::write_dir_on(
            &dir,
            "r",
            &specs,
            pinlat_test_infra::fixtures::basic_budgets(),
            &facts,
        )
        .unwrap();
        args.push(HostArg { label: None, dir });
    }
    assert_eq!(
        fleet::merge(&args[..1], &[], &mut |_| {}).outcome(),
        FleetOutcome::Held
    );
    assert_eq!(
        fleet::merge(&args, &[], &mut |_| {}).outcome(),
        FleetOutcome::BudgetExceeded
    );
}
