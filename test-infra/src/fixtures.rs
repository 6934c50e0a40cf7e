//! Deterministic fixture runs: `RunRecord`s with known histograms, written as a results
//! directory (`runs/*.json`, `plan.json`, `host.json`). The one builder of made-up runs: pinlat's
//! `core` tests read the committed copies under `tests/fixtures/runs-*/`
//! (`PINLAT_BLESS=1 cargo test -p pinlat --test core -- --test-threads=1` rewrites them), and
//! `cargo xtask gen-runs` writes directories of any size with it.

use std::path::Path;

use pinlat::agentcfg::AgentConfig;
use pinlat::config::{Config, LayoutKind, ScenarioKind, WorkloadKind};
use pinlat::console::{FailureCause, GuestFacts};
use pinlat::cpuset::CpuSet;
use pinlat::histo::{new_histogram, Hist};
use pinlat::kinds::Accel;
use pinlat::plan::{GuestPlacement, Plan, Sched, VcpuPlacement};
use pinlat::result::{
    run_name, GuestRun, HostPolicy, MeasureWindow, MgmtPollStats, ObservedThread, RunRecord,
    RunStatus, ThreadRole, VcpuThreadStats, Warning, RUN_SCHEMA_VERSION,
};
use pinlat::schema::{HostFacts, LocalFacts, PlanFile};
use pinlat::wire::{
    ClockInfo, ClockSource, CpuResult, Hello, IntervalReport, SystemFacts, TopEvent,
};

/// A small deterministic generator (Knuth's MMIX LCG).
pub struct Lcg(u64);

