//! Percentiles by rank, and the one latency summary every consumer uses (the report, the
//! agent's native summary line through [`crate::wire::CpuResult::summary`], calibrate's noise
//! floor).
//!
//! # Percentiles by rank
//!
//! The q-th percentile of n samples is the k-th smallest sample with k = ⌈q·n⌉, at least 1 (the
//! nearest-rank definition, HdrHistogram's `getValueAtPercentile`). pinlat computes k in integer
//! arithmetic from q in parts per million ([`rank`]) and walks the histogram's counts up to it
//! ([`percentiles`]); it never hands HdrHistogram a floating-point quantile. Turning a rank into
//! a quantile and letting `value_at_quantile` multiply it back comes out one rank high for about
//! 3 % of (rank, n) pairs (⌈(7/25)·25⌉ is 8 in `f64`).
//!
//! Samples above the histogram's range (overflow, [`super::HIGHEST_TRACKABLE_NS`]) rank above
//! every recorded sample: a rank among them has no value — "overflow" — never a value below it.
//! A value is the highest equivalent value of the HDR bucket holding the rank (within 0.1 %),
//! bounded by the exact largest sample the recorder kept.
//!
//! # Max-bound percentiles
//!
//! p99.99 of 5,000 samples is the largest sample: a percentile with fewer than
//! [`MAX_BOUND_BEYOND`] samples beyond it is decided by the few largest samples, as the max is,
//! and a change in it is a change in one or two samples. Every [`Percentile`] says how many
//! samples lie beyond it and whether it is max-bound; verdicts and `pinlat compare` do not rest
//! on a max-bound percentile.

use std::fmt;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// A percentile with fewer samples than this beyond it is max-bound.
pub const MAX_BOUND_BEYOND: u64 = 10;

/// Parts per million: the unit percentiles are computed in (99.99 % = 999 900 ppm).
pub const PPM: u64 = 1_000_000;

/// One of the percentiles every summary shows, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Quantile {
    /// The median.
    #[serde(rename = "p50")]
    P50,
    /// The 90th percentile.
    #[serde(rename = "p90")]
    P90,
    /// The 99th percentile.
    #[serde(rename = "p99")]
    P99,
    /// The 99.9th percentile.
    #[serde(rename = "p99.9")]
    P999,
    /// The 99.99th percentile.
    #[serde(rename = "p99.99")]
    P9999,
}

impl Quantile {
    /// Every shown percentile, lowest first.
    pub const ALL: [Quantile; 5] = [
        Quantile::P50,
        Quantile::P90,
        Quantile::P99,
        Quantile::P999,
        Quantile::P9999,
    ];

    /// The quantile in parts per million.
    pub const fn ppm(self) -> u64 {
        match self {
            Quantile::P50 => 500_000,
            Quantile::P90 => 900_000,
            Quantile::P99 => 990_000,
            Quantile::P999 => 999_000,
            Quantile::P9999 => 999_900,
        }
    }

    /// `p50` … `p99.99`, as every output labels it.
    pub const fn label(self) -> &'static str {
        match self {
            Quantile::P50 => "p50",
            Quantile::P90 => "p90",
            Quantile::P99 => "p99",
            Quantile::P999 => "p99.9",
            Quantile::P9999 => "p99.99",
        }
    }
}

impl fmt::Display for Quantile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A percentile given in percent (`99.99`) as parts per million, rounded to the nearest ppm and
/// clamped to 0..=[`PPM`].
pub fn ppm_of_percent(percent: f64) -> u64 {
    if percent.is_nan() {
        return 0;
    }
    (percent.clamp(0.0, 100.0) * 10_000.0).round() as u64
}

/// The 1-based rank of the `ppm` quantile among `n` samples: ⌈ppm·n / 10⁶⌉, at least 1, exact.
pub fn rank(n: u64, ppm: u64) -> u64 {
    let k = (u128::from(n) * u128::from(ppm.min(PPM))).div_ceil(u128::from(PPM));
    (k as u64).max(1)
}

