//! The run engine driven through a scripted guest: what a hung, crashed, flooding, lying or
//! garbage-sending guest does to its run, in milliseconds and without QEMU. The boot tests
//! (`tests/guests/faults.rs`) prove the same on real guests.

use std::io;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pinlat::agentcfg::AgentConfig;
use pinlat::config::Config;
use pinlat::cpuset::CpuSet;
use pinlat::histo::{new_histogram, Hist};
use pinlat::kinds::Accel;
use pinlat::plan::Plan;
use pinlat::result::{GuestRun, RunRecord, RunStatus, Stage, Warning};
use pinlat::wire::{
    encode, ClockInfo, ClockSource, CpuResult, Done, ErrorReport, Hello, LoadKind, LoadResult,
    Message, OpKind, OpStats, SystemFacts, TopEvent, SCHEMA_VERSION,
};

use super::backend::{GuestBackend, OutputBytes, ResumeError};
use super::tracer::TraceSettings;
use super::{execute, LaunchRequest, Launched, Launcher, RunContext};
use crate::pin::Pinner;

/// What a scripted guest writes and when, counted from its launch.
#[derive(Clone, Default)]
pub(super) struct Script {
    /// Agent channel bytes, each released at its offset.
    pub(super) channel: Vec<(Duration, Vec<u8>)>,
    /// The process exits at this offset with this status.
    pub(super) exit: Option<(Duration, &'static str)>,
    /// Console bytes reported as written.
    pub(super) console_bytes: u64,
    /// What the console shows.
    pub(super) console: Vec<u8>,
}

struct ScriptedGuest {
    started: Instant,
    script: Script,
    next: usize,
    written: u64,
    killed: bool,
}

impl GuestBackend for ScriptedGuest {
    fn started(&self) -> Instant {
        self.started
    }

    fn read_channel(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        let now = self.started.elapsed();
        let mut n = 0;
        while let Some((at, bytes)) = self.script.channel.get(self.next) {
            if *at > now || n + bytes.len() > max {
                break;
            }
            out.extend_from_slice(bytes);
            n += bytes.len();
            self.next += 1;
        }
        self.written += n as u64;
        Ok(n)
    }

    fn output_bytes(&self) -> OutputBytes {
        OutputBytes {
            console: self.script.console_bytes,
            channel: self.written,
        }
    }

    fn exited(&mut self) -> Option<String> {
        if self.killed {
            return Some("signal: 9 (SIGKILL)".into());
        }
        self.script
            .exit
            .filter(|(at, _)| self.started.elapsed() >= *at)
            .map(|(_, s)| s.to_string())
    }

