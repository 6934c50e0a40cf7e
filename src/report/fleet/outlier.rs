//! Outlier hosts: a host whose value for a layout × scenario × workload lies beyond the
//! fleet's spread for it.
//!
//! The rule is robust, so one bad host cannot hide itself by widening the spread it is judged
//! against: among the comparable hosts ([`super::compat::comparable`]: measured, the layout
//! placed as on most hosts, the accelerator and clock most of them have), with at least
//! [`MIN_HOSTS`] values, a host is an outlier when its value differs from the hosts' median by
//! more than the largest of
//! - [`K`] × 1.4826 × the median absolute deviation (MAD; × 1.4826 it estimates the standard
//!   deviation of normally spread values, so this is about [`K`] standard deviations);
//! - [`FLOOR_PCT`] % of the median;
//! - [`FLOOR_NS`] ns;
//!
//! the two floors keep hosts whose values are nearly the same (MAD near 0) from being flagged
//! for a difference nobody would act on. Both p99.9 and the max are judged, each on its own.
//! A value in the histogram's overflow lies beyond any limit: it is an outlier above whenever
//! the others have a median. Iglewicz and Hoaglin's modified z-score is the same rule with 3.5
//! in place of [`K`] and without the floors.

use serde::{Deserialize, Serialize};

use super::{compat, FleetReport};
use crate::config::WorkloadKind;
use crate::report::us;

/// Fewest comparable hosts with a value for a median to mean anything.
pub const MIN_HOSTS: usize = 3;
/// How many scaled MADs from the median a host must lie.
pub const K: u64 = 3;
/// The MAD's scale to a standard deviation of normally spread values, 1.4826, as a fraction
/// (numerator, denominator) so the limit is computed in integers.
pub const MAD_SCALE: (u64, u64) = (14_826, 10_000);
/// Relative floor of the limit, percent of the median.
pub const FLOOR_PCT: u64 = 25;
/// Absolute floor of the limit, ns.
pub const FLOOR_NS: u64 = 1_000;

/// What is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Metric {
    /// The 99.9th percentile.
    #[serde(rename = "p99.9")]
    P999,
    /// The largest sample.
    #[serde(rename = "max")]
    Max,
}

impl Metric {
    /// Both, in the order tables show them.
    pub const ALL: [Metric; 2] = [Metric::P999, Metric::Max];

    /// `p99.9` or `max`.
    pub fn label(self) -> &'static str {
        match self {
            Metric::P999 => "p99.9",
            Metric::Max => "max",
        }
    }
}

/// Above or below the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Worse than the fleet.
    Above,
    /// Better than the fleet (worth a look too: measured otherwise?).
    Below,
}

/// The fleet's spread of one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetSpread {
    /// Hosts with a value in range.
    pub hosts: usize,
    /// Median, ns.
    pub median_ns: u64,
    /// Median absolute deviation from the median, ns.
    pub mad_ns: u64,
    /// How far from the median a host may lie, ns.
    pub limit_ns: u64,
}

/// One outlier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outlier {
    /// The host.
    pub host: String,
    /// Layout.
    pub layout: String,
    /// Scenario.
    pub scenario: String,
    /// Workload.
    pub workload: WorkloadKind,
    /// What was judged.
    pub metric: Metric,
    /// The host's value, ns (`None`: overflow).
    pub value_ns: Option<u64>,
    /// Above or below.
    pub direction: Direction,
    /// The fleet's spread it was judged against.
    pub spread: FleetSpread,
}

impl Outlier {
    /// `lab7: vcpu0 idle × timer p99.9 412.000 µs, above the fleet's 21.000 µs ± 5.250 µs`.
    pub fn sentence(&self) -> String {
        format!(
            "{}: {} {} × {} {} {} µs, {} the fleet's median {} µs by more than {} µs ({} hosts)",
            self.host,
            self.layout,
            self.scenario,
            self.workload,
            self.metric.label(),
            self.value_ns.map_or("overflow".into(), us),
            match self.direction {
                Direction::Above => "above",
                Direction::Below => "below",
            },
            us(self.spread.median_ns),
            us(self.spread.limit_ns),
            self.spread.hosts
        )
    }
}

/// The rule in one sentence, for every output.
pub fn rule_text() -> String {
    format!(
        "A host is an outlier for a layout × scenario × workload when its p99.9 or max differs from the median of the comparable hosts (same placement, accelerator and clock; at least {MIN_HOSTS}) by more than the largest of {K} × 1.4826 × their median absolute deviation, {FLOOR_PCT} % of the median, and {} µs; a value in the overflow is always beyond.",
        us(FLOOR_NS)
    )
}

/// The median of sorted values (the mean of the two middle ones, rounded down, when even).
fn median(sorted: &[u64]) -> u64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        // Both halves, without overflow.
        sorted[n / 2 - 1] / 2 + sorted[n / 2] / 2 + (sorted[n / 2 - 1] % 2 + sorted[n / 2] % 2) / 2
    }
}

