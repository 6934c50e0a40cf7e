//! The agent beside the tools engineers trust (the comparison's data and pure statistics; the
//! runner's `calibrate::rttests` runs the tools) (rt-tests): `busy-poll` against oslat and
//! `timer` against cyclictest, on the same CPU, same duration and policy, alternating A B A B
//! so drifting background load hits both alike. Distributions are compared by the ratios
//! agent / tool of their percentiles, in µs (the tools' resolution).
//!
//! oslat records 1 µs buckets (a 20 ns loop reads as 1 µs); the agent's ns values are rounded
//! up to whole µs before comparing. The maximum is one event and is reported, not judged.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Percentile ratios within this factor (either way) count as agreeing.
pub const AGREE_FACTOR: f64 = 2.0;
/// Rounds of A B per pair.
pub const ROUNDS: usize = 2;
/// Measured time of each tool run, s.
pub const RUN_S: u64 = 1;
/// cyclictest / agent timer period, µs, and SCHED_FIFO priority (cyclictest's usual `-p95`).
pub const TIMER_INTERVAL_US: u64 = 1000;
/// See [`TIMER_INTERVAL_US`].
pub const TIMER_PRIORITY: u8 = 95;

/// Latency statistics of one run, µs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Number of samples behind the statistics.
    pub samples: u64,
    /// Median, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// 99.99th percentile, µs.
    pub p9999_us: f64,
    /// Largest, µs.
    pub max_us: f64,
}

/// One round: the tool then the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round {
    /// The rt-tests tool's run.
    pub tool: Stats,
    /// The agent's run.
    pub agent: Stats,
}

/// Agent vs one tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    /// `busy-poll vs oslat` or `timer vs cyclictest`.
    pub name: String,
    /// How both ran.
    pub setup: String,
    /// Rounds, in order.
    pub rounds: Vec<Round>,
    /// Median over rounds of agent/tool for p50, p99, p99.99, max.
    pub ratios: [f64; 4],
    /// The largest factor (either way) among the judged ratios: p50 and p99, and p99.99 when
    /// every run has at least 100,000 samples.
    pub within: f64,
    /// `within <= AGREE_FACTOR`.
    pub agree: bool,
}

/// Both pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// busy-poll vs oslat, timer vs cyclictest.
    pub pairs: Vec<Pair>,
}

impl Comparison {
    /// Text table.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "rt-tests beside the agent (µs; ratio = agent / tool, median of {ROUNDS} rounds A B A B):");
        for p in &self.pairs {
            let _ = writeln!(s, "  {} ({})", p.name, p.setup);
            for (i, r) in p.rounds.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "    round {}: tool p50 {:.1} p99 {:.1} p99.99 {:.1} max {:.1} | agent p50 {:.1} p99 {:.1} p99.99 {:.1} max {:.1}",
                    i + 1,
                    r.tool.p50_us, r.tool.p99_us, r.tool.p9999_us, r.tool.max_us,
                    r.agent.p50_us, r.agent.p99_us, r.agent.p9999_us, r.agent.max_us
                );
            }
            let _ = writeln!(
                s,
                "    ratios p50 {:.2} p99 {:.2} p99.99 {:.2} max {:.2}: {} within {:.2}x (judged: p50, p99{}; max is one event)",
                p.ratios[0],
                p.ratios[1],
                p.ratios[2],
                p.ratios[3],
                if p.agree { "agree" } else { "DISAGREE" },
                p.within,
                if p.rounds.iter().all(|r| r.tool.samples.min(r.agent.samples) >= 100_000) {
                    ", p99.99"
                } else {
                    ""
                }
            );
        }
        s
    }
}

