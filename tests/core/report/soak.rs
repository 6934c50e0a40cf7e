//! Soaks in the report: a run kept only as bounded series is plotted over its whole length, a
//! report built from a checkpoint says so and shows the run so far, an interrupted run keeps
//! its numbers.

use pinlat::report::soak::SoakState;
use pinlat::schema::CHECKPOINT_FILE;
use pinlat_test_infra::fixtures::soak;

use super::*;

/// Points each fixture series keeps: 40 intervals coarsen twice, to 10 points of 4.
const POINTS: usize = 16;

/// share × idle × timer, 1 repetition of 5 s in 40 intervals of 125 ms, a 15 ms tail every 2,000th
/// sample.
fn spec() -> fixtures::Spec {
    let mut s = fixtures::basic_specs()
        .into_iter()
        .find(|s| s.layout == "share" && s.scenario == ScenarioKind::Idle)
        .unwrap();
    s.workload = WorkloadKind::Timer;
    s.clock = fixtures::clock_of(s.workload);
    s.tail_ns = (12_000, 15_000_000);
    s.intervals = 40;
    s
}

/// A results directory of `spec()`'s run as written by `write_run`, its plan listing it.
fn dir_with(write_run: impl FnOnce(&Path, pinlat::result::RunRecord)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fixtures::write_dir(dir.path(), "fixture-soak", &[spec()], "").unwrap();
    let rec = fixtures::record("fixture-soak", &spec());
    std::fs::remove_file(dir.path().join("runs").join(rec.file_name())).unwrap();
    write_run(dir.path(), rec);
    dir
}

