use super::*;
use pinlat::histo::{new_histogram, Hist};
use pinlat::wire::{ClockInfo, ClockSource, TopEvent};

fn expect() -> Expect {
    Expect {
        rt_cpus: CpuSet::parse("1-2").unwrap(),
        workload: WorkloadKind::BusyPoll,
        planned_ns: 6_000_000_000,
        deadline_slack_ns: 30_000_000_000,
        max_intervals: 10,
    }
}

fn hist(values: &[u64]) -> Hist {
    let mut h = new_histogram();
    for v in values {
        h.record(*v).unwrap();
    }
    Hist(h)
}

fn good_final() -> CpuResult {
    CpuResult {
        cpu: 1,
        workload: WorkloadKind::BusyPoll,
        peer_cpu: None,
        clock: ClockInfo {
            source: ClockSource::Monotonic,
            tsc_hz: None,
            invariant_tsc: false,
            calibration_spread_ppm: None,
        },
        duration_ns: 5_000_000_000,
        start_mono_ns: None,
        end_mono_ns: None,
        cpu_dma_latency_held: None,
        samples: 4,
        min_ns: 100,
        max_ns: 90_000,
        overflow: 0,
        backwards: 0,
        missed_periods: 0,
        top: vec![
            TopEvent {
                offset_ns: 10,
                latency_ns: 90_000,
            },
            TopEvent {
                offset_ns: 20,
                latency_ns: 500,
            },
        ],
        intervals: 5,
        late_intervals: 0,
        histogram: hist(&[100, 200, 500, 90_000]),
    }
}

fn good_interval() -> IntervalReport {
    IntervalReport {
        cpu: 2,
        workload: WorkloadKind::BusyPoll,
        index: 3,
        start_offset_ns: 3_000_000_000,
        end_offset_ns: 4_000_000_000,
        samples: 3,
        overflow: 1,
        histogram: hist(&[1, 2]),
    }
}

#[test]
fn a_real_agent_message_passes() {
    let e = expect();
    assert_eq!(e.check_final(&good_final(), &CpuSet::new()), Ok(()));
    assert_eq!(e.check_interval(&good_interval()), Ok(()));
    // An empty final (no samples) is legitimate: the agent sends min 0, max 0.
    let mut r = good_final();
    r.samples = 0;
    r.min_ns = 0;
    r.max_ns = 0;
    r.top.clear();
    r.histogram = Hist::default();
    assert_eq!(e.check_final(&r, &CpuSet::new()), Ok(()));
    // Overflowed samples are in max_ns, not in the histogram.
    let mut r = good_final();
    r.overflow = 2;
    r.samples = 6;
    r.max_ns = 70_000_000_000;
    assert_eq!(e.check_final(&r, &CpuSet::new()), Ok(()));
}

#[test]
fn samples_must_match_the_histogram() {
    let mut r = good_final();
    r.samples = 1_000_000;
    let err = expect().check_final(&r, &CpuSet::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "final from CPU 1 claims 1000000 samples but its histogram holds 4 and overflow 0"
    );
    // An overflow that wraps u64 is refused, not added.
    let mut r = good_final();
    r.overflow = u64::MAX;
    r.samples = 3;
    assert!(matches!(
        expect().check_final(&r, &CpuSet::new()),
        Err(Implausible::SampleCount { .. })
    ));
    let mut iv = good_interval();
    iv.samples = 2;
    assert!(matches!(
        expect().check_interval(&iv),
        Err(Implausible::SampleCount {
            what: "interval",
            ..
        })
    ));
}

#[test]
fn cpus_must_be_rt_vcpus_of_the_guest() {
    let mut r = good_final();
    r.cpu = 0;
    assert_eq!(
        expect()
            .check_final(&r, &CpuSet::new())
            .unwrap_err()
            .to_string(),
        "final for CPU 0, which is not an RT vCPU of the guest (RT vCPUs: 1-2)"
    );
    let mut r = good_final();
    r.peer_cpu = Some(4_000_000_000);
    assert!(matches!(
        expect().check_final(&r, &CpuSet::new()),
        Err(Implausible::NotRtCpu {
            what: "final.peer_cpu",
            ..
        })
    ));
    let mut iv = good_interval();
    iv.cpu = 7;
    assert!(matches!(
        expect().check_interval(&iv),
        Err(Implausible::NotRtCpu {
            what: "interval",
            cpu: 7,
            ..
        })
    ));
}