/// One percentile of a set of samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentile {
    /// The value, ns: the highest equivalent of the HDR bucket holding the rank, bounded by the
    /// exact largest sample; 0 when there are no samples. `None`: the rank lies in the overflow
    /// above the histogram's range.
    pub value_ns: Option<u64>,
    /// Samples above the value (above its HDR bucket), overflow included; for a value in the
    /// overflow, the samples ranked above it.
    pub samples_beyond: u64,
    /// Fewer than [`MAX_BOUND_BEYOND`] samples lie beyond it: it is decided by the few largest
    /// samples, as the max is, and nothing is judged on it alone.
    pub max_bound: bool,
}

impl fmt::Display for Percentile {
    /// The value in ns, or `overflow`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value_ns {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("overflow"),
        }
    }
}

/// The percentiles at `ppms` (any order) of `h` plus `overflow` samples above its range, each
/// bounded by `max_ns`, the exact largest sample. One walk over the histogram's counts.
pub fn percentiles(
    h: &Histogram<u64>,
    overflow: u64,
    max_ns: u64,
    ppms: &[u64],
) -> Vec<Percentile> {
    let total = h.len() + overflow;
    if total == 0 {
        return vec![Percentile::default(); ppms.len()];
    }
    let mut order: Vec<(usize, u64)> = ppms
        .iter()
        .enumerate()
        .map(|(i, &p)| (i, rank(total, p)))
        .collect();
    order.sort_by_key(|&(_, k)| k);
    let mut out = vec![Percentile::default(); ppms.len()];
    let mut wanted = order.into_iter().peekable();
    let mut below = 0u64;
    for v in h.iter_recorded() {
        below += v.count_at_value();
        while let Some(&(i, _)) = wanted.peek().filter(|&&(_, k)| k <= below) {
            out[i] = made(Some(v.value_iterated_to().min(max_ns)), total - below);
            wanted.next();
        }
    }
    // Ranks beyond the recorded samples lie in the overflow.
    for (i, k) in wanted {
        out[i] = made(None, total - k);
    }
    out
}

fn made(value_ns: Option<u64>, samples_beyond: u64) -> Percentile {
    Percentile {
        value_ns,
        samples_beyond,
        max_bound: samples_beyond < MAX_BOUND_BEYOND,
    }
}

/// The percentile at `ppm` (see [`percentiles`]).
pub fn percentile(h: &Histogram<u64>, overflow: u64, max_ns: u64, ppm: u64) -> Percentile {
    percentiles(h, overflow, max_ns, &[ppm])[0]
}

/// Latency summary of a set of samples: counts, exact extremes, the shown percentiles by rank
/// with the overflow counted above the range, mean and deviation. All latencies in ns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Samples, overflow included.
    pub samples: u64,
    /// Samples above the histogram's range (~60 s): in `samples` and `max_ns`, ranked above
    /// every recorded sample, not in the histogram.
    pub overflow: u64,
    /// Measured time behind the samples, ns (0 when unknown): per RT vCPU the sum of its runs'
    /// recording phases; for several RT vCPUs, the sum over runs of the longest one's.
    pub duration_ns: u64,
    /// Smallest sample, ns (exact; 0 when there are none).
    pub min_ns: u64,
    /// Median.
    pub p50_ns: Percentile,
    /// 90th percentile.
    pub p90_ns: Percentile,
    /// 99th percentile.
    pub p99_ns: Percentile,
    /// 99.9th percentile.
    pub p999_ns: Percentile,
    /// 99.99th percentile.
    pub p9999_ns: Percentile,
    /// Largest sample, ns (exact, even if it overflowed the histogram; 0 when there are none).
    pub max_ns: u64,
    /// Mean of the histogram, ns, rounded to the nearest ns (overflow excluded).
    pub mean_ns: u64,
    /// Standard deviation of the histogram, ns, rounded to the nearest ns (overflow excluded).
    pub stddev_ns: u64,
}