/// Percentiles of a µs histogram (`bucket → count`), µs.
pub fn stats_from_buckets(buckets: &[(u64, u64)], max_us: f64) -> Stats {
    let mut b = buckets.to_vec();
    b.sort_unstable();
    let total: u64 = b.iter().map(|x| x.1).sum();
    let q = |f: f64| {
        let want = (total as f64 * f).ceil() as u64;
        let mut acc = 0;
        for &(v, n) in &b {
            acc += n;
            if acc >= want.max(1) {
                return v as f64;
            }
        }
        max_us
    };
    Stats {
        samples: total,
        p50_us: q(0.5),
        p99_us: q(0.99),
        p9999_us: q(0.9999),
        max_us,
    }
}

/// Reads `thread."0"` of an rt-tests `--json` file: its histogram and max.
pub fn parse_rt_json(text: &str) -> Option<Stats> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let t = v.get("thread")?.get("0")?;
    let buckets: Vec<(u64, u64)> = t
        .get("histogram")?
        .as_object()?
        .iter()
        .filter_map(|(k, n)| Some((k.parse().ok()?, n.as_u64()?)))
        .collect();
    let max = t.get("max")?.as_f64()?;
    Some(stats_from_buckets(&buckets, max))
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Summarises rounds into a [`Pair`].
pub fn pair(name: &str, setup: String, rounds: Vec<Round>) -> Pair {
    let ratio = |f: fn(&Stats) -> f64| {
        median(
            rounds
                .iter()
                .map(|r| f(&r.agent) / f(&r.tool).max(f64::MIN_POSITIVE))
                .collect(),
        )
    };
    let ratios = [
        ratio(|s| s.p50_us),
        ratio(|s| s.p99_us),
        ratio(|s| s.p9999_us),
        ratio(|s| s.max_us),
    ];
    // A percentile is judged only with at least 10 samples above it in every run: p99.99 of a
    // 2,000-sample cyclictest run is its maximum, a single event.
    let fewest = rounds
        .iter()
        .flat_map(|r| [r.tool.samples, r.agent.samples])
        .min()
        .unwrap_or(0);
    let judged = if fewest >= 100_000 { 3 } else { 2 };
    let within = ratios[..judged]
        .iter()
        .map(|&r| if r >= 1.0 { r } else { 1.0 / r })
        .fold(1.0, f64::max);
    Pair {
        name: name.into(),
        setup,
        rounds,
        ratios,
        within,
        agree: within <= AGREE_FACTOR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_oslat_json_percentiles() {
        let t = r#"{"thread":{"0":{"cpu":1,"min":1,"max":4075,"histogram":{"1":9990,"2":5,"32":4,"1023":1}}}}"#;
        let s = parse_rt_json(t).unwrap();
        assert_eq!(s.samples, 10_000);
        assert_eq!(s.p50_us, 1.0);
        assert_eq!(s.p99_us, 1.0);
        assert_eq!(s.p9999_us, 32.0);
        assert_eq!(s.max_us, 4075.0);
    }

    #[test]
    fn pair_judges_percentiles_not_the_max() {
        let st = |p50, p99, p9999, max| Stats {
            samples: 1_000_000,
            p50_us: p50,
            p99_us: p99,
            p9999_us: p9999,
            max_us: max,
        };
        let rounds = vec![
            Round {
                tool: st(20.0, 40.0, 100.0, 300.0),
                agent: st(22.0, 44.0, 120.0, 3000.0),
            },
            Round {
                tool: st(20.0, 40.0, 100.0, 300.0),
                agent: st(20.0, 60.0, 100.0, 30.0),
            },
        ];
        let p = pair("x", String::new(), rounds);
        assert!(p.agree, "{p:?}");
        assert!((p.ratios[1] - 1.3).abs() < 1e-9);
        let bad = pair(
            "y",
            String::new(),
            vec![Round {
                tool: st(20.0, 40.0, 100.0, 300.0),
                agent: st(5.0, 40.0, 100.0, 300.0),
            }],
        );
        assert!(!bad.agree);
        assert!((bad.within - 4.0).abs() < 1e-9);
    }
}
