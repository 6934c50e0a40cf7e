//! One run: boot every guest of the config paused, pin every QEMU thread as the layout says,
//! verify from `/proc`, resume, run the scenario's disturbance, collect the agent's frames,
//! and return a [`RunRecord`] that says what happened — including when it went wrong.
//!
//! Failures never escape as errors: a guest that hangs, crashes or sends garbage costs this
//! run (recorded as failed with its partial data), never the matrix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pinlat::config::{Config, Scenario, ScenarioKind, Workload};
use pinlat::plan::{GuestPlacement, LayoutPlan, Plan};
use pinlat::result::{
    run_name, AccelUsed, GuestRun, HostSteal, MgmtPollStats, RunRecord, RunStatus,
    RUN_SCHEMA_VERSION,
};
use pinlat::wire::{Decoded, FrameDecoder, Message};

use crate::agent::agent_config;
use crate::follow::{log_tail, FileFollower};
use crate::initramfs::Initramfs;
use crate::kernel::GuestKernel;
use crate::placement::{Pinner, VcpuSampler};
use crate::qemu::{self, Qemu, QemuBinary, RuntimeDir, VmSpec};
use crate::qmp::MgmtPoll;
use crate::steal::StealSnapshot;
use crate::store::unix_ms;
use crate::stress::HostStress;
use crate::validate::Expect;

/// Everything a run needs that does not change between runs.
pub struct RunContext<'a> {
    /// The checked config (with CLI overrides applied).
    pub config: &'a Config,
    /// The plan.
    pub plan: &'a Plan,
    /// The matrix id.
    pub run_id: String,
    /// `reports/<run-id>/`.
    pub result_dir: PathBuf,
    /// QEMU.
    pub qemu: QemuBinary,
    /// Guest kernel.
    pub kernel: GuestKernel,
    /// The static agent's bytes.
    pub agent: Vec<u8>,
    /// Accelerator.
    pub accel: AccelUsed,
    /// Measured time per run, ms.
    pub duration_ms: u64,
    /// Fail a run whose RT vCPU threads cannot get SCHED_FIFO instead of recording the
    /// degradation (`--strict`).
    pub strict: bool,
    /// Set when the user asked to stop (SIGINT/SIGTERM).
    pub interrupted: &'a dyn Fn() -> Option<&'static str>,
}

/// Bytes read from one guest's agent channel per loop turn; bounds the work a flooding guest
/// can cause per turn.
const READ_CHUNK: usize = 1 << 20;
/// Largest frame the runner accepts from a guest, bytes. The largest legitimate frame (a final
/// result: one compressed HDR histogram and the top-N events) is tens of KiB; anything longer
/// is counted as oversize and dropped without being buffered.
const MAX_FRAME_BYTES: usize = 1 << 20;
/// Largest console log or agent channel a guest may write in one run, bytes. A real run writes
/// a few MiB at most (interval frames of tens of KiB per second per CPU).
const MAX_OUTPUT_BYTES: u64 = 256 << 20;
/// Loop period of the monitor, ms.
const TICK: Duration = Duration::from_millis(20);
/// Reasons for refused guest messages kept per guest for the run's warnings; the rest are only
/// counted.
const MAX_REJECTION_REASONS: usize = 8;

struct LiveGuest {
    qemu: Qemu,
    pinner: Pinner,
    follower: FileFollower,
    decoder: FrameDecoder,
    sampler: VcpuSampler,
    record: GuestRun,
    done: bool,
    finals_expected: usize,
    max_intervals: usize,
    dropped_intervals: u64,
    /// What this run expects from the agent; messages that do not fit are refused.
    expect: Expect,
    /// Well-formed messages refused as implausible (`validate`).
    refused: u64,
    /// The first reasons, for the warning.
    refused_reasons: Vec<String>,
    /// The run config put into the guest; its hello must echo it.
    sent: pinlat::agentcfg::AgentConfig,
    /// When the hello arrived.
    hello_at: Option<Instant>,
    /// The console log, whose size is watched.
    console_log: PathBuf,
}