impl Summary {
    /// The summary of the samples in `h` plus `overflow` samples above its range, whose exact
    /// smallest and largest are `min_ns` and `max_ns`, measured over `duration_ns`.
    pub fn new(
        h: &Histogram<u64>,
        overflow: u64,
        min_ns: u64,
        max_ns: u64,
        duration_ns: u64,
    ) -> Summary {
        let samples = h.len() + overflow;
        let ppms = Quantile::ALL.map(Quantile::ppm);
        let p = percentiles(h, overflow, max_ns, &ppms);
        let (mean_ns, stddev_ns) = if h.is_empty() {
            (0, 0)
        } else {
            (h.mean().round() as u64, h.stdev().round() as u64)
        };
        Summary {
            samples,
            overflow,
            duration_ns,
            min_ns: if samples == 0 { 0 } else { min_ns },
            p50_ns: p[0],
            p90_ns: p[1],
            p99_ns: p[2],
            p999_ns: p[3],
            p9999_ns: p[4],
            max_ns: if samples == 0 { 0 } else { max_ns },
            mean_ns,
            stddev_ns,
        }
    }

    /// One shown percentile.
    pub fn at(&self, q: Quantile) -> Percentile {
        match q {
            Quantile::P50 => self.p50_ns,
            Quantile::P90 => self.p90_ns,
            Quantile::P99 => self.p99_ns,
            Quantile::P999 => self.p999_ns,
            Quantile::P9999 => self.p9999_ns,
        }
    }

    /// A percentile as a number, ns: its value, or for one in the overflow the exact largest
    /// sample (the least upper bound known). For callers that need a number, such as
    /// calibrate's noise floor.
    pub fn ns_or_max(&self, q: Quantile) -> u64 {
        self.at(q).value_ns.unwrap_or(self.max_ns)
    }
}

