use super::*;
use crate::histo::Summary;
use crate::report::compare::DEFAULT_MIN_DELTA_NS;
use crate::wire::ClockSource;

fn pct(v: u64) -> Percentile {
    Percentile {
        value_ns: Some(v),
        samples_beyond: 100,
        max_bound: false,
    }
}

/// Every percentile at `v` ns (not max-bound), the max at 3 × `v`.
fn summary(v: u64) -> Summary {
    Summary {
        samples: 1_000_000,
        p50_ns: pct(v),
        p90_ns: pct(v),
        p99_ns: pct(v),
        p999_ns: pct(v),
        p9999_ns: pct(v),
        max_ns: 3 * v,
        ..Summary::default()
    }
}

fn measured(v: u64) -> SeriesPoint {
    SeriesPoint {
        status: PointStatus::Measured,
        ok_runs: 2,
        failed_runs: 0,
        clocks: vec![ClockSource::Tsc],
        stats: Some(summary(v)),
    }
}

fn failed() -> SeriesPoint {
    SeriesPoint {
        status: PointStatus::Failed {
            cause: "guest kernel panic during boot".into(),
        },
        ok_runs: 0,
        failed_runs: 2,
        clocks: Vec::new(),
        stats: None,
    }
}

fn defaults() -> Options {
    Options::with_threshold(10.0)
}

fn series(history: &[u64], latest: SeriesPoint) -> Vec<SeriesPoint> {
    let mut v: Vec<SeriesPoint> = history.iter().map(|x| measured(*x)).collect();
    v.push(latest);
    v
}

#[test]
fn the_latest_regresses_beyond_the_threshold_and_the_floor_of_the_median() {
    let l = judge(
        &series(&[10_000, 10_100, 9_900, 10_000], measured(12_000)),
        &defaults(),
    )
    .unwrap();
    assert!(l.regression);
    assert_eq!(l.history, 4);
    assert_eq!(l.changes.len(), Quantile::ALL.len());
    let c = &l.changes[0];
    assert_eq!((c.base_ns, c.new_ns), (Some(10_000), Some(12_000)));
    assert_eq!(l.max_ns, Some((30_000, 36_000)));
    // 5 % is within the threshold.
    let l = judge(
        &series(&[10_000, 10_100, 9_900], measured(10_500)),
        &defaults(),
    )
    .unwrap();
    assert!(!l.regression, "{l:?}");
    // +40 % but 400 ns: below compare's floor.
    let l = judge(&series(&[1_000, 1_000], measured(1_400)), &defaults()).unwrap();
    assert!(!l.regression);
    assert_eq!(defaults().min_delta_ns, DEFAULT_MIN_DELTA_NS);
    // Better is never a regression.
    let l = judge(&series(&[10_000], measured(5_000)), &defaults()).unwrap();
    assert!(!l.regression);
}

/// The median, not the mean: one bad build in the history does not raise the bar.
#[test]
fn a_spike_in_the_history_does_not_move_the_median() {
    let l = judge(
        &series(&[10_000, 10_000, 90_000, 10_000, 10_000], measured(12_000)),
        &defaults(),
    )
    .unwrap();
    assert_eq!(l.changes[0].base_ns, Some(10_000));
    assert!(l.regression);
    // An even count: the mean of the two middle values.
    let l = judge(&series(&[10_000, 11_000], measured(11_000)), &defaults()).unwrap();
    assert_eq!(l.changes[0].base_ns, Some(10_500));
}

