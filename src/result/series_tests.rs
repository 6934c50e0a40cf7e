use proptest::prelude::*;

use super::*;
use crate::config::WorkloadKind;

const S: u64 = 1_000_000_000;

/// Interval `i` of CPU 1 (1 s long) holding `values`, and `overflow` samples beyond range.
fn iv(i: u64, values: &[u64], overflow: u64) -> IntervalReport {
    let mut h = new_histogram();
    for &v in values {
        h.record(v).unwrap();
    }
    IntervalReport {
        cpu: 1,
        workload: WorkloadKind::Timer,
        index: i,
        start_offset_ns: i * S,
        end_offset_ns: (i + 1) * S,
        samples: values.len() as u64 + overflow,
        overflow,
        histogram: Hist(h),
    }
}

#[test]
fn a_point_per_interval_until_the_bound() {
    let mut s = CpuSeries::new(1, 8, true);
    for i in 0..8 {
        s.push(&iv(i, &[1_000 + i, 2_000], 0));
    }
    assert_eq!(s.width, 1);
    assert_eq!(s.points.len(), 8);
    assert_eq!(s.points[3].start_offset_ns, 3 * S);
    assert_eq!(s.points[3].samples, 2);
    assert_eq!(s.points[3].max_ns, Some(2_000));
}

#[test]
fn coarsening_merges_pairs_and_keeps_the_largest_max_and_p99() {
    let mut s = CpuSeries::new(1, 4, false);
    // Interval 2 holds the run's largest sample.
    for i in 0..5 {
        let big = if i == 2 { 5_000_000 } else { 10_000 };
        s.push(&iv(i, &[100, big], 0));
    }
    assert_eq!(s.width, 2);
    assert_eq!(s.points.len(), 3);
    let p = s.points[1];
    assert_eq!((p.start_offset_ns, p.end_offset_ns), (2 * S, 4 * S));
    assert_eq!(p.intervals, 2);
    assert_eq!(p.samples, 4);
    let top = new_histogram().highest_equivalent(5_000_000);
    assert_eq!(p.max_ns, Some(top));
    assert_eq!(s.max_ns(), Some(top));
    // The p99 of 2 samples is the larger one: the worst interval's.
    assert_eq!(p.p99_ns, Some(top));
    // The last point is still filling: one interval of two.
    assert_eq!(s.points[2].intervals, 1);
    s.push(&iv(5, &[7], 0));
    assert_eq!(s.points.len(), 3);
    assert_eq!(s.points[2].intervals, 2);
}

#[test]
fn overflow_is_counted_and_a_point_of_only_overflow_has_no_max() {
    let mut s = CpuSeries::new(1, 4, true);
    s.push(&iv(0, &[], 3));
    assert_eq!(s.points[0].max_ns, None);
    assert_eq!(s.points[0].p99_ns, None);
    assert_eq!(s.overflow(), 3);
    assert_eq!(s.samples(), 3);
    s.push(&iv(1, &[5], 0));
    assert_eq!(s.samples(), 4);
}

#[test]
fn merged_is_the_exact_sum_of_the_interval_histograms() {
    let mut s = CpuSeries::new(1, 2, true);
    let mut all = new_histogram();
    for i in 0..9 {
        let v = [i * 1_000 + 1, 77, 123_456 + i];
        for x in v {
            all.record(x).unwrap();
        }
        s.push(&iv(i, &v, 0));
    }
    assert_eq!(s.merged.as_ref().unwrap().0, all);
    assert!(CpuSeries::new(1, 2, false).merged.is_none());
}

#[test]
fn serde_round_trip_keeps_every_field() {
    let mut s = CpuSeries::new(3, 4, true);
    for i in 0..7 {
        s.push(&iv(i, &[i + 1, 40_000], i % 2));
    }
    let json = serde_json::to_string(&s).unwrap();
    let back: CpuSeries = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    s.merged = None;
    let json = serde_json::to_string(&s).unwrap();
    assert!(!json.contains("merged"), "{json}");
}

proptest! {
    // Each case decodes hundreds of full-range histograms: fewer cases, as many lengths.
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Whatever the run's length and the bound: at most `max_points` points, every interval
    /// counted once, the samples summed, the maximum and the largest interval p99 kept, the
    /// points in time order and covering the whole run.
    #[test]
    fn bounded_and_lossless_for_the_max(
        maxes in prop::collection::vec(1u64..10_000_000_000, 1..200),
        bound in 2usize..40,
    ) {
        let mut s = CpuSeries::new(1, bound, false);
        let mut biggest = 0;
        let mut worst_p99 = 0;
        for (i, &m) in maxes.iter().enumerate() {
            let one = iv(i as u64, &[1, m], 0);
            let p = SeriesPoint::of(&one);
            biggest = biggest.max(p.max_ns.unwrap());
            worst_p99 = worst_p99.max(p.p99_ns.unwrap());
            s.push(&one);
            prop_assert!(s.points.len() <= bound);
        }
        prop_assert_eq!(s.intervals, maxes.len() as u64);
        prop_assert_eq!(s.points.iter().map(|p| u64::from(p.intervals)).sum::<u64>(), s.intervals);
        prop_assert_eq!(s.samples(), 2 * maxes.len() as u64);
        prop_assert_eq!(s.max_ns(), Some(biggest));
        prop_assert_eq!(s.points.iter().filter_map(|p| p.p99_ns).max(), Some(worst_p99));
        prop_assert_eq!(s.points[0].start_offset_ns, 0);
        prop_assert_eq!(s.end_offset_ns(), maxes.len() as u64 * S);
        for w in s.points.windows(2) {
            prop_assert_eq!(w[0].end_offset_ns, w[1].start_offset_ns);
            prop_assert_eq!(w[0].intervals, s.width);
        }
        prop_assert!(s.width.is_power_of_two());
    }
}
