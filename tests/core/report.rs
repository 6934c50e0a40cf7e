//! Tests of `pinlat::report` on deterministic fixture runs: golden files for the Markdown,
//! JUnit and cyclictest-text outputs, the `.hlog` read back against the report's percentiles,
//! verdict wording, exit outcomes and `compare` with a planted regression.
//!
//! `PINLAT_BLESS=1 cargo test -p pinlat --test core -- --test-threads=1` rewrites the committed
//! fixtures and golden files (one thread: the golden tests read the fixtures being rewritten).

use std::path::{Path, PathBuf};

use pinlat::config::{ScenarioKind, WorkloadKind};
use pinlat::histo::{new_histogram, Quantile};
use pinlat::report::verdict::Significance;
use pinlat::report::{self, compare, hlog, BudgetStatus, Outcome, Report};
use pinlat_test_infra::fixtures;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bless() -> bool {
    std::env::var_os("PINLAT_BLESS").is_some()
}

/// Copies a committed fixture set into a fresh temporary directory.
fn copy_fixture(name: &str) -> tempfile::TempDir {
    let src = root().join("tests/fixtures").join(name);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("runs")).unwrap();
    for sub in ["", "runs"] {
        for e in std::fs::read_dir(src.join(sub)).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), tmp.path().join(sub).join(e.file_name())).unwrap();
            }
        }
    }
    tmp
}

/// `compare` options with `threshold` percent and the defaults.
fn opts(threshold: f64) -> compare::Options {
    compare::Options::with_threshold(threshold)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn golden(name: &str, actual: &str) {
    let p = root().join("tests/golden").join(name);
    if bless() {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, actual).unwrap();
        return;
    }
    let expected = read(&p);
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from the golden file at line {}:\n expected: {:?}\n actual:   {:?}\n(PINLAT_BLESS=1 with --test-threads=1 to accept)",
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

/// The committed fixtures are exactly what the builder makes.
#[test]
fn fixtures_are_what_the_builder_makes() {
    for (name, write) in [
        ("runs-basic", fixtures::write_basic as fn(&Path)),
        ("runs-tcg", fixtures::write_tcg as fn(&Path)),
        ("runs-failures", fixtures::write_failures as fn(&Path)),
        (
            "runs-traced",
            crate::fixtures_trace::write_traced as fn(&Path),
        ),
    ] {
        let committed = root().join("tests/fixtures").join(name);
        if bless() {
            let _ = std::fs::remove_dir_all(&committed);
            write(&committed);
            continue;
        }
        let fresh = tempfile::tempdir().unwrap();
        write(fresh.path());
        for sub in ["", "runs"] {
            let mut n = 0;
            for e in std::fs::read_dir(fresh.path().join(sub)).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_file() {
                    n += 1;
                    let c = committed.join(sub).join(e.file_name());
                    assert!(read(&e.path()) == read(&c), "{} is stale", c.display());
                }
            }
            assert!(n > 0);
        }
    }
}

/// Runs with host traces: the culprit section in every output, the strip in the HTML; the
/// same report without traces has none of it.
#[test]
fn golden_traced_names_the_culprits() {
    let dir = copy_fixture("runs-traced");
    let r = report::write_all(dir.path()).unwrap();
    let md = read(&dir.path().join("report.md"));
    golden("traced.report.md", &md);
    golden("traced.junit.xml", &read(&dir.path().join("junit.xml")));
    assert_eq!(r.culprits.len(), 2);
    let share = &r.culprits[0];
    assert_eq!(
        (share.layout.as_str(), share.scenario.as_str()),
        ("share", "mgmt-poll")
    );
    assert_eq!(share.by_class[0].class, pinlat::trace::Class::Emulator);
    assert!(md.contains("✅ `qemu-system-x86`"), "{md}");
    assert!(md.contains("pCPU 1: 2"), "counted SMIs");
    assert!(md.contains("pCPU 1: not available"), "never 0 when unknown");
    let html = read(&dir.path().join("report.html"));
    assert!(html.contains("Who took the RT pCPUs"));
    assert_eq!(
        html.matches(" around the largest event").count(),
        2,
        "a strip per run"
    );
    let back = Report::read_json(&dir.path().join("report.json")).unwrap();
    assert_eq!(back.culprits, r.culprits);
    // Without traces: no section at all.
    let (plain, _) = build_basic();
    let basic = read(&plain.path().join("report.md"));
    assert!(!basic.contains("Who took"));
    assert!(!read(&plain.path().join("report.json")).contains("culprits"));
}

