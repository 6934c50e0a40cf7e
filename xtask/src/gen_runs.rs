//! Generated results directories (`runs/*.json`, `plan.json`, `host.json`) of any size, built
//! with the core library's own types ([`RunRecord`], [`CpuResult`], HDR histograms), so that a
//! schema change breaks this generator at compile time instead of leaving a benchmark reading
//! stale copies.
//!
//! The matrix is that of the `basic` report fixtures (`tests/report/fixtures.rs`): layouts
//! `share`, `vcpu0` and `isolate`, scenarios `idle` and `mgmt-poll`, workloads `busy-poll` and
//! `timer`, one guest with vCPU 0 housekeeping and vCPUs 1-2 realtime; run `i` is group
//! `i % 12`, repetition `i / 12 + 1`. What differs from the fixtures is the size of a run, which
//! follows a default `pinlat run`: 10 s measured in 1 s interval histograms, the timer at its
//! default 1 ms period, busy-poll at 20 M samples/s, a `hello` with the guest's facts and config.
//! Same arguments, same bytes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use pinlat::agentcfg::{AgentConfig, Workload, DEFAULT_TIMER_INTERVAL_US};
use pinlat::config::{LayoutKind, ScenarioKind, WorkloadKind};
use pinlat::cpuset::CpuSet;
use pinlat::histo::{new_histogram, Hist};
use pinlat::plan::{GuestPlacement, Sched, VcpuPlacement};
use pinlat::report::BudgetSpec;
use pinlat::result::{
    run_name, AccelUsed, GuestRun, HostPolicy, HostSteal, MgmtPollStats, ObservedThread, RunRecord,
    RunStatus, ThreadRole, VcpuThreadStats, RUN_SCHEMA_VERSION,
};
use pinlat::wire::{
    ClockInfo, ClockSource, CpuResult, DecoderStats, Hello, IntervalReport, SystemFacts, TopEvent,
    SCHEMA_VERSION,
};

use crate::Usage;

/// The size of every generated run.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Measured time, ms (`run.duration_s`).
    pub duration_ms: u64,
    /// Length of one interval histogram, ms (`run.interval_ms`); the last one may be shorter.
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
/// Distinct busy-poll draws per CPU and run; each stands for `samples / draws` equal samples,
/// so histograms have a real run's spread of buckets without drawing every sample.
const BUSY_POLL_DRAWS: u64 = 20_000;
/// One tail sample every this many draws.
const TAIL_EVERY: u64 = 2_000;
/// The realtime vCPUs, which are also the CPUs the agent measures on inside the guest.
const RT_VCPUS: [u32; 2] = [1, 2];
/// Groups of the matrix, in the order runs cycle through them.
const GROUPS: usize = 12;
/// Run id written into every record and `plan.json`.
pub const RUN_ID: &str = "generated";

/// The (layout, scenario, workload) group of run `i`, and its repetition.
fn group(i: usize) -> (&'static str, LayoutKind, ScenarioKind, WorkloadKind, u32) {
    const LAYOUTS: [(&str, LayoutKind); 3] = [
        ("share", LayoutKind::Share),
        ("vcpu0", LayoutKind::Vcpu0),
        ("isolate", LayoutKind::Isolate),
    ];
    let g = i % GROUPS;
    let (layout, kind) = LAYOUTS[g / 4];
    let scenario = [ScenarioKind::Idle, ScenarioKind::MgmtPoll][g / 2 % 2];
    let workload = [WorkloadKind::BusyPoll, WorkloadKind::Timer][g % 2];
    let rep = u32::try_from(i / GROUPS + 1).expect("fewer than 4 G repetitions");
    (layout, kind, scenario, workload, rep)
}

/// Tail latencies, ns: under `mgmt-poll` the timer tail of `share` is far worse than the
/// others' (as in the fixtures, so reports have a verdict to draw); busy-poll is alike
/// everywhere.
fn tail_ns(kind: LayoutKind, scenario: ScenarioKind, workload: WorkloadKind) -> (u64, u64) {
    match (workload, scenario, kind) {
        (WorkloadKind::BusyPoll, _, _) => (1_000, 3_000),
        (_, ScenarioKind::MgmtPoll, LayoutKind::Share) => (120_000, 160_000),
        (_, ScenarioKind::MgmtPoll, LayoutKind::Vcpu0) => (20_000, 30_000),
        _ => (12_000, 20_000),
    }
}

