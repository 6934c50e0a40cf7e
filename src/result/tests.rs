use super::*;
use crate::plan::Sched;
use crate::wire::LoadResult;

#[test]
fn mismatch_detects_cpus_and_policy() {
    let mut t = ObservedThread {
        tid: 1,
        comm: "CPU 1/TCG".into(),
        role: ThreadRole::Vcpu { vcpu: 1 },
        cpus: CpuSet::parse("1").unwrap(),
        policy: HostPolicy::Fifo,
        priority: 1,
        planned_cpus: CpuSet::parse("1").unwrap(),
        planned_sched: Sched::fifo(1),
    };
    assert!(t.matches());
    t.priority = 2;
    assert!(!t.matches());
    t.priority = 1;
    t.cpus = CpuSet::parse("0-1").unwrap();
    assert!(!t.matches());
    t.cpus = CpuSet::parse("1").unwrap();
    t.policy = HostPolicy::Other;
    assert!(!t.matches());
    t.policy = HostPolicy::Rr;
    assert!(!t.matches());
}

#[test]
fn thread_kinds_serialize_flat_and_read_back() {
    let k = ThreadKindCpu {
        kind: ThreadKind::Vcpu { vcpu: 1 },
        threads: 1,
        run_ns: 7,
        cpus_seen: CpuSet::parse("1").unwrap(),
        ..Default::default()
    };
    let json = serde_json::to_value(&k).unwrap();
    assert_eq!(json["kind"], "vcpu");
    assert_eq!(json["vcpu"], 1);
    assert_eq!(serde_json::from_value::<ThreadKindCpu>(json).unwrap(), k);
    let main = serde_json::to_value(ThreadKindCpu {
        kind: ThreadKind::MainLoop,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(main["kind"], "main-loop");
    assert_eq!(ThreadKind::Monitor.label(), "monitor I/O");
    assert!(ThreadKind::Migration.is_emulator() && !ThreadKind::Iothread.is_emulator());
    // The exact schedstat time wins over the tick-resolution one when there is one.
    assert_eq!(k.time_ns(), 7);
    let exited = ThreadKindCpu {
        kind: ThreadKind::Exited,
        cpu_ns: 10_000_000,
        ..Default::default()
    };
    assert_eq!(exited.time_ns(), 10_000_000);
}

#[test]
fn storm_rates() {
    let s = MgmtStormStats {
        calls: 500,
        elapsed_ms: 2_000,
        ..Default::default()
    };
    assert_eq!(s.calls_per_s(), 250.0);
    assert_eq!(MgmtStormStats::default().calls_per_s(), 0.0);
}

#[test]
fn achieved_rates_and_the_bandwidth_warning() {
    let mut m = MigrateStats {
        max_bandwidth_mib_s: 32,
        bytes: 64 << 20,
        elapsed_ms: 4_000,
        ..Default::default()
    };
    assert!((m.achieved_mib_s() - 16.0).abs() < 1e-9);
    // 50 % exactly is not below half.
    assert!(!m.below_bandwidth());
    m.bytes -= 1;
    assert!(m.below_bandwidth());
    m.elapsed_ms = 0;
    assert_eq!(m.achieved_mib_s(), 0.0);
    let w = Warning::MigrateBelowBandwidth {
        guest: "rt".into(),
        achieved_kib_s: 8 * 1024,
        max_bandwidth_mib_s: 32,
    };
    let text = w.to_string();
    assert!(
        text.contains("8.0 MiB/s, 25 % of its max-bandwidth 32 MiB/s"),
        "{text}"
    );
}

#[test]
fn a_partial_scenario_is_named_in_the_record_and_the_text() {
    let w = Warning::ScenarioPartial {
        scenario: ScenarioKind::Migrate,
        guest: "rt".into(),
        why: "migration failed: boom".into(),
    };
    let json = serde_json::to_value(&w).unwrap();
    assert_eq!(json["kind"], "scenario-partial");
    assert_eq!(json["scenario"], "migrate");
    assert!(w
        .to_string()
        .contains("scenario migrate was not fully applied"));
}

#[test]
fn run_names() {
    assert_eq!(
        run_name("vcpu0", None, "mgmt-poll", WorkloadKind::BusyPoll, 2),
        "vcpu0.mgmt-poll.busy-poll.r2"
    );
}

fn net_load(target: Option<u64>, round_trips: u64) -> LoadResult {
    let stats = crate::wire::OpStats {
        count: round_trips,
        bytes: 0,
        errors: 0,
        first_error: None,
        min_ns: 0,
        max_ns: 0,
        overflow: 0,
        histogram: crate::histo::Hist(crate::histo::new_histogram()),
    };
    LoadResult {
        load: crate::wire::LoadKind::Net,
        device: "eth0".into(),
        direct: None,
        cpus: vec![0],
        duration_ns: 2_000_000_000,
        target_per_s: target,
        ops: [(crate::wire::OpKind::Rtt, stats)].into(),
        net: None,
    }
}

#[test]
fn a_load_far_below_its_target_rate_is_a_warning() {
    // 2 s window: 900 round trips is 450/s of 1000, under half.
    let w = load_below_rate("rt", &net_load(Some(1000), 900)).unwrap();
    assert_eq!(
        w,
        Warning::LoadBelowRate {
            guest: "rt".into(),
            load: crate::wire::LoadKind::Net,
            achieved_per_s: 450,
            target_per_s: 1000,
        }
    );
    assert!(
        w.to_string()
            .contains("achieved 450/s of its 1000/s target"),
        "{w}"
    );
    // Half or more, or no target (io goes as fast as it can): nothing to say.
    assert_eq!(load_below_rate("rt", &net_load(Some(1000), 1000)), None);
    assert_eq!(load_below_rate("rt", &net_load(None, 1)), None);
}