fn write_json<T: serde::Serialize>(p: &Path, v: &T) {
    std::fs::write(p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

#[test]
fn a_soak_is_plotted_over_the_whole_run_and_keeps_its_max() {
    let dir = dir_with(|d, rec| {
        write_json(
            &d.join("runs").join(rec.file_name()),
            &soak::as_soak(rec, POINTS),
        );
    });
    let r = report::write_all(dir.path()).unwrap();
    assert!(r.in_progress.is_none());
    assert_eq!(r.outcome(), Outcome::Held);
    assert_eq!(r.soak.len(), 1);
    let s = &r.soak[0];
    assert_eq!(s.state, SoakState::Measured);
    let rec = fixtures::record("fixture-soak", &spec());
    assert_eq!(s.measured_ns, rec.duration_ms * 1_000_000, "the whole run");
    assert_eq!(s.series.len(), 2, "both RT vCPUs");
    for v in &s.series {
        assert!(v.points.len() <= POINTS, "{}", v.points.len());
        assert_eq!(v.width, 4);
        assert_eq!(v.points[0].start_offset_ns, 0);
    }
    // The whole-run numbers are the agent's exact ones; the peak is the top of its HDR bucket.
    let group = &r.groups[0];
    assert_eq!(s.stats, group.stats);
    let peak = s.peak.as_ref().unwrap();
    assert_eq!(
        peak.max_ns,
        Some(new_histogram().highest_equivalent(group.stats.max_ns))
    );
    let md = read(&dir.path().join("report.md"));
    assert!(
        md.contains("## Soak: interval maxima over the whole run"),
        "{md}"
    );
    assert!(
        md.contains("| share.idle.timer.r1 | measured | 0:00:05 of 0:00:05 |"),
        "{md}"
    );
    let html = read(&dir.path().join("report.html"));
    assert!(html.contains("Interval maxima, share.idle.timer.r1 (measured)"));
    // No interval frame was kept whole: no empty "Latency over time" figure.
    assert!(!html.contains("Latency over time"));
}

#[test]
fn a_report_from_a_checkpoint_says_so_and_shows_the_run_so_far() {
    let dir = dir_with(|d, rec| {
        write_json(&d.join(CHECKPOINT_FILE), &soak::checkpoint(rec, 10, POINTS));
    });
    let r = report::write_all(dir.path()).unwrap();
    let p = r.in_progress.as_ref().expect("in progress");
    assert_eq!(p.run, "share.idle.timer.r1");
    assert_eq!(p.measured_ns, 1_250_000_000);
    assert!(
        p.statement.starts_with("built from a checkpoint"),
        "{}",
        p.statement
    );
    assert!(
        p.statement.contains("0:00:01 of 0:00:05"),
        "{}",
        p.statement
    );
    // Not a run file, not missing, not failed; but no final verdict either.
    assert!(r.runs.is_empty() && r.missing_runs.is_empty());
    assert_eq!(r.outcome(), Outcome::RunFailed);
    let s = &r.soak[0];
    assert_eq!(s.state, SoakState::InProgress);
    // A quarter of the 50,000 samples per RT vCPU, from the merged interval histograms.
    assert_eq!(s.stats.samples, 2 * 12_500);
    assert_eq!(s.measured_ns, 1_250_000_000);
    for (name, text) in [
        ("report.md", "> ⏳ **In progress:** built from a checkpoint"),
        ("report.html", "<b>In progress:</b> built from a checkpoint"),
        ("junit.xml", "<!-- IN PROGRESS: built from a checkpoint"),
    ] {
        let out = read(&dir.path().join(name));
        assert!(out.contains(text), "{name}: {out}");
    }
    let md = read(&dir.path().join("report.md"));
    assert!(
        md.contains("| share.idle.timer.r1 | in progress | 0:00:01 of 0:00:05 | 25000 |"),
        "{md}"
    );
    let json: Report = pinlat::schema::read_versioned(&dir.path().join("report.json")).unwrap();
    assert_eq!(json.in_progress.as_ref(), Some(p));
}

#[test]
fn a_checkpoint_whose_run_has_its_record_is_ignored() {
    let dir = dir_with(|d, rec| {
        write_json(
            &d.join(CHECKPOINT_FILE),
            &soak::checkpoint(rec.clone(), 10, POINTS),
        );
        write_json(
            &d.join("runs").join(rec.file_name()),
            &soak::as_soak(rec, POINTS),
        );
    });
    let r = report::build(dir.path(), &mut |_| {}).unwrap();
    assert!(r.in_progress.is_none());
    assert_eq!(r.soak.len(), 1);
    assert_eq!(r.soak[0].state, SoakState::Measured);
}

#[test]
fn an_interrupted_soak_keeps_what_it_measured() {
    let dir = dir_with(|d, rec| {
        write_json(
            &d.join("runs").join(rec.file_name()),
            &soak::interrupted(rec, 20, POINTS),
        );
    });
    let r = report::write_all(dir.path()).unwrap();
    let run = &r.runs[0];
    assert!(!run.outcome.ok);
    assert_eq!(run.outcome.stage, Some(pinlat::result::Stage::Interrupted));
    // Half the run: 25,000 samples per RT vCPU, merged from its interval frames.
    assert_eq!(run.stats.samples, 2 * 25_000);
    assert_eq!(run.per_vcpu.len(), 2);
    assert!(run.stats.max_ns > 0);
    let s = &r.soak[0];
    assert_eq!(s.state, SoakState::Interrupted);
    assert_eq!(s.stats, run.stats);
    assert_eq!(s.measured_ns, 2_500_000_000);
    // Interrupted: not merged into the layout's numbers.
    assert_eq!(r.groups[0].stats.samples, 0);
    assert_eq!(r.groups[0].failed_runs, std::slice::from_ref(&run.name));
    let md = read(&dir.path().join("report.md"));
    assert!(
        md.contains("| share.idle.timer.r1 | interrupted | 0:00:02 of 0:00:05 | 50000 |"),
        "{md}"
    );
}

#[test]
fn a_checkpoint_alone_makes_a_report() {
    let dir = dir_with(|d, rec| {
        write_json(&d.join(CHECKPOINT_FILE), &soak::checkpoint(rec, 3, POINTS));
    });
    std::fs::remove_file(dir.path().join("plan.json")).unwrap();
    let r = report::write_all(dir.path()).unwrap();
    assert!(r.in_progress.is_some());
    assert_eq!(r.run_id, "fixture-soak");
}