/// The summary of a histogram alone: no overflow, extremes at the histogram's precision, no
/// duration. Prefer [`Summary::new`] when the exact extremes are known.
pub fn summarize(h: &Histogram<u64>) -> Summary {
    if h.is_empty() {
        return Summary::default();
    }
    Summary::new(h, 0, h.min(), h.max(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histo::{new_histogram, HIGHEST_TRACKABLE_NS};
    use proptest::prelude::*;

    #[test]
    fn ranks_are_exact() {
        assert_eq!(rank(5_000, Quantile::P9999.ppm()), 5_000);
        assert_eq!(rank(5_000, Quantile::P999.ppm()), 4_995);
        assert_eq!(rank(10_000, Quantile::P9999.ppm()), 9_999);
        assert_eq!(rank(1, Quantile::P50.ppm()), 1);
        assert_eq!(rank(0, Quantile::P50.ppm()), 1);
        assert_eq!(rank(26, 250_000), 7);
        assert_eq!(ppm_of_percent(99.99), 999_900);
        assert_eq!(ppm_of_percent(99.999), 999_990);
    }

    /// 25 samples 1..=25 plus one overflowed: p25 is rank ⌈0.25·26⌉ = 7, the value 7. Through a
    /// quantile (7/25 = 0.28, × 25 = 7.000000000000001 in f64) HdrHistogram answers 8.
    #[test]
    fn a_rank_never_comes_out_one_high_with_overflow() {
        let mut h = new_histogram();
        for v in 1..=25u64 {
            h.record(v).unwrap();
        }
        assert_eq!(h.value_at_quantile(7.0 / 25.0), 8, "the float path's error");
        let p = percentile(&h, 1, 70_000_000_000, 250_000);
        assert_eq!(p.value_ns, Some(7));
        assert_eq!(p.samples_beyond, 19);
    }

    #[test]
    fn a_rank_in_the_overflow_is_overflow() {
        let mut h = new_histogram();
        for v in 1..=99u64 {
            h.record(v).unwrap();
        }
        let at = |ppm| percentile(&h, 1, 70_000_000_000, ppm);
        assert_eq!(at(500_000).value_ns, Some(50));
        // 99 in range + 1 overflow: p99 is the 99th sample, p99.9 the overflowed one.
        assert_eq!(at(990_000).value_ns, Some(99));
        assert_eq!(at(999_000).value_ns, None);
        assert_eq!(at(999_000).samples_beyond, 0);
        assert!(at(999_000).max_bound);
        assert_eq!(
            percentile(&new_histogram(), 0, 0, 500_000),
            Percentile::default()
        );
    }

    /// p99.99 of 5,000 samples is the largest sample: max-bound. p99 of them has 50 beyond it.
    #[test]
    fn max_bound_when_fewer_than_ten_samples_lie_beyond() {
        let mut h = new_histogram();
        for v in 1..=5_000u64 {
            h.record(v * 10).unwrap();
        }
        let s = Summary::new(&h, 0, 10, 50_000, 0);
        assert_eq!(s.p9999_ns.value_ns, Some(50_000));
        assert_eq!(s.p9999_ns.samples_beyond, 0);
        assert!(s.p9999_ns.max_bound);
        assert!(s.p999_ns.max_bound, "{:?}", s.p999_ns);
        assert!(!s.p99_ns.max_bound);
        assert!(s.p99_ns.samples_beyond >= 49, "{:?}", s.p99_ns);
    }

    #[test]
    fn summary_counts_overflow_and_is_bounded_by_the_exact_max() {
        let mut h = new_histogram();
        h.record_n(1_000_003, 10).unwrap();
        // HDR alone reports the bucket's top, above anything recorded.
        assert!(h.value_at_quantile(0.5) > 1_000_003);
        let s = Summary::new(&h, 0, 1_000_003, 1_000_003, 5);
        assert_eq!(s.p50_ns.value_ns, Some(1_000_003));
        assert_eq!(s.p9999_ns.value_ns, Some(1_000_003));
        assert_eq!((s.samples, s.duration_ns), (10, 5));
        // 10 in range, 1 overflowed: p99 (rank 11) is in the overflow.
        let s = Summary::new(&h, 1, 1_000_003, 70_000_000_000, 0);
        assert_eq!(s.samples, 11);
        // Bounded by the max only: here the bucket's top.
        assert_eq!(s.p90_ns.value_ns, Some(h.highest_equivalent(1_000_003)));
        assert_eq!(s.p99_ns.value_ns, None);
        assert_eq!(s.ns_or_max(Quantile::P99), 70_000_000_000);
        assert_eq!(s.p99_ns.to_string(), "overflow");
        assert_eq!(summarize(&new_histogram()), Summary::default());
    }

    fn sample() -> impl Strategy<Value = u64> {
        prop_oneof![
            8 => 1u64..2_000,
            4 => 1u64..5_000_000,
            2 => 1u64..HIGHEST_TRACKABLE_NS,
            1 => HIGHEST_TRACKABLE_NS..4 * HIGHEST_TRACKABLE_NS,
        ]
    }

    proptest! {
        /// Against the exact sorted samples: the answer is the HDR bucket of the k-th smallest
        /// sample (k = ⌈q·n⌉), bounded by the exact max, or overflow when that sample overflowed;
        /// the samples beyond are those above the bucket.
        #[test]
        fn percentiles_match_the_sorted_samples(
            values in proptest::collection::vec(sample(), 1..400),
            extra_ppm in 0u64..=PPM,
        ) {
            let mut h = new_histogram();
            let mut overflow = 0;
            let mut refused = u64::MAX;
            for &v in &values {
                if h.record(v).is_err() {
                    overflow += 1;
                    refused = refused.min(v);
                }
            }
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let n = sorted.len() as u64;
            let max = *sorted.last().unwrap();
            let mut ppms: Vec<u64> = Quantile::ALL.map(Quantile::ppm).to_vec();
            ppms.push(extra_ppm);
            let got = percentiles(&h, overflow, max, &ppms);
            for (ppm, p) in ppms.iter().zip(got) {
                // ⌈q·n⌉ by exact rational arithmetic, independently of `rank`.
                let mut k = 1;
                while k * PPM < n * ppm {
                    k += 1;
                }
                let exact = sorted[k as usize - 1];
                let in_range = exact < refused;
                if in_range {
                    let top = h.highest_equivalent(exact);
                    prop_assert_eq!(p.value_ns, Some(top.min(max)), "ppm {} k {}", ppm, k);
                    let beyond = sorted.iter().filter(|&&s| s > top).count() as u64;
                    prop_assert_eq!(p.samples_beyond, beyond);
                } else {
                    prop_assert_eq!(p.value_ns, None, "ppm {} k {}", ppm, k);
                    prop_assert_eq!(p.samples_beyond, n - k);
                }
                prop_assert_eq!(p.max_bound, p.samples_beyond < MAX_BOUND_BEYOND);
            }
        }
    }
}