/// Judges `values` (ns; `None` in the overflow): the fleet's spread and, per value, whether it
/// lies beyond it. `None` with fewer than [`MIN_HOSTS`] values in range.
pub fn judge_values(values: &[Option<u64>]) -> Option<(FleetSpread, Vec<Option<Direction>>)> {
    let mut v: Vec<u64> = values.iter().flatten().copied().collect();
    if v.len() < MIN_HOSTS {
        return None;
    }
    v.sort_unstable();
    let m = median(&v);
    let mut dev: Vec<u64> = v.iter().map(|x| x.abs_diff(m)).collect();
    dev.sort_unstable();
    let mad = median(&dev);
    let scaled = u64::try_from(
        (u128::from(mad) * u128::from(K) * u128::from(MAD_SCALE.0))
            .div_ceil(u128::from(MAD_SCALE.1)),
    )
    .unwrap_or(u64::MAX);
    let limit = scaled.max(m * FLOOR_PCT / 100).max(FLOOR_NS);
    let spread = FleetSpread {
        hosts: v.len(),
        median_ns: m,
        mad_ns: mad,
        limit_ns: limit,
    };
    let flags = values
        .iter()
        .map(|x| match x {
            None => Some(Direction::Above),
            Some(x) if x.abs_diff(m) <= limit => None,
            Some(x) if *x > m => Some(Direction::Above),
            Some(_) => Some(Direction::Below),
        })
        .collect();
    Some((spread, flags))
}

/// Every outlier of the fleet, row by row (scenario × workload, then layout, then metric).
pub fn find(r: &FleetReport) -> Vec<Outlier> {
    let mut out = Vec::new();
    for (scenario, workload) in &r.cells {
        for layout in &r.layouts {
            let hosts = compat::comparable(r, layout, scenario, *workload);
            for metric in Metric::ALL {
                let values: Vec<Option<u64>> = hosts
                    .iter()
                    .filter_map(|h| h.group(layout, scenario, *workload))
                    .filter_map(|g| g.value(metric))
                    .collect();
                let Some((spread, flags)) = judge_values(&values) else {
                    continue;
                };
                for ((h, value), flag) in hosts.iter().zip(&values).zip(flags) {
                    if let Some(direction) = flag {
                        out.push(Outlier {
                            host: h.label.clone(),
                            layout: layout.clone(),
                            scenario: scenario.clone(),
                            workload: *workload,
                            metric,
                            value_ns: *value,
                            direction,
                            spread,
                        });
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us_(v: &[u64]) -> Vec<Option<u64>> {
        v.iter().map(|x| Some(x * 1_000)).collect()
    }

    #[test]
    fn one_host_far_above_a_tight_fleet_is_flagged() {
        let (s, f) = judge_values(&us_(&[20, 21, 19, 22, 20, 80])).unwrap();
        assert_eq!(s.median_ns, 20_500);
        assert_eq!(s.mad_ns, 1_000);
        // 3 × 1.4826 × 1 µs = 4.448 µs, below 25 % of 20.5 µs = 5.125 µs: the floor counts.
        assert_eq!(s.limit_ns, 5_125);
        assert_eq!(f, [None, None, None, None, None, Some(Direction::Above)]);
    }

    #[test]
    fn near_identical_values_are_not_flagged() {
        // MAD 0: without the floor, 20.001 µs would be "beyond" 20.000 µs.
        let (s, f) = judge_values(&us_(&[20, 20, 20, 20, 24])).unwrap();
        assert_eq!(s.mad_ns, 0);
        assert_eq!(s.limit_ns, 5_000);
        assert!(f.iter().all(Option::is_none), "{f:?}");
        // Small values: the absolute floor, 1 µs.
        let (s, f) = judge_values(&[Some(100), Some(110), Some(90), Some(1_050)]).unwrap();
        assert_eq!(s.limit_ns, FLOOR_NS);
        assert!(f.iter().all(Option::is_none), "{f:?}");
    }

    #[test]
    fn a_wide_fleet_widens_the_limit_and_one_bad_host_cannot_hide() {
        // Spread-out values: the MAD term dominates; the 400 µs host is still out, because the
        // median and the MAD barely move for one host.
        let (s, f) = judge_values(&us_(&[10, 30, 50, 70, 90, 400])).unwrap();
        assert_eq!(s.median_ns, 60_000);
        assert_eq!(s.mad_ns, 30_000);
        assert_eq!(s.limit_ns, 133_434);
        assert_eq!(f[5], Some(Direction::Above));
        assert!(f[..5].iter().all(Option::is_none), "{f:?}");
    }

    #[test]
    fn below_overflow_and_too_few_hosts() {
        let (_, f) = judge_values(&us_(&[100, 100, 100, 10])).unwrap();
        assert_eq!(f[3], Some(Direction::Below));
        let (s, f) = judge_values(&[Some(5_000), None, Some(5_000), Some(5_100)]).unwrap();
        assert_eq!(s.hosts, 3);
        assert_eq!(f[1], Some(Direction::Above));
        assert!(judge_values(&us_(&[1, 900])).is_none());
        assert!(judge_values(&[Some(1), None, None, Some(2)]).is_none());
    }

    #[test]
    fn the_median_of_an_even_count_does_not_overflow() {
        assert_eq!(median(&[u64::MAX, u64::MAX]), u64::MAX);
        assert_eq!(median(&[1, 2]), 1);
        assert_eq!(median(&[3, 5]), 4);
    }
}
