//! Runs the real `pinlat-agent` binary natively, one short run per workload, and checks the
//! results from what the agent recorded (CPU, samples, histogram), never a latency number: this
//! machine is shared and noisy.

use std::path::Path;
use std::process::Command;

use pinlat::agentcfg::AgentConfig;
use pinlat::kinds::WorkloadKind;
use pinlat::wire::{CpuResult, Decoded, FrameDecoder, LoadKind, Message, OpKind, RunResult};

/// The housekeeping CPUs the agent uses for `cfg`: the configured ones, else every online CPU
/// but the measuring one.
trait HousekeepingCpus {
    fn housekeeping_cpus_or_others(&self, measuring: u32) -> Vec<u32>;
}

impl HousekeepingCpus for AgentConfig {
    fn housekeeping_cpus_or_others(&self, measuring: u32) -> Vec<u32> {
        if !self.housekeeping_cpus.is_empty() {
            return self.housekeeping_cpus.clone();
        }
        (0..=last_cpu()).filter(|&c| c != measuring).collect()
    }
}

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pinlat-agent"))
}

fn last_cpu() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as u32 - 1
}

fn run_native(extra: &[&str], dir: &Path) -> RunResult {
    let out = dir.join("result.json");
    let status = agent()
        .args([
            "--native",
            "--duration",
            "1s",
            "--preheat",
            "100ms",
            "--report-interval",
            "300ms",
            "-q",
        ])
        .args(extra)
        .arg("--output")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "agent failed: {status}");
    // Written through pinlat::atomic_write: the result, and no temporary left beside it.
    let names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["result.json"]);
    serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
}

/// Runs the agent in guest mode (`--init`) on config JSON `config`, its wire a file in `dir`:
/// how it exited, and the bytes it streamed.
fn run_guest_mode(config: &str, dir: &Path) -> (std::process::ExitStatus, Vec<u8>) {
    let cfg_path = dir.join("config.json");
    std::fs::write(&cfg_path, config).unwrap();
    let wire = dir.join("wire");
    let status = agent()
        .arg("--init")
        .arg("--config")
        .arg(&cfg_path)
        .arg("--wire")
        .arg(&wire)
        .status()
        .unwrap();
    (status, std::fs::read(&wire).unwrap())
}

fn check_result(r: &CpuResult, cpu: u32, workload: WorkloadKind) {
    assert_eq!(
        r.cpu, cpu,
        "result recorded on CPU {} instead of {cpu}",
        r.cpu
    );
    assert_eq!(r.workload, workload);
    assert!(r.samples > 0, "no samples");
    assert_eq!(r.samples, r.histogram.0.len() + r.overflow);
    assert!(r.min_ns <= r.max_ns);
    assert!(!r.top.is_empty() && r.top.len() <= 10);
    assert_eq!(r.top[0].latency_ns, r.max_ns, "largest event is the max");
    assert!(r.top.windows(2).all(|w| w[0].latency_ns >= w[1].latency_ns));
    // Measured duration is about the requested second (by the run's own clock).
    assert!(
        (900_000_000..3_000_000_000).contains(&r.duration_ns),
        "{}",
        r.duration_ns
    );
    assert!(
        r.intervals >= 3,
        "1 s in 300 ms intervals: {} reports",
        r.intervals
    );
}

#[test]
fn busy_poll_records_every_gap_on_the_requested_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let cpu = last_cpu();
    let res = run_native(
        &["--workload", "busy-poll", "--cpus", &cpu.to_string()],
        dir.path(),
    );
    assert_eq!(res.results.len(), 1);
    let r = &res.results[0];
    check_result(r, cpu, WorkloadKind::BusyPoll);
    // A busy loop takes far more than one sample per microsecond.
    assert!(r.samples > r.duration_ns / 1_000, "{} samples", r.samples);
    // Every gap is recorded: together they are the measured time, within 1 % (the histogram
    // keeps values to 3 significant digits; a sample above its range would be missing).
    assert_eq!(r.overflow, 0);
    let h = &r.histogram.0;
    let total_ns: u128 = h
        .iter_recorded()
        .map(|v| {
            u128::from(h.median_equivalent(v.value_iterated_to())) * u128::from(v.count_at_value())
        })
        .sum();
    let d = u128::from(r.duration_ns);
    assert!(
        total_ns.abs_diff(d) * 100 <= d,
        "gaps add up to {total_ns} ns over a {d} ns measurement"
    );
}

#[test]
fn timer_wakes_once_per_interval_on_the_requested_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let cpu = last_cpu();
    let res = run_native(
        &[
            "--workload",
            "timer",
            "--cpus",
            &cpu.to_string(),
            "--interval-us",
            "1000",
        ],
        dir.path(),
    );
    let r = &res.results[0];
    check_result(r, cpu, WorkloadKind::Timer);
    // 1 s at 1 ms: one sample per period that was not skipped.
    assert!(
        r.samples + r.missed_periods >= 990 && r.samples <= 1_001,
        "{r:?}"
    );
}

#[test]
fn ring_passes_messages_between_two_cpus() {
    let dir = tempfile::tempdir().unwrap();
    let res = run_native(&["--workload", "ring", "--cpus", "0-1"], dir.path());
    let r = &res.results[0];
    check_result(r, 1, WorkloadKind::Ring);
    assert_eq!(r.peer_cpu, Some(0));
}

