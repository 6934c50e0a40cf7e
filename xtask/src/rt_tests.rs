//! The `--json` results of Debian's rt-tests (`oslat`, `cyclictest`, both 2.x), read as typed
//! documents instead of scraped from their human-readable output.
//!
//! Both tools write `{"thread": {"0": {...}, ...}}` with a sparse histogram whose keys are bucket
//! values as strings (`rt-tests/src/lib/rt-utils.c`, `rt_write_json`):
//!
//! * oslat: buckets of 1 µs (`"1": 38689231, ...`); the last bucket also holds every longer gap,
//!   so the counts add up to the loops made, and `duration` is the measured time in s.
//! * cyclictest with `-N -h LIMIT`: one bucket per ns below `LIMIT` ns (`resolution_in_ns` 1);
//!   wake-ups at or above `LIMIT` are in `cycles` but in no bucket.

use std::collections::BTreeMap;

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;

/// One measuring thread of an `oslat --json` document.
#[derive(Debug, Deserialize)]
pub struct OslatThread {
    /// CPU the thread ran on.
    pub cpu: u32,
    /// Measured time, s (three decimals).
    pub duration: f64,
    /// Loops per latency bucket of 1 µs, the last bucket open-ended.
    pub histogram: BTreeMap<String, u64>,
}

impl OslatThread {
    /// Loops made per second: every loop is one sample, as every agent busy-poll sample is one
    /// gap between two clock reads.
    pub fn loops_per_s(&self) -> Result<u64> {
        ensure!(
            self.duration > 0.0,
            "oslat measured for {} s",
            self.duration
        );
        let loops: u64 = self.histogram.values().sum();
        Ok((loops as f64 / self.duration) as u64)
    }
}

/// One measuring thread of a `cyclictest -N -h LIMIT --json` document.
#[derive(Debug, Deserialize)]
pub struct CyclictestThread {
    /// CPU the thread ran on.
    pub cpu: u32,
    /// Wake-ups measured.
    pub cycles: u64,
    /// Wake-ups per exact latency, ns (with `-N`); those at or above the `-h` limit are absent.
    pub histogram: BTreeMap<String, u64>,
}

impl CyclictestThread {
    /// Median wake-up latency, ns: the smallest latency at or below which at least half the
    /// wake-ups lie (HdrHistogram's `value_at_quantile(0.5)`, which gives the agent's p50).
    /// An error when the histogram limit cut the median off.
    pub fn median_ns(&self) -> Result<u64> {
        let mut buckets = self
            .histogram
            .iter()
            .map(|(k, &n)| {
                k.parse::<u64>()
                    .map(|v| (v, n))
                    .with_context(|| format!("cyclictest histogram key {k:?} is not a number"))
            })
            .collect::<Result<Vec<_>>>()?;
        buckets.sort_unstable();
        let counted: u64 = buckets.iter().map(|&(_, n)| n).sum();
        ensure!(
            counted <= self.cycles,
            "cyclictest histogram holds {counted} wake-ups, more than its {} cycles",
            self.cycles
        );
        ensure!(self.cycles > 0, "cyclictest measured no wake-up");
        let rank = self.cycles.div_ceil(2);
        let mut seen = 0;
        for (v, n) in buckets {
            seen += n;
            if seen >= rank {
                return Ok(v);
            }
        }
        bail!(
            "more than half of cyclictest's {} wake-ups are above its histogram limit: raise -h",
            self.cycles
        )
    }
}

/// The parts of an rt-tests `--json` document used here.
#[derive(Debug, Deserialize)]
struct Doc<T> {
    thread: BTreeMap<String, T>,
}