impl Lcg {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Lcg(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    /// Uniform in lo..hi.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// One fixture run's description.
#[derive(Clone, Copy)]
pub struct Spec {
    /// Layout name, as in the config (`share`).
    pub layout: &'static str,
    /// What the layout places where.
    pub kind: LayoutKind,
    /// Scenario run beside the guest.
    pub scenario: ScenarioKind,
    /// Workload the agent measured.
    pub workload: WorkloadKind,
    /// Repetition, from 1.
    pub rep: u32,
    /// Accelerator the run used.
    pub accel: Accel,
    /// Tail latency range, ns, and one tail draw every `tail_every` draws.
    pub tail_ns: (u64, u64),
    /// Draws between two tail draws.
    pub tail_every: u64,
    /// The guest never said hello: no results.
    pub failed: bool,
    /// Latencies drawn per RT vCPU, one every `period_ns`: the run measured
    /// `samples × period_ns`.
    pub samples: u64,
    /// Time between two draws, ns (the fixture sets: 100 µs).
    pub period_ns: u64,
    /// Samples each draw stands for (HDR `record_n`), so that a run of a real size (20 M
    /// busy-poll samples/s) needs no draw per sample; a CPU's sample count is
    /// `samples × weight`. The fixture sets: 1.
    pub weight: u64,
    /// Interval histograms per RT vCPU, of equal length, interval `k` holding draws
    /// `k × samples / intervals` up to the next one's (the fixture sets: 2 halves).
    pub intervals: u64,
    /// The clock the RT vCPUs measured with.
    pub clock: ClockSource,
    /// The guest kernel is PREEMPT_RT.
    pub guest_rt: bool,
}

/// The clock the agent uses for a workload: the timer sleeps to `CLOCK_MONOTONIC` deadlines
/// and reads that clock; busy-poll reads the TSC.
pub fn clock_of(w: WorkloadKind) -> ClockSource {
    match w {
        WorkloadKind::Timer => ClockSource::Monotonic,
        _ => ClockSource::Tsc,
    }
}

const RT_VCPUS: [u32; 2] = [1, 2];
/// Time between two draws of the fixture sets, ns.
const FIXTURE_PERIOD_NS: u64 = 100_000;
/// Largest events kept per CPU.
const TOP_N: usize = 5;

/// Measured time of a run, ns.
fn duration_ns(s: &Spec) -> u64 {
    s.samples * s.period_ns
}

fn placement(kind: LayoutKind) -> (GuestPlacement, CpuSet) {
    let vcpus = (0..3u32)
        .map(|v| VcpuPlacement {
            vcpu: v,
            realtime: v != 0,
            cpus: CpuSet::parse(&(v + 1).to_string()).unwrap(),
            sched: if v == 0 { Sched::OTHER } else { Sched::fifo(1) },
        })
        .collect();
    let emu = match kind {
        LayoutKind::Share => "1-3",
        LayoutKind::Vcpu0 => "1",
        _ => "4",
    };
    let emu = CpuSet::parse(emu).unwrap();
    (
        GuestPlacement {
            guest: "rt".into(),
            pinned: true,
            vcpus,
            emulator_cpus: emu.clone(),
            iothread_cpus: emu.clone(),
        },
        emu,
    )
}

fn threads(p: &GuestPlacement, emu: &CpuSet) -> Vec<ObservedThread> {
    let mut t: Vec<ObservedThread> = p
        .vcpus
        .iter()
        .map(|v| ObservedThread {
            tid: 1010 + v.vcpu as i32,
            comm: format!("CPU {}/KVM", v.vcpu),
            role: ThreadRole::Vcpu { vcpu: v.vcpu },
            cpus: v.cpus.clone(),
            policy: if v.realtime {
                HostPolicy::Fifo
            } else {
                HostPolicy::Other
            },
            priority: if v.realtime { 1 } else { 0 },
            planned_cpus: v.cpus.clone(),
            planned_sched: v.sched,
        })
        .collect();
    for (i, comm) in ["qemu-system-x86", "call_rcu", "IO mon_iothread"]
        .iter()
        .enumerate()
    {
        t.push(ObservedThread {
            tid: 1000 + i as i32,
            comm: comm.to_string(),
            role: ThreadRole::Emulator,
            cpus: emu.clone(),
            policy: HostPolicy::Other,
            priority: 0,
            planned_cpus: emu.clone(),
            planned_sched: Sched::OTHER,
        });
    }
    t
}

/// Start of a fixture run, ms since the epoch.
fn started_unix_ms(s: &Spec) -> u64 {
    1_795_000_000_000 + u64::from(s.rep) * 60_000
}

/// The measurement window in the host's time: 2.5 s after the run started (QEMU launch, boot
/// to hello 900 ms, the agent's 1 s preheat, and the rest), known to 5 ms under TCG.
fn window(s: &Spec) -> MeasureWindow {
    let start = started_unix_ms(s) + 2_500;
    MeasureWindow {
        start_unix_ms: start,
        end_unix_ms: start + duration_ns(s) / 1_000_000,
        uncertainty_ms: if s.accel == Accel::Tcg { 5 } else { 0 },
    }
}

/// The agent's hello: the guest's facts and the config it ran.
fn hello(s: &Spec, clock: ClockInfo) -> Hello {
    let (release, version) = if s.guest_rt {
        ("6.1.0-fixture-rt-amd64", "#1 SMP PREEMPT_RT fixture")
    } else {
        ("6.1.0-fixture-amd64", "#1 SMP PREEMPT_DYNAMIC fixture")
    };
    Hello {
        schema_version: pinlat::wire::SCHEMA_VERSION,
        agent_version: "0.1.0".into(),
        facts: SystemFacts {
            kernel_release: release.into(),
            kernel_version: version.into(),
            preempt_rt: s.guest_rt,
            clocksource: "tsc".into(),
            cmdline: "console=ttyS0 isolcpus=1-2".into(),
            isolated_cpus: "1-2".into(),
            cpu_count: 3,
            clock,
            devices: Default::default(),
        },
        config: AgentConfig::new(s.workload, RT_VCPUS.to_vec(), duration_ns(s) / 1_000_000),
        sent_mono_ns: None,
    }
}

/// Builds one run record.
pub fn record(run_id: &str, s: &Spec) -> RunRecord {
    let name = run_name(s.layout, s.scenario.as_str(), s.workload, s.rep);
    let (planned, emu) = placement(s.kind);
    let workload = s.workload;
    let clock = ClockInfo {
        source: s.clock,
        tsc_hz: (s.clock == ClockSource::Tsc).then_some(2_000_000_000),
        invariant_tsc: true,
        calibration_spread_ppm: (s.clock == ClockSource::Tsc).then_some(12),
    };
    let mut results = Vec::new();
    let mut intervals = Vec::new();
    if !s.failed {
        for &cpu in &RT_VCPUS {
            let mut rng = Lcg::new(
                (name.len() as u64) << 32
                    ^ u64::from(cpu) << 24
                    ^ u64::from(s.rep) << 16
                    ^ name.bytes().map(u64::from).sum::<u64>(),
            );
            let mut parts: Vec<_> = (0..s.intervals).map(|_| new_histogram()).collect();
            let mut part = 0;
            let mut all = new_histogram();
            let mut top: Vec<TopEvent> = Vec::with_capacity(TOP_N + 1);
            let (mut min, mut max) = (u64::MAX, 0);
            for i in 0..s.samples {
                let v = if i % s.tail_every == s.tail_every / 2 {
                    rng.range(s.tail_ns.0, s.tail_ns.1)
                } else {
                    match s.workload {
                        WorkloadKind::BusyPoll => rng.range(40, 90),
                        _ => rng.range(2_000, 9_000),
                    }
                };
                while part + 1 < s.intervals && i >= (part + 1) * s.samples / s.intervals {
                    part += 1;
                }
                parts[part as usize].record_n(v, s.weight).unwrap();
                all.record_n(v, s.weight).unwrap();
                min = min.min(v);
                max = max.max(v);
                // Kept sorted, largest first, the earliest of equal ones first.
                if top.len() < TOP_N || top.last().is_some_and(|e| v > e.latency_ns) {
                    top.push(TopEvent {
                        offset_ns: (i + 1) * s.period_ns,
                        latency_ns: v,
                    });
                    top.sort_by_key(|e| std::cmp::Reverse(e.latency_ns));
                    top.truncate(TOP_N);
                }
            }
            let dur = duration_ns(s);
            let n = s.intervals;
            for (idx, h) in (0..).zip(parts) {
                intervals.push(IntervalReport {
                    cpu,
                    workload,
                    index: idx,
                    start_offset_ns: idx * dur / n,
                    end_offset_ns: (idx + 1) * dur / n,
                    samples: h.len(),
                    overflow: 0,
                    histogram: Hist(h),
                });
            }
            results.push(CpuResult {
                cpu,
                workload,
                peer_cpu: None,
                clock,
                duration_ns: dur,
                start_mono_ns: None,
                end_mono_ns: None,
                cpu_dma_latency_held: None,
                samples: s.samples * s.weight,
                min_ns: min,
                max_ns: max,
                overflow: 0,
                backwards: 0,
                missed_periods: 0,
                top,
                intervals: n,
                late_intervals: 0,
                histogram: Hist(all),
            });
        }
    }
    let observed = threads(&planned, &emu);
    RunRecord {
        schema_version: RUN_SCHEMA_VERSION,
        run_id: run_id.into(),
        name,
        layout: s.layout.into(),
        layout_kind: s.kind,
        scenario: s.scenario.to_string(),
        scenario_kinds: vec![s.scenario],
        workload: s.workload,
        repetition: s.rep,
        accel: s.accel,
        status: if s.failed {
            RunStatus::Failed {
                stage: pinlat::result::Stage::Boot,
                reason: "guest never sent hello within 60 s".into(),
            }
        } else {
            RunStatus::Ok
        },
        failure: s.failed.then(no_hello),
        started_unix_ms: started_unix_ms(s),
        wall_ms: 9_000,
        duration_ms: duration_ns(s) / 1_000_000,
        guests: vec![GuestRun {
            qemu_pid: Some(999),
            observed_start: observed.clone(),
            observed_end: if s.failed { Vec::new() } else { observed },
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
                    samples: 10,
                })
                .collect(),
            // A failed boot never said hello.
            hello: (!s.failed).then(|| hello(s, clock)),
            results,
            intervals,
            boot_to_hello_ms: Some(900),
            boot_to_first_sample_ms: Some(1_400),
            window: (!s.failed).then(|| window(s)),
            ..GuestRun::new(planned.clone())
        }],
        mgmt_poll: (s.scenario == ScenarioKind::MgmtPoll).then(|| MgmtPollStats {
            rate_hz: 20,
            rounds: 40,
            errors: 0,
            queries: vec!["query-cpus-fast".into()],
        }),
        warnings: Vec::new(),
        host_steal: None,
        runner_max_rss_kib: Some(12_000),
        mgmt_storm: None,
        migrate: None,
        host_trace: None,
    }
}

