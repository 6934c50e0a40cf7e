//! A soak through the scripted guest: interval frames kept as a bounded series over the whole
//! run, the run so far checkpointed while it measures, and SIGINT keeping what was measured.

use std::time::Duration;

use pinlat::agentcfg::AgentConfig;
use pinlat::histo::{new_histogram, Hist};
use pinlat::result::{RunRecord, RunStatus, Stage};
use pinlat::schema::{read_versioned, Checkpoint};
use pinlat::wire::{Done, IntervalReport, Message};

use super::checkpoint::Checkpoints;
use super::tests::{final_for, frame, hello, ms, run_with, Script, Soak, CONFIG};
use super::tracer::TraceSettings;

/// 1 s measured in 100 intervals of 10 ms.
fn config() -> String {
    CONFIG.replace("duration_s = 1\n", "duration_s = 1\ninterval_ms = 10\n")
}

/// Interval `i` of RT vCPU 1: 3 samples, the largest `(i % 7 + 1) µs`, except interval 61
/// (the run's largest: 900 µs).
fn interval(i: u64) -> Message {
    let mut h = new_histogram();
    let top = if i == 61 {
        900_000
    } else {
        (i % 7 + 1) * 1_000
    };
    for v in [100, 200, top] {
        h.record(v).unwrap();
    }
    Message::Interval(IntervalReport {
        cpu: 1,
        workload: pinlat::config::WorkloadKind::BusyPoll,
        index: i,
        start_offset_ns: i * 10_000_000,
        end_offset_ns: (i + 1) * 10_000_000,
        samples: 3,
        overflow: 0,
        histogram: Hist(h),
    })
}

/// Hello at 10 ms, then `n` intervals 2 ms apart from 20 ms.
fn intervals(cfg: &AgentConfig, n: u64) -> Vec<(Duration, Vec<u8>)> {
    let mut c = vec![(ms(10), frame(&hello(cfg)))];
    c.extend((0..n).map(|i| (ms(20 + 2 * i), frame(&interval(i)))));
    c
}

/// The whole run: 100 intervals, the final result and done.
fn soak(cfg: &AgentConfig) -> Script {
    let mut channel = intervals(cfg, 100);
    channel.push((ms(230), frame(&final_for(1))));
    channel.push((
        ms(240),
        frame(&Message::Done(Done {
            finals: 1,
            max_rss_kib: None,
        })),
    ));
    Script {
        channel,
        exit: Some((ms(250), "exit status: 0")),
        ..Script::default()
    }
}

/// 60 intervals, then silence until the host's run deadline.
fn stalls_after_60(cfg: &AgentConfig) -> Script {
    Script {
        channel: intervals(cfg, 60),
        ..Script::default()
    }
}

fn run_soak(script: fn(&AgentConfig) -> Script, soak: Soak<'_>) -> RunRecord {
    run_with(&config(), script, ms(100), &TraceSettings::off(), &soak).0
}

#[test]
fn a_soak_keeps_a_bounded_series_over_the_whole_run_and_no_whole_interval() {
    let r = run_soak(
        soak,
        Soak {
            series_only: true,
            series_points: 16,
            ..Soak::default()
        },
    );
    assert!(r.status.is_ok(), "{:?}", r.status);
    assert!(
        r.warnings.is_empty(),
        "no 'intervals dropped': {:?}",
        r.warnings
    );
    let g = &r.guests[0];
    assert!(g.intervals.is_empty());
    let s = &g.series[0];
    assert_eq!(s.intervals, 100);
    assert!(s.points.len() <= 16, "{}", s.points.len());
    assert_eq!(s.width, 8);
    assert_eq!(s.points[0].start_offset_ns, 0);
    assert_eq!(s.end_offset_ns(), 1_000_000_000, "the whole run");
    assert_eq!(
        s.max_ns(),
        Some(new_histogram().highest_equivalent(900_000))
    );
    let p = s.points.iter().find(|p| p.max_ns == s.max_ns()).unwrap();
    assert!((p.start_offset_ns..p.end_offset_ns).contains(&615_000_000));
    assert!(s.merged.is_none(), "the final result holds every sample");
}

