//! Change points of one metric of one series: where its level shifted from one directory on.
//!
//! # The rule
//!
//! For a split before point `k`, take up to [`WINDOW`] points on each side (`before`: the ones
//! before `k`, `after`: `k` and the ones after it); each side needs at least [`MIN_SIDE`]. The
//! split is a candidate when the two sides' medians differ
//!
//! 1. beyond the threshold and the floor of `pinlat compare`, read in the direction of the
//!    shift ([`compare::grew`]: up when `after` grew beyond `before`, down when `before` grew
//!    beyond `after`), and
//! 2. by more than [`SPREAD_FACTOR`] × the series' noise, the points' own spread: noise as
//!    large as the shift is not a shift. The noise is estimated from the whole series as the
//!    median absolute difference between neighbouring points × 1.4826 / √2 (the standard
//!    deviation it stands for under normal noise), which one level shift or one spike barely
//!    moves, unlike the spread of a few points on either side;
//!
//! 3. and the split is where the level changed: the last point before it lies on the old level's
//!    side of the midway level between the two medians, the first point after on the new one's,
//!    and at most one point of either side (a spike) lies on the other side of it.
//!
//! Of candidates closer than [`MIN_SIDE`] points the one that puts the most points on their own
//! side of the midway level wins (then the larger shift, then the earlier point), so one shift
//! is one change point.
//!
//! Medians of at least three points on each side make the rule blind to a single spike: one
//! outlier cannot move a median of three or more beyond the others. The price is that a shift in
//! the last two points is not a change point yet; the latest point is judged on its own against
//! the history ([`super::latest`]).

use crate::report::compare::{self, Options};

/// Points on each side of a split, at most.
pub const WINDOW: usize = 5;
/// Points on each side of a split, at least.
pub const MIN_SIDE: usize = 3;
/// How many times the series' noise ([`noise_ns`]) a shift must exceed.
pub const SPREAD_FACTOR: f64 = 4.0;

/// One level shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shift {
    /// Index (into the values given) of the first point of the new level.
    pub at: usize,
    /// Median of the points before, ns.
    pub before_ns: u64,
    /// Median of the points from `at` on, ns.
    pub after_ns: u64,
}

impl Shift {
    /// Whether the level went up.
    pub fn up(&self) -> bool {
        self.after_ns > self.before_ns
    }
}

/// The median of `v` (the mean of the two middle values for an even count, rounded half up);
/// 0 for none.
pub fn median(v: &[u64]) -> u64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    let n = s.len();
    match n {
        0 => 0,
        _ if n % 2 == 1 => s[n / 2],
        _ => (u128::from(s[n / 2 - 1]) + u128::from(s[n / 2])).div_ceil(2) as u64,
    }
}

/// The noise of a series, ns: the median absolute difference between neighbouring points,
/// scaled to the standard deviation of normal noise (× 1.4826, the MAD's factor, / √2 for a
/// difference of two points). A level shift or a spike changes one or two of the differences,
/// which the median ignores.
pub fn noise_ns(values: &[u64]) -> f64 {
    let d: Vec<u64> = values.windows(2).map(|w| w[0].abs_diff(w[1])).collect();
    median(&d) as f64 * 1.4826 / std::f64::consts::SQRT_2
}

/// A split that passed the rule, with its tie-break score.
struct Candidate {
    shift: Shift,
    /// Points on their own side of the midway level.
    separated: usize,
}