/// The cause of a fixture run that never said hello: the 60 s boot deadline passed and the
/// console, whose last lines are the evidence, names no reason.
fn no_hello() -> FailureCause {
    FailureCause::NoHello {
        deadline_s: Some(60),
        evidence: vec![
            "Run /init as init process".into(),
            "random: crng init done".into(),
        ],
    }
}

/// The "basic" set: 3 layouts × 2 scenarios × 2 workloads × 2 repetitions under KVM. Under
/// mgmt-poll the timer tail of `share` is far worse than the others'; busy-poll is the same
/// everywhere. 50 000 samples per RT vCPU: a group merges 200 000, enough for p99.99 to have 20
/// samples beyond it (not max-bound), so the verdicts rank at p99.99.
pub fn basic_specs() -> Vec<Spec> {
    let mut v = Vec::new();
    for (layout, kind) in [
        ("share", LayoutKind::Share),
        ("vcpu0", LayoutKind::Vcpu0),
        ("isolate", LayoutKind::Isolate),
    ] {
        for scenario in [ScenarioKind::Idle, ScenarioKind::MgmtPoll] {
            for workload in [WorkloadKind::BusyPoll, WorkloadKind::Timer] {
                for rep in 1..=2 {
                    let tail_ns = match (workload, scenario, kind) {
                        (WorkloadKind::BusyPoll, _, _) => (1_000, 3_000),
                        (_, ScenarioKind::MgmtPoll, LayoutKind::Share) => (120_000, 160_000),
                        (_, ScenarioKind::MgmtPoll, LayoutKind::Vcpu0) => (20_000, 30_000),
                        _ => (12_000, 20_000),
                    };
                    v.push(Spec {
                        layout,
                        kind,
                        scenario,
                        workload,
                        rep,
                        accel: Accel::Kvm,
                        tail_ns,
                        tail_every: 2_000,
                        failed: false,
                        samples: 50_000,
                        period_ns: FIXTURE_PERIOD_NS,
                        weight: 1,
                        intervals: 2,
                        clock: clock_of(workload),
                        guest_rt: true,
                    });
                }
            }
        }
    }
    v
}

