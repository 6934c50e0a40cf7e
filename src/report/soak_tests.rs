use super::*;
use crate::histo::{new_histogram, Hist};
use crate::result::{test_record, CpuSeries};
use crate::wire::IntervalReport;

/// One interval of CPU 1 holding `v`, `overflow` beyond the range.
fn iv(i: u64, v: u64, overflow: u64) -> IntervalReport {
    let mut h = new_histogram();
    h.record(v).unwrap();
    IntervalReport {
        cpu: 1,
        workload: WorkloadKind::BusyPoll,
        index: i,
        start_offset_ns: i * 1_000_000_000,
        end_offset_ns: (i + 1) * 1_000_000_000,
        samples: 1 + overflow,
        overflow,
        histogram: Hist(h),
    }
}

fn with_series(ivs: &[IntervalReport], keep_whole: bool) -> RunRecord {
    let mut rec = test_record();
    let mut s = CpuSeries::new(1, 8, false);
    for i in ivs {
        s.push(i);
    }
    rec.guests[0].series.push(s);
    if keep_whole {
        rec.guests[0].intervals = ivs.to_vec();
    }
    rec
}

#[test]
fn the_peak_is_the_largest_max_and_overflow_ranks_above_it() {
    let rec = with_series(&[iv(0, 10, 0), iv(1, 9_000, 0), iv(2, 20, 0)], false);
    let r = row(&rec, SoakState::Measured, Summary::default());
    let p = r.peak.unwrap();
    assert_eq!((p.start_offset_ns, p.overflow), (1_000_000_000, 0));
    assert_eq!(p.max_ns, Some(new_histogram().highest_equivalent(9_000)));
    let rec = with_series(&[iv(0, 10, 0), iv(1, 9_000, 0), iv(2, 20, 1)], false);
    let p = row(&rec, SoakState::Measured, Summary::default())
        .peak
        .unwrap();
    assert_eq!((p.start_offset_ns, p.overflow), (2_000_000_000, 1));
    assert!(peak_text(&Some(p)).starts_with("overflow rt/vCPU1 at 0:00:02"));
}

#[test]
fn only_soaks_and_unfinished_runs_belong() {
    let ivs = [iv(0, 10, 0), iv(1, 20, 0)];
    // A short run keeps its intervals whole: its timeline is the usual one.
    let short = with_series(&ivs, true);
    assert!(!belongs(&short, false));
    assert!(belongs(&short, true), "a checkpoint's run");
    let mut stopped = short.clone();
    stopped.status = RunStatus::failed(Stage::Interrupted, "SIGINT");
    assert!(belongs(&stopped, false));
    stopped.status = RunStatus::failed(Stage::Boot, "no hello");
    assert!(!belongs(&stopped, false));
    assert!(belongs(&with_series(&ivs, false), false), "series only");
    assert!(!belongs(&test_record(), true), "no series at all");
}