    fn wait_exit(&mut self, deadline: Instant) -> bool {
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    fn kill(&mut self) {
        self.killed = true;
    }

    fn console_tail(&self) -> String {
        "Kernel panic - not syncing: scripted".into()
    }

    fn console(&self) -> Vec<u8> {
        self.script.console.clone()
    }

    fn resume(&mut self) -> Result<(), ResumeError> {
        Ok(())
    }

    fn send(&mut self, _: &pinlat::wire::Command) -> io::Result<()> {
        Ok(())
    }

    fn mgmt_socket(&self) -> Option<PathBuf> {
        None
    }

    fn pinner(&mut self) -> Option<&mut Pinner> {
        None
    }
}

/// Launches scripted guests; `script(agent config)` writes each guest's script.
struct ScriptedLauncher {
    script: fn(&AgentConfig) -> Script,
    launched: Mutex<usize>,
}

impl Launcher for ScriptedLauncher {
    fn launch(
        &self,
        req: LaunchRequest<'_>,
        record: &mut GuestRun,
        _: &mut Vec<Warning>,
    ) -> Result<Launched, RunStatus> {
        *self.launched.lock().unwrap() += 1;
        record.console_log = Some(format!("console/{}.log", req.run));
        Ok(Launched {
            backend: Box::new(ScriptedGuest {
                started: Instant::now(),
                script: (self.script)(&req.agent),
                next: 0,
                written: 0,
                killed: false,
            }),
            agent: req.agent,
        })
    }
}

pub(super) const CONFIG: &str = r#"
[run]
duration_s = 1
boot_timeout_s = 1
[host]
cpus = "0-1"
[[guests]]
name = "g"
vcpus = 2
[[layouts]]
kind = "vcpu0"
[[workloads]]
kind = "busy-poll"
preheat_ms = 0
"#;

pub(super) fn frame(m: &Message) -> Vec<u8> {
    encode(m).unwrap()
}

pub(super) fn hello(cfg: &AgentConfig) -> Message {
    Message::Hello(Hello {
        schema_version: SCHEMA_VERSION,
        agent_version: "test".into(),
        facts: SystemFacts {
            kernel_release: "6.1.0-rt".into(),
            kernel_version: "#1 SMP PREEMPT_RT".into(),
            preempt_rt: true,
            clocksource: "tsc".into(),
            cmdline: String::new(),
            isolated_cpus: "1".into(),
            cpu_count: 2,
            clock: clock(),
            devices: Default::default(),
            tuning: None,
        },
        config: cfg.clone(),
        sent_mono_ns: None,
    })
}

fn clock() -> ClockInfo {
    ClockInfo {
        source: ClockSource::Tsc,
        tsc_hz: Some(2_300_000_000),
        invariant_tsc: true,
        calibration_spread_ppm: Some(3),
    }
}

pub(super) fn final_for(cpu: u32) -> Message {
    let mut h = new_histogram();
    for v in [100u64, 120, 5_000] {
        h.record(v).unwrap();
    }
    Message::Final(CpuResult {
        cpu,
        workload: pinlat::config::WorkloadKind::BusyPoll,
        peer_cpu: None,
        clock: clock(),
        duration_ns: 1_000_000_000,
        start_mono_ns: None,
        end_mono_ns: None,
        cpu_dma_latency_held: None,
        samples: 3,
        min_ns: 100,
        max_ns: 5_000,
        overflow: 0,
        backwards: 0,
        missed_periods: 0,
        top: vec![TopEvent {
            offset_ns: 500_000,
            latency_ns: 5_000,
        }],
        intervals: 1,
        late_intervals: 0,
        histogram: Hist(h),
    })
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A guest that boots, measures and reports as the real agent does.
pub(super) fn good(cfg: &AgentConfig) -> Script {
    Script {
        channel: vec![
            (ms(10), frame(&hello(cfg))),
            (ms(30), frame(&final_for(1))),
            (
                ms(40),
                frame(&Message::Done(Done {
                    finals: 1,
                    max_rss_kib: None,
                })),
            ),
        ],
        exit: Some((ms(50), "exit status: 0")),
        console_bytes: 0,
        console: Vec::new(),
    }
}

fn run(script: fn(&AgentConfig) -> Script, slack: Duration) -> (RunRecord, Duration) {
    run_config(CONFIG, script, slack, &TraceSettings::off())
}

fn run_traced(
    script: fn(&AgentConfig) -> Script,
    slack: Duration,
    trace: &TraceSettings,
) -> (RunRecord, Duration) {
    run_config(CONFIG, script, slack, trace)
}

fn run_config(
    config: &str,
    script: fn(&AgentConfig) -> Script,
    slack: Duration,
    trace: &TraceSettings,
) -> (RunRecord, Duration) {
    run_with(config, script, slack, trace, &Soak::default())
}

/// What a soak changes in a run's context (`pinlat run --soak`, `--report-every`).
#[derive(Default)]
pub(super) struct Soak<'a> {
    /// Keep only the series.
    pub(super) series_only: bool,
    /// Points per series; 0: the default.
    pub(super) series_points: usize,
    /// Checkpoints while measuring.
    pub(super) checkpoints: Option<&'a super::checkpoint::Checkpoints>,
    /// The signal received, from this offset after the run starts.
    pub(super) interrupt_after: Option<Duration>,
    /// Where the run writes (default: the temporary directory).
    pub(super) result_dir: Option<PathBuf>,
    /// The host knobs `pinlat run` applied for the run's variant.
    pub(super) host_knobs: Vec<pinlat::schema::AppliedKnob>,
}

pub(super) fn run_with(
    config: &str,
    script: fn(&AgentConfig) -> Script,
    slack: Duration,
    trace: &TraceSettings,
    soak: &Soak<'_>,
) -> (RunRecord, Duration) {
    let config = Config::from_toml_str(config).unwrap();
    let plan = Plan::new(&config, &CpuSet::parse("0-1").unwrap()).unwrap();
    let launcher = ScriptedLauncher {
        script,
        launched: Mutex::new(0),
    };
    let t = Instant::now();
    let r = with_context(&config, &plan, &launcher, slack, trace, soak, |ctx| {
        execute(
            ctx,
            &plan.layouts[0],
            None,
            &config.scenarios[0],
            &config.workloads[0],
            1,
        )
    });
    assert_eq!(*launcher.launched.lock().unwrap(), 1);
    (r, t.elapsed())
}

/// Calls `f` with the context of a test run: `launcher`'s guests, results in the temporary
/// directory unless `soak` says, interrupted when `soak` says.
pub(super) fn with_context<R>(
    config: &Config,
    plan: &Plan,
    launcher: &dyn Launcher,
    slack: Duration,
    trace: &TraceSettings,
    soak: &Soak<'_>,
    f: impl FnOnce(&RunContext<'_>) -> R,
) -> R {
    let t = Instant::now();
    let interrupted = || match soak.interrupt_after {
        Some(after) if t.elapsed() >= after => Some("SIGINT"),
        _ => None,
    };
    let progress = |_| {};
    let host_knobs = std::cell::RefCell::new(soak.host_knobs.clone());
    let ctx = RunContext {
        config,
        plan,
        run_id: "test".into(),
        result_dir: soak.result_dir.clone().unwrap_or_else(std::env::temp_dir),
        launcher,
        accel: Accel::Tcg,
        duration_ms: config.run.duration_s * 1000,
        deadline_slack: slack,
        interrupted: &interrupted,
        trace,
        soak: soak.series_only,
        series_points: match soak.series_points {
            0 => pinlat::result::SERIES_MAX_POINTS,
            n => n,
        },
        checkpoints: soak.checkpoints,
        progress: &progress,
        host_knobs: &host_knobs,
    };
    f(&ctx)
}

fn failure(r: &RunRecord) -> (Stage, &str) {
    match &r.status {
        RunStatus::Failed { stage, reason } => (*stage, reason.as_str()),
        RunStatus::Ok => panic!("run passed: {r:?}"),
    }
}

#[test]
fn a_guest_that_reports_makes_a_good_run() {
    let (r, took) = run(good, ms(100));
    assert!(r.status.is_ok(), "{:?}", r.status);
    let g = &r.guests[0];
    assert_eq!(g.results.len(), 1);
    assert!(g.hello.is_some() && g.boot_to_done_ms.is_some() && g.boot_to_exit_ms.is_some());
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert!(took < ms(2_000), "{took:?}");
}

#[test]
fn no_hello_hits_the_boot_deadline_with_the_console() {
    let (r, took) = run(|_| Script::default(), ms(100));
    let (stage, reason) = failure(&r);
    assert_eq!(stage, Stage::Boot);
    assert!(
        reason.contains("within 1 s (run.boot_timeout_s)"),
        "{reason}"
    );
    assert!(
        reason.contains("Kernel panic - not syncing: scripted"),
        "{reason}"
    );
    assert!(took >= ms(1_000), "{took:?}");
}

#[test]
fn a_hang_after_hello_hits_the_hosts_run_deadline() {
    let (r, took) = run(
        |cfg| Script {
            channel: vec![(ms(10), frame(&hello(cfg)))],
            ..Script::default()
        },
        ms(200),
    );
    let (stage, reason) = failure(&r);
    assert_eq!(stage, Stage::Measure);
    assert!(reason.starts_with("run deadline"), "{reason}");
    // Twice the planned 1 s plus the slack, never what the guest says.
    assert!(took >= ms(2_200), "{took:?}");
    assert!(r.guests[0].hello.is_some());
}

#[test]
fn a_guest_that_exits_early_fails_measure_and_keeps_what_it_said() {
    let (r, _) = run(
        |cfg| Script {
            channel: vec![(ms(10), frame(&hello(cfg)))],
            exit: Some((ms(60), "exit status: 1")),
            console_bytes: 0,
            console: Vec::new(),
        },
        ms(100),
    );
    let (stage, reason) = failure(&r);
    assert_eq!(stage, Stage::Measure);
    assert!(
        reason.contains("exited (exit status: 1) before the agent finished"),
        "{reason}"
    );
    assert!(r.guests[0].hello.is_some());
}

#[test]
fn a_result_written_just_before_exit_is_kept() {
    // The final and done arrive at the same instant the process exits.
    let (r, _) = run(
        |cfg| Script {
            channel: vec![
                (ms(10), frame(&hello(cfg))),
                (
                    ms(60),
                    [
                        frame(&final_for(1)),
                        frame(&Message::Done(Done {
                            finals: 1,
                            max_rss_kib: None,
                        })),
                    ]
                    .concat(),
                ),
            ],
            exit: Some((ms(60), "exit status: 0")),
            console_bytes: 0,
            console: Vec::new(),
        },
        ms(100),
    );
    assert!(r.status.is_ok(), "{:?}", r.status);
}

#[test]
fn garbage_is_counted_dropped_and_warned_about() {
    let (r, _) = run(
        |cfg| {
            let mut s = good(cfg);
            let mut bad = frame(&hello(cfg));
            let n = bad.len();
            bad[n - 3] ^= 0x20; // CRC mismatch
            s.channel.insert(
                1,
                (
                    ms(20),
                    [
                        b"\x00\xff random console noise\n".to_vec(),
                        bad,
                        b"PLF1 12 zz {}\n".to_vec(),
                    ]
                    .concat(),
                ),
            );
            s
        },
        ms(100),
    );
    assert!(r.status.is_ok(), "{:?}", r.status);
    let f = &r.guests[0].frames;
    assert_eq!((f.bad_crc, f.bad_header), (1, 1), "{f:?}");
    assert!(
        matches!(&r.warnings[..], [Warning::FramesRejected { stats, .. }] if stats.rejected() == 2)
    );
}

#[test]
fn a_flood_costs_the_run_not_the_runner() {
    let (r, took) = run(
        |cfg| Script {
            console_bytes: 1 << 30,
            console: Vec::new(),
            ..good(cfg)
        },
        ms(100),
    );
    let (stage, reason) = failure(&r);
    assert_eq!(stage, Stage::Collect);
    assert!(reason.contains("wrote more than 256 MiB"), "{reason}");
    assert!(took < ms(1_000), "{took:?}");
}

#[test]
fn a_guest_that_could_not_hold_cpu_dma_latency_is_warned_about() {
    let (r, _) = run(
        |cfg| {
            let mut s = good(cfg);
            let Message::Final(mut f) = final_for(1) else {
                unreachable!()
            };
            f.cpu_dma_latency_held = Some(false);
            s.channel[1].1 = frame(&Message::Final(f));
            s
        },
        ms(100),
    );
    assert!(r.status.is_ok(), "{:?}", r.status);
    assert!(
        matches!(&r.warnings[..], [Warning::CpuDmaLatencyNotHeld { guest }] if guest == "g"),
        "{:?}",
        r.warnings
    );
}

#[test]
fn implausible_messages_are_refused_and_named() {
    let (r, _) = run(
        |cfg| Script {
            channel: vec![
                (ms(10), frame(&hello(cfg))),
                // A result for CPU 0, which does not measure.
                (ms(20), frame(&final_for(0))),
                (
                    ms(30),
                    frame(&Message::Done(Done {
                        finals: 1,
                        max_rss_kib: None,
                    })),
                ),
            ],
            exit: Some((ms(40), "exit status: 0")),
            console_bytes: 0,
            console: Vec::new(),
        },
        ms(100),
    );
    let (stage, reason) = failure(&r);
    assert_eq!(stage, Stage::Collect);
    assert!(
        reason.contains("sent 0 final results, expected 1"),
        "{reason}"
    );
    assert!(
        matches!(&r.warnings[..], [Warning::MessagesRefused { count: 1, .. }]),
        "{:?}",
        r.warnings
    );
}

#[test]
fn an_agent_error_fails_the_run_with_its_message() {
    let (r, _) = run(
        |cfg| Script {
            channel: vec![
                (ms(10), frame(&hello(cfg))),
                (
                    ms(20),
                    frame(&Message::Error(ErrorReport {
                        message: "Cannot pin thread to CPU 1".into(),
                        cpu: Some(1),
                    })),
                ),
            ],
            exit: Some((ms(30), "exit status: 0")),
            console_bytes: 0,
            console: Vec::new(),
        },
        ms(100),
    );
    let (stage, reason) = failure(&r);
    assert_eq!(stage, Stage::Agent);
    assert!(reason.contains("Cannot pin thread to CPU 1"), "{reason}");
}

#[test]
fn a_host_that_cannot_trace_gets_a_warning_and_a_good_run() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = TraceSettings {
        tracefs: Some(tmp.path().join("no-tracefs")),
        msr: crate::trace::smi::MsrRoot::at(tmp.path()),
        ..TraceSettings::on()
    };
    let (r, _) = run_traced(good, ms(100), &settings);
    assert!(r.status.is_ok(), "{:?}", r.status);
    let t = r
        .host_trace
        .as_ref()
        .expect("the trace's state is recorded");
    match &t.status {
        pinlat::trace::record::TraceStatus::Unavailable { reason } => {
            assert!(reason.contains("not mounted"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&r.warnings[..], [Warning::Trace { problem }] if problem.contains("not recorded")),
        "{:?}",
        r.warnings
    );
    // SMIs: not available here, and said so per RT pCPU rather than 0.
    assert_eq!(t.smi.len(), 1);
    assert_eq!(t.smi[0].cpu(), 1);
    assert_eq!(t.smi[0].delta(), None);
}

#[test]
fn tracing_off_records_that_it_was_off_without_a_warning() {
    let (r, _) = run(good, ms(100));
    let t = r.host_trace.as_ref().unwrap();
    assert_eq!(t.status, pinlat::trace::record::TraceStatus::Off);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

/// A recorded console from the real guest kernel (`tests/fixtures/console/`).
fn console_fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/console")
            .join(name),
    )
    .unwrap()
}

#[test]
fn a_guest_that_panics_at_boot_fails_in_boot_with_the_panic_as_its_cause() {
    let (r, _) = run(
        |_| Script {
            exit: Some((ms(30), "exit status: 0")),
            console: console_fixture("timer-check-panic.log"),
            ..Script::default()
        },
        ms(100),
    );
    let (stage, reason) = failure(&r);
    assert_eq!(stage, Stage::Boot, "no hello came: {reason}");
    assert!(
        reason
            .starts_with("guest g: guest kernel panic during boot: IO-APIC + timer doesn't work!"),
        "{reason}"
    );
    assert!(
        reason.contains("exited (exit status: 0)"),
        "the host's account stays: {reason}"
    );
    match &r.failure {
        Some(pinlat::console::FailureCause::KernelPanic { evidence, .. }) => {
            assert!(
                evidence.iter().any(|l| l.contains("IO-APIC + timer")),
                "{evidence:?}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn stalls_a_finished_guest_printed_are_warnings_on_a_good_run() {
    let (r, _) = run(
        |cfg| Script {
            console: console_fixture("vcpu-frozen-rcu-stall-soft-lockup.log"),
            ..good(cfg)
        },
        ms(100),
    );
    assert!(r.status.is_ok(), "{:?}", r.status);
    assert!(r.failure.is_none());
    let kinds: Vec<_> = r
        .warnings
        .iter()
        .filter_map(|w| match w {
            Warning::GuestKernel { guest, report } => Some((guest.as_str(), report.kind)),
            _ => None,
        })
        .collect();
    use pinlat::console::WarningKind;
    assert!(kinds.contains(&("g", WarningKind::RcuStall)), "{kinds:?}");
    assert!(kinds.contains(&("g", WarningKind::SoftLockup)), "{kinds:?}");
}

#[test]
fn a_boot_deadline_without_console_evidence_is_no_hello() {
    let (r, _) = run(|_| Script::default(), ms(100));
    assert!(
        matches!(
            r.failure,
            Some(pinlat::console::FailureCause::NoHello {
                deadline_s: Some(1),
                ..
            })
        ),
        "{:?}",
        r.failure
    );
}

#[test]
fn disturbance_threads_go_where_no_rt_vcpu_may_run() {
    let online = CpuSet::parse("0-3").unwrap();
    let layouts = "[[layouts]]\nkind = \"vcpu0\"\n[[layouts]]\nkind = \"float\"\n";
    let guest = "[[guests]]\nname = \"rt\"\nvcpus = 2\nrealtime_mask = \"^0\"\n";
    let config =
        Config::from_toml_str(&format!("[host]\ncpus = \"0-2\"\n{guest}{layouts}")).unwrap();
    let plan = Plan::new(&config, &online).unwrap();
    let rt: CpuSet = plan.layouts[0].guests[0]
        .vcpus
        .iter()
        .filter(|v| v.realtime)
        .flat_map(|v| v.cpus.iter())
        .collect();
    let hk = super::housekeeping_cpus(&plan, &plan.layouts[0]);
    assert!(
        !hk.is_empty() && hk.intersection(&rt).is_empty(),
        "{hk} vs RT {rt}"
    );
    assert_eq!(hk, CpuSet::parse("0-2").unwrap().difference(&rt));
    // A float layout's RT vCPUs may run anywhere: no pCPU is safe, so none is chosen.
    assert!(super::housekeeping_cpus(&plan, &plan.layouts[1]).is_empty());
    // Configured housekeeping pCPUs win.
    let config = Config::from_toml_str(&format!(
        "[host]\ncpus = \"0-2\"\nhousekeeping_cpus = \"0\"\n{guest}{layouts}"
    ))
    .unwrap();
    let plan = Plan::new(&config, &online).unwrap();
    assert_eq!(
        super::housekeeping_cpus(&plan, &plan.layouts[0]).to_string(),
        "0"
    );
}

/// [`CONFIG`] under the `guest-io` scenario, whose disturbance switches the agent's io load on.
fn guest_io_config() -> String {
    format!("{CONFIG}[[scenarios]]\nkind = \"guest-io\"\n")
}

/// An io load result as the agent sends it: reads and writes on the housekeeping vCPU 0.
fn io_load() -> Message {
    let op = |values: &[u64], bytes: u64| {
        let mut h = new_histogram();
        for &v in values {
            h.record(v).unwrap();
        }
        OpStats {
            count: values.len() as u64,
            bytes: values.len() as u64 * bytes,
            errors: 0,
            first_error: None,
            min_ns: values.iter().copied().min().unwrap_or(0),
            max_ns: values.iter().copied().max().unwrap_or(0),
            overflow: 0,
            histogram: Hist(h),
        }
    };
    Message::Load(LoadResult {
        load: LoadKind::Io,
        device: "/dev/vda".into(),
        direct: Some(true),
        cpus: vec![0],
        duration_ns: 1_000_000_000,
        target_per_s: None,
        ops: [
            (OpKind::Read, op(&[90_000, 110_000], 4096)),
            (OpKind::Write, op(&[150_000], 4096)),
            (OpKind::Flush, op(&[700_000], 0)),
        ]
        .into(),
        net: None,
    })
}

#[test]
fn a_load_result_is_recorded_with_the_guest() {
    let config = guest_io_config();
    let (r, _) = run_config(
        &config,
        |cfg| {
            assert!(cfg.loads.io.is_some(), "guest-io switches the io load on");
            Script {
                channel: vec![
                    (ms(10), frame(&hello(cfg))),
                    (ms(25), frame(&io_load())),
                    (ms(30), frame(&final_for(1))),
                    (
                        ms(40),
                        frame(&Message::Done(Done {
                            finals: 1,
                            max_rss_kib: None,
                        })),
                    ),
                ],
                exit: Some((ms(50), "exit status: 0")),
                console_bytes: 0,
                console: Vec::new(),
            }
        },
        ms(100),
        &TraceSettings::off(),
    );
    assert!(r.status.is_ok(), "{:?}", r.status);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let g = &r.guests[0];
    assert_eq!(g.loads.len(), 1);
    assert_eq!(g.loads[0].load, LoadKind::Io);
    assert_eq!(g.loads[0].ops[&OpKind::Read].count, 2);
    // And it is in the run file as written.
    let back: RunRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back.guests[0].loads, g.loads);
}

#[test]
fn a_finished_run_without_the_load_it_asked_for_is_warned() {
    let config = guest_io_config();
    let (r, _) = run_config(&config, good, ms(100), &TraceSettings::off());
    assert!(r.status.is_ok(), "{:?}", r.status);
    assert!(r.guests[0].loads.is_empty());
    assert!(
        matches!(&r.warnings[..], [Warning::LoadMissing { guest, load: LoadKind::Io }] if guest == "g"),
        "{:?}",
        r.warnings
    );
}

#[test]
fn a_load_result_is_kept_when_the_run_fails_after_it() {
    let config = guest_io_config();
    let (r, _) = run_config(
        &config,
        |cfg| Script {
            channel: vec![(ms(10), frame(&hello(cfg))), (ms(20), frame(&io_load()))],
            exit: Some((ms(60), "exit status: 1")),
            console_bytes: 0,
            console: Vec::new(),
        },
        ms(100),
        &TraceSettings::off(),
    );
    let (stage, _) = failure(&r);
    assert_eq!(stage, Stage::Measure);
    assert_eq!(r.guests[0].loads.len(), 1, "what the agent said is kept");
    assert!(r.guests[0].results.is_empty());
}

#[test]
fn a_load_result_the_run_did_not_ask_for_is_refused_and_named() {
    // Scenario idle: no io load was switched on.
    let (r, _) = run(
        |cfg| {
            let mut s = good(cfg);
            s.channel.insert(1, (ms(20), frame(&io_load())));
            s
        },
        ms(100),
    );
    assert!(r.status.is_ok(), "{:?}", r.status);
    assert!(r.guests[0].loads.is_empty());
    assert!(
        matches!(&r.warnings[..], [Warning::MessagesRefused { count: 1, reasons, .. }]
            if reasons[0].contains("did not switch on")),
        "{:?}",
        r.warnings
    );
}