fn candidate(values: &[u64], k: usize, noise: f64, o: &Options) -> Option<Candidate> {
    let before = &values[k.saturating_sub(WINDOW)..k];
    let after = &values[k..(k + WINDOW).min(values.len())];
    if before.len() < MIN_SIDE || after.len() < MIN_SIDE {
        return None;
    }
    let (mb, ma) = (median(before), median(after));
    let beyond_threshold = if ma > mb {
        compare::grew(mb, ma, o)
    } else {
        compare::grew(ma, mb, o)
    };
    if !beyond_threshold || ma.abs_diff(mb) as f64 <= SPREAD_FACTOR * noise {
        return None;
    }
    // Twice the midway level, so that it stays an integer.
    let mid2 = u128::from(mb) + u128::from(ma);
    let up = ma > mb;
    // On the side of the midway level of the level after the shift (`new`) or before it.
    let side = |x: &u64, new: bool| {
        let twice = u128::from(*x) * 2;
        if up == new {
            twice > mid2
        } else {
            twice < mid2
        }
    };
    let old_side = |x: &u64| side(x, false);
    let new_side = |x: &u64| side(x, true);
    // The split is where the level changed: its last point before is on the old level's side
    // of the midway level, its first point after on the new one's, and at most one point of
    // either side (a spike) is on the other's.
    let wrong_before = before.iter().filter(|x| !old_side(x)).count();
    let wrong_after = after.iter().filter(|x| !new_side(x)).count();
    if !(old_side(&values[k - 1]) && new_side(&values[k])) || wrong_before > 1 || wrong_after > 1 {
        return None;
    }
    let separated = before.iter().filter(|x| old_side(x)).count()
        + after.iter().filter(|x| new_side(x)).count();
    Some(Candidate {
        shift: Shift {
            at: k,
            before_ns: mb,
            after_ns: ma,
        },
        separated,
    })
}

/// The rule in one sentence, for the outputs.
pub fn rule_text() -> String {
    format!(
        "the median of up to {WINDOW} points from a directory on differs from the median of up to {WINDOW} before it (at least {MIN_SIDE} on each side) beyond the threshold and the floor and by more than {SPREAD_FACTOR} × the series' noise (the median difference between neighbouring points, scaled to a standard deviation), with the last point before on the old level's side of the midway level, the first point after on the new one's and at most one point of either side beyond it; a single spike is not a level shift"
    )
}