/// The "tcg" set: share and vcpu0, idle × timer, 1 repetition under TCG, plus a failed second
/// repetition of vcpu0 (and, written separately, an unreadable file). Its guest kernel is not
/// PREEMPT_RT.
pub fn tcg_specs() -> Vec<Spec> {
    let base = Spec {
        layout: "share",
        kind: LayoutKind::Share,
        scenario: ScenarioKind::Idle,
        workload: WorkloadKind::Timer,
        rep: 1,
        accel: Accel::Tcg,
        tail_ns: (300_000, 900_000),
        tail_every: 500,
        failed: false,
        samples: 5_000,
        period_ns: FIXTURE_PERIOD_NS,
        weight: 1,
        intervals: 2,
        clock: ClockSource::Monotonic,
        guest_rt: false,
    };
    vec![
        base,
        Spec {
            layout: "vcpu0",
            kind: LayoutKind::Vcpu0,
            tail_ns: (200_000, 400_000),
            ..base
        },
        Spec {
            layout: "vcpu0",
            kind: LayoutKind::Vcpu0,
            rep: 2,
            failed: true,
            ..base
        },
    ]
}

/// The "failures" set: one 3-vCPU guest, mgmt-poll × timer, 2 repetitions of three layouts:
/// `isolate` measures both; `vcpu0` measures the first (with an RCU stall warning) and loses
/// the second to an RCU stall after the hello; `colocated`, a `custom` layout, never boots: the
/// guest kernel panics at the timer check in both. The causes and the warning are what the
/// classifier makes of the recorded consoles in `tests/fixtures/console/`.
pub fn failures_specs() -> Vec<Spec> {
    let mut v = Vec::new();
    for (layout, kind, tail_ns) in [
        ("isolate", LayoutKind::Isolate, (12_000, 20_000)),
        ("vcpu0", LayoutKind::Vcpu0, (20_000, 30_000)),
        ("colocated", LayoutKind::Custom, (12_000, 20_000)),
    ] {
        for rep in 1..=2 {
            v.push(Spec {
                layout,
                kind,
                scenario: ScenarioKind::MgmtPoll,
                workload: WorkloadKind::Timer,
                rep,
                accel: Accel::Tcg,
                tail_ns,
                tail_every: 2_000,
                failed: layout == "colocated" || (layout == "vcpu0" && rep == 2),
                samples: 50_000,
                period_ns: FIXTURE_PERIOD_NS,
                weight: 1,
                intervals: 2,
                clock: ClockSource::Monotonic,
                guest_rt: true,
            });
        }
    }
    v
}

