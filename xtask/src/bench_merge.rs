//! `cargo xtask bench-merge`: times the release `pinlat merge` on 25, 50 and 100 generated
//! hosts' results directories of [`RUNS_PER_HOST`] runs each ([`crate::gen_runs`], each host
//! with its own name, kernel release and start time), and checks the two targets of issue 14:
//! time grows linearly (time(100) at most [`MAX_TIME_RATIO`] × time(25): 4 × the hosts, with
//! slack for fixed costs) and peak RSS stays under 300 MiB at 100 hosts.
//!
//! Both ways a host is read are measured: first from `runs/` alone (the fallback, when a
//! host has no `report.json` of this pinlat), then, after `pinlat report` has written every
//! host's `report.json` (as `pinlat run` does), from the reports (the normal case). Each size
//! is merged [`PASSES`] times, 25 50 100 25 50 100 ..., the fastest kept; peak RSS is the
//! child's own `ru_maxrss`. The targets are judged on wall time; CPU time is printed beside
//! it, as in [`crate::bench`].

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::bench::{self, DAY_MS};
use crate::gen_runs::{Host, Shape};
use crate::proc::{build_release, work_dir, Cost};

/// Runs per host, as issue 14 sets the scale.
pub const RUNS_PER_HOST: usize = 8;
/// The fleet sizes compared.
const SIZES: [usize; 3] = [25, 50, 100];
/// Largest allowed time(100 hosts) / time(25 hosts).
pub const MAX_TIME_RATIO: f64 = 5.0;
/// Merges of each size; the fastest counts.
const PASSES: usize = 3;
/// First run of the first host, ms since the epoch; each host starts a day later.
const FIRST_START_MS: u64 = 1_800_000_000_000;

/// Host `i` of the generated fleet.
fn host(i: usize) -> Host {
    Host {
        hostname: Some(format!("rt-lab-{i:03}")),
        kernel_release: Some(format!("6.1.{}-rt-amd64", 100 + i % 7)),
        started_unix_ms: Some(FIRST_START_MS + DAY_MS * i as u64),
    }
}

/// Best of [`PASSES`] merges of each size (interleaved: 25 50 100 25 50 100 ...).
fn measure_sizes(bin: &Path, hosts: &[PathBuf], work: &Path, tag: &str) -> Result<Vec<Cost>> {
    bench::best_of(PASSES, SIZES.len(), |i| {
        let out = work.join(format!("fleet-{tag}-{}", SIZES[i]));
        bench::run_timed(
            Command::new(bin)
                .arg("merge")
                .args(&hosts[..SIZES[i]])
                .arg("--out")
                .arg(&out),
            &out.with_extension("stderr"),
        )
    })
}

/// Prints one way's figures; returns whether both targets held.
fn judge(tag: &str, costs: &[Cost]) -> bool {
    println!("merge from {tag}:");
    bench::judge(&SIZES, "hosts", costs, MAX_TIME_RATIO)
}

/// Runs the benchmark in `work` (a new temporary directory when `None`; kept afterwards so
/// the fleet reports can be read). Returns whether every target held.
pub fn run(work: Option<PathBuf>) -> Result<bool> {
    let work = work_dir(work, "pinlat-bench-merge-")?;
    let bin = build_release("pinlat-runner", "pinlat")?;
    let hosts = bench::generate(
        "bench-merge",
        &work.join("hosts"),
        SIZES[SIZES.len() - 1],
        RUNS_PER_HOST,
        Shape::default(),
        |i| format!("rt-lab-{i:03}"),
        host,
    )?;
    let from_runs = measure_sizes(&bin, &hosts, &work, "runs")?;
    bench::write_reports("bench-merge", &bin, &hosts)?;
    let from_reports = measure_sizes(&bin, &hosts, &work, "reports")?;
    let ok_runs = judge("runs/ (no report.json)", &from_runs);
    let ok_reports = judge("report.json", &from_reports);
    let ok = ok_runs && ok_reports;
    println!("{}", if ok { "PASS" } else { "FAIL" });
    eprintln!(
        "bench-merge: hosts and fleet reports kept in {}",
        work.display()
    );
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_differ_by_name_kernel_and_day() {
        let (a, b) = (host(0), host(8));
        assert_eq!(a.hostname.as_deref(), Some("rt-lab-000"));
        assert_eq!(b.hostname.as_deref(), Some("rt-lab-008"));
        assert_ne!(a.kernel_release, b.kernel_release);
        assert_eq!(
            b.started_unix_ms.unwrap() - a.started_unix_ms.unwrap(),
            8 * DAY_MS
        );
    }
}