impl LiveGuest {
    /// Reads and handles everything the agent has written to its channel so far.
    fn pump(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        let boot = self.qemu.started();
        loop {
            buf.clear();
            if self.follower.read_new(buf, READ_CHUNK)? == 0 {
                return Ok(());
            }
            for d in self.decoder.feed(buf) {
                let Decoded::Message(msg) = d else { continue };
                self.handle(*msg, boot);
            }
            if buf.len() < READ_CHUNK {
                return Ok(());
            }
        }
    }

    fn handle(&mut self, msg: Message, boot: Instant) {
        let since_boot = || boot.elapsed().as_millis() as u64;
        match msg {
            Message::Hello(h) => {
                if let Err(why) =
                    self.expect
                        .check_hello(&h, &self.sent, self.record.hello.is_some())
                {
                    self.refuse(why);
                    return;
                }
                self.record.boot_to_hello_ms = Some(since_boot());
                self.hello_at = Some(Instant::now());
                self.record.hello = Some(h);
            }
            Message::Interval(iv) => {
                if let Err(why) = self.expect.check_interval(&iv) {
                    self.refuse(why);
                    return;
                }
                if self.record.boot_to_first_sample_ms.is_none() {
                    self.record.boot_to_first_sample_ms = Some(since_boot());
                    // Host-side statistics cover the measurement, not boot and preheat.
                    self.sampler = VcpuSampler::default();
                    if let Ok(t) = self.pinner.threads() {
                        self.sampler.sample(&t, &self.pinner.vcpu_tids());
                    }
                }
                if self.record.intervals.len() < self.max_intervals {
                    self.record.intervals.push(iv);
                } else {
                    self.dropped_intervals += 1;
                }
            }
            Message::Final(r) => {
                let seen: pinlat::cpuset::CpuSet =
                    self.record.results.iter().map(|r| r.cpu).collect();
                if let Err(why) = self.expect.check_final(&r, &seen) {
                    self.refuse(why);
                    return;
                }
                if self.record.results.is_empty() {
                    // The measurement is over. QEMU may already be tearing down as the agent
                    // powers off, so a read-back now only replaces the last periodic one if it
                    // still sees every thread.
                    if let Ok(t) = self.pinner.observe() {
                        if t.len() >= self.record.observed_end.len() {
                            self.record.observed_end = t;
                        }
                    }
                    if let Ok(t) = self.pinner.threads() {
                        self.sampler.sample(&t, &self.pinner.vcpu_tids());
                    }
                    self.record.vcpu_stats = self
                        .sampler
                        .finish(&self.pinner.vcpu_tids(), &self.record.planned);
                }
                self.record.results.push(r);
            }
            Message::Error(e) => {
                if self.record.agent_errors.len() < 64 {
                    self.record.agent_errors.push(e);
                }
            }
            Message::Done(_) => {
                self.done = true;
                self.record.boot_to_done_ms = Some(since_boot());
            }
        }
    }

    /// A reason to stop when the guest's output files outgrow anything a run writes (a guest
    /// flooding the disk costs its run, never the results directory).
    fn output_too_large(&self) -> Option<String> {
        let console = std::fs::metadata(&self.console_log)
            .map(|m| m.len())
            .unwrap_or(0);
        let agent = self.follower.offset();
        if console > MAX_OUTPUT_BYTES || agent > MAX_OUTPUT_BYTES {
            Some(format!(
                "guest {} wrote more than {} MiB (console {} bytes, agent channel {} bytes): stopped",
                self.record.guest,
                MAX_OUTPUT_BYTES >> 20,
                console,
                agent
            ))
        } else {
            None
        }
    }

    fn refuse(&mut self, reason: impl std::fmt::Display) {
        self.refused += 1;
        if self.refused_reasons.len() < MAX_REJECTION_REASONS {
            self.refused_reasons.push(reason.to_string());
        }
    }
}

