//! What the benchmarks share (`bench-report`, `bench-merge`, `bench-trend`): generating many
//! results directories and writing their reports, one timed run of the release `pinlat`, the
//! best of several passes over the sizes (the sizes interleaved, the fastest time and the
//! largest peak kept, so that the first pass's page-cache misses and other processes' bursts do
//! not count), and the judgement against the targets: the time at the largest size at most a
//! given multiple of the time at the smallest (no worse than linear, with slack for fixed
//! costs), and the peak RSS at the largest size below [`MAX_RSS_KIB`]. Targets are judged on
//! wall time; the CPU time (user + system) is printed beside it because on a shared machine it
//! shows the command's own scaling when other builds make the wall time noisy.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::gen_runs::{self, Host, Shape};
use crate::proc::{run_costed, Cost};

/// Largest allowed peak RSS of the command at the largest size, KiB (issues 5 and 14: 300 MiB).
pub const MAX_RSS_KIB: u64 = 300 * 1024;
/// A day, ms: generated hosts and builds start a day apart.
pub const DAY_MS: u64 = 86_400_000;

/// Generates `n` results directories of `runs` runs under `root` (emptied first): directory
/// `i` is `root/name(i)`, measured on `host(i)`. `task` names the benchmark in the progress
/// line.
pub fn generate(
    task: &str,
    root: &Path,
    n: usize,
    runs: usize,
    shape: Shape,
    name: impl Fn(usize) -> String,
    host: impl Fn(usize) -> Host,
) -> Result<Vec<PathBuf>> {
    if root.exists() {
        std::fs::remove_dir_all(root).with_context(|| format!("clearing {}", root.display()))?;
    }
    let t = Instant::now();
    let dirs = (0..n)
        .map(|i| {
            let dir = root.join(name(i));
            gen_runs::write_dir(&dir, runs, shape, &host(i)).map(|()| dir)
        })
        .collect::<Result<_>>()?;
    eprintln!(
        "{task}: generated {n} directories of {runs} runs in {} ({:.1} s)",
        root.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(dirs)
}

/// Writes every directory's `report.json` (and the other outputs) with `pinlat report`, as
/// `pinlat run` leaves them.
pub fn write_reports(task: &str, bin: &Path, dirs: &[PathBuf]) -> Result<()> {
    let t = Instant::now();
    for d in dirs {
        // Exit 1: the generated `share` runs exceed their budget on purpose.
        run_timed(
            Command::new(bin).arg("report").arg(d),
            &d.with_extension("stderr"),
        )?;
    }
    eprintln!(
        "{task}: pinlat report wrote each directory's report.json ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
    Ok(())
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
/// the targets held: time(largest) at most `max_time_ratio` × time(smallest), peak RSS at the
/// largest below [`MAX_RSS_KIB`].
pub fn judge(sizes: &[usize], unit: &str, costs: &[Cost], max_time_ratio: f64) -> bool {
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
        "time ratio {last}/{first}: {ratio:.2} (target <= {max_time_ratio}); CPU time ratio {:.2}",
        per(large.cpu, small.cpu)
    );
    println!(
        "max RSS {last} {unit}: {:.1} MiB (target < {} MiB)",
        large.max_rss_kib as f64 / 1024.0,
        MAX_RSS_KIB / 1024
    );
    ratio <= max_time_ratio && large.max_rss_kib < MAX_RSS_KIB
}