fn build_basic() -> (tempfile::TempDir, Report) {
    let dir = copy_fixture("runs-basic");
    let r = report::write_all(dir.path()).unwrap();
    (dir, r)
}

#[test]
fn golden_basic() {
    let (dir, r) = build_basic();
    golden("basic.report.md", &read(&dir.path().join("report.md")));
    golden("basic.junit.xml", &read(&dir.path().join("junit.xml")));
    golden(
        "basic.share.mgmt-poll.timer.histogram.txt",
        &read(&dir.path().join("share.mgmt-poll.timer.histogram.txt")),
    );
    assert_eq!(r.outcome(), Outcome::BudgetExceeded);
    assert!(r.disclaimer.is_none());
    assert!(!read(&dir.path().join("report.md")).contains("TCG"));
}

#[test]
fn golden_tcg_with_failed_and_unreadable_runs() {
    let dir = copy_fixture("runs-tcg");
    let r = report::write_all(dir.path()).unwrap();
    golden("tcg.report.md", &read(&dir.path().join("report.md")));
    golden("tcg.junit.xml", &read(&dir.path().join("junit.xml")));
    golden(
        "tcg.share.idle.timer.histogram.txt",
        &read(&dir.path().join("share.idle.timer.histogram.txt")),
    );
    assert_eq!(r.outcome(), Outcome::RunFailed);
    assert_eq!(r.skipped.len(), 1);
    assert_eq!(r.skipped[0].file, "share.idle.busy-poll.r1.json");
    // Every output says TCG numbers are not hardware latency, in its header.
    let disclaimer = pinlat::result::TCG_DISCLAIMER;
    for f in [
        "report.md",
        "report.html",
        "junit.xml",
        "report.json",
        "share.idle.timer.histogram.txt",
        "share.idle.timer.r1.hlog",
    ] {
        let text = read(&dir.path().join(f));
        let head: String = text.chars().take(1200).collect();
        assert!(
            head.contains(disclaimer),
            "{f} lacks the TCG disclaimer in its header"
        );
    }
    // One repetition: the difference is unqualified, never a win.
    let v = &r.verdicts[0];
    assert_eq!(v.comparisons.len(), 1);
    assert_eq!(v.comparisons[0].significance, Significance::Unqualified);
    assert!(v.statement.contains("unqualified"), "{}", v.statement);
    assert!(!v.statement.contains(" cut "), "{}", v.statement);
}

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

/// The written `.hlog` decodes back to histograms whose merge gives the report's numbers.
#[test]
fn hlog_round_trip_matches_report_percentiles() {
    let (dir, r) = build_basic();
    for run in r.runs.iter().filter(|x| x.outcome.ok) {
        let text = read(&dir.path().join(format!("{}.hlog", run.name)));
        assert!(text.contains("#[StartTime: "));
        assert!(text.contains("#[BaseTime: "));
        assert!(text.contains(
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        ));
        let lines = hlog::parse(&text).unwrap().lines;
        let mut merged = new_histogram();
        for l in lines.iter().filter(|l| l.tag.is_none()) {
            merged.add(&l.histogram).unwrap();
        }
        assert_eq!(merged.len(), run.stats.samples, "{}", run.name);
        let q = |p| Some(merged.value_at_quantile(p).min(run.stats.max_ns));
        assert_eq!(q(0.5), run.stats.p50_ns.value_ns, "{}", run.name);
        assert_eq!(q(0.99), run.stats.p99_ns.value_ns);
        assert_eq!(q(0.999), run.stats.p999_ns.value_ns);
        assert_eq!(q(0.9999), run.stats.p9999_ns.value_ns);
        // Per-vCPU tagged lines, 2 intervals each.
        let tagged = lines
            .iter()
            .filter(|l| l.tag.as_deref() == Some("rt/vcpu1"))
            .count();
        assert_eq!(tagged, 2);
    }
}