fn accel_of(a: AccelUsed) -> qemu::Accel {
    match a {
        AccelUsed::Kvm => qemu::Accel::Kvm,
        AccelUsed::Tcg => qemu::Accel::Tcg,
    }
}

fn fail(stage: &str, reason: impl Into<String>) -> RunStatus {
    RunStatus::Failed {
        stage: stage.to_string(),
        reason: reason.into(),
    }
}

/// The last lines of a console log, for failure messages.
fn console_tail(path: &Path) -> String {
    let tail = log_tail(path, 2048);
    let lines: Vec<&str> = tail.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = &lines[lines.len().saturating_sub(5)..];
    if last.is_empty() {
        "nothing".to_string()
    } else {
        last.join(" | ")
    }
}

/// Boots one guest paused, pins it and verifies. On error returns the stage and reason; the
/// caller keeps the partially filled record.
#[allow(clippy::too_many_arguments)]
fn start_guest(
    ctx: &RunContext<'_>,
    run: &str,
    guest_idx: usize,
    placement: &GuestPlacement,
    workload: &Workload,
    scenario: &Scenario,
    record: &mut GuestRun,
    mgmt_socket: &mut Option<PathBuf>,
    warnings: &mut Vec<String>,
) -> Result<LiveGuest, RunStatus> {
    let guest = &ctx.config.guests[guest_idx];
    let agent_cfg = agent_config(
        guest,
        workload,
        scenario.kind,
        ctx.duration_ms,
        ctx.config.run.interval_ms,
    );
    let runtime = RuntimeDir::new().map_err(|e| fail("setup", format!("{e:#}")))?;
    let initrd = runtime.path().join("initrd.cpio");
    Initramfs::for_agent(ctx.agent.clone(), agent_cfg.to_json().into_bytes())
        .write_file(&initrd)
        .map_err(|e| fail("setup", format!("writing the initramfs: {e}")))?;
    let console_rel = format!("console/{run}.{}.log", guest.name);
    let console_log = ctx.result_dir.join(&console_rel);
    if let Some(dir) = console_log.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| fail("setup", format!("creating {}: {e}", dir.display())))?;
    }
    record.console_log = Some(console_rel);
    let rt: Vec<u32> = guest.realtime.iter().collect();
    let hk: Vec<u32> = guest.housekeeping().iter().collect();
    // The same guest command line under KVM and TCG: tsc=reliable keeps the TSC clocksource
    // where TCG's unsynchronized TSCs would otherwise make the guest fall back to HPET.
    let mut extra_params: Vec<&str> = qemu::GUEST_PARAMS.to_vec();
    extra_params.extend(guest.cmdline_extra.split_whitespace());
    let spec = VmSpec {
        name: format!("pinlat-{}", guest.name),
        accel: accel_of(ctx.accel),
        vcpus: guest.vcpus,
        memory_mib: guest.memory_mib,
        kernel: guest
            .kernel
            .clone()
            .unwrap_or_else(|| ctx.kernel.path.clone()),
        initrd,
        append: qemu::guest_cmdline(&rt, &hk, &extra_params),
        cpu_model: None,
        iothreads: (1..=guest.iothreads)
            .map(|i| format!("iothread{i}"))
            .collect(),
        console_log: console_log.clone(),
        // Kept with the run: the raw frames are the evidence when frames were rejected.
        agent_channel: ctx
            .result_dir
            .join(format!("console/{run}.{}.agent", guest.name)),
        start_paused: true,
        mgmt_qmp: scenario.kind == ScenarioKind::MgmtPoll && guest_idx == 0,
    };
    let agent_channel = spec.agent_channel.clone();
    let mut qemu = Qemu::spawn_in(&ctx.qemu, &spec, runtime)
        .map_err(|e| fail("launch", format!("{:#}", anyhow::Error::new(e))))?;
    record.qemu_pid = Some(qemu.pid());
    if let Some(s) = qemu.mgmt_socket() {
        *mgmt_socket = Some(s.to_path_buf());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut qmp = qemu
        .connect_qmp(deadline, Duration::from_secs(5))
        .map_err(|e| fail("qmp", format!("{:#}", anyhow::Error::new(e))))?;
    let vcpus = qmp
        .query_cpus_fast()
        .map_err(|e| fail("qmp", format!("query-cpus-fast: {e:#}")))?;
    let iothreads = if guest.iothreads > 0 {
        qmp.query_iothreads()
            .map_err(|e| fail("qmp", format!("query-iothreads: {e:#}")))?
    } else {
        Vec::new()
    };
    let mut pinner = Pinner::new(qemu.pid(), placement.clone(), &vcpus, &iothreads)
        .map_err(|e| fail("pin", format!("{:#}", anyhow::Error::new(e))))?
        .strict(ctx.strict);
    pinner
        .pin_all()
        .map_err(|e| fail("pin", format!("{:#}", anyhow::Error::new(e))))?;
    record.observed_start = pinner
        .observe()
        .map_err(|e| fail("verify", format!("{:#}", anyhow::Error::new(e))))?;
    if let Some(bad) = record
        .observed_start
        .iter()
        .find(|t| !t.matches() && !pinner.is_degraded_only(t))
    {
        return Err(fail(
            "verify",
            format!(
                "thread {} ({}) observed on CPUs {} policy {}:{} after pinning, planned {} {}",
                bad.tid,
                bad.comm,
                bad.cpus,
                bad.policy,
                bad.priority,
                bad.planned_cpus,
                bad.planned_sched
            ),
        ));
    }
    if !pinner.sched_refused().is_empty() {
        warnings.push(format!(
            "guest {}: SCHED_FIFO refused for {} thread(s) (run as root or grant CAP_SYS_NICE): they ran SCHED_OTHER, as observed; --strict makes this a failure",
            guest.name,
            pinner.sched_refused().len()
        ));
    }
    qmp.execute("cont", None)
        .map_err(|e| fail("qmp", format!("cont: {e:#}")))?;
    // The control connection is no longer needed; QEMU keeps running.
    drop(qmp);
    let finals_expected = match workload.kind {
        pinlat::config::WorkloadKind::Ring => 1,
        _ => rt.len(),
    };
    let intervals_per_cpu = (ctx.duration_ms / ctx.config.run.interval_ms.max(1)) as usize + 4;
    let expect = Expect {
        rt_cpus: guest.realtime.clone(),
        workload: workload.kind,
        planned_ns: workload
            .preheat_ms
            .saturating_add(ctx.duration_ms)
            .saturating_mul(1_000_000),
        // Late hand-offs stretch intervals, never add any: twice the nominal count is slack.
        max_intervals: intervals_per_cpu as u64 * 2,
    };
    Ok(LiveGuest {
        qemu,
        pinner,
        follower: FileFollower::new(agent_channel),
        decoder: FrameDecoder::with_max_frame_bytes(MAX_FRAME_BYTES),
        sampler: VcpuSampler::default(),
        record: record.clone(),
        done: false,
        finals_expected,
        max_intervals: intervals_per_cpu * rt.len().max(1) * 2,
        dropped_intervals: 0,
        expect,
        sent: agent_cfg,
        hello_at: None,
        console_log,
        refused: 0,
        refused_reasons: Vec::new(),
    })
}

