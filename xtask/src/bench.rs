//! What the benchmarks share (`bench-report`, `bench-trend`): one timed run of the release
//! `pinlat`, the best of several passes over the sizes (the sizes interleaved, the fastest time
//! and the largest peak kept, so that the first pass's page-cache misses and other processes'
//! bursts do not count), and the judgement against the targets: the time at the largest size
//! at most a given multiple of the time at the smallest (no worse than linear, with slack for
//! fixed costs), and the peak RSS at the largest size below a bound. Targets are judged on wall
//! time; the CPU time (user + system) is printed beside it because on a shared machine it
//! shows the command's own scaling when other builds make the wall time noisy.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Result};

use crate::proc::{run_costed, Cost};

/// The targets of one benchmark.
#[derive(Debug, Clone, Copy)]
pub struct Targets {
    /// Largest allowed time(largest size) / time(smallest size).
    pub max_time_ratio: f64,
    /// Largest allowed peak RSS at the largest size, KiB.
    pub max_rss_kib: u64,
}

/// Runs `cmd` with stdout discarded and stderr into `log`. It must exit 0 or 1: a budget
/// exceeded or a regression found is still a complete run.
pub fn run_timed(cmd: &mut Command, log: &Path) -> Result<Cost> {
    let cost = run_costed(
        cmd.stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?),
    )?;
    if !matches!(cost.status.code(), Some(0 | 1)) {
        bail!(
            "{cmd:?} failed ({}): {}",
            cost.status,
            std::fs::read_to_string(log).unwrap_or_default().trim()
        );
    }
    Ok(cost)
}

/// The best of `passes` rounds of `once(i)` over every size `i` in `0..sizes`.
pub fn best_of(
    passes: usize,
    sizes: usize,
    mut once: impl FnMut(usize) -> Result<Cost>,
) -> Result<Vec<Cost>> {
    let mut best: Vec<Option<Cost>> = vec![None; sizes];
    for _ in 0..passes {
        for (i, b) in best.iter_mut().enumerate() {
            let c = once(i)?;
            *b = Some(b.map_or(c, |prev| prev.best(c)));
        }
    }
    Ok(best.into_iter().map(|b| b.expect("measured")).collect())
}

/// Prints each size's figures (`unit`: what a size counts) and the ratios, and returns whether
/// the targets held.
pub fn judge(sizes: &[usize], unit: &str, costs: &[Cost], t: Targets) -> bool {
    for (n, c) in sizes.iter().zip(costs) {
        println!(
            "{:<18}{:.2} s ({:.2} s CPU), max RSS {:.1} MiB",
            format!("{n} {unit}:"),
            c.wall.as_secs_f64(),
            c.cpu.as_secs_f64(),
            c.max_rss_kib as f64 / 1024.0
        );
    }
    let (first, last) = (sizes[0], sizes[sizes.len() - 1]);
    let (small, large) = (costs[0], costs[costs.len() - 1]);
    let per = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    let ratio = per(large.wall, small.wall);
    println!(
        "time ratio {last}/{first}: {ratio:.2} (target <= {}); CPU time ratio {:.2}",
        t.max_time_ratio,
        per(large.cpu, small.cpu)
    );
    println!(
        "max RSS {last} {unit}: {:.1} MiB (target < {} MiB)",
        large.max_rss_kib as f64 / 1024.0,
        t.max_rss_kib / 1024
    );
    ratio <= t.max_time_ratio && large.max_rss_kib < t.max_rss_kib
}
