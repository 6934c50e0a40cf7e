//! `cargo xtask <cmd>` (alias in `.cargo/config.toml`): pinlat's developer tasks that read or
//! write pinlat's own data, in Rust against the core library's types, so that no script parses
//! JSON with another language or scrapes numbers from human-readable output.
//!
//! Exit codes: 0 done (bench-report, bench-merge, bench-trend: the targets held), 1 a benchmark
//! missed a target, 2 bad usage or a missing tool, 3 a tool or the machine failed.

mod bench;
mod bench_merge;
mod bench_report;
mod bench_trend;
mod compare_rt_tests;
mod gen_runs;
mod proc;
mod rt_tests;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// pinlat's developer tasks.
#[derive(Debug, Parser)]
#[command(name = "xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Write a results directory of N generated runs (runs/*.json, plan.json, host.json) that
    /// `pinlat report DIR` reads: 3 layouts × 2 scenarios × 2 workloads, 2 RT vCPUs, sized as a
    /// default `pinlat run`.
    GenRuns {
        /// Number of runs (they cycle through the 12 groups, then repeat).
        n: usize,
        /// Results directory to create (its runs/ must be empty or absent).
        dir: PathBuf,
        /// Measured time per run, s.
        #[arg(long, default_value_t = 10)]
        duration_s: u64,
        /// Interval histogram length, ms (must divide the duration: intervals are of equal
        /// length).
        #[arg(long, default_value_t = 1_000)]
        interval_ms: u64,
        /// host.json's hostname (default: none), so many hosts' directories differ for
        /// `pinlat merge`.
        #[arg(long, value_name = "H")]
        hostname: Option<String>,
        /// host.json's kernel_release, the host's `uname -r` (default: the fixture host's).
        #[arg(long, value_name = "K")]
        kernel_release: Option<String>,
        /// Start of the first run, ms since the Unix epoch; each next run starts its length
        /// plus 5 s later (default: the fixture sets' clock).
        #[arg(long, value_name = "T")]
        started_unix_ms: Option<u64>,
    },
    /// Time the release `pinlat report` on 100 and 1,000 generated runs; check time(1,000) ≤ 12
    /// × time(100) and peak RSS < 300 MiB (exit 1 when a target is missed).
    BenchReport {
        /// Where to generate the results directories (default: a new temporary directory,
        /// kept).
        workdir: Option<PathBuf>,
    },
    /// Time the release `pinlat merge` of 25, 50 and 100 generated hosts (8 runs each), from
    /// runs/ and from report.json; check time(100) ≤ 5 × time(25) and peak RSS < 300 MiB
    /// (exit 1 when a target is missed).
    BenchMerge {
        /// Where to generate the hosts (default: a new temporary directory, kept).
        workdir: Option<PathBuf>,
    },
    /// Time the release `pinlat trend` over 50, 100 and 200 generated results directories (one
    /// host, one kernel build each, 24 runs), from runs/ and from report.json; check time(200) ≤
    /// 4.8 × time(50) and peak RSS < 300 MiB (exit 1 when a target is missed).
    BenchTrend {
        /// Where to generate the results directories (default: a new temporary directory,
        /// kept).
        workdir: Option<PathBuf>,
    },
    /// Run oslat, cyclictest and the native agent alternately on one CPU (A B A B) and print
    /// samples/s and median wake-up ratios. Needs root (SCHED_FIFO, mlockall) and rt-tests.
    CompareRtTests {
        /// CPU to measure on (default: the last online one).
        #[arg(short = 'c', long)]
        cpu: Option<u32>,
        /// Duration of each run, s.
        #[arg(short = 'd', long, default_value_t = 5)]
        duration_s: u64,
        /// Rounds per workload.
        #[arg(short = 'r', long, default_value_t = 3)]
        rounds: u32,
        /// Timer period, µs.
        #[arg(short = 'i', long, default_value_t = 1_000)]
        interval_us: u64,
        /// SCHED_FIFO priority of the timer runs.
        #[arg(short = 'p', long, default_value_t = 95)]
        #[arg(value_parser = clap::value_parser!(u8).range(1..=99))]
        priority: u8,
        /// Agent binary (default: $PINLAT_AGENT, else a release build of this tree).
        #[arg(long)]
        agent: Option<PathBuf>,
    },
}

/// An error that is the user's to fix (exit 2), as opposed to a tool or the machine failing.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// A benchmark's exit: 0 when its targets held, 1 when one was missed.
fn held(targets_held: bool) -> ExitCode {
    if targets_held {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.cmd {
        Cmd::GenRuns {
            n,
            dir,
            duration_s,
            interval_ms,
            hostname,
            kernel_release,
            started_unix_ms,
        } => {
            let shape = gen_runs::Shape {
                duration_ms: duration_s.saturating_mul(1_000),
                interval_ms,
            };
            let host = gen_runs::Host {
                hostname,
                kernel_release,
                started_unix_ms,
            };
            gen_runs::write_dir(&dir, n, shape, &host)?;
            eprintln!("gen-runs: {n} runs in {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::BenchReport { workdir } => Ok(held(bench_report::run(
            workdir,
            gen_runs::Shape::default(),
        )?)),
        Cmd::BenchMerge { workdir } => Ok(held(bench_merge::run(workdir)?)),
        Cmd::BenchTrend { workdir } => Ok(held(bench_trend::run(workdir)?)),
        Cmd::CompareRtTests {
            cpu,
            duration_s,
            rounds,
            interval_us,
            priority,
            agent,
        } => {
            compare_rt_tests::run(compare_rt_tests::Options {
                cpu,
                duration_s,
                rounds,
                interval_us,
                priority,
                agent: agent.or_else(|| std::env::var_os("PINLAT_AGENT").map(PathBuf::from)),
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            if e.downcast_ref::<Usage>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(3)
            }
        }
    }
}
