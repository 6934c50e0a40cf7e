//! `cargo xtask compare-rt-tests`: the native agent beside the tools engineers trust (Debian
//! rt-tests) on one CPU, for the same duration:
//!
//! * busy-poll samples/s vs oslat loops/s (SCHED_OTHER);
//! * timer median wake-up latency vs cyclictest's (same interval, SCHED_FIFO priority).
//!
//! Runs alternate A B A B so drifting background load hits both tools alike; every ratio is
//! printed per round and as the median over rounds. Every figure is read from a JSON document:
//! the agent's `RunResult` (`--output FILE`, [`pinlat::wire::RunResult`], its p50 from the HDR
//! histogram as reports compute it) and rt-tests' `--json=FILE` ([`crate::rt_tests`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{ensure, Context, Result};
use pinlat::config::WorkloadKind;
use pinlat::wire::{CpuResult, RunResult};

use crate::proc::{build_release, on_path, run_quiet};
use crate::rt_tests;
use crate::Usage;

/// cyclictest's histogram limit with `-N`: one bucket per ns up to 1 ms (8 MiB of counters,
/// locked by `-m`). A median wake-up above it is reported as an error, not guessed.
const CYCLICTEST_HIST_NS: u64 = 1_000_000;

/// What to compare, and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// CPU measured on; `None`: the last online CPU.
    pub cpu: Option<u32>,
    /// Duration of each run, s.
    pub duration_s: u64,
    /// A B rounds per workload.
    pub rounds: u32,
    /// Timer period, µs.
    pub interval_us: u64,
    /// SCHED_FIFO priority of the timer runs.
    pub priority: u8,
    /// The agent binary; `None` builds `pinlat-agent` in release.
    pub agent: Option<PathBuf>,
}

/// The tools and scratch files of one comparison.
struct Bench {
    opts: Options,
    /// CPU measured on.
    cpu: u32,
    /// CPU for oslat's main thread: another online CPU than the measured one where there is one.
    main_cpu: u32,
    agent: PathBuf,
    tmp: PathBuf,
}

impl Bench {
    fn tmp_file(&self, name: &str) -> PathBuf {
        self.tmp.join(name)
    }

    fn oslat_loops_per_s(&self) -> Result<u64> {
        let json = self.tmp_file("oslat.json");
        let o = &self.opts;
        run_quiet(
            Command::new("oslat")
                .args([
                    "-c",
                    &self.cpu.to_string(),
                    "-C",
                    &self.main_cpu.to_string(),
                ])
                .args(["-D", &o.duration_s.to_string(), "-q"])
                .arg(format!("--json={}", json.display())),
        )?;
        rt_tests::oslat(&read(&json)?, self.cpu)?.loops_per_s()
    }

    fn cyclictest_median_ns(&self) -> Result<u64> {
        let json = self.tmp_file("cyclictest.json");
        let o = &self.opts;
        run_quiet(
            Command::new("cyclictest")
                .args(["-m", "-p", &o.priority.to_string()])
                .args(["-i", &o.interval_us.to_string()])
                .args(["-a", &self.cpu.to_string(), "-t", "1"])
                .args(["-D", &o.duration_s.to_string(), "-q", "-N"])
                .args(["-h", &CYCLICTEST_HIST_NS.to_string()])
                .arg(format!("--json={}", json.display())),
        )?;
        rt_tests::cyclictest(&read(&json)?, self.cpu)?.median_ns()
    }

    /// One native agent run of `workload` on the CPU; its result for that CPU.
    fn agent(&self, workload: WorkloadKind, extra: &[String]) -> Result<CpuResult> {
        let json = self.tmp_file("agent.json");
        let o = &self.opts;
        run_quiet(
            Command::new(&self.agent)
                .args(["--native", "--quiet", "--workload", workload.as_str()])
                .args(["--cpus", &self.cpu.to_string()])
                .args(["--duration", &format!("{}s", o.duration_s)])
                .args(extra)
                .arg("--output")
                .arg(&json),
        )?;
        let text = read(&json)?;
        let result: RunResult = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an agent RunResult", json.display()))?;
        let [r]: [CpuResult; 1] = result.results.try_into().map_err(|v: Vec<_>| {
            anyhow::anyhow!("the agent returned {} results for one CPU", v.len())
        })?;
        ensure!(
            r.cpu == self.cpu && r.workload == workload,
            "the agent measured {} on CPU {}, not {workload} on CPU {}",
            r.workload,
            r.cpu,
            self.cpu
        );
        Ok(r)
    }

    fn agent_samples_per_s(&self) -> Result<u64> {
        let r = self.agent(WorkloadKind::BusyPoll, &["--preheat".into(), "1s".into()])?;
        ensure!(r.duration_ns > 0, "the agent measured for 0 ns");
        Ok((u128::from(r.samples) * 1_000_000_000 / u128::from(r.duration_ns)) as u64)
    }

    fn agent_median_ns(&self) -> Result<u64> {
        let o = &self.opts;
        let r = self.agent(
            WorkloadKind::Timer,
            &[
                "--preheat".into(),
                "0s".into(),
                "--interval-us".into(),
                o.interval_us.to_string(),
                "--priority".into(),
                o.priority.to_string(),
            ],
        )?;
        median_ns(&r)
    }
}