fn read_record(path: &Path) -> pinlat::result::RunRecord {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The `.hlog` times are the measurement's: BaseTime is the run record's measurement window,
/// and each line is one RT vCPU's interval at its own start, so a late interval on one vCPU
/// keeps its real time. Without a window the file falls back to the run's start and says so.
#[test]
fn hlog_times_are_the_measurement_window() {
    let dir = copy_fixture("runs-basic");
    let name = "share.mgmt-poll.timer.r1";
    let path = dir.path().join(format!("runs/{name}.json"));
    let mut rec = read_record(&path);
    let window = rec.guests[0].window.unwrap();
    assert!(
        window.start_unix_ms > rec.started_unix_ms,
        "boot and preheat come first"
    );
    // vCPU2's second interval started 40 ms late (a late hand-off).
    for iv in rec.guests[0]
        .intervals
        .iter_mut()
        .filter(|i| i.cpu == 2 && i.index == 1)
    {
        iv.start_offset_ns += 40_000_000;
    }
    std::fs::write(&path, serde_json::to_vec(&rec).unwrap()).unwrap();
    report::write_all(dir.path()).unwrap();
    let text = read(&dir.path().join(format!("{name}.hlog")));
    let log = hlog::parse(&text).unwrap();
    assert_eq!(log.base_time_ms, Some(window.start_unix_ms), "{text}");
    assert_eq!(log.start_time_ms, Some(window.start_unix_ms));
    let first = &log.lines[0];
    assert_eq!(
        log.base_time_ms.unwrap() + first.start_ms,
        window.start_unix_ms
    );
    assert!(
        text.contains("#[Times: each guest's measurement window in the host's time"),
        "{text}"
    );
    // One untagged line per (vCPU, interval), each at its own time.
    let untagged: Vec<(u64, u64)> = log
        .lines
        .iter()
        .filter(|l| l.tag.is_none())
        .map(|l| (l.start_ms, l.histogram.len()))
        .collect();
    assert_eq!(untagged.len(), 4, "{untagged:?}");
    let starts: Vec<u64> = untagged.iter().map(|x| x.0).collect();
    assert_eq!(starts, [0, 0, 2_500, 2_540], "{text}");
    let vcpu2: Vec<u64> = log
        .lines
        .iter()
        .filter(|l| l.tag.as_deref() == Some("rt/vcpu2"))
        .map(|l| l.start_ms)
        .collect();
    assert_eq!(vcpu2, [0, 2_540]);

    // A record without a window: today's behaviour, said in the header.
    rec.guests[0].window = None;
    let text = hlog::render(&rec).unwrap();
    let log = hlog::parse(&text).unwrap();
    assert_eq!(log.base_time_ms, Some(rec.started_unix_ms));
    assert!(text.contains("no measurement window"), "{text}");
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
    let bad: Vec<&str> = c
        .rows
        .iter()
        .filter(|r| r.regressed())
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(bad, ["isolate.mgmt-poll.timer"]);
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

#[test]
fn unreadable_files_are_skipped_and_empty_dirs_refused() {
    let dir = copy_fixture("runs-basic");
    std::fs::write(dir.path().join("runs/zz.json"), b"\xff\xfe not json").unwrap();
    std::fs::write(dir.path().join("runs/yy.json"), "{}").unwrap();
    let r = report::build(dir.path(), &mut |_| {}).unwrap();
    assert_eq!(r.skipped.len(), 2);
    assert_eq!(r.runs.len(), 24);
    assert_eq!(r.outcome(), Outcome::RunFailed);

    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        report::build(empty.path(), &mut |_| {}),
        Err(report::ReportError::NotAResultDir(..))
    ));
    std::fs::create_dir(empty.path().join("runs")).unwrap();
    std::fs::write(empty.path().join("runs/a.json"), "[").unwrap();
    assert!(matches!(
        report::build(empty.path(), &mut |_| {}),
        Err(report::ReportError::NoRuns(_, 1))
    ));
}