#[test]
fn bad_cpu_is_an_error_not_a_measurement_elsewhere() {
    let out = agent()
        .args([
            "--native",
            "--workload",
            "busy-poll",
            "--cpus",
            "999",
            "--duration",
            "1s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CPU 999"));
    let out = agent()
        .args(["--native", "--workload", "busy-poll", "--cpus", "3-1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn guest_mode_streams_decodable_frames() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AgentConfig::new(WorkloadKind::BusyPoll, vec![last_cpu()], 700);
    cfg.preheat_ms = 100;
    cfg.report_interval_ms = 200;
    cfg.loads.syscall = true;
    cfg.loads.memory = true;
    cfg.loads.io = Some(pinlat::agentcfg::IoLoad {
        path: Some(dir.path().join("io").display().to_string()),
        span_bytes: Some(1 << 20),
        ..Default::default()
    });
    cfg.loads.memory_mib = Some(2);
    cfg.housekeeping_cpus = if last_cpu() > 0 { vec![0] } else { vec![] };
    let (status, bytes) = run_guest_mode(&cfg.to_json(), dir.path());
    assert!(status.success());
    let mut dec = FrameDecoder::new();
    let msgs: Vec<Message> = bytes
        .chunks(61)
        .flat_map(|c| dec.feed(c))
        .map(|d| match d {
            Decoded::Message(m) => *m,
            Decoded::Rejected(r) => panic!("rejected frame: {r}"),
        })
        .collect();
    assert!(matches!(&msgs[0], Message::Hello(h) if h.config == cfg));
    let intervals: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            Message::Interval(i) => Some(i),
            _ => None,
        })
        .collect();
    let finals: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            Message::Final(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(finals.len(), 1);
    assert_eq!(intervals.len() as u64, finals[0].intervals);
    // The interval histograms add up to the whole-run histogram.
    let sum: u64 = intervals.iter().map(|i| i.samples).sum();
    assert_eq!(sum, finals[0].samples);
    assert!(intervals
        .windows(2)
        .all(|w| w[0].end_offset_ns == w[1].start_offset_ns));
    assert!(matches!(msgs.last(), Some(Message::Done(d)) if d.finals == 1));
    assert!(
        std::fs::metadata(dir.path().join("io")).is_ok(),
        "io load wrote its file"
    );
    // The io load's result, before the finals (a runner may stop reading once they are in).
    let load_at: Vec<usize> = msgs
        .iter()
        .enumerate()
        .filter(|(_, m)| matches!(m, Message::Load(_)))
        .map(|(i, _)| i)
        .collect();
    let final_at = msgs
        .iter()
        .position(|m| matches!(m, Message::Final(_)))
        .unwrap();
    assert_eq!(load_at.len(), 1, "one io load result");
    assert!(load_at[0] < final_at);
    let Message::Load(io) = &msgs[load_at[0]] else {
        unreachable!()
    };
    assert_eq!(io.load, LoadKind::Io);
    assert_eq!(io.device, dir.path().join("io").display().to_string());
    assert_eq!(io.cpus, cfg.housekeeping_cpus_or_others(last_cpu()));
    // Counted after the 100 ms preheat, over about the 700 ms measured.
    assert!(
        io.duration_ns > 0 && io.duration_ns < 60_000_000_000,
        "{io:?}"
    );
    for op in [OpKind::Read, OpKind::Write, OpKind::Flush] {
        let s = &io.ops[&op];
        assert!(s.count > 0, "{op}: {io:?}");
        assert_eq!(s.errors, 0, "{op}: {:?}", s.first_error);
        assert_eq!(s.count, s.histogram.0.len() + s.overflow);
        assert!(s.min_ns <= s.max_ns);
    }
    assert_eq!(
        io.ops[&OpKind::Read].bytes,
        io.ops[&OpKind::Read].count * 4096
    );
}

#[test]
fn guest_mode_reports_errors_on_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let (status, bytes) = run_guest_mode(
        r#"{"workload":"timer","rt_cpus":[999],"duration_ms":100}"#,
        dir.path(),
    );
    assert_eq!(status.code(), Some(3));
    let mut dec = FrameDecoder::new();
    let msgs = dec.feed(&bytes);
    let Some(Decoded::Message(m)) = msgs.last() else {
        panic!("no frame: {msgs:?}")
    };
    let Message::Error(e) = &**m else {
        panic!("last frame is not an error: {m:?}")
    };
    assert!(e.message.contains("CPU 999"), "{}", e.message);
}

/// Natively the io load uses a temporary file (removed afterwards) and reports itself in the
/// result; the net load without an interface is skipped, not an error.
#[test]
fn native_io_load_measures_itself_and_net_without_an_interface_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("result.json");
    let o = agent()
        .args([
            "--native",
            "--workload",
            "busy-poll",
            "--cpus",
            &last_cpu().to_string(),
            "--duration",
            "600ms",
            "--preheat",
            "0ms",
            "--load",
            "io,net",
        ])
        .arg("--output")
        .arg(&out)
        .env("TMPDIR", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("net load skipped"), "{stderr}");
    assert!(stderr.contains("load io device="), "{stderr}");
    let r: RunResult = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(r.loads.len(), 1, "{:?}", r.loads);
    let io = &r.loads[0];
    assert_eq!(io.load, LoadKind::Io);
    assert!(io.device.contains("pinlat-agent-io-"), "{}", io.device);
    let ops: u64 = io.ops.values().map(|s| s.count).sum();
    assert!(ops > 0, "{io:?}");
    // The temporary file is gone; only the result is left.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["result.json"]);
}