/// The change points of `values` (one metric of one series, in trend order, only the points
/// that measured it), in order.
pub fn change_points(values: &[u64], o: &Options) -> Vec<Shift> {
    let noise = noise_ns(values);
    let mut cands: Vec<Candidate> = (MIN_SIDE..=values.len().saturating_sub(MIN_SIDE))
        .filter_map(|k| candidate(values, k, noise, o))
        .collect();
    cands.sort_by(|a, b| {
        b.separated
            .cmp(&a.separated)
            .then(
                b.shift
                    .after_ns
                    .abs_diff(b.shift.before_ns)
                    .cmp(&a.shift.after_ns.abs_diff(a.shift.before_ns)),
            )
            .then(a.shift.at.cmp(&b.shift.at))
    });
    let mut kept: Vec<Shift> = Vec::new();
    for c in cands {
        if kept.iter().all(|s| s.at.abs_diff(c.shift.at) >= MIN_SIDE) {
            kept.push(c.shift);
        }
    }
    kept.sort_by_key(|s| s.at);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compare::DEFAULT_MIN_DELTA_NS;
    use proptest::prelude::*;

    /// 10 % and no floor: the tests speak in small numbers.
    fn o() -> Options {
        Options {
            threshold_pct: 10.0,
            min_delta_ns: 0,
            allow_missing: false,
        }
    }

    /// `n` values around `level` with uniform noise of ± `noise` (deterministic).
    fn noisy(seed: u64, n: usize, level: u64, noise: u64) -> Vec<u64> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                level - noise + (x >> 33) % (2 * noise + 1)
            })
            .collect()
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), 0);
        assert_eq!(median(&[5]), 5);
        assert_eq!(median(&[9, 1, 5]), 5);
        assert_eq!(median(&[1, 2]), 2);
        assert_eq!(median(&[u64::MAX, u64::MAX]), u64::MAX);
    }

    #[test]
    fn a_clean_step_is_one_change_point_at_its_first_point() {
        let mut v = vec![100; 8];
        v.extend([200; 8]);
        assert_eq!(
            change_points(&v, &o()),
            [Shift {
                at: 8,
                before_ns: 100,
                after_ns: 200
            }]
        );
        // Down as well as up.
        v.reverse();
        let s = change_points(&v, &o());
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].at, s[0].up()), (8, false));
    }

    #[test]
    fn a_flat_series_has_none() {
        assert!(change_points(&[100; 20], &o()).is_empty());
        assert!(change_points(&[], &o()).is_empty());
        assert!(change_points(&[100, 900], &o()).is_empty());
    }

    #[test]
    fn a_single_spike_is_not_a_change_point() {
        for at in 0..12 {
            let mut v = vec![100; 12];
            v[at] = 100_000;
            assert!(change_points(&v, &o()).is_empty(), "spike at {at}");
            let mut v = noisy(at as u64, 12, 1_000, 50);
            v[at] = 0;
            assert!(change_points(&v, &o()).is_empty(), "dip at {at}");
        }
    }

    #[test]
    fn a_step_with_noise_and_spikes_is_found_once() {
        for seed in 0..50 {
            let mut v = noisy(seed, 10, 1_000, 50);
            v.extend(noisy(seed + 1_000, 10, 1_500, 50));
            v[4] = 9_000;
            v[15] = 40_000;
            let s = change_points(&v, &o());
            assert_eq!(s.len(), 1, "seed {seed}: {v:?} {s:?}");
            assert_eq!(s[0].at, 10, "seed {seed}: {v:?}");
            assert!(s[0].up());
        }
    }

    #[test]
    fn two_steps_are_two_change_points() {
        let mut v = vec![100; 6];
        v.extend([300; 6]);
        v.extend([150; 6]);
        let s = change_points(&v, &o());
        assert_eq!(s.iter().map(|s| s.at).collect::<Vec<_>>(), [6, 12]);
        assert_eq!((s[0].up(), s[1].up()), (true, false));
    }

    /// A shift smaller than the threshold, below the floor, or within the noise is none.
    #[test]
    fn small_or_noisy_shifts_are_not_change_points() {
        let mut v = vec![1_000; 6];
        v.extend([1_080; 6]);
        assert!(change_points(&v, &o()).is_empty(), "8 % < 10 %");
        let mut v = vec![1_000; 6];
        v.extend([1_400; 6]);
        let floor = Options {
            min_delta_ns: DEFAULT_MIN_DELTA_NS,
            ..o()
        };
        assert!(change_points(&v, &floor).is_empty(), "400 ns < 500 ns");
        assert_eq!(change_points(&v, &o()).len(), 1);
        // ±40 % noise: a 30 % shift is within the spread.
        let mut v = noisy(7, 8, 1_000, 400);
        v.extend(noisy(8, 8, 1_300, 400));
        assert!(change_points(&v, &o()).is_empty(), "{v:?}");
    }

    /// The last two points alone never make a change point: that is the latest's judgement.
    #[test]
    fn a_shift_in_the_last_two_points_waits_for_a_third() {
        let mut v = vec![100; 8];
        v.extend([200; 2]);
        assert!(change_points(&v, &o()).is_empty());
        v.push(200);
        assert_eq!(change_points(&v, &o())[0].at, 8);
    }

    /// Noise far beyond the threshold without a shift: a false change point in at most 1 of 100
    /// series of 40 points (2,000 deterministic series per noise level).
    #[test]
    fn false_alarms_on_pure_noise_are_rare() {
        for noise in [100, 300, 800] {
            let alarmed = (0..2_000)
                .filter(|seed| !change_points(&noisy(*seed, 40, 1_000, noise), &o()).is_empty())
                .count();
            assert!(alarmed <= 20, "±{noise} ns around 1 µs: {alarmed} of 2000");
        }
    }

    proptest! {
        /// Noise within ± 4 % of a level never crosses a 10 % threshold, whatever the spikes.
        #[test]
        fn noise_below_the_threshold_with_one_spike_has_no_change_point(
            seed in 0u64..10_000, n in 0usize..40, spike in 0usize..40, height in 0u64..1_000_000,
        ) {
            let mut v = noisy(seed, n, 10_000, 400);
            if spike < n {
                v[spike] = height;
            }
            prop_assert!(change_points(&v, &o()).is_empty(), "{:?}", v);
        }

        /// A step far beyond the threshold and the noise is found, at its place.
        #[test]
        fn a_large_step_is_found_where_it_is(seed in 0u64..10_000, k in 3usize..17, up in any::<bool>()) {
            let (a, b) = if up { (10_000, 20_000) } else { (20_000, 10_000) };
            let mut v = noisy(seed, k, a, 500);
            v.extend(noisy(seed + 1, 20 - k, b, 500));
            let s = change_points(&v, &o());
            prop_assert_eq!(s.len(), 1, "{:?}", v);
            prop_assert_eq!(s[0].at, k);
            prop_assert_eq!(s[0].up(), up);
        }
    }
}