fn empty_guest_run(placement: &GuestPlacement) -> GuestRun {
    GuestRun {
        guest: placement.guest.clone(),
        qemu_pid: None,
        planned: placement.clone(),
        observed_start: Vec::new(),
        observed_end: Vec::new(),
        vcpu_stats: Vec::new(),
        hello: None,
        results: Vec::new(),
        intervals: Vec::new(),
        agent_errors: Vec::new(),
        frames: Default::default(),
        boot_to_hello_ms: None,
        boot_to_first_sample_ms: None,
        boot_to_done_ms: None,
        boot_to_exit_ms: None,
        console_log: None,
    }
}

/// The mgmt-poll thread: QMP stats queries at `rate_hz` on a second monitor until stopped.
fn start_mgmt_poll(
    socket: PathBuf,
    rate_hz: u32,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<Result<MgmtPollStats, String>>> {
    std::thread::Builder::new()
        .name("mgmt-poll".into())
        .spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut qmp = crate::qmp::connect_unix(&socket, deadline, Duration::from_secs(5))
                .map_err(|e| format!("connecting the mgmt-poll monitor: {e}"))?;
            let mut poll = MgmtPoll::new();
            let mut stats = MgmtPollStats {
                rate_hz,
                ..Default::default()
            };
            let period = Duration::from_secs_f64(1.0 / f64::from(rate_hz.max(1)));
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                match poll.round(&mut qmp) {
                    Ok(_) => stats.rounds += 1,
                    // QEMU going away at the end of the run is not the poller's failure.
                    Err(_) if stop.load(Ordering::Relaxed) => break,
                    Err(_) => {
                        stats.errors += 1;
                        if stats.errors > 10 && stats.rounds == 0 {
                            break;
                        }
                    }
                }
                next += period;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
            stats.queries = poll.queries();
            stats.queries.extend(
                poll.unsupported()
                    .iter()
                    .map(|u| format!("unsupported: {u}")),
            );
            Ok(stats)
        })
}

