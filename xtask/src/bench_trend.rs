//! `cargo xtask bench-trend`: times the release `pinlat trend --by host-kernel --out DIR` over
//! 50, 100 and 200 generated results directories of one host across kernel builds
//! ([`crate::gen_runs`] with a [`Host`] per build: kernel `6.1.0-<i>-rt-amd64`, a day apart),
//! 24 runs each (the 12 groups × 2 repetitions, each run sized as a default `pinlat run`), and
//! checks the targets of issue 14: time no worse than linear (time(200) at most
//! [`MAX_TIME_RATIO`] × time(50)) and a peak RSS under 300 MiB ([`bench::MAX_RSS_KIB`]) at 200.
//!
//! Twice: first on the directories without a report (trend aggregates each `runs/`), then
//! after `pinlat report` wrote each one's `report.json` (what trend reads when it is there: the
//! usual case). Each size is trended [`PASSES`] times, the best kept ([`crate::bench`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::bench::{self, DAY_MS};
use crate::gen_runs::{Host, Shape};
use crate::proc::{build_release, work_dir, Cost};

/// Largest allowed time(200 directories) / time(50): 4 × with 20 % slack, as bench-report's.
pub const MAX_TIME_RATIO: f64 = 4.8;
/// The numbers of directories trended.
const SIZES: [usize; 3] = [50, 100, 200];
/// Runs per directory.
const RUNS_PER_DIR: usize = 24;
/// Trends of each size; the fastest counts.
const PASSES: usize = 3;
/// Start of the first build's runs: 2026-11-25 00:00 UTC.
const T0_MS: u64 = 1_795_564_800_000;

/// The best of [`PASSES`] `pinlat trend --by host-kernel --out` over the first `n` of `dirs`
/// for each size `n` (exit 0 or 1: the builds differ only by kernel and time, so the latest
/// holds, but a regression would still be a trend that ran).
fn measure(bin: &Path, dirs: &[PathBuf], work: &Path) -> Result<Vec<Cost>> {
    bench::best_of(PASSES, SIZES.len(), |i| {
        let n = SIZES[i];
        bench::run_timed(
            Command::new(bin)
                .arg("trend")
                .args(&dirs[..n])
                .args(["--by", "host-kernel", "--out"])
                .arg(work.join(format!("trend-{n}"))),
            &work.join(format!("trend-{n}.stderr")),
        )
    })
}

/// Prints one mode's figures and returns whether the targets held.
fn judge(mode: &str, costs: &[Cost]) -> bool {
    println!("{mode}:");
    bench::judge(&SIZES, "directories", costs, MAX_TIME_RATIO)
}

/// Runs the benchmark in `work` (a new temporary directory when `None`, kept afterwards so the
/// trends can be read). Returns whether every target held.
pub fn run(work: Option<PathBuf>) -> Result<bool> {
    let work = work_dir(work, "pinlat-bench-trend-")?;
    let bin = build_release("pinlat-runner", "pinlat")?;
    let dirs = bench::generate(
        "bench-trend",
        &work.join("builds"),
        SIZES[SIZES.len() - 1],
        RUNS_PER_DIR,
        Shape::default(),
        |i| format!("build-{i:03}"),
        |i| Host {
            hostname: Some("rt-lab-01".into()),
            kernel_release: Some(format!("6.1.0-{}-rt-amd64", i + 1)),
            started_unix_ms: Some(T0_MS + i as u64 * DAY_MS),
        },
    )?;
    let from_runs = measure(&bin, &dirs, &work)?;
    bench::write_reports("bench-trend", &bin, &dirs)?;
    let from_json = measure(&bin, &dirs, &work)?;
    let ok = judge("from report.json (the usual case)", &from_json)
        & judge("from runs/ (no report.json: aggregated)", &from_runs);
    println!("{}", if ok { "PASS" } else { "FAIL" });
    eprintln!(
        "bench-trend: directories and trends kept in {}",
        work.display()
    );
    Ok(ok)
}