/// A run of the failures set as the runner records it: the console's cause first in the
/// reason, the stage the cause says, guest kernel warnings of a run that lived.
pub fn failures_record(run_id: &str, s: &Spec) -> RunRecord {
    const TIMER_PANIC: &[u8] = include_bytes!("../../tests/fixtures/console/timer-check-panic.log");
    const RCU_STARVED: &[u8] =
        include_bytes!("../../tests/fixtures/console/vcpu-frozen-hung-task-rcu-starved.log");
    const RCU_SOFT_LOCKUP: &[u8] =
        include_bytes!("../../tests/fixtures/console/vcpu-frozen-rcu-stall-soft-lockup.log");
    let mut r = record(run_id, s);
    match (s.layout, s.failed) {
        ("colocated", _) => {
            let facts = GuestFacts {
                qemu_exit: Some("exit status 0".into()),
                deadline_s: None,
                ..GuestFacts::default()
            };
            let cause = pinlat::console::classify(TIMER_PANIC, &facts);
            r.status = RunStatus::Failed {
                stage: pinlat::result::Stage::Boot,
                reason: format!(
                    "guest rt: {cause}; QEMU for guest rt exited (exit status 0) before the agent finished; console last showed: ..... failed :(. | Kernel panic - not syncing: IO-APIC + timer doesn't work!"
                ),
            };
            r.failure = Some(cause);
            // The emulator threads share the RT vCPUs' pCPUs.
            let g = &mut r.guests[0];
            let shared = CpuSet::parse("1-2").unwrap();
            g.planned.emulator_cpus = shared.clone();
            g.planned.iothread_cpus = shared.clone();
            for t in g
                .observed_start
                .iter_mut()
                .filter(|t| t.role == ThreadRole::Emulator)
            {
                t.cpus = shared.clone();
                t.planned_cpus = shared.clone();
            }
        }
        ("vcpu0", true) => {
            let facts = GuestFacts {
                hello: true,
                deadline_s: Some(13),
                ..GuestFacts::default()
            };
            let cause = pinlat::console::classify(RCU_STARVED, &facts);
            r.status = RunStatus::Failed {
                stage: pinlat::result::Stage::Measure,
                reason: format!("guest rt: {cause}; run deadline: the agent did not finish within twice its preheat + duration + 5 s; console last showed: INFO: task init:102 blocked for more than 10 seconds."),
            };
            r.failure = Some(cause);
        }
        ("vcpu0", false) if s.rep == 1 => {
            r.warnings.extend(
                pinlat::console::scan_warnings(RCU_SOFT_LOCKUP)
                    .into_iter()
                    .filter(|w| w.kind == pinlat::console::WarningKind::RcuStall)
                    .map(|report| Warning::GuestKernel {
                        guest: "rt".into(),
                        report,
                    }),
            );
        }
        _ => {}
    }
    r
}

/// Budgets of the failures set: timer p99.99 ≤ 50 µs and max ≤ 200 µs.
pub fn failures_budgets() -> &'static str {
    "[budgets.timer]\nmax_us = 200\npercentile = 99.99\npercentile_us = 50\n"
}

/// Writes the failures set.
pub fn write_failures(dir: &Path) {
    let write = || -> std::io::Result<()> {
        let run_id = "fixture-failures";
        std::fs::create_dir_all(dir.join("runs"))?;
        let mut names = Vec::new();
        for s in failures_specs() {
            let r = failures_record(run_id, &s);
            names.push(r.name.clone());
            std::fs::write(dir.join("runs").join(r.file_name()), pretty(&r))?;
        }
        std::fs::write(
            dir.join("plan.json"),
            pretty(&plan_file(run_id, names, failures_budgets())),
        )?;
        std::fs::write(dir.join("host.json"), pretty(&host_facts()))
    };
    write().unwrap_or_else(|e| panic!("writing {}: {e}", dir.display()));
}