/// Executes one run of the matrix and returns its record. Never fails: failures are recorded.
pub fn execute(
    ctx: &RunContext<'_>,
    layout: &LayoutPlan,
    scenario: &Scenario,
    workload: &Workload,
    repetition: u32,
) -> RunRecord {
    let name = run_name(&layout.name, scenario.kind, workload.kind, repetition);
    let started = Instant::now();
    let mut record = RunRecord {
        schema_version: RUN_SCHEMA_VERSION,
        run_id: ctx.run_id.clone(),
        name: name.clone(),
        layout: layout.name.clone(),
        layout_kind: layout.kind,
        scenario: scenario.kind,
        workload: workload.kind,
        repetition,
        accel: ctx.accel,
        status: RunStatus::Ok,
        started_unix_ms: unix_ms(),
        wall_ms: 0,
        duration_ms: ctx.duration_ms,
        guests: layout.guests.iter().map(empty_guest_run).collect(),
        mgmt_poll: None,
        warnings: Vec::new(),
        host_steal: None,
        runner_max_rss_kib: None,
    };

    // Boot and pin every guest; stop at the first failure.
    let mut live: Vec<LiveGuest> = Vec::new();
    let mut mgmt_socket = None;
    for (i, placement) in layout.guests.iter().enumerate() {
        match start_guest(
            ctx,
            &name,
            i,
            placement,
            workload,
            scenario,
            &mut record.guests[i],
            &mut mgmt_socket,
            &mut record.warnings,
        ) {
            Ok(g) => live.push(g),
            Err(status) => {
                record.status = status;
                break;
            }
        }
    }

    if record.status.is_ok() {
        monitor(ctx, scenario, &mut live, &mut record, mgmt_socket);
    }

    // Whatever happened: QEMU must be gone before the record is final.
    for g in &mut live {
        let exit_deadline = Instant::now() + Duration::from_secs(10);
        if g.done {
            let _ = g.qemu.wait_until(exit_deadline);
        }
        let _ = g.qemu.kill();
        g.record.boot_to_exit_ms = Some(g.qemu.started().elapsed().as_millis() as u64);
    }
    for (i, g) in live.into_iter().enumerate() {
        let mut gr = g.record;
        gr.frames = *g.decoder.stats();
        if g.dropped_intervals > 0 {
            record.warnings.push(format!(
                "guest {}: {} interval frames beyond the expected {} were dropped",
                gr.guest, g.dropped_intervals, g.max_intervals
            ));
        }
        if g.refused > 0 {
            record.warnings.push(format!(
                "guest {}: {} implausible agent messages refused: {}{}",
                gr.guest,
                g.refused,
                g.refused_reasons.join("; "),
                if g.refused as usize > g.refused_reasons.len() {
                    "; …"
                } else {
                    ""
                }
            ));
        }
        if gr.frames.rejected() > 0 {
            record.warnings.push(format!(
                "guest {}: {} malformed frames dropped (bad header {}, length {}, CRC {}, JSON {}, oversize {})",
                gr.guest,
                gr.frames.rejected(),
                gr.frames.bad_header,
                gr.frames.bad_length,
                gr.frames.bad_crc,
                gr.frames.bad_json,
                gr.frames.oversize
            ));
        }
        record.guests[i] = gr;
    }
    record.wall_ms = started.elapsed().as_millis() as u64;
    record.runner_max_rss_kib = runner_max_rss_kib();
    record
}