#[test]
fn json_report_is_versioned_and_reads_back() {
    let (dir, r) = build_basic();
    let back = Report::read_json(&dir.path().join("report.json")).unwrap();
    assert_eq!(back.schema_version, report::REPORT_SCHEMA_VERSION);
    assert_eq!(back, r);
}

#[test]
fn significant_steal_on_a_runs_pcpus_is_a_report_note() {
    let dir = copy_fixture("runs-basic");
    let runs = dir.path().join("runs");
    let mut names: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let path = &names[0];
    let mut rec: pinlat::result::RunRecord =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let cpus = rec.planned_cpus();
    let cpu = cpus.iter().next().unwrap();
    // 50 ms of a 5 s window on a planned pCPU (1 %), and more on a CPU the run never used.
    rec.host_steal = Some(pinlat::result::HostSteal {
        window_ms: 5_000,
        per_cpu_ns: [(cpu, 50_000_000), (999, 900_000_000)]
            .into_iter()
            .collect(),
    });
    std::fs::write(path, serde_json::to_vec(&rec).unwrap()).unwrap();
    let r = report::build(dir.path(), &mut |_| {}).unwrap();
    let notes: Vec<_> = r
        .notes
        .iter()
        .filter(|n| n.contains("steal time"))
        .collect();
    assert_eq!(notes.len(), 1, "{:?}", r.notes);
    assert!(
        notes[0].contains(&format!("50 ms (1.0 %) of pCPU {cpu}")),
        "{}",
        notes[0]
    );
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
        .find(|c| c.metric == "p99.99")
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
fn plant(dir: &Path, pick: impl Fn(&fixtures::Spec) -> bool, f: impl Fn(&mut fixtures::Spec)) {
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

/// The value of attribute `name` in an XML start tag.
fn attr(tag: &str, name: &str) -> u64 {
    let key = format!(" {name}=\"");
    let at = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + key.len();
    tag[at..].split('"').next().unwrap().parse().unwrap()
}

/// The top-level `tests`/`failures`/`errors` of junit.xml are the sums over its suites, the
/// run-files suite (an unreadable file in the TCG set) included.
#[test]
fn junit_totals_are_the_sum_of_the_suites() {
    for name in ["runs-tcg", "runs-basic"] {
        let dir = copy_fixture(name);
        report::write_all(dir.path()).unwrap();
        let xml = read(&dir.path().join("junit.xml"));
        let top = xml.lines().find(|l| l.starts_with("<testsuites ")).unwrap();
        let suites: Vec<&str> = xml
            .lines()
            .filter(|l| l.trim_start().starts_with("<testsuite "))
            .collect();
        for a in ["tests", "failures", "errors"] {
            let sum: u64 = suites.iter().map(|s| attr(s, a)).sum();
            assert_eq!(attr(top, a), sum, "{name}: {a} in {top}");
        }
        if name == "runs-tcg" {
            assert!(suites.iter().any(|s| s.contains("pinlat.run-files")));
        }
    }
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

/// The TCG set's guest kernel is not PREEMPT_RT: every output warns in its header; the basic
/// set's guests were, and the report header says so without a warning.
#[test]
fn a_guest_kernel_without_preempt_rt_is_warned_in_every_header() {
    let dir = copy_fixture("runs-tcg");
    let r = report::write_all(dir.path()).unwrap();
    assert_eq!(r.guest_kernels.preempt_rt(), Some(false));
    assert_eq!(r.guest_kernels.unknown, 1, "the failed boot sent no hello");
    let warning = "the guest kernel was not PREEMPT_RT: its own preemption latency is in these numbers; no layout can fix it";
    for f in [
        "report.md",
        "report.html",
        "junit.xml",
        "report.json",
        "share.idle.timer.histogram.txt",
        "share.idle.timer.r1.hlog",
    ] {
        let text = read(&dir.path().join(f));
        let head: String = text.chars().take(1500).collect();
        assert!(
            head.contains(warning),
            "{f} lacks the PREEMPT_RT warning in its header"
        );
    }
    assert!(read(&dir.path().join("junit.xml"))
        .contains("<property name=\"guest_preempt_rt\" value=\"no\"/>"));

    let (dir, r) = build_basic();
    assert_eq!(r.guest_kernels.preempt_rt(), Some(true));
    assert_eq!(r.guest_kernels.warning(), None);
    let md = read(&dir.path().join("report.md"));
    assert!(
        md.contains("Guest kernels: guest rt: 6.1.0-fixture-rt-amd64 PREEMPT_RT (24 run(s))"),
        "{md}"
    );
    assert!(!md.contains("not PREEMPT_RT"));
    let html = read(&dir.path().join("report.html"));
    assert!(html
        .contains("<p>Guest kernels: guest rt: 6.1.0-fixture-rt-amd64 PREEMPT_RT (24 run(s))</p>"));
    assert!(read(&dir.path().join("junit.xml"))
        .contains("<property name=\"guest_preempt_rt\" value=\"yes\"/>"));
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
    plant(dir.path(), row, |s| s.failed = true);
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
    plant(dir.path(), |s| row(s) && s.rep == 2, |s| s.failed = true);
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
    let bad: Vec<&str> = c
        .rows
        .iter()
        .filter(|r| r.regressed())
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(bad, ["share.idle.busy-poll"]);
}

/// An io or net load result with `n` operations per operation kind, latencies spread from
/// `base_ns` (deterministic), as the agent sends them.
fn load_result(
    load: pinlat::wire::LoadKind,
    n: u64,
    base_ns: u64,
    seed: u64,
) -> pinlat::wire::LoadResult {
    use pinlat::wire::{LoadKind, NetCounts, OpKind, OpStats};
    let mut rng = fixtures::Lcg::new(seed);
    let mut op = |bytes_each: u64, errors: u64| {
        let mut h = new_histogram();
        let (mut min, mut max) = (u64::MAX, 0);
        for _ in 0..n {
            // Mostly near the base, one in fifty ten times slower.
            let v = if rng.range(0, 50) == 0 {
                base_ns * 10 + rng.range(0, base_ns)
            } else {
                base_ns + rng.range(0, base_ns / 2)
            };
            h.record(v).unwrap();
            min = min.min(v);
            max = max.max(v);
        }
        OpStats {
            count: n,
            bytes: n * bytes_each,
            errors,
            first_error: (errors > 0).then(|| {
                "write of 4096 bytes at offset 8192 at +1.250 s: Input/output error".to_string()
            }),
            min_ns: min,
            max_ns: max,
            overflow: 0,
            histogram: pinlat::histo::Hist(h),
        }
    };
    let (ops, net, target) = match load {
        LoadKind::Io => (
            [
                (OpKind::Read, op(4096, 0)),
                (OpKind::Write, op(4096, u64::from(seed >= 10))),
                (OpKind::Flush, op(0, 0)),
            ]
            .into(),
            None,
            None,
        ),
        LoadKind::Net => (
            [(OpKind::Rtt, op(256, 0))].into(),
            Some(NetCounts {
                sent: n + seed % 3,
                received: n,
                lost: seed % 3,
                ..NetCounts::default()
            }),
            Some(1_000),
        ),
    };
    pinlat::wire::LoadResult {
        load,
        device: match load {
            LoadKind::Io => "/dev/vda".into(),
            LoadKind::Net => "eth0".into(),
        },
        direct: (load == LoadKind::Io).then_some(true),
        cpus: vec![0],
        duration_ns: 5_000_000_000,
        target_per_s: target,
        ops,
        net,
    }
}

/// Housekeeping I/O in every output: the basic set's busy-poll runs carry io and net load
/// results (slower under vcpu0, whose emulator shares the housekeeping vCPU's pCPU); the
/// section is a golden file, and JUnit, HTML and JSON carry the same numbers.
#[test]
fn housekeeping_io_is_reported_per_layout() {
    use pinlat::wire::{LoadKind, OpKind};
    let dir = copy_fixture("runs-basic");
    let runs = dir.path().join("runs");
    let mut planted = 0;
    for (i, layout) in ["share", "vcpu0"].into_iter().enumerate() {
        for rep in 1..=2u64 {
            let path = runs.join(format!("{layout}.mgmt-poll.busy-poll.r{rep}.json"));
            let mut rec = read_record(&path);
            let slow = 1 + 3 * i as u64;
            let seed = 10 * i as u64 + rep;
            rec.guests[0].loads = vec![
                load_result(LoadKind::Io, 2_000 / slow, 300_000 * slow, seed),
                load_result(
                    LoadKind::Net,
                    5_000 - 500 * slow,
                    150_000 * slow,
                    seed + 100,
                ),
            ];
            std::fs::write(&path, serde_json::to_string(&rec).unwrap()).unwrap();
            planted += 1;
        }
    }
    assert_eq!(planted, 4);
    let r = report::write_all(dir.path()).unwrap();

    // io: read, write, flush; net: rtt; per layout: 8 rows.
    assert_eq!(r.housekeeping.len(), 8, "{:#?}", r.housekeeping);
    let row = |layout: &str, op: OpKind| {
        r.housekeeping
            .iter()
            .find(|x| x.layout == layout && x.op == op)
            .unwrap()
    };
    // Two runs of 5 s each, 2000 reads each under share: 400 IOPS.
    let read = row("share", OpKind::Read);
    assert_eq!((read.results, read.stats.samples), (2, 4_000));
    assert_eq!(read.duration_ns, 10_000_000_000);
    assert_eq!(read.rate_per_s, 400.0);
    assert!(row("vcpu0", OpKind::Read).stats.p50_ns.value_ns > read.stats.p50_ns.value_ns);
    let rtt = row("vcpu0", OpKind::Rtt);
    let net = rtt.net.unwrap();
    assert_eq!(net.received, rtt.stats.samples);
    assert_eq!(net.sent, net.received + net.lost);
    assert_eq!(rtt.target_per_s, Some(1_000));

    let md = read_text(&dir.path().join("report.md"));
    let section = md
        .split("## Housekeeping I/O")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Housekeeping I/O section");
    golden(
        "basic.housekeeping.md",
        &format!("## Housekeeping I/O{section}\n"),
    );
    // Before the runs table, after the verdicts.
    assert!(md.find("## Housekeeping I/O") < md.find("## Runs"));

    let junit = read_text(&dir.path().join("junit.xml"));
    assert!(
        junit.contains("<property name=\"housekeeping.io.read.per_s\" value=\"400.0\"/>"),
        "{junit}"
    );
    assert!(junit.contains("<property name=\"housekeeping.net.lost\""));
    assert!(junit.contains("<property name=\"housekeeping.io.write.errors\" value=\"2\"/>"));
    let html = read_text(&dir.path().join("report.html"));
    assert!(html.contains("<h2 id=\"housekeeping\">Housekeeping I/O</h2>"));
    assert!(html.contains("title=\"first: write of 4096 bytes at offset 8192"));
    let back = Report::read_json(&dir.path().join("report.json")).unwrap();
    assert_eq!(back.housekeeping, r.housekeeping);
}

/// A report without load results has no housekeeping section nor field.
#[test]
fn no_load_results_no_housekeeping_section() {
    let (dir, r) = build_basic();
    assert!(r.housekeeping.is_empty());
    assert!(!read_text(&dir.path().join("report.md")).contains("Housekeeping I/O"));
    assert!(!read_text(&dir.path().join("report.json")).contains("\"housekeeping\""));
}

fn read_text(p: &Path) -> String {
    read(p)
}

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
