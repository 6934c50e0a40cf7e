//! Generated results directories (`runs/*.json`, `plan.json`, `host.json`) of any size, made
//! by the builder of the core's report fixtures ([`pinlat_test_infra::fixtures`]), so that the
//! benchmark reads what the report tests read and a schema change breaks both at compile time.
//!
//! Run `i` is group `i % 12` of the `basic` fixture set (layouts `share`, `vcpu0` and `isolate`,
//! scenarios `idle` and `mgmt-poll`, workloads `busy-poll` and `timer`, with its tail ranges, so
//! reports have a verdict to draw) as repetition `i / 12 + 1`. What differs from the fixtures is
//! the size of a run, which follows a default `pinlat run`: 10 s measured in 1 s interval
//! histograms, the timer at its default 1 ms period, busy-poll at 20 M samples/s. Same
//! arguments, same bytes.
//!
//! [`Host`] makes directories of many hosts differ as `pinlat merge` and `pinlat trend` read
//! them: the host's name and kernel release in `host.json`, and when the runs started (the
//! first at the given time, each next one a run's length plus [`RUN_OVERHEAD_MS`] later).

use std::path::Path;

use anyhow::{Context, Result};
use pinlat::agentcfg::DEFAULT_TIMER_INTERVAL_US;
use pinlat::config::WorkloadKind;
use pinlat_test_infra::fixtures::{self, Spec};

use crate::Usage;

/// The size of every generated run.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Measured time, ms (`run.duration_s`).
    pub duration_ms: u64,
    /// Length of one interval histogram, ms (`run.interval_ms`); divides `duration_ms`.
    pub interval_ms: u64,
}

impl Default for Shape {
    /// A default `pinlat run`: 10 s in 1 s intervals.
    fn default() -> Self {
        Shape {
            duration_ms: 10_000,
            interval_ms: 1_000,
        }
    }
}

/// Busy-poll samples per second on a guest vCPU (oslat on a 2.3 GHz host makes ~39 M loops/s;
/// the agent's two TSC reads per sample, about half).
const BUSY_POLL_PER_S: u64 = 20_000_000;
/// Time between two busy-poll draws, ns: each stands for the 10,000 samples of its 500 µs, so
/// histograms get a real run's spread of buckets without a draw per sample.
const BUSY_POLL_DRAW_NS: u64 = 500_000;
/// Run id written into every record and `plan.json`.
pub const RUN_ID: &str = "generated";

/// Time between the end of one generated run's measurement and the start of the next, ms
/// (QEMU launch, boot, the agent's preheat, teardown), when [`Host::started_unix_ms`] is set.
pub const RUN_OVERHEAD_MS: u64 = 5_000;

/// Which host the generated directory was "measured" on, and when.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// `host.json`'s `hostname` (default: none, as the fixture host).
    pub hostname: Option<String>,
    /// `host.json`'s `kernel_release` (the host's `uname -r`; default: the fixture host's).
    pub kernel_release: Option<String>,
    /// Start of the first run, ms since the epoch (default: the fixture sets' clock).
    pub started_unix_ms: Option<u64>,
}

impl Host {
    /// The `host.json` written.
    pub fn facts(&self) -> pinlat::schema::HostFacts {
        let mut h = fixtures::host_facts();
        h.local.hostname.clone_from(&self.hostname);
        if let Some(k) = &self.kernel_release {
            h.local.kernel_release.clone_from(k);
        }
        h
    }
}

/// Run `i` of a generated directory (started at the fixture sets' clock).
pub fn spec(i: usize, shape: Shape) -> Spec {
    let groups: Vec<Spec> = fixtures::basic_specs()
        .into_iter()
        .filter(|s| s.rep == 1)
        .collect();
    let base = groups[i % groups.len()];
    let (period_ns, weight) = match base.workload {
        WorkloadKind::BusyPoll => (
            BUSY_POLL_DRAW_NS,
            BUSY_POLL_PER_S * BUSY_POLL_DRAW_NS / 1_000_000_000,
        ),
        // The basic set's other workload: the timer, one wake-up per period.
        _ => (DEFAULT_TIMER_INTERVAL_US * 1_000, 1),
    };
    Spec {
        rep: u32::try_from(i / groups.len() + 1).expect("fewer than 4 G repetitions"),
        samples: shape.duration_ms * 1_000_000 / period_ns,
        period_ns,
        weight,
        intervals: shape.duration_ms / shape.interval_ms,
        ..base
    }
}

