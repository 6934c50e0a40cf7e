//! `cargo xtask bench-report`: times the release `pinlat report` on generated results
//! directories of 100 and 1,000 runs ([`crate::gen_runs`]) and checks the two targets of issue 5:
//! the time for 1,000 runs at most 12 × the time for 100 (no worse than linear, with slack for
//! fixed costs), and a peak RSS under 300 MiB ([`bench::MAX_RSS_KIB`]) for 1,000 runs (the report streams runs instead of
//! holding them). Each size is reported [`PASSES`] times, 100 1,000 100 1,000 ..., the best kept
//! ([`crate::bench`]). Peak RSS is the child's own `ru_maxrss`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::bench;
use crate::gen_runs::{self, Shape};
use crate::proc::{build_release, work_dir};

/// Largest allowed time(1,000 runs) / time(100 runs).
pub const MAX_TIME_RATIO: f64 = 12.0;
/// The two sizes compared.
const SIZES: [usize; 2] = [100, 1_000];
/// Reports of each size; the fastest counts.
const PASSES: usize = 3;

/// Runs the benchmark in `work` (a new temporary directory when `None`; kept afterwards so the
/// reports can be read). Returns whether both targets held.
pub fn run(work: Option<PathBuf>, shape: Shape) -> Result<bool> {
    let work = work_dir(work, "pinlat-bench-report-")?;
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
    // Exit 1: the generated `share` runs exceed their budget on purpose.
    let costs = bench::best_of(PASSES, SIZES.len(), |i| {
        bench::run_timed(
            Command::new(&bin).arg("report").arg(&dirs[i]),
            &dirs[i].with_extension("stderr"),
        )
    })?;
    let ok = bench::judge(&SIZES, "runs", &costs, MAX_TIME_RATIO);
    println!("{}", if ok { "PASS" } else { "FAIL" });
    eprintln!(
        "bench-report: results directories kept in {}",
        work.display()
    );
    Ok(ok)
}