/// The host the fixture runs were "measured" on.
fn host_facts() -> HostFacts {
    HostFacts {
        schema_version: pinlat::schema::HOST_SCHEMA_VERSION,
        pinlat_version: "0.1.0".into(),
        local: LocalFacts {
            kernel_release: "6.1.0-fixture-rt-amd64".into(),
            kernel_version: "#1 SMP PREEMPT_RT fixture".into(),
            preempt_rt: true,
            cmdline: "isolcpus=1-4 nohz_full=1-4".into(),
            cpu_model: "Fixture CPU".into(),
            online_cpus: CpuSet::parse("0-5").unwrap(),
            isolated_cpus: CpuSet::parse("1-4").unwrap(),
            nohz_full_cpus: CpuSet::parse("1-4").unwrap(),
            sched_rt_runtime_us: Some(-1),
        },
        accel: Accel::Kvm,
        accel_note: None,
        qemu_path: "/usr/bin/qemu-system-x86_64".into(),
        qemu_version: "QEMU emulator version 7.2.0".into(),
        guest_kernel: "/boot/vmlinuz-6.1.0-fixture-rt-amd64".into(),
        guest_kernel_source: "explicit path".into(),
        can_set_realtime: true,
        agent_path: "/usr/lib/pinlat/pinlat-agent".into(),
    }
}

/// The config the fixture sets stand for, with `budgets` (TOML `[budgets.*]` tables).
fn plan_file(run_id: &str, runs: Vec<String>, budgets: &str) -> PlanFile {
    let toml = format!(
        "[host]\ncpus = \"0-5\"\n\
         [[guests]]\nname = \"rt\"\nvcpus = 3\nrealtime_mask = \"^0\"\n\
         [[layouts]]\nkind = \"share\"\n[[layouts]]\nkind = \"vcpu0\"\n[[layouts]]\nkind = \"isolate\"\n\
         [[scenarios]]\nkind = \"idle\"\n[[scenarios]]\nkind = \"mgmt-poll\"\n\
         [[workloads]]\nkind = \"busy-poll\"\n[[workloads]]\nkind = \"timer\"\n{budgets}"
    );
    let config = Config::from_toml_str(&toml).unwrap();
    let plan = Plan::new(&config, &CpuSet::parse("0-5").unwrap()).unwrap();
    PlanFile {
        schema_version: pinlat::schema::PLAN_SCHEMA_VERSION,
        run_id: run_id.into(),
        config_path: "fixture.toml".into(),
        config,
        plan,
        runs,
    }
}

/// Writes a results directory for `specs` under `dir` (`runs/`, `plan.json`, `host.json`), one
/// run at a time.
pub fn write_dir(dir: &Path, run_id: &str, specs: &[Spec], budgets: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("runs"))?;
    let mut names = Vec::new();
    for s in specs {
        let r = record(run_id, s);
        names.push(r.name.clone());
        std::fs::write(dir.join("runs").join(r.file_name()), pretty(&r))?;
    }
    std::fs::write(
        dir.join("plan.json"),
        pretty(&plan_file(run_id, names, budgets)),
    )?;
    std::fs::write(dir.join("host.json"), pretty(&host_facts()))
}

/// Budgets of the basic set: timer p99.99 ≤ 50 µs and max ≤ 200 µs; busy-poll max ≤ 10 µs.
pub fn basic_budgets() -> &'static str {
    "[budgets.timer]\nmax_us = 200\npercentile = 99.99\npercentile_us = 50\n\
     [budgets.busy-poll]\nmax_us = 10\n"
}

/// Pretty JSON with a final newline, as pinlat writes its files.
fn pretty<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap() + "\n"
}

/// Writes the basic set.
pub fn write_basic(dir: &Path) {
    write_dir(dir, "fixture-basic", &basic_specs(), basic_budgets())
        .unwrap_or_else(|e| panic!("writing {}: {e}", dir.display()));
}

/// Writes the TCG set, with an unreadable (truncated) run file.
pub fn write_tcg(dir: &Path) {
    write_dir(dir, "fixture-tcg", &tcg_specs(), "")
        .unwrap_or_else(|e| panic!("writing {}: {e}", dir.display()));
    std::fs::write(
        dir.join("runs/share.idle.busy-poll.r1.json"),
        "{\"schema_version\": 1, \"run_id\": \"fixture-tcg\", \"name\": ",
    )
    .unwrap();
}
