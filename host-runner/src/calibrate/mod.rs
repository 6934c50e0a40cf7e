//! `pinlat calibrate`: check the instrument against stalls of known length, and tell a noisy
//! host from a broken instrument.
//!
//! The agent busy-polls natively on one CPU (as it does on an RT vCPU) while pinlat injects
//! stalls there: a SCHED_FIFO thread on the same CPU, above the agent's priority, spins for a
//! known time at known `CLOCK_MONOTONIC` instants ([`inject`]). The lengths are chosen well
//! above the host's noise floor, measured first by a run without injections. Each injection run
//! is a trial, recorded raw with the host's steal time over it ([`crate::steal`]) and judged by
//! [`pinlat::calibration::judge`]; a trial the host disturbed beyond what it can judge is voided
//! and repeated, up to [`ATTEMPTS_PER_TRIAL`] attempts per trial wanted. Verdicts: trusted
//! (exit 0), failed (exit 1), inconclusive because the host is too noisy (exit 4). Where
//! rt-tests is installed, oslat and cyclictest run beside the agent on the same CPU and the
//! distributions are compared ([`rttests`]).
//!
//! RT throttling: with `kernel.sched_rt_runtime_us` below its period, a SCHED_FIFO busy loop
//! is stopped for the rest of each period (50 ms of every 1 s by default: measured here as
//! 52-56 ms gaps). Each agent run is therefore kept shorter than the RT runtime and runs are
//! spaced by a period, so throttling never lands inside a measurement.
//!
//! Every report is also kept as pinlat's last calibration of this host
//! (`$XDG_CACHE_HOME/pinlat/calibrate.json`), which `pinlat doctor` shows.

pub mod agent_run;
pub mod inject;
pub mod rttests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use pinlat::calibration::judge::{self, stall_lengths, SWITCH_ALLOWANCE_NS};
use pinlat::calibration::{
    CalibrationReport, Floor, MonoWindow, Trial, TrialStatus, Verdict, CALIBRATE_FILE,
    CALIBRATION_SCHEMA_VERSION,
};
use pinlat::histo::Quantile;
use pinlat::wire::{CpuResult, RunResult};

use self::agent_run::AgentRun;
use self::inject::Planned;
use crate::steal::StealSnapshot;

/// Attempts allowed per trial wanted, voided ones included.
pub const ATTEMPTS_PER_TRIAL: u32 = 3;