#[test]
fn workload_must_be_the_runs() {
    let mut r = good_final();
    r.workload = WorkloadKind::Timer;
    assert_eq!(
        expect()
            .check_final(&r, &CpuSet::new())
            .unwrap_err()
            .to_string(),
        "final for workload timer, but the run measures busy-poll"
    );
}

#[test]
fn a_cpu_sends_one_final() {
    let seen: CpuSet = [1].into_iter().collect();
    assert_eq!(
        expect().check_final(&good_final(), &seen),
        Err(Implausible::DuplicateFinal { cpu: 1 })
    );
}

#[test]
fn min_max_and_histogram_agree() {
    let mut r = good_final();
    r.min_ns = 100_000;
    assert!(matches!(
        expect().check_final(&r, &CpuSet::new()),
        Err(Implausible::MinMax { .. })
    ));
    // A histogram holding a second-long value while max_ns claims 90 µs.
    let mut r = good_final();
    r.histogram = hist(&[100, 200, 500, 1_000_000_000]);
    assert!(matches!(
        expect().check_final(&r, &CpuSet::new()),
        Err(Implausible::MinMax { .. })
    ));
}

#[test]
fn a_huge_or_disordered_top_list_is_refused() {
    let mut r = good_final();
    r.top = vec![TopEvent::default(); 5];
    assert_eq!(
        expect().check_final(&r, &CpuSet::new()),
        Err(Implausible::TopTooLong {
            cpu: 1,
            len: 5,
            limit: 4
        })
    );
    let mut r = good_final();
    r.overflow = 100_000;
    r.samples = 100_004;
    r.max_ns = 70_000_000_000;
    r.top = vec![TopEvent::default(); MAX_TOP_N + 1];
    assert!(matches!(
        expect().check_final(&r, &CpuSet::new()),
        Err(Implausible::TopTooLong { limit: 1000, .. })
    ));
    let mut r = good_final();
    r.top[1].latency_ns = 95_000;
    assert!(matches!(
        expect().check_final(&r, &CpuSet::new()),
        Err(Implausible::TopOrder { index: 1, .. })
    ));
}

#[test]
fn a_duration_past_the_runs_own_deadline_is_refused() {
    // Planned 6 s: the run deadline is 2 × 6 s + 30 s. An hour passed the old 24 h slack.
    let mut r = good_final();
    r.duration_ns = 3_600_000_000_000;
    assert!(matches!(
        expect().check_final(&r, &CpuSet::new()),
        Err(Implausible::Duration {
            limit_ns: 42_000_000_000,
            ..
        })
    ));
    r.duration_ns = 41_000_000_000;
    assert!(expect().check_final(&r, &CpuSet::new()).is_ok());
}

#[test]
fn extremes_must_lie_in_the_histograms_end_buckets() {
    let mut r = good_final();
    r.min_ns -= 1;
    let e = expect().check_final(&r, &CpuSet::new()).unwrap_err();
    assert!(
        matches!(e, Implausible::ExtremeOffHistogram { what: "min_ns", .. }),
        "{e}"
    );
    let mut r = good_final();
    r.max_ns += 10_000;
    let e = expect().check_final(&r, &CpuSet::new()).unwrap_err();
    assert!(
        matches!(e, Implausible::ExtremeOffHistogram { what: "max_ns", .. }),
        "{e}"
    );
}

#[test]
fn durations_beyond_the_run_are_refused() {
    let mut r = good_final();
    r.duration_ns = u64::MAX;
    assert!(matches!(
        expect().check_final(&r, &CpuSet::new()),
        Err(Implausible::Duration {
            what: "final.duration_ns",
            ..
        })
    ));
    let mut r = good_final();
    r.top[0].offset_ns = u64::MAX;
    assert!(matches!(
        expect().check_final(&r, &CpuSet::new()),
        Err(Implausible::Duration { .. })
    ));
    let mut iv = good_interval();
    iv.end_offset_ns = 1;
    assert!(matches!(
        expect().check_interval(&iv),
        Err(Implausible::IntervalBackwards { index: 3, .. })
    ));
    let mut iv = good_interval();
    iv.index = 10;
    assert_eq!(
        expect().check_interval(&iv).unwrap_err().to_string(),
        "interval 10 from CPU 2 is beyond the 10 intervals the run can have"
    );
}

