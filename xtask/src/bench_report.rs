//! `cargo xtask bench-report`: times the release `pinlat report` on generated results
//! directories of 100 and 1,000 runs ([`crate::gen_runs`]) and checks the two targets of issue 5:
//! the time for 1,000 runs at most 12 × the time for 100 (no worse than linear, with slack for
//! fixed costs), and a peak RSS under 300 MiB for 1,000 runs (the report streams runs instead of
//! holding them).
//!
//! Each size is reported [`PASSES`] times, 100 1,000 100 1,000 ..., and the fastest kept, so the
//! first pass's page-cache misses and other processes' bursts do not count. Peak RSS is the
//! child's own `ru_maxrss`. The targets are judged on wall time, as issue 5 set them; the CPU
//! time (user + system) is printed beside it because on a shared machine it shows the report's
//! own scaling when other builds make the wall time noisy.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::gen_runs::{self, Shape};
use crate::proc::{build_release, run_costed};

/// Largest allowed time(1,000 runs) / time(100 runs).
pub const MAX_TIME_RATIO: f64 = 12.0;
/// Largest allowed peak RSS of `pinlat report` on 1,000 runs, KiB.
pub const MAX_RSS_KIB: u64 = 300 * 1024;
/// The two sizes compared.
const SIZES: [usize; 2] = [100, 1_000];
/// Reports of each size; the fastest counts.
const PASSES: usize = 3;

/// What a `pinlat` command cost: one run, or the best of several (fastest time, largest peak).
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Wall time.
    pub wall: Duration,
    /// User + system CPU time.
    pub cpu: Duration,
    /// Peak resident set, KiB.
    pub max_rss_kib: u64,
}

impl Measured {
    /// The best of two passes: the fastest times, the largest peak.
    pub fn best(self, other: Measured) -> Measured {
        Measured {
            wall: self.wall.min(other.wall),
            cpu: self.cpu.min(other.cpu),
            max_rss_kib: self.max_rss_kib.max(other.max_rss_kib),
        }
    }
}

/// Runs `cmd` (stdout discarded, stderr to `log`), which must exit 0 or 1 (a budget exceeded:
/// the generated `share` runs exceed theirs on purpose), and returns what it cost.
pub fn measure(cmd: &mut Command, log: &Path) -> Result<Measured> {
    let stderr = std::fs::File::create(log)?;
    let cost = run_costed(cmd.stdout(Stdio::null()).stderr(stderr))?;
    if !matches!(cost.status.code(), Some(0 | 1)) {
        bail!(
            "{cmd:?} failed ({}): {}",
            cost.status,
            std::fs::read_to_string(log).unwrap_or_default().trim()
        );
    }
    Ok(Measured {
        wall: cost.wall,
        cpu: cost.cpu,
        max_rss_kib: cost.max_rss_kib,
    })
}

/// One `pinlat report DIR`.
fn report_once(bin: &Path, dir: &Path) -> Result<Measured> {
    measure(
        Command::new(bin).arg("report").arg(dir),
        &dir.with_extension("stderr"),
    )
}

/// Runs the benchmark in `work` (a new temporary directory when `None`; kept afterwards so the
/// reports can be read). Returns whether both targets held.
pub fn run(work: Option<PathBuf>, shape: Shape) -> Result<bool> {
    let work = match work {
        Some(w) => w,
        None => tempfile::Builder::new()
            .prefix("pinlat-bench-report-")
            .tempdir()
            .context("creating a temporary directory")?
            .keep(),
    };
    let bin = build_release("pinlat-runner", "pinlat")?;
    let mut dirs = Vec::new();
    for n in SIZES {
        let dir = work.join(format!("runs-{n}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        let t = Instant::now();
        gen_runs::write_dir(&dir, n, shape, &gen_runs::Host::default())?;
        eprintln!(
            "bench-report: generated {n} runs in {} ({:.1} s)",
            dir.display(),
            t.elapsed().as_secs_f64()
        );
        dirs.push(dir);
    }
    let mut best: Vec<Option<Measured>> = vec![None; SIZES.len()];
    for _pass in 0..PASSES {
        for (b, dir) in best.iter_mut().zip(&dirs) {
            let m = report_once(&bin, dir)?;
            *b = Some(b.map_or(m, |prev| prev.best(m)));
        }
    }
    let [small, large] = [best[0].expect("measured"), best[1].expect("measured")];
    let per = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    let ratio = per(large.wall, small.wall);
    for (n, b) in SIZES.iter().zip([small, large]) {
        println!(
            "{:<11}{:.2} s ({:.2} s CPU), max RSS {:.1} MiB",
            format!("{n} runs:"),
            b.wall.as_secs_f64(),
            b.cpu.as_secs_f64(),
            b.max_rss_kib as f64 / 1024.0
        );
    }
    println!(
        "time ratio 1000/100: {ratio:.2} (target <= {MAX_TIME_RATIO}); CPU time ratio {:.2}",
        per(large.cpu, small.cpu)
    );
    println!(
        "max RSS 1000 runs: {:.1} MiB (target < {} MiB)",
        large.max_rss_kib as f64 / 1024.0,
        MAX_RSS_KIB / 1024
    );
    let ok = ratio <= MAX_TIME_RATIO && large.max_rss_kib < MAX_RSS_KIB;
    println!("{}", if ok { "PASS" } else { "FAIL" });
    eprintln!(
        "bench-report: results directories kept in {}",
        work.display()
    );
    Ok(ok)
}