/// Errors of the calibration machinery (not calibration verdicts: those are in the report).
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    /// The agent binary was not found.
    #[error("No pinlat-agent binary to calibrate")]
    AgentNotFound(#[source] crate::agent::AgentNotFound),
    /// Starting a process or thread failed.
    #[error("Cannot start {what}")]
    Spawn {
        /// What was being done, for the message.
        what: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The agent exited with an error.
    #[error("pinlat-agent failed ({status}): {stderr}")]
    AgentFailed {
        /// Exit status.
        status: String,
        /// Its last stderr lines.
        stderr: String,
    },
    /// The agent did not finish in time.
    #[error("pinlat-agent did not {what} within {secs} s")]
    Timeout {
        /// What it did not do.
        what: &'static str,
        /// Deadline, s.
        secs: u64,
    },
    /// The agent's result could not be read.
    #[error("Cannot read the agent result {path}")]
    Result {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The injector could not pin itself or become SCHED_FIFO (needs root or CAP_SYS_NICE).
    #[error("Injector thread setup failed (needs root or CAP_SYS_NICE)")]
    Injector(#[source] pinlat::sched::SchedError),
    /// The injector thread panicked.
    #[error("Injector thread panicked")]
    InjectorPanicked,
    /// Filesystem error.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// An rt-tests tool failed.
    #[error("{0}")]
    RtTests(String),
    /// The report could not be written.
    #[error(transparent)]
    Write(#[from] pinlat::atomic_write::WriteError),
}

/// What `pinlat calibrate` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalibrateOptions {
    /// CPU to measure and inject on.
    pub cpu: u32,
    /// Agent binary; `None` = [`crate::agent::find_agent`].
    pub agent: Option<PathBuf>,
    /// Trials that must be judged; each injects every stall length twice.
    pub trials: u32,
    /// Recording time of each agent run, ms (kept under the RT runtime budget).
    pub run_ms: u64,
    /// Agent preheat, ms.
    pub preheat_ms: u64,
    /// SCHED_FIFO priority of the agent's measuring thread; the injector runs 10 above.
    pub agent_priority: u8,
    /// Also compare with oslat and cyclictest when installed.
    pub rt_tests: bool,
}

impl Default for CalibrateOptions {
    fn default() -> Self {
        CalibrateOptions {
            cpu: 1,
            agent: None,
            trials: 2,
            run_ms: 600,
            preheat_ms: 100,
            agent_priority: 10,
            rt_tests: true,
        }
    }
}

/// The agent binary: the given path, the static build, or the `target/release` build.
pub fn agent_path(explicit: Option<&Path>) -> Result<PathBuf, CalibrateError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    match crate::agent::find_agent() {
        Ok((p, _)) => Ok(p),
        Err(e) => {
            let release =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/pinlat-agent");
            if release.is_file() {
                Ok(release)
            } else {
                Err(CalibrateError::AgentNotFound(e))
            }
        }
    }
}

fn first_result(r: RunResult, what: &str) -> Result<CpuResult, CalibrateError> {
    r.results
        .into_iter()
        .next()
        .ok_or_else(|| CalibrateError::Result {
            path: PathBuf::from(what),
            source: "the agent returned no per-CPU result".into(),
        })
}

fn read_i64(path: &str) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Runs the calibration.
pub fn run(opts: &CalibrateOptions) -> Result<CalibrationReport, CalibrateError> {
    let agent = agent_path(opts.agent.as_deref())?;
    let dir = tempfile::Builder::new()
        .prefix("pinlat-calibrate-")
        .tempdir()
        .map_err(|source| CalibrateError::Io {
            what: "creating a private temporary directory".into(),
            source,
        })?;
    // Keep this process (which watches for the agent's hello and times the stalls) off the
    // measured CPU: there the SCHED_FIFO agent would starve it, and a hello noticed hundreds
    // of ms late shifts every planned stall out of the agent's window (seen in CI). Threads
    // spawned later inherit this; the injector pins itself to the measured CPU.
    if let Ok(online) = pinlat::host::online_cpus() {
        let others: Vec<u32> = online.iter().filter(|&c| c != opts.cpu).collect();
        if !others.is_empty() {
            let _ = pinlat::sched::set_affinity(0, &others);
        }
    }
    let rt_runtime_us = read_i64("/proc/sys/kernel/sched_rt_runtime_us");
    let rt_period_us = read_i64("/proc/sys/kernel/sched_rt_period_us")
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(1_000_000);
    let throttled = rt_runtime_us.is_some_and(|v| v >= 0);
    // Keep preheat + run under 70 % of the RT runtime so throttling never hits a run.
    let run_ms = match rt_runtime_us {
        Some(v) if v >= 0 => opts
            .run_ms
            .min((v as u64 / 1000 * 7 / 10).saturating_sub(opts.preheat_ms))
            .max(100),
        _ => opts.run_ms,
    };
    let pause = || {
        if throttled {
            std::thread::sleep(Duration::from_micros(rt_period_us + 100_000));
        }
    };
    let injector_priority = (opts.agent_priority + 10).min(99);
    let base = AgentRun {
        agent: &agent,
        dir: dir.path(),
        cpu: opts.cpu,
        workload: "busy-poll",
        run_ms,
        preheat_ms: opts.preheat_ms,
        priority: Some(opts.agent_priority),
        extra: vec!["--top".into(), pinlat::agentcfg::MAX_TOP_N.to_string()],
    };

    // 1. The noise floor.
    let (floor_res, (), _) = base.run("floor", |_| ())?;
    let floor_cpu = first_result(floor_res, "floor")?;
    // Percentiles in the overflow count as the exact max: the floor is never put below them.
    let fs = floor_cpu.summary();
    let floor = Floor {
        samples: floor_cpu.samples,
        p50_ns: fs.ns_or_max(Quantile::P50),
        p99_ns: fs.ns_or_max(Quantile::P99),
        p9999_ns: fs.ns_or_max(Quantile::P9999),
        max_ns: floor_cpu.max_ns,
    };
    let lengths = stall_lengths(floor.p9999_ns);
    let mut notes = vec![
        "the agent's gaps are placed in CLOCK_MONOTONIC from its reported recording window; a stall's gap must overlap it".to_string(),
        format!(
            "a gap must lie between the spin and the injected interval (timer deadline to end of spin), ± max(10 %, p99.99 floor {} ns, {} µs for the interrupt and two context switches)",
            floor.p9999_ns,
            SWITCH_ALLOWANCE_NS / 1000
        ),
        "host noise only ever lengthens a gap: a missed or short stall fails the instrument; a long one fails it only when no steal time or stray gap of its trial explains it, else the trial is voided and repeated".to_string(),
    ];
    if throttled {
        notes.push(format!(
            "RT throttling is on (sched_rt_runtime_us {}): each run is {} ms + {} ms preheat, spaced by a {} ms period",
            rt_runtime_us.unwrap_or_default(),
            run_ms,
            opts.preheat_ms,
            rt_period_us / 1000
        ));
    }
    let report = |trials: Vec<Trial>, verdict, notes, rt_tests| CalibrationReport {
        schema_version: CALIBRATION_SCHEMA_VERSION,
        cpu: opts.cpu,
        agent_path: agent.display().to_string(),
        agent_priority: opts.agent_priority,
        injector_priority,
        sched_rt_runtime_us: rt_runtime_us,
        run_ms,
        floor: floor.clone(),
        stall_lengths_ns: lengths.clone(),
        trials_wanted: opts.trials,
        trials,
        verdict,
        notes,
        rt_tests,
    };
    if let Some(why) = judge::floor_problem(floor.p9999_ns) {
        let v = judge::verdict(&[], opts.trials, Some(why));
        return Ok(report(Vec::new(), v, notes, None));
    }

    // 2. Trials: every length twice per run, evenly spread, away from the edges; voided ones
    // repeated while attempts remain.
    let mut trials = Vec::new();
    let max_attempts = opts.trials.saturating_mul(ATTEMPTS_PER_TRIAL).max(1);
    let passed = |t: &[Trial]| t.iter().filter(|t| t.status == TrialStatus::Passed).count() as u32;
    for attempt in 1..=max_attempts {
        if passed(&trials) >= opts.trials {
            break;
        }
        pause();
        let t = trial(&base, attempt, &lengths, opts, injector_priority, run_ms)?;
        let t = judge::judge_trial(t, floor.p9999_ns);
        let failed = t.status == TrialStatus::Failed;
        trials.push(t);
        if failed {
            break;
        }
    }
    let verdict = judge::verdict(&trials, opts.trials, None);

    // 3. rt-tests beside the agent.
    let rt_tests = if opts.rt_tests {
        pause();
        match rttests::compare(&base, throttled, rt_period_us) {
            Ok(c) => c,
            Err(e) => {
                notes.push(format!("rt-tests comparison failed: {e}"));
                None
            }
        }
    } else {
        None
    };
    Ok(report(trials, verdict, notes, rt_tests))
}

/// One injection run, recorded raw (judged by the caller).
fn trial(
    base: &AgentRun<'_>,
    attempt: u32,
    lengths: &[u64],
    opts: &CalibrateOptions,
    injector_priority: u8,
    run_ms: u64,
) -> Result<Trial, CalibrateError> {
    let spins: Vec<u64> = lengths.iter().chain(lengths.iter()).copied().collect();
    let margin_ns = 80_000_000u64.min(run_ms * 1_000_000 / 6);
    let span_ns = run_ms * 1_000_000 - 2 * margin_ns;
    let step_ns = span_ns / spins.len() as u64;
    let preheat_ns = opts.preheat_ms * 1_000_000;
    let steal_before = StealSnapshot::now();
    let (res, handle, _) = base.run(&format!("inject{attempt}"), |hello| {
        let plan: Vec<Planned> = spins
            .iter()
            .enumerate()
            .map(|(i, &spin_ns)| Planned {
                at_ns: hello + preheat_ns + margin_ns + i as u64 * step_ns,
                spin_ns,
            })
            .collect();
        inject::spawn(opts.cpu, u32::from(injector_priority), plan)
    })?;
    let steal_after = StealSnapshot::now();
    let handle = handle.map_err(|source| CalibrateError::Spawn {
        what: "the injector thread".into(),
        source,
    })?;
    let injections = handle
        .join()
        .map_err(|_| CalibrateError::InjectorPanicked)??;
    let cpu = first_result(res, "inject")?;
    Ok(Trial {
        attempt,
        window: match (cpu.start_mono_ns, cpu.end_mono_ns) {
            (Some(start_ns), Some(end_ns)) => Some(MonoWindow { start_ns, end_ns }),
            _ => None,
        },
        duration_ns: cpu.duration_ns,
        floor_p9999_ns: cpu.summary().ns_or_max(Quantile::P9999),
        events: cpu.top,
        injections,
        steal_ns: match (steal_before, steal_after) {
            (Some(a), Some(b)) => b.since(&a, opts.cpu),
            _ => None,
        },
        detections: Vec::new(),
        status: TrialStatus::Passed,
    })
}

/// What `pinlat calibrate` was asked, beyond [`CalibrateOptions`].
#[derive(Debug, Clone)]
pub struct CalibrateCommand {
    /// The calibration.
    pub options: CalibrateOptions,
    /// Print JSON instead of the table.
    pub json: bool,
    /// Also write `calibrate.json` into this directory.
    pub out: Option<PathBuf>,
}

/// The last online CPU: on a host with a housekeeping CPU 0, the one to measure.
pub fn default_cpu() -> u32 {
    pinlat::host::online_cpus()
        .ok()
        .and_then(|s| s.iter().next_back())
        .unwrap_or(0)
}

/// Where pinlat keeps the last calibration of this host: `<cache>/calibrate.json`.
pub fn last_calibration_path() -> Option<PathBuf> {
    let var = |k| std::env::var_os(k);
    crate::kernel::cache_dir(var("XDG_CACHE_HOME").as_deref(), var("HOME").as_deref())
        .map(|d| d.join(CALIBRATE_FILE))
}

/// `pinlat calibrate`: runs the calibration, writes `calibrate.json` where asked and as the
/// host's last calibration, prints the report, and returns its verdict (the CLI maps it to an
/// exit code: 0 trusted, 1 failed, 4 inconclusive; an error is 3).
pub fn command(cmd: &CalibrateCommand) -> Result<Verdict, CalibrateError> {
    let report = run(&cmd.options)?;
    let mut targets: Vec<PathBuf> = cmd.out.iter().map(|d| d.join(CALIBRATE_FILE)).collect();
    targets.extend(last_calibration_path());
    for path in targets {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        pinlat::atomic_write::write_json_atomic(&path, &report)?;
    }
    if cmd.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        print!("{}", report.to_table());
    }
    Ok(report.verdict)
}