/// The single thread of a one-CPU run, checked to have run on `cpu`.
fn only_thread<T: for<'de> Deserialize<'de>>(
    tool: &str,
    text: &str,
    cpu: u32,
    cpu_of: impl Fn(&T) -> u32,
) -> Result<T> {
    let doc: Doc<T> = serde_json::from_str(text)
        .with_context(|| format!("{tool} --json: unexpected document"))?;
    ensure!(
        doc.thread.len() == 1,
        "{tool} --json: {} threads, expected the one on CPU {cpu}",
        doc.thread.len()
    );
    let t = doc.thread.into_values().next().expect("one thread");
    ensure!(
        cpu_of(&t) == cpu,
        "{tool} ran on CPU {}, not on CPU {cpu}",
        cpu_of(&t)
    );
    Ok(t)
}

/// Parses an `oslat --json` document of a run on `cpu` alone.
pub fn oslat(text: &str, cpu: u32) -> Result<OslatThread> {
    only_thread("oslat", text, cpu, |t: &OslatThread| t.cpu)
}

/// Parses a `cyclictest -t 1 -N -h LIMIT --json` document of a run on `cpu`.
pub fn cyclictest(text: &str, cpu: u32) -> Result<CyclictestThread> {
    only_thread("cyclictest", text, cpu, |t: &CyclictestThread| t.cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Abridged from a real `oslat -c 1 -C 0 -D 1 -q --json=F` (rt-tests 2.40).
    const OSLAT: &str = r#"{
      "file_version": 1, "cmdline:": "oslat -c 1 -C 0 -D 1 -q --json=/tmp/os.json",
      "rt_test_version:": "2.40", "return_code": 0, "num_threads": 1,
      "thread": { "0": { "cpu": 1, "freq": 2298, "min": 1, "avg": 1.002837, "max": 4098,
        "duration": 0.998, "histogram": { "1": 38689231, "2": 1107, "10": 713, "32": 264 } } }
    }"#;

    /// Abridged from a real `cyclictest -m -p 95 -i 1000 -a 1 -t 1 -D 1 -q -N -h 200000 --json=F`.
    const CYCLICTEST: &str = r#"{
      "file_version": 1, "rt_test_version:": "2.40", "num_threads": 1, "resolution_in_ns": 1,
      "thread": { "0": { "histogram": { "21712": 1, "24871": 2, "27697": 1, "61000": 1 },
        "cycles": 6, "min": 21712, "max": 1206356, "avg": 61844.57, "cpu": 1, "node": 0 } }
    }"#;

    #[test]
    fn oslat_rate_counts_every_bucket() {
        let t = oslat(OSLAT, 1).unwrap();
        let loops = 38_689_231 + 1_107 + 713 + 264;
        assert_eq!(t.loops_per_s().unwrap(), (loops as f64 / 0.998) as u64);
    }

    #[test]
    fn wrong_cpu_is_an_error() {
        let e = oslat(OSLAT, 0).unwrap_err().to_string();
        assert!(e.contains("ran on CPU 1, not on CPU 0"), "{e}");
        assert!(cyclictest(CYCLICTEST, 3).is_err());
    }

    #[test]
    fn cyclictest_median_is_the_lower_middle_with_overflow_above() {
        // 6 cycles: 21712, 24871, 24871, 27697, 61000 and one above the limit; rank 3.
        let t = cyclictest(CYCLICTEST, 1).unwrap();
        assert_eq!(t.median_ns().unwrap(), 24_871);
    }

    #[test]
    fn cyclictest_median_above_the_limit_is_an_error() {
        let t = CyclictestThread {
            cpu: 1,
            cycles: 10,
            histogram: [("5000".to_string(), 4)].into(),
        };
        let e = t.median_ns().unwrap_err().to_string();
        assert!(e.contains("raise -h"), "{e}");
    }

    #[test]
    fn cyclictest_odd_count_takes_the_middle() {
        let t = CyclictestThread {
            cpu: 0,
            cycles: 5,
            histogram: [("900", 1), ("1000", 2), ("30", 1), ("7000", 1)]
                .map(|(k, n)| (k.to_string(), n))
                .into(),
        };
        // Sorted numerically (not as strings): 30, 900, 1000, 1000, 7000.
        assert_eq!(t.median_ns().unwrap(), 1_000);
    }
}