#[test]
fn a_short_run_keeps_its_intervals_whole_beside_the_series() {
    let r = run_soak(soak, Soak::default());
    let g = &r.guests[0];
    assert_eq!(g.intervals.len(), 100);
    assert_eq!(g.series[0].points.len(), 100);
}

#[test]
fn sigint_keeps_what_was_measured() {
    let r = run_soak(
        stalls_after_60,
        Soak {
            series_only: true,
            interrupt_after: Some(ms(400)),
            ..Soak::default()
        },
    );
    let RunStatus::Failed { stage, reason } = &r.status else {
        panic!("{:?}", r.status)
    };
    assert_eq!(*stage, Stage::Interrupted);
    assert!(
        reason.contains("after 0 s of measurement; what it measured is kept"),
        "{reason}"
    );
    let s = &r.guests[0].series[0];
    assert_eq!(s.intervals, 60);
    let merged = &s
        .merged
        .as_ref()
        .expect("no final result: the samples so far")
        .0;
    assert_eq!(merged.len(), 180);
    assert_eq!(merged.max(), new_histogram().highest_equivalent(7_000));
}

#[test]
fn a_checkpoint_is_written_while_measuring_and_the_report_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("runs")).unwrap();
    let cp = Checkpoints::new(dir.path(), ms(50));
    // The variant's host knobs, as `pinlat run` applied them: in the checkpoint as in the record.
    let knob = pinlat::schema::AppliedKnob {
        knob: pinlat::config::variant::HostKnob::SchedRtRuntimeUs,
        before: "950000".into(),
        wanted: "980000".into(),
        applied: "980000".into(),
    };
    let r = run_soak(
        stalls_after_60,
        Soak {
            series_only: true,
            checkpoints: Some(&cp),
            interrupt_after: Some(ms(1_500)),
            result_dir: Some(dir.path().to_path_buf()),
            host_knobs: vec![knob.clone()],
            ..Soak::default()
        },
    );
    // The checkpoints are written off the run loop: the last one is on disk once its thread
    // is done.
    cp.finish();
    assert!(cp.written() >= 2, "{}", cp.written());
    let c: Checkpoint = read_versioned(&cp.path()).unwrap();
    assert_eq!(c.run.name, r.name);
    assert_eq!(
        (&c.run.host_knobs, &r.host_knobs),
        (&vec![knob.clone()], &vec![knob])
    );
    assert_eq!(c.runner_pid, std::process::id());
    assert_eq!(c.measured_ns, 600_000_000);
    let s = &c.run.guests[0].series[0];
    assert_eq!(s.merged.as_ref().unwrap().0.len(), 180);
    assert!(cp.rebuilt() >= 1);
    let report: pinlat::report::Report = read_versioned(&dir.path().join("report.json")).unwrap();
    assert_eq!(report.in_progress.as_ref().unwrap().run, r.name);
    assert_eq!(report.soak[0].stats.samples, 180);
    // The final record replaces the checkpoint, and the report is rebuilt without it.
    std::fs::write(
        dir.path().join("runs").join(r.file_name()),
        serde_json::to_vec(&r).unwrap(),
    )
    .unwrap();
    cp.run_ended();
    cp.finish();
    assert!(!cp.path().exists());
    let report: pinlat::report::Report = read_versioned(&dir.path().join("report.json")).unwrap();
    assert!(report.in_progress.is_none());
    assert_eq!(
        report.soak[0].state,
        pinlat::report::soak::SoakState::Interrupted
    );
}

#[test]
fn a_checkpoint_of_a_run_keeping_whole_intervals_copies_only_its_series() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("runs")).unwrap();
    let cp = Checkpoints::new(dir.path(), ms(50));
    let r = run_soak(
        stalls_after_60,
        Soak {
            checkpoints: Some(&cp),
            interrupt_after: Some(ms(1_000)),
            result_dir: Some(dir.path().to_path_buf()),
            ..Soak::default()
        },
    );
    cp.finish();
    // The record keeps every frame whole; the checkpoint (copied on the run loop) only the
    // series, which is all a report of it reads.
    assert_eq!(r.guests[0].intervals.len(), 60);
    let c: Checkpoint = read_versioned(&cp.path()).unwrap();
    let g = &c.run.guests[0];
    assert!(g.intervals.is_empty(), "{}", g.intervals.len());
    assert_eq!(g.series[0].intervals, 60);
}