/// A small deterministic generator (Knuth's MMIX LCG, as the fixtures use).
struct Lcg(u64);

impl Lcg {
    fn new(seed: u64) -> Self {
        Lcg(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        lo + (self.0 >> 33) % (hi - lo)
    }
}

fn cpus(list: &str) -> CpuSet {
    CpuSet::parse(list).expect("constant CPU list")
}

/// The planned placement of the guest under `kind`, and its emulator CPUs.
fn placement(kind: LayoutKind) -> GuestPlacement {
    let emu = cpus(match kind {
        LayoutKind::Share => "1-3",
        LayoutKind::Vcpu0 => "1",
        _ => "4",
    });
    GuestPlacement {
        guest: "rt".into(),
        pinned: true,
        vcpus: (0..3u32)
            .map(|v| VcpuPlacement {
                vcpu: v,
                realtime: v != 0,
                cpus: cpus(&(v + 1).to_string()),
                sched: if v == 0 { Sched::OTHER } else { Sched::fifo(1) },
            })
            .collect(),
        emulator_cpus: emu.clone(),
        iothread_cpus: emu,
    }
}

/// QEMU's threads as read back from `/proc`: placed as planned.
fn observed(p: &GuestPlacement) -> Vec<ObservedThread> {
    let vcpus = p.vcpus.iter().map(|v| ObservedThread {
        tid: 1010 + v.vcpu as i32,
        comm: format!("CPU {}/KVM", v.vcpu),
        role: ThreadRole::Vcpu { vcpu: v.vcpu },
        cpus: v.cpus.clone(),
        policy: if v.realtime {
            HostPolicy::Fifo
        } else {
            HostPolicy::Other
        },
        priority: v.sched.priority,
        planned_cpus: v.cpus.clone(),
        planned_sched: v.sched,
    });
    let emulator = ["qemu-system-x86", "call_rcu", "IO mon_iothread"]
        .iter()
        .zip(1000..)
        .map(|(comm, tid)| ObservedThread {
            tid,
            comm: comm.to_string(),
            role: ThreadRole::Emulator,
            cpus: p.emulator_cpus.clone(),
            policy: HostPolicy::Other,
            priority: 0,
            planned_cpus: p.emulator_cpus.clone(),
            planned_sched: Sched::OTHER,
        });
    vcpus.chain(emulator).collect()
}

/// The agent's results for one CPU, and its interval reports.
fn measure(
    rng: &mut Lcg,
    cpu: u32,
    workload: Workload,
    tail: (u64, u64),
    shape: Shape,
    top_n: usize,
) -> Result<(CpuResult, Vec<IntervalReport>)> {
    let duration_ns = shape.duration_ms * 1_000_000;
    let (draws, weight) = match workload {
        WorkloadKind::BusyPoll => {
            let samples = BUSY_POLL_PER_S * shape.duration_ms / 1_000;
            (BUSY_POLL_DRAWS, (samples / BUSY_POLL_DRAWS).max(1))
        }
        _ => (
            (shape.duration_ms * 1_000 / DEFAULT_TIMER_INTERVAL_US).max(1),
            1,
        ),
    };
    let interval_ns = shape.interval_ms * 1_000_000;
    let n_intervals = duration_ns.div_ceil(interval_ns);
    let mut iv = Intervals {
        cpu,
        workload,
        interval_ns,
        duration_ns,
        done: Vec::new(),
        current: new_histogram(),
        all: new_histogram(),
    };
    let mut top: Vec<TopEvent> = Vec::with_capacity(top_n + 1);
    let (mut min_ns, mut max_ns) = (u64::MAX, 0);
    for d in 0..draws {
        // Draws are spread evenly over (0, duration]; a draw at a boundary ends its interval.
        let offset_ns = (u128::from(d + 1) * u128::from(duration_ns) / u128::from(draws)) as u64;
        let index = (offset_ns - 1) / interval_ns;
        while iv.len() < index {
            iv.close()?;
        }
        let v = if d % TAIL_EVERY == TAIL_EVERY / 2 {
            rng.range(tail.0, tail.1)
        } else if workload == WorkloadKind::BusyPoll {
            rng.range(40, 90)
        } else {
            rng.range(2_000, 9_000)
        };
        iv.current.record_n(v, weight)?;
        min_ns = min_ns.min(v);
        max_ns = max_ns.max(v);
        if top.len() < top_n || top.last().is_some_and(|e| v > e.latency_ns) {
            top.push(TopEvent {
                offset_ns,
                latency_ns: v,
            });
            top.sort_by_key(|e| std::cmp::Reverse(e.latency_ns));
            top.truncate(top_n);
        }
    }
    while iv.len() < n_intervals {
        iv.close()?;
    }
    let result = CpuResult {
        cpu,
        workload,
        peer_cpu: None,
        clock: clock(),
        duration_ns,
        start_mono_ns: Some(4_000_000_000),
        end_mono_ns: Some(4_000_000_000 + duration_ns),
        samples: iv.all.len(),
        min_ns,
        max_ns,
        overflow: 0,
        backwards: 0,
        missed_periods: 0,
        top,
        intervals: iv.len(),
        late_intervals: 0,
        histogram: Hist(iv.all),
    };
    Ok((result, iv.done))
}

/// Interval histograms of one CPU as the agent hands them over, and their sum.
struct Intervals {
    cpu: u32,
    workload: Workload,
    interval_ns: u64,
    duration_ns: u64,
    done: Vec<IntervalReport>,
    current: Histogram<u64>,
    all: Histogram<u64>,
}

impl Intervals {
    /// Number of intervals reported so far, which is the index of the one being recorded.
    fn len(&self) -> u64 {
        self.done.len() as u64
    }