#[test]
fn hello_must_echo_the_sent_config_once() {
    use pinlat::agentcfg::AgentConfig;
    use pinlat::wire::{ClockInfo, ClockSource, Hello, SystemFacts, SCHEMA_VERSION};
    let sent = AgentConfig::new(WorkloadKind::BusyPoll, vec![1], 1000);
    let hello = |config: AgentConfig, schema_version| Hello {
        schema_version,
        agent_version: "0".into(),
        facts: SystemFacts {
            kernel_release: String::new(),
            kernel_version: String::new(),
            preempt_rt: true,
            clocksource: "tsc".into(),
            cmdline: String::new(),
            isolated_cpus: "1".into(),
            cpu_count: 2,
            clock: ClockInfo {
                source: ClockSource::Tsc,
                tsc_hz: Some(1),
                invariant_tsc: true,
                calibration_spread_ppm: None,
            },
            devices: Default::default(),
            tuning: None,
        },
        config,
        sent_mono_ns: None,
    };
    let e = expect();
    assert_eq!(
        e.check_hello(&hello(sent.clone(), SCHEMA_VERSION), &sent, false),
        Ok(())
    );
    assert_eq!(
        e.check_hello(&hello(sent.clone(), SCHEMA_VERSION), &sent, true),
        Err(Implausible::DuplicateHello)
    );
    assert!(matches!(
        e.check_hello(&hello(sent.clone(), SCHEMA_VERSION + 1), &sent, false),
        Err(Implausible::Schema { .. })
    ));
    let mut other = sent.clone();
    other.duration_ms = u64::MAX;
    assert_eq!(
        e.check_hello(&hello(other, SCHEMA_VERSION), &sent, false),
        Err(Implausible::ConfigMismatch)
    );
}

fn op(values: &[u64], bytes_each: u64) -> OpStats {
    OpStats {
        count: values.len() as u64,
        bytes: values.len() as u64 * bytes_each,
        errors: 0,
        first_error: None,
        min_ns: values.iter().copied().min().unwrap_or(0),
        max_ns: values.iter().copied().max().unwrap_or(0),
        overflow: 0,
        histogram: hist(values),
    }
}

fn loads_sent() -> pinlat::agentcfg::AgentConfig {
    let mut sent = pinlat::agentcfg::AgentConfig::new(WorkloadKind::BusyPoll, vec![1], 1000);
    sent.housekeeping_cpus = vec![0];
    sent.loads.io = Some(Default::default());
    sent.loads.net = Some(Default::default());
    sent
}

fn good_io() -> LoadResult {
    LoadResult {
        load: LoadKind::Io,
        device: "/dev/vda".into(),
        direct: Some(true),
        cpus: vec![0],
        duration_ns: 5_000_000_000,
        target_per_s: None,
        ops: [
            (OpKind::Read, op(&[90_000, 120_000, 4_000_000], 4096)),
            (OpKind::Write, op(&[150_000], 4096)),
            (OpKind::Flush, op(&[800_000], 0)),
        ]
        .into(),
        net: None,
    }
}

fn good_net() -> LoadResult {
    LoadResult {
        load: LoadKind::Net,
        device: "eth0".into(),
        direct: None,
        cpus: vec![0],
        duration_ns: 5_000_000_000,
        target_per_s: Some(1000),
        ops: [(OpKind::Rtt, op(&[300_000, 310_000], 256))].into(),
        net: Some(pinlat::wire::NetCounts {
            sent: 3,
            received: 2,
            lost: 1,
            ..Default::default()
        }),
    }
}

#[test]
fn a_real_load_result_passes_and_a_second_is_refused() {
    let (e, sent) = (expect(), loads_sent());
    assert_eq!(e.check_load(&good_io(), &sent, &[]), Ok(()));
    assert_eq!(e.check_load(&good_net(), &sent, &[LoadKind::Io]), Ok(()));
    assert_eq!(
        e.check_load(&good_io(), &sent, &[LoadKind::Io]),
        Err(Implausible::DuplicateLoad { load: LoadKind::Io })
    );
    // Nothing done is plausible: an empty op of a starved load.
    let mut idle = good_io();
    for s in idle.ops.values_mut() {
        *s = op(&[], 4096);
    }
    assert_eq!(e.check_load(&idle, &sent, &[]), Ok(()));
}