#[test]
fn a_max_bound_percentile_is_shown_not_judged() {
    let mut latest = measured(10_000);
    let s = latest.stats.as_mut().unwrap();
    s.p9999_ns = Percentile {
        value_ns: Some(90_000),
        samples_beyond: 3,
        max_bound: true,
    };
    let l = judge(&series(&[10_000, 10_000], latest), &defaults()).unwrap();
    let c = l
        .changes
        .iter()
        .find(|c| c.metric == Quantile::P9999)
        .unwrap();
    assert!(!c.regression);
    assert!(
        c.not_judged.as_deref().unwrap().contains("max-bound"),
        "{c:?}"
    );
    assert!(!l.regression);
    // A history whose median point is max-bound is not judged either.
    let mut h = measured(10_000);
    h.stats.as_mut().unwrap().p9999_ns.samples_beyond = 2;
    let l = judge(&[h.clone(), h, measured(90_000)], &defaults()).unwrap();
    let c = &l.changes[Quantile::ALL.len() - 1];
    assert!(c.not_judged.is_some() && !c.regression, "{c:?}");
    assert!(l.regression, "p50 still regressed: {l:?}");
}

#[test]
fn points_of_another_clock_are_left_out_and_none_left_is_not_comparable() {
    let mut mono = measured(50_000);
    mono.clocks = vec![ClockSource::Monotonic];
    let l = judge(
        &[
            measured(10_000),
            mono.clone(),
            measured(10_000),
            measured(10_200),
        ],
        &defaults(),
    )
    .unwrap();
    assert_eq!((l.history, l.other_clock), (2, 1));
    assert!(!l.regression);
    let l = judge(&[measured(10_000), mono], &defaults()).unwrap();
    assert!(l.changes.is_empty());
    assert_eq!(
        l.not_judged.as_deref(),
        Some("clocks differ (BASE: tsc, NEW: monotonic)")
    );
    assert!(!l.regression);
}

#[test]
fn a_latest_that_failed_or_is_absent_lost_the_series() {
    let l = judge(&series(&[10_000, 10_000], failed()), &defaults()).unwrap();
    assert!(l.regression);
    assert_eq!(
        l.lost.as_deref(),
        Some("2 of 2 runs failed in the latest directory (guest kernel panic during boot)")
    );
    let allowed = Options {
        allow_missing: true,
        ..defaults()
    };
    let l = judge(&series(&[10_000, 10_000], failed()), &allowed).unwrap();
    assert!(!l.regression && l.lost.is_some());
    let l = judge(&series(&[10_000], SeriesPoint::absent()), &defaults()).unwrap();
    assert_eq!(l.lost.as_deref(), Some("absent in the latest directory"));
    assert!(l.regression);
    // One failed run more than the history's median point.
    let mut partial = measured(10_000);
    partial.failed_runs = 1;
    let l = judge(&series(&[10_000, 10_000], partial.clone()), &defaults()).unwrap();
    assert!(l.regression);
    assert!(l.lost.unwrap().starts_with("1 of 3 runs failed"));
    // A history that failed as often is not beaten.
    let l = judge(&[partial.clone(), partial.clone(), partial], &defaults()).unwrap();
    assert!(!l.regression && l.lost.is_none());
}

#[test]
fn without_a_measured_history_nothing_is_judged() {
    let l = judge(&[measured(10_000)], &defaults()).unwrap();
    assert!(l.not_judged.unwrap().contains("no earlier point"));
    assert!(!l.regression);
    // Earlier points that failed are no history, and a failed latest then lost nothing.
    let l = judge(&[failed(), measured(10_000)], &defaults()).unwrap();
    assert_eq!(l.history, 0);
    let l = judge(&[failed(), failed()], &defaults()).unwrap();
    assert!(l.lost.is_none() && !l.regression);
    assert!(judge(&[], &defaults()).is_none());
}

#[test]
fn the_median_of_percentiles_ranks_the_overflow_highest() {
    let over = Percentile {
        value_ns: None,
        samples_beyond: 0,
        max_bound: true,
    };
    let m = median_percentile(&[pct(5), over, pct(7)]);
    assert_eq!(m.value_ns, Some(7));
    assert_eq!(m.samples_beyond, 100);
    assert!(!m.max_bound);
    let m = median_percentile(&[pct(5), over]);
    assert_eq!(m.value_ns, None);
    assert!(m.max_bound, "the lower median of the samples beyond: 0");
}