    /// Ends the interval being recorded: reports it and adds it to the whole run's histogram.
    fn close(&mut self) -> Result<()> {
        let index = self.len();
        self.all.add(&self.current)?;
        let h = std::mem::replace(&mut self.current, new_histogram());
        self.done.push(IntervalReport {
            cpu: self.cpu,
            workload: self.workload,
            index,
            start_offset_ns: index * self.interval_ns,
            end_offset_ns: ((index + 1) * self.interval_ns).min(self.duration_ns),
            samples: h.len(),
            overflow: 0,
            histogram: Hist(h),
        });
        Ok(())
    }
}

fn clock() -> ClockInfo {
    ClockInfo {
        source: ClockSource::Tsc,
        tsc_hz: Some(2_300_000_000),
        invariant_tsc: true,
        calibration_spread_ppm: Some(3),
    }
}

/// Run `i` of a generated matrix.
pub fn record(i: usize, shape: Shape) -> Result<RunRecord> {
    let (layout, kind, scenario, workload, rep) = group(i);
    let name = run_name(layout, scenario, workload, rep);
    let planned = placement(kind);
    let mut config = AgentConfig::new(workload, RT_VCPUS.to_vec(), shape.duration_ms);
    config.housekeeping_cpus = vec![0];
    config.report_interval_ms = shape.interval_ms;
    let mut results = Vec::new();
    let mut intervals = Vec::new();
    for cpu in RT_VCPUS {
        let seed = name.bytes().fold(u64::from(cpu), |h, b| {
            h.wrapping_mul(0x100_0000_01B3) ^ u64::from(b)
        });
        let (r, iv) = measure(
            &mut Lcg::new(seed),
            cpu,
            workload,
            tail_ns(kind, scenario, workload),
            shape,
            config.top_n,
        )
        .with_context(|| format!("generating {name} CPU {cpu}"))?;
        results.push(r);
        intervals.extend(iv);
    }
    let threads = observed(&planned);
    let boot_ms = 1_400;
    let wall_ms = boot_ms + config.preheat_ms + shape.duration_ms + 600;
    Ok(RunRecord {
        schema_version: RUN_SCHEMA_VERSION,
        run_id: RUN_ID.into(),
        name,
        layout: layout.into(),
        layout_kind: kind,
        scenario,
        workload,
        repetition: rep,
        accel: AccelUsed::Kvm,
        status: RunStatus::Ok,
        started_unix_ms: 1_795_000_000_000 + i as u64 * wall_ms,
        wall_ms,
        duration_ms: shape.duration_ms,
        guests: vec![GuestRun {
            guest: "rt".into(),
            qemu_pid: Some(4242),
            vcpu_stats: planned
                .vcpus
                .iter()
                .map(|v| VcpuThreadStats {
                    vcpu: v.vcpu,
                    tid: 1010 + v.vcpu as i32,
                    realtime: v.realtime,
                    voluntary_ctxt_switches: 3,
                    nonvoluntary_ctxt_switches: if v.realtime { 2 } else { 40 },
                    migrations: Some(0),
                    cpus_seen: v.cpus.clone(),
                    samples: shape.duration_ms / 100,
                })
                .collect(),
            planned,
            observed_start: threads.clone(),
            observed_end: threads,
            hello: Some(Hello {
                schema_version: SCHEMA_VERSION,
                agent_version: env!("CARGO_PKG_VERSION").into(),
                facts: SystemFacts {
                    kernel_release: "6.1.0-31-rt-amd64".into(),
                    kernel_version: "#1 SMP PREEMPT_RT Debian 6.1.128-1".into(),
                    preempt_rt: true,
                    clocksource: "tsc".into(),
                    cmdline: "console=ttyS0 isolcpus=1-2 nohz_full=1-2 rcu_nocbs=1-2".into(),
                    isolated_cpus: "1-2".into(),
                    cpu_count: 3,
                    clock: clock(),
                },
                config,
            }),
            results,
            frames: DecoderStats {
                frames: 3 + intervals.len() as u64 + RT_VCPUS.len() as u64,
                ..DecoderStats::default()
            },
            intervals,
            agent_errors: Vec::new(),
            boot_to_hello_ms: Some(900),
            boot_to_first_sample_ms: Some(boot_ms),
            boot_to_done_ms: Some(wall_ms - 300),
            boot_to_exit_ms: Some(wall_ms - 100),
            console_log: Some(format!("console/{layout}.{scenario}.{workload}.r{rep}.log")),
        }],
        mgmt_poll: (scenario == ScenarioKind::MgmtPoll).then(|| MgmtPollStats {
            rate_hz: 20,
            rounds: 20 * shape.duration_ms / 1_000,
            errors: 0,
            queries: vec!["query-cpus-fast".into(), "query-stats".into()],
        }),
        warnings: Vec::new(),
        host_steal: Some(HostSteal {
            window_ms: wall_ms - boot_ms,
            // A little steal, below the 1 % a report calls significant.
            per_cpu_ns: (0..=4).map(|c| (c, 10_000_000)).collect(),
        }),
        runner_max_rss_kib: Some(14_000),
    })
}

/// Budgets in `plan.json`: timer p99.99 ≤ 50 µs and max ≤ 200 µs; busy-poll max ≤ 10 µs (the
/// fixtures' budgets, which `share` under `mgmt-poll` exceeds).
fn budgets() -> BTreeMap<WorkloadKind, BudgetSpec> {
    BTreeMap::from([
        (
            WorkloadKind::Timer,
            BudgetSpec {
                max_ns: Some(200_000),
                percentile: Some((99.99, 50_000)),
            },
        ),
        (
            WorkloadKind::BusyPoll,
            BudgetSpec {
                max_ns: Some(10_000),
                percentile: None,
            },
        ),
    ])
}

/// `host.json`: the facts `pinlat run` records (a free-form object to the report).
fn host_json() -> serde_json::Value {
    serde_json::json!({
        "pinlat_version": env!("CARGO_PKG_VERSION"),
        "kernel_release": "6.1.0-31-rt-amd64",
        "kernel_version": "#1 SMP PREEMPT_RT Debian 6.1.128-1",
        "preempt_rt": true,
        "cmdline": "isolcpus=1-4 nohz_full=1-4 rcu_nocbs=1-4",
        "cpu_model": "Generated CPU @ 2.30GHz",
        "online_cpus": "0-5",
        "isolated_cpus": "1-4",
        "nohz_full_cpus": "1-4",
        "sched_rt_runtime_us": -1,
        "accel": "kvm",
        "accel_note": null,
        "qemu_path": "/usr/bin/qemu-system-x86_64",
        "qemu_version": "QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u13)",
    })
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    let mut f =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(&bytes)
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes a results directory of `n` runs under `dir` (which must not hold runs already).
pub fn write_dir(dir: &Path, n: usize, shape: Shape) -> Result<()> {
    if n == 0 || shape.duration_ms == 0 || shape.interval_ms == 0 {
        return Err(
            Usage("gen-runs: runs, duration and interval must be greater than 0".into()).into(),
        );
    }
    let runs = dir.join("runs");
    if std::fs::read_dir(&runs).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(Usage(format!(
            "{} already holds runs: give an empty or new directory",
            runs.display()
        ))
        .into());
    }
    std::fs::create_dir_all(&runs).with_context(|| format!("creating {}", runs.display()))?;
    let mut names = Vec::with_capacity(n);
    for i in 0..n {
        let r = record(i, shape)?;
        write_json(&runs.join(r.file_name()), &r)?;
        names.push(r.name);
    }
    write_json(
        &dir.join("plan.json"),
        &serde_json::json!({
            "run_id": RUN_ID,
            "config_path": "generated.toml",
            "config": { "budgets": budgets() },
            "runs": names,
        }),
    )?;
    write_json(&dir.join("host.json"), &host_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Shape {
        Shape {
            duration_ms: 2_000,
            interval_ms: 700,
        }
    }

    #[test]
    fn runs_cycle_through_the_twelve_groups_then_repeat() {
        let names: Vec<String> = (0..13).map(|i| record(i, small()).unwrap().name).collect();
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
            let r = record(i, small()).unwrap();
            let g = &r.guests[0];
            assert_eq!(g.results.len(), 2);
            for res in &g.results {
                let iv: Vec<_> = g.intervals.iter().filter(|v| v.cpu == res.cpu).collect();
                // 2 s in 700 ms intervals: 700, 700, 600.
                let bounds: Vec<_> = iv
                    .iter()
                    .map(|v| (v.start_offset_ns / 1_000_000, v.end_offset_ns / 1_000_000))
                    .collect();
                assert_eq!(bounds, [(0, 700), (700, 1_400), (1_400, 2_000)]);
                assert_eq!(res.intervals, 3);
                assert_eq!(iv.iter().map(|v| v.samples).sum::<u64>(), res.samples);
                assert_eq!(res.histogram.0.len(), res.samples);
                assert_eq!(res.top.len(), 10);
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
        let busy = record(0, small()).unwrap();
        assert_eq!(busy.guests[0].results[0].samples, 40_000_000);
        let timer = record(1, small()).unwrap();
        assert_eq!(timer.guests[0].results[0].samples, 2_000);
    }

    #[test]
    fn share_under_mgmt_poll_has_the_worst_timer_tail() {
        let max = |i| record(i, small()).unwrap().guests[0].results[0].max_ns;
        // share.mgmt-poll.timer, vcpu0.mgmt-poll.timer, isolate.mgmt-poll.timer.
        assert!(max(3) >= 120_000);
        assert!((20_000..30_000).contains(&max(7)));
        assert!(max(11) < 20_000);
    }

    #[test]
    fn generation_is_deterministic_and_round_trips() {
        let a = record(5, small()).unwrap();
        assert_eq!(a, record(5, small()).unwrap());
        let text = serde_json::to_string(&a).unwrap();
        let back: RunRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(a, back);
    }

    #[test]
    fn refuses_a_directory_that_already_has_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("gen");
        write_dir(&dir, 2, small()).unwrap();
        assert_eq!(std::fs::read_dir(dir.join("runs")).unwrap().count(), 2);
        let e = write_dir(&dir, 2, small()).unwrap_err().to_string();
        assert!(e.contains("already holds runs"), "{e}");
    }
}