/// The agent's median wake-up latency, ns: its p50 as reports compute it. An error when there
/// is none, or when it lies in the overflow above the histogram's range (where the agent's
/// summary line prints `overflow`), rather than a guess.
fn median_ns(r: &CpuResult) -> Result<u64> {
    ensure!(r.samples > 0, "the agent's timer measured no wake-up");
    r.summary().p50_ns.value_ns.with_context(|| {
        format!(
            "more than half of the agent's {} wake-ups overflowed its histogram (max {} ns)",
            r.samples, r.max_ns
        )
    })
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// `a / b`, infinite when `b` is 0.
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        f64::INFINITY
    } else {
        a as f64 / b as f64
    }
}

/// Median of `v` (mean of the two middle values for an even count).
fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Runs the comparison and prints it.
pub fn run(opts: Options) -> Result<()> {
    for tool in ["oslat", "cyclictest"] {
        if !on_path(tool) {
            return Err(Usage(format!(
                "{tool} missing: apt-get install rt-tests (scripts/setup.sh does)"
            ))
            .into());
        }
    }
    if opts.rounds == 0 || opts.duration_s == 0 || opts.interval_us == 0 {
        return Err(Usage("rounds, duration and interval must be greater than 0".into()).into());
    }
    let online = pinlat::host::online_cpus().context("reading the online CPUs")?;
    let cpu = match opts.cpu {
        Some(c) => c,
        None => online.iter().next_back().context("no CPU is online")?,
    };
    if !online.contains(cpu) {
        return Err(Usage(format!("CPU {cpu} is not online (online: {online})")).into());
    }
    let agent = match &opts.agent {
        Some(a) => a.clone(),
        None => build_release("pinlat-agent", "pinlat-agent")?,
    };
    let tmp = tempfile::Builder::new()
        .prefix("pinlat-compare-")
        .tempdir()
        .context("creating a temporary directory")?;
    let main_cpu = online.iter().find(|&c| c != cpu).unwrap_or(cpu);
    compare(&Bench {
        cpu,
        main_cpu,
        opts,
        agent,
        tmp: tmp.path().to_path_buf(),
    })
}

fn compare(b: &Bench) -> Result<()> {
    let o = &b.opts;
    println!(
        "CPU {}, {}s per run, {} rounds A B A B; agent {}",
        b.cpu,
        o.duration_s,
        o.rounds,
        b.agent.display()
    );
    println!();
    println!("busy-poll: agent samples/s vs oslat loops/s (higher is sharper)");
    let mut poll = Vec::new();
    for r in 1..=o.rounds {
        let os = b.oslat_loops_per_s().context("oslat")?;
        let ag = b.agent_samples_per_s().context("agent busy-poll")?;
        let q = ratio(ag, os);
        println!("  round {r}  oslat {os:>12}/s  agent {ag:>12}/s  ratio {q:.3}");
        poll.push(q);
    }
    println!("  median ratio agent/oslat: {:.3}", median(&poll));
    println!();
    println!(
        "timer: median wake-up latency, interval {}us, SCHED_FIFO {} (ratio 1.0 = same)",
        o.interval_us, o.priority
    );
    let mut timer = Vec::new();
    for r in 1..=o.rounds {
        let ct = b.cyclictest_median_ns().context("cyclictest")?;
        let ag = b.agent_median_ns().context("agent timer")?;
        let q = ratio(ag, ct);
        println!("  round {r}  cyclictest {ct:>8} ns  agent {ag:>8} ns  ratio {q:.3}");
        timer.push(q);
    }
    println!("  median ratio agent/cyclictest: {:.3}", median(&timer));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    /// A timer result of the fixture builder: 2,000 wake-ups of 2-9 µs (and a tail).
    fn timer_result() -> CpuResult {
        let spec = pinlat_test_infra::fixtures::basic_specs()
            .into_iter()
            .find(|s| s.workload == WorkloadKind::Timer)
            .unwrap();
        let spec = pinlat_test_infra::fixtures::Spec {
            samples: 2_000,
            ..spec
        };
        let mut rec = pinlat_test_infra::fixtures::record("t", &spec);
        rec.guests.remove(0).results.remove(0)
    }

    #[test]
    fn the_agents_median_is_its_p50() {
        let r = timer_result();
        let p50 = median_ns(&r).unwrap();
        assert!((2_000..9_000).contains(&p50), "{p50}");
        assert_eq!(Some(p50), r.summary().p50_ns.value_ns);
    }

    #[test]
    fn a_median_in_the_overflow_is_an_error_not_a_number() {
        let mut r = timer_result();
        // 2,001 stalls beyond the histogram's ~60 s: the median rank lies among them.
        r.overflow = r.samples + 1;
        r.samples += r.overflow;
        r.max_ns = 70_000_000_000;
        let e = median_ns(&r).unwrap_err().to_string();
        assert!(e.contains("overflowed its histogram"), "{e}");
        r.samples = 0;
        assert!(median_ns(&r).is_err());
    }

    #[test]
    fn ratio_by_zero_is_infinite() {
        assert_eq!(ratio(3, 2), 1.5);
        assert!(ratio(1, 0).is_infinite());
    }
}