#[test]
fn a_load_the_run_did_not_switch_on_is_refused() {
    let mut sent = loads_sent();
    sent.loads.net = None;
    assert_eq!(
        expect()
            .check_load(&good_net(), &sent, &[])
            .unwrap_err()
            .to_string(),
        "load result for net, which the run config did not switch on"
    );
}

#[test]
fn a_load_on_an_rt_vcpu_or_with_foreign_operations_is_refused() {
    let (e, sent) = (expect(), loads_sent());
    let mut r = good_io();
    r.cpus = vec![0, 2];
    assert!(matches!(
        e.check_load(&r, &sent, &[]),
        Err(Implausible::LoadOnRtCpu { cpu: 2, .. })
    ));
    let mut r = good_io();
    r.ops.insert(OpKind::Rtt, op(&[1], 60));
    assert_eq!(
        e.check_load(&r, &sent, &[]).unwrap_err().to_string(),
        "load io reports rtt operations, which it does not do"
    );
}

#[test]
fn operation_counts_must_match_their_histograms() {
    let (e, sent) = (expect(), loads_sent());
    let refused = |f: &dyn Fn(&mut OpStats)| {
        let mut r = good_io();
        f(r.ops.get_mut(&OpKind::Read).unwrap());
        match e.check_load(&r, &sent, &[]) {
            Err(Implausible::OpStats {
                op: OpKind::Read,
                why,
                ..
            }) => why.to_string(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        refused(&|s| s.count = 1_000_000),
        "claims 1000000 operations but its histogram holds 3 and overflow 0"
    );
    assert!(refused(&|s| s.count = u64::MAX).contains("claims"));
    assert!(refused(&|s| s.overflow = u64::MAX).contains("overflow"));
    assert!(refused(&|s| s.min_ns = 1).contains("min_ns"));
    assert!(refused(&|s| s.max_ns = 9_000_000).contains("max_ns"));
    assert!(refused(&|s| s.min_ns = 5_000_000).contains("min_ns"));
    // More bytes than three 4 KiB reads can move.
    assert!(refused(&|s| s.bytes = 3 * 4096 + 1).contains("bytes"));
    assert!(refused(&|s| {
        *s = op(&[], 0);
        s.max_ns = 5;
    })
    .contains("no operations"));
    // Overflowed operations are in max_ns, above the histogram's range.
    let mut r = good_io();
    let s = r.ops.get_mut(&OpKind::Read).unwrap();
    s.overflow = 1;
    s.count = 4;
    s.max_ns = 70_000_000_000;
    assert_eq!(e.check_load(&r, &sent, &[]), Ok(()));
    // A flush moves no bytes.
    let mut r = good_io();
    r.ops.get_mut(&OpKind::Flush).unwrap().bytes = 1;
    assert!(e.check_load(&r, &sent, &[]).is_err());
}

#[test]
fn net_frames_must_add_up() {
    let (e, sent) = (expect(), loads_sent());
    let why = |f: &dyn Fn(&mut LoadResult)| {
        let mut r = good_net();
        f(&mut r);
        match e.check_load(&r, &sent, &[]) {
            Err(Implausible::NetCounts { why, .. }) => why,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        why(&|r| r.net.as_mut().unwrap().lost = 2),
        "2 received and 2 lost of 3 sent"
    );
    assert!(why(&|r| r.net.as_mut().unwrap().received = u64::MAX).contains("received"));
    assert_eq!(
        why(&|r| {
            let n = r.net.as_mut().unwrap();
            n.received = 1;
            n.lost = 0;
        }),
        "2 round trips timed but 1 frames received"
    );
    assert_eq!(why(&|r| r.net = None), "no frame counts");
    let mut io = good_io();
    io.net = Some(Default::default());
    assert!(matches!(
        e.check_load(&io, &sent, &[]),
        Err(Implausible::NetCounts { .. })
    ));
    // Frames of 256 bytes at most.
    let mut r = good_net();
    r.ops.get_mut(&OpKind::Rtt).unwrap().bytes = 2 * 256 + 1;
    assert!(matches!(
        e.check_load(&r, &sent, &[]),
        Err(Implausible::OpStats { .. })
    ));
}

#[test]
fn a_load_window_past_the_runs_deadline_is_refused() {
    let mut r = good_net();
    r.duration_ns = 3_600_000_000_000;
    assert!(matches!(
        expect().check_load(&r, &loads_sent(), &[]),
        Err(Implausible::LoadDuration {
            limit_ns: 42_000_000_000,
            ..
        })
    ));
}