/// `VmHWM` of this process, KiB.
fn runner_max_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn monitor(
    ctx: &RunContext<'_>,
    scenario: &Scenario,
    live: &mut [LiveGuest],
    record: &mut RunRecord,
    mgmt_socket: Option<PathBuf>,
) {
    let boot_deadline = Instant::now() + Duration::from_secs(ctx.config.run.boot_timeout_s);
    let stop = Arc::new(AtomicBool::new(false));
    let mut mgmt = None;
    let mut stress: Option<HostStress> = None;
    match scenario.kind {
        ScenarioKind::MgmtPoll => match mgmt_socket {
            Some(s) => match start_mgmt_poll(s, scenario.rate_hz, stop.clone()) {
                Ok(h) => mgmt = Some(h),
                Err(e) => {
                    record.status = fail("scenario", format!("starting the mgmt-poll thread: {e}"));
                    return;
                }
            },
            None => {
                record.status = fail("scenario", "mgmt-poll: QEMU has no second QMP monitor");
                return;
            }
        },
        ScenarioKind::HostStress => {
            match HostStress::start(&ctx.plan.housekeeping_cpus, scenario.workers) {
                Ok(s) => {
                    record
                        .warnings
                        .push(format!("host-stress: {}", s.description));
                    stress = Some(s);
                }
                Err(e) => {
                    record.status = fail("scenario", format!("starting host-stress: {e}"));
                    return;
                }
            }
        }
        ScenarioKind::Idle | ScenarioKind::GuestIo => {}
    }

    let mut run_deadline: Option<Instant> = None;
    // Host steal time from the first hello until every guest has sent its results.
    let mut steal_from: Option<(Instant, Option<StealSnapshot>)> = None;
    let mut steal_to: Option<(Instant, Option<StealSnapshot>)> = None;
    let mut last_repin = Instant::now();
    let mut last_sample = Instant::now();
    let mut buf = Vec::with_capacity(READ_CHUNK);
    'outer: loop {
        if let Some(sig) = (ctx.interrupted)() {
            record.status = fail(
                "interrupted",
                format!("{sig} received: the run was stopped"),
            );
            break;
        }
        for g in live.iter_mut() {
            if let Err(e) = g.pump(&mut buf) {
                record.status = fail("collect", format!("reading the agent channel: {e}"));
                break 'outer;
            }
        }
        // The run deadline counts from the first hello and is the host's own: twice the
        // configured preheat + duration plus 30 s, never what a guest claims.
        if steal_from.is_none() && live.iter().any(|g| g.hello_at.is_some()) {
            steal_from = Some((Instant::now(), StealSnapshot::now()));
        }
        if run_deadline.is_none() {
            if let Some(first) = live.iter().filter_map(|g| g.hello_at).min() {
                let planned = live.iter().map(|g| g.expect.planned_ns).max().unwrap_or(0);
                run_deadline = Some(
                    first
                        + Duration::from_nanos(planned.saturating_mul(2))
                        + Duration::from_secs(30),
                );
            }
        }
        for g in live.iter() {
            if let Some(why) = g.output_too_large() {
                record.status = fail("collect", why);
                break 'outer;
            }
        }

        // Periodic host-side work.
        if last_repin.elapsed() >= Duration::from_millis(500) {
            last_repin = Instant::now();
            for g in live.iter_mut().filter(|g| !g.done) {
                if let Err(e) = g.pinner.pin_new_threads() {
                    record.status = fail("pin", format!("placing new QEMU threads: {e:#}"));
                    break 'outer;
                }
            }
        }
        if last_sample.elapsed() >= Duration::from_millis(100) {
            last_sample = Instant::now();
            // While the agent measures: sample the vCPU threads and read the placement back,
            // so "at the end" is at most 100 ms before the measurement ended.
            for g in live.iter_mut() {
                if g.record.hello.is_some() && g.record.results.is_empty() && !g.done {
                    if let Ok(t) = g.pinner.threads() {
                        g.sampler.sample(&t, &g.pinner.vcpu_tids());
                    }
                    if let Ok(t) = g.pinner.observe() {
                        g.record.observed_end = t;
                    }
                }
            }
        }

        // The disturbance is for the measurement: once every guest has sent its results, the
        // poller stops, so it never competes with the guest's power-off. (Seen in CI: QMP
        // polling through the shutdown kept a guest from exiting for the full 10 s wait.)
        if live
            .iter()
            .all(|g| g.done || g.record.results.len() >= g.finals_expected)
        {
            stop.store(true, Ordering::Relaxed);
            if steal_to.is_none() {
                steal_to = Some((Instant::now(), StealSnapshot::now()));
            }
        }

        // Ends: success, agent errors, QEMU gone, deadlines.
        if live.iter().all(|g| g.done) {
            break;
        }
        for g in live.iter_mut() {
            match g.qemu.try_wait() {
                Ok(Some(status)) if !g.done => {
                    // What the agent wrote before QEMU exited is on disk: read all of it before
                    // deciding, so a result written just before a power-off is not lost.
                    let _ = g.pump(&mut buf);
                    if g.done {
                        continue;
                    }
                    let console = record_console(ctx, &g.record);
                    record.status = fail(
                        "measure",
                        format!(
                            "QEMU for guest {} exited ({status}) before the agent finished; console last showed: {console}",
                            g.record.guest
                        ),
                    );
                    break 'outer;
                }
                _ => {}
            }
        }
        let now = Instant::now();
        if let Some(g) = live.iter().find(|g| g.record.hello.is_none()) {
            if now >= boot_deadline {
                record.status = fail(
                    "boot",
                    format!(
                        "boot deadline: no agent hello from guest {} within {} s (run.boot_timeout_s); console last showed: {}",
                        g.record.guest,
                        ctx.config.run.boot_timeout_s,
                        record_console(ctx, &g.record)
                    ),
                );
                break;
            }
        }
        if let Some(d) = run_deadline {
            if now >= d {
                let g = live.iter().find(|g| !g.done).map(|g| &g.record);
                record.status = fail(
                    "measure",
                    format!(
                        "run deadline: the agent did not finish within twice its preheat + duration + 30 s; console last showed: {}",
                        g.map(|g| record_console(ctx, g)).unwrap_or_default()
                    ),
                );
                break;
            }
        }
        std::thread::sleep(TICK);
    }

    stop.store(true, Ordering::Relaxed);
    let steal_to = steal_to.unwrap_or_else(|| (Instant::now(), StealSnapshot::now()));
    if let Some((t0, Some(a))) = &steal_from {
        if let (t1, Some(b)) = &steal_to {
            record.host_steal = Some(HostSteal {
                window_ms: t1.saturating_duration_since(*t0).as_millis() as u64,
                per_cpu_ns: b.all_since(a),
            });
        }
    }
    if let Some(mut s) = stress.take() {
        s.stop();
    }
    if let Some(h) = mgmt {
        // A mgmt-poll run whose poller did not poll is not a mgmt-poll measurement.
        let problem = match h.join() {
            Ok(Ok(stats)) => {
                let p = if stats.rounds == 0 {
                    Some(format!(
                        "mgmt-poll: no poll round completed ({} errors)",
                        stats.errors
                    ))
                } else if stats.errors > stats.rounds {
                    Some(format!(
                        "mgmt-poll: {} of {} poll rounds failed",
                        stats.errors,
                        stats.rounds + stats.errors
                    ))
                } else {
                    None
                };
                record.mgmt_poll = Some(stats);
                p
            }
            Ok(Err(e)) => Some(format!("mgmt-poll: {e}")),
            Err(_) => Some("mgmt-poll: the poll thread panicked".to_string()),
        };
        if let Some(p) = problem {
            if record.status.is_ok() {
                record.status = fail("scenario", p);
            } else {
                record.warnings.push(p);
            }
        }
    }
    // Failed mid-way: keep what the guest said and read the placement back while QEMU lives.
    for g in live.iter_mut() {
        if g.record.observed_end.is_empty() {
            if let Ok(t) = g.pinner.observe() {
                g.record.observed_end = t;
            }
        }
        if !g.record.agent_errors.is_empty() && record.status.is_ok() {
            record.status = fail(
                "agent",
                format!(
                    "the agent in guest {} reported: {}",
                    g.record.guest,
                    g.record
                        .agent_errors
                        .iter()
                        .map(|e| e.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            );
        }
        if record.status.is_ok() && g.record.results.len() < g.finals_expected {
            record.status = fail(
                "collect",
                format!(
                    "guest {} sent {} final results, expected {}{}",
                    g.record.guest,
                    g.record.results.len(),
                    g.finals_expected,
                    if g.refused > 0 {
                        format!(
                            " ({} implausible messages refused: {})",
                            g.refused,
                            g.refused_reasons.join("; ")
                        )
                    } else {
                        String::new()
                    }
                ),
            );
        }
    }
    if record.status.is_ok() {
        let mismatches: Vec<String> = live
            .iter()
            .flat_map(|g| {
                g.record
                    .observed_end
                    .iter()
                    .filter(|t| !t.matches() && !g.pinner.is_degraded_only(t))
            })
            .map(|t| {
                format!(
                    "thread {} ({}) on CPUs {} {}:{}, planned {} {}",
                    t.tid, t.comm, t.cpus, t.policy, t.priority, t.planned_cpus, t.planned_sched
                )
            })
            .collect();
        if !mismatches.is_empty() {
            record.status = fail(
                "verify",
                format!(
                    "placement changed during the run: {}",
                    mismatches.join("; ")
                ),
            );
        }
    }
}

fn record_console(ctx: &RunContext<'_>, g: &GuestRun) -> String {
    match &g.console_log {
        Some(rel) => console_tail(&ctx.result_dir.join(rel)),
        None => "nothing (no console log)".into(),
    }
}

/// A short result line for progress output: the max and p99.9 of the RT CPUs, or the failure.
pub fn summary_line(r: &RunRecord) -> String {
    match &r.status {
        RunStatus::Failed { stage, reason } => format!("FAILED ({stage}): {reason}"),
        RunStatus::Ok => {
            let mut worst: BTreeMap<&str, u64> = BTreeMap::new();
            let mut samples = 0u64;
            for g in &r.guests {
                for c in &g.results {
                    let e = worst.entry(g.guest.as_str()).or_default();
                    *e = (*e).max(c.max_ns);
                    samples += c.samples;
                }
            }
            let max = worst.values().copied().max().unwrap_or(0);
            format!(
                "ok: {samples} samples, max {:.1} µs, {:.1} s",
                max as f64 / 1000.0,
                r.wall_ms as f64 / 1000.0
            )
        }
    }
}