/// Run `i` of a generated directory on `host`.
pub fn spec_on(i: usize, shape: Shape, host: &Host) -> Spec {
    let step = shape.duration_ms + RUN_OVERHEAD_MS;
    Spec {
        started_unix_ms: host
            .started_unix_ms
            .map(|t| t + step * u64::try_from(i).expect("fewer than 2^64 runs")),
        ..spec(i, shape)
    }
}

/// Writes a results directory of `n` runs under `dir` (which must not hold runs already),
/// measured on `host`.
pub fn write_dir(dir: &Path, n: usize, shape: Shape, host: &Host) -> Result<()> {
    if n == 0 || shape.duration_ms == 0 || shape.interval_ms == 0 {
        return Err(
            Usage("gen-runs: runs, duration and interval must be greater than 0".into()).into(),
        );
    }
    if shape.duration_ms % shape.interval_ms != 0 {
        return Err(Usage(format!(
            "gen-runs: intervals are of equal length: --interval-ms {} must divide the run's {} ms",
            shape.interval_ms, shape.duration_ms
        ))
        .into());
    }
    let runs = dir.join("runs");
    if std::fs::read_dir(&runs).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(Usage(format!(
            "{} already holds runs: give an empty or new directory",
            runs.display()
        ))
        .into());
    }
    if host.hostname.as_deref().is_some_and(str::is_empty)
        || host.kernel_release.as_deref().is_some_and(str::is_empty)
    {
        return Err(
            Usage("gen-runs: --hostname and --kernel-release must not be empty".into()).into(),
        );
    }
    let specs: Vec<Spec> = (0..n).map(|i| spec_on(i, shape, host)).collect();
    fixtures::write_dir_on(
        dir,
        RUN_ID,
        &specs,
        fixtures::basic_budgets(),
        &host.facts(),
    )
    .with_context(|| format!("writing {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinlat::result::RunRecord;

    /// Run `i` of a generated directory, as [`write_dir`] writes it.
    fn record(i: usize, shape: Shape) -> RunRecord {
        fixtures::record(RUN_ID, &spec(i, shape))
    }

    fn small() -> Shape {
        Shape {
            duration_ms: 2_000,
            interval_ms: 500,
        }
    }

    #[test]
    fn runs_cycle_through_the_twelve_groups_then_repeat() {
        let names: Vec<String> = (0..13).map(|i| record(i, small()).name).collect();
        assert_eq!(names[0], "share.idle.busy-poll.r1");
        assert_eq!(names[3], "share.mgmt-poll.timer.r1");
        assert_eq!(names[11], "isolate.mgmt-poll.timer.r1");
        assert_eq!(names[12], "share.idle.busy-poll.r2");
        let distinct: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(distinct.len(), 13);
    }

    #[test]
    fn intervals_tile_the_run_and_add_up_to_the_whole() {
        for i in [0, 3] {
            let r = record(i, small());
            let g = &r.guests[0];
            assert_eq!(r.duration_ms, 2_000);
            assert_eq!(g.results.len(), 2);
            for res in &g.results {
                let iv: Vec<_> = g.intervals.iter().filter(|v| v.cpu == res.cpu).collect();
                // 2 s in 500 ms intervals.
                let bounds: Vec<_> = iv
                    .iter()
                    .map(|v| (v.start_offset_ns / 1_000_000, v.end_offset_ns / 1_000_000))
                    .collect();
                assert_eq!(
                    bounds,
                    [(0, 500), (500, 1_000), (1_000, 1_500), (1_500, 2_000)]
                );
                assert_eq!(res.intervals, 4);
                assert_eq!(res.duration_ns, 2_000_000_000);
                assert_eq!(iv.iter().map(|v| v.samples).sum::<u64>(), res.samples);
                // Every interval holds a quarter of the samples: each got its share of draws.
                assert!(iv.iter().all(|v| v.samples == res.samples / 4), "{i}");
                assert_eq!(res.histogram.0.len(), res.samples);
                assert_eq!(res.top[0].latency_ns, res.max_ns);
                assert!(res
                    .top
                    .windows(2)
                    .all(|w| w[0].latency_ns >= w[1].latency_ns));
            }
        }
    }

    #[test]
    fn sample_counts_follow_the_workload_rate() {
        let busy = record(0, small());
        assert_eq!(busy.guests[0].results[0].samples, 40_000_000);
        let timer = record(1, small());
        assert_eq!(timer.guests[0].results[0].samples, 2_000);
    }

    #[test]
    fn share_under_mgmt_poll_has_the_worst_timer_tail() {
        let max = |i| record(i, small()).guests[0].results[0].max_ns;
        // share.mgmt-poll.timer, vcpu0.mgmt-poll.timer, isolate.mgmt-poll.timer.
        assert!(max(3) >= 120_000);
        assert!((20_000..30_000).contains(&max(7)));
        assert!(max(11) < 20_000);
    }

    #[test]
    fn generation_is_deterministic_and_round_trips() {
        let a = record(5, small());
        assert_eq!(a, record(5, small()));
        let text = serde_json::to_string(&a).unwrap();
        let back: RunRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(a, back);
    }

    #[test]
    fn writes_a_plan_naming_every_run_and_refuses_a_directory_that_already_has_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("gen");
        write_dir(&dir, 2, small(), &Host::default()).unwrap();
        assert_eq!(std::fs::read_dir(dir.join("runs")).unwrap().count(), 2);
        let plan: pinlat::schema::PlanFile =
            serde_json::from_slice(&std::fs::read(dir.join("plan.json")).unwrap()).unwrap();
        assert_eq!(plan.run_id, RUN_ID);
        assert_eq!(
            plan.runs,
            ["share.idle.busy-poll.r1", "share.idle.timer.r1"]
        );
        let e = write_dir(&dir, 2, small(), &Host::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("already holds runs"), "{e}");
    }

    #[test]
    fn intervals_that_do_not_divide_the_run_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let shape = Shape {
            duration_ms: 2_000,
            interval_ms: 700,
        };
        let e = write_dir(tmp.path(), 1, shape, &Host::default()).unwrap_err();
        assert!(e.downcast_ref::<Usage>().is_some(), "{e}");
        assert!(e.to_string().contains("must divide"), "{e}");
    }

    #[test]
    fn a_host_names_itself_its_kernel_and_when_its_runs_started() {
        let tmp = tempfile::tempdir().unwrap();
        let host = Host {
            hostname: Some("rt-lab-07".into()),
            kernel_release: Some("6.12.0-rt5-amd64".into()),
            started_unix_ms: Some(1_800_000_000_000),
        };
        write_dir(tmp.path(), 3, small(), &host).unwrap();
        let facts: pinlat::schema::HostFacts =
            pinlat::schema::read_versioned(&tmp.path().join("host.json")).unwrap();
        assert_eq!(facts.local.hostname.as_deref(), Some("rt-lab-07"));
        assert_eq!(facts.local.kernel_release, "6.12.0-rt5-amd64");
        let starts: Vec<u64> = (0..3)
            .map(|i| {
                let name = &record(i, small()).name;
                let path = tmp.path().join(format!("runs/{name}.json"));
                let r: RunRecord = pinlat::schema::read_versioned(&path).unwrap();
                assert_eq!(
                    r.guests[0].window.unwrap().start_unix_ms,
                    r.started_unix_ms + 2_500
                );
                r.started_unix_ms
            })
            .collect();
        // 2 s runs, 5 s apart beyond their length.
        assert_eq!(
            starts,
            [1_800_000_000_000, 1_800_000_007_000, 1_800_000_014_000]
        );
        // Without a host, the fixture host and clock, as before.
        let plain = tempfile::tempdir().unwrap();
        write_dir(plain.path(), 1, small(), &Host::default()).unwrap();
        let facts: pinlat::schema::HostFacts =
            pinlat::schema::read_versioned(&plain.path().join("host.json")).unwrap();
        assert_eq!(facts, fixtures::host_facts());
        let e = write_dir(
            tempfile::tempdir().unwrap().path(),
            1,
            small(),
            &Host {
                hostname: Some(String::new()),
                ..Host::default()
            },
        )
        .unwrap_err();
        assert!(e.downcast_ref::<Usage>().is_some(), "{e}");
    }
}
