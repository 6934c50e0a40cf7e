//! `pinlat calibrate`: check the instrument against stalls of known length.
//!
//! The agent busy-polls natively on one CPU (as it does on an RT vCPU) while pinlat injects
//! stalls there: a SCHED_FIFO thread on the same CPU, above the agent's priority, spins for a
//! known time at known `CLOCK_MONOTONIC` instants ([`inject`]). The lengths are chosen well
//! above the host's noise floor, measured first by a run without injections. Every stall must
//! appear among the agent's top events, lined up in time ([`matching`]) and with its length
//! within tolerance; otherwise the instrument misses or mis-sizes stalls and calibrate fails
//! (exit 1). Where rt-tests is installed, oslat and cyclictest run beside the agent on the same
//! CPU and the distributions are compared ([`rttests`]).
//!
//! RT throttling: with `kernel.sched_rt_runtime_us` below its period, a SCHED_FIFO busy loop
//! is stopped for the rest of each period (50 ms of every 1 s by default: measured here as
//! 52-56 ms gaps). Each agent run is therefore kept shorter than the RT runtime and runs are
//! spaced by a period, so throttling never lands inside a measurement.

pub mod inject;
pub mod matching;
pub mod rttests;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pinlat::wire::{CpuResult, RunResult};
use serde::{Deserialize, Serialize};

use self::inject::{monotonic_ns, Planned};
use self::matching::Detection;

/// File name of the calibration report inside a results directory (`--out DIR`).
pub use pinlat::report::hostchecks::CALIBRATE_FILE;

/// Test-only knob: `drop-top` removes the agent's events that could be stalls, `halve` halves
/// every event's length, so tests can show calibrate failing on a broken instrument.
pub const SABOTAGE_ENV: &str = "PINLAT_CALIBRATE_SABOTAGE";

/// Stall lengths as multiples of the noise floor (p99.99 of the floor run).
pub const FLOOR_MULTIPLES: [u64; 3] = [5, 10, 20];
/// Lower bounds of the stall lengths, ns (paired with [`FLOOR_MULTIPLES`]).
pub const MIN_STALL_NS: [u64; 3] = [100_000, 1_000_000, 4_000_000];
/// Longest stall calibrate will inject, ns; a floor needing more means a host too noisy to
/// calibrate on.
pub const MAX_STALL_NS: u64 = 50_000_000;
/// Allowance for the kernel work around each stall that is real CPU loss but not part of the
/// spin (timer interrupt, two context switches), ns. The tolerance is
/// `max(10 % of the stall, noise floor, this)`.
pub const SWITCH_ALLOWANCE_NS: u64 = 20_000;

/// Errors of the calibration machinery (not calibration failures: those are in the report).
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    /// The agent binary was not found.
    #[error("No pinlat-agent binary to calibrate")]
    AgentNotFound(#[source] crate::agent::AgentNotFound),
    /// Starting a process or thread failed.
    #[error("Cannot start {what}")]
    Spawn {
        /// What.
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
    Injector(#[source] crate::affinity::AffinityError),
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
}

/// What `pinlat calibrate` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalibrateOptions {
    /// CPU to measure and inject on.
    pub cpu: u32,
    /// Agent binary; `None` = [`crate::agent::find_agent`].
    pub agent: Option<PathBuf>,
    /// Injection runs; each injects every stall length twice.
    pub trials: u32,
    /// Measured time of each agent run, ms (kept under the RT runtime budget).
    pub run_ms: u64,
    /// Agent preheat, ms.
    pub preheat_ms: u64,
    /// SCHED_FIFO priority of the agent's measuring thread; the injector runs 10 above.
    pub agent_priority: u8,
    /// Also compare with oslat and cyclictest when installed.
    pub rt_tests: bool,
    /// Test-only sabotage of the agent's result ([`SABOTAGE_ENV`]).
    pub sabotage: Option<Sabotage>,
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
            sabotage: None,
        }
    }
}

/// How to break the agent's result on purpose (tests only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sabotage {
    /// Drop every top event longer than 50 µs: the instrument "misses" the stalls.
    DropTop,
    /// Halve every top event: the instrument mis-sizes the stalls.
    Halve,
}

impl Sabotage {
    /// Reads [`SABOTAGE_ENV`].
    pub fn from_env() -> Option<Sabotage> {
        match std::env::var(SABOTAGE_ENV).ok()?.as_str() {
            "drop-top" => Some(Sabotage::DropTop),
            "halve" => Some(Sabotage::Halve),
            _ => None,
        }
    }

    fn apply(self, r: &mut CpuResult) {
        match self {
            Sabotage::DropTop => r.top.retain(|e| e.latency_ns < 50_000),
            Sabotage::Halve => r.top.iter_mut().for_each(|e| e.latency_ns /= 2),
        }
    }
}

/// Gap distribution of the run without injections, ns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Floor {
    /// Loop iterations recorded.
    pub samples: u64,
    /// Median gap.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.99th percentile: the noise floor stall lengths are scaled from.
    pub p9999_ns: u64,
    /// Largest gap.
    pub max_ns: u64,
}

/// Everything `pinlat calibrate` measured; `calibrate.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationReport {
    /// Measured CPU.
    pub cpu: u32,
    /// Agent binary used.
    pub agent_path: String,
    /// Agent measuring thread: SCHED_FIFO priority.
    pub agent_priority: u8,
    /// Injector: SCHED_FIFO priority.
    pub injector_priority: u8,
    /// `kernel.sched_rt_runtime_us` (-1 = no throttling).
    pub sched_rt_runtime_us: Option<i64>,
    /// Measured time of each agent run, ms.
    pub run_ms: u64,
    /// The noise floor run.
    pub floor: Floor,
    /// The stall lengths injected (spin time), ns.
    pub stall_lengths_ns: Vec<u64>,
    /// One entry per injected stall, in injection order.
    pub detections: Vec<Detection>,
    /// Whether every stall was detected and sized within tolerance.
    pub passed: bool,
    /// Sabotage applied (tests only).
    pub sabotage: Option<Sabotage>,
    /// How the comparison was made and what it cannot show.
    pub notes: Vec<String>,
    /// oslat / cyclictest comparison, when rt-tests is installed and asked for.
    pub rt_tests: Option<rttests::Comparison>,
}

impl CalibrationReport {
    /// Stalls missed.
    pub fn missed(&self) -> usize {
        self.detections
            .iter()
            .filter(|d| d.detected_ns.is_none())
            .count()
    }

    /// Stalls seen but mis-sized.
    pub fn mis_sized(&self) -> usize {
        self.detections
            .iter()
            .filter(|d| d.detected_ns.is_some() && !d.ok)
            .count()
    }

    /// The text `pinlat calibrate` prints.
    pub fn to_table(&self) -> String {
        let us = |ns: u64| format!("{:.1}", ns as f64 / 1000.0);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "CPU {}: agent SCHED_FIFO {} busy-poll, injector SCHED_FIFO {}, {} ms per run (sched_rt_runtime_us {})",
            self.cpu,
            self.agent_priority,
            self.injector_priority,
            self.run_ms,
            self.sched_rt_runtime_us
                .map_or("unknown".into(), |v| v.to_string())
        );
        let f = &self.floor;
        let _ = writeln!(
            s,
            "noise floor (no injection, {} samples): p50 {} ns, p99 {} ns, p99.99 {} ns, max {} µs",
            f.samples,
            f.p50_ns,
            f.p99_ns,
            f.p9999_ns,
            us(f.max_ns)
        );
        let _ = writeln!(
            s,
            "{:>3}  {:>10}  {:>12}  {:>9}  {:>12}  {:>10}  {:>9}  result",
            "#", "spin µs", "injected µs", "wake µs", "detected µs", "error µs", "tol µs"
        );
        for (i, d) in self.detections.iter().enumerate() {
            let _ = writeln!(
                s,
                "{:>3}  {:>10}  {:>12}  {:>9}  {:>12}  {:>10}  {:>9}  {}",
                i + 1,
                us(d.spin_ns),
                us(d.injected_ns),
                us(d.wakeup_ns),
                d.detected_ns.map_or("-".into(), us),
                d.error_ns
                    .map_or("-".into(), |e| format!("{:+.1}", e as f64 / 1000.0)),
                us(d.tolerance_ns),
                match (d.detected_ns, d.ok) {
                    (None, _) => "MISSED",
                    (Some(_), false) => "MIS-SIZED",
                    _ => "ok",
                }
            );
        }
        let _ = writeln!(
            s,
            "{} stalls: {} detected within tolerance, {} missed, {} mis-sized: {}",
            self.detections.len(),
            self.detections.iter().filter(|d| d.ok).count(),
            self.missed(),
            self.mis_sized(),
            if self.passed {
                "the instrument sees every stall (exit 0)"
            } else {
                "the instrument cannot be trusted here (exit 1)"
            }
        );
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        if let Some(c) = &self.rt_tests {
            s.push_str(&c.to_table());
        }
        s
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

/// One native agent run.
#[derive(Debug, Clone)]
pub(crate) struct AgentRun<'a> {
    /// Agent binary.
    pub agent: &'a Path,
    /// Where its files go.
    pub dir: &'a Path,
    /// Measured CPU.
    pub cpu: u32,
    /// `--workload`.
    pub workload: &'a str,
    /// Measured time, ms.
    pub run_ms: u64,
    /// Preheat, ms.
    pub preheat_ms: u64,
    /// SCHED_FIFO priority; `None` = SCHED_OTHER.
    pub priority: Option<u8>,
    /// More arguments.
    pub extra: Vec<String>,
}

impl<'a> AgentRun<'a> {
    /// A copy to override fields of.
    pub fn clone_ref(&self) -> AgentRun<'a> {
        self.clone()
    }

    /// Spawns the agent; `on_hello(t)` is called with the `CLOCK_MONOTONIC` time (ns) the
    /// agent's hello frame appeared (right before its threads start and preheat), and returns
    /// the injector to join before waiting for the agent. Returns the result and the
    /// (spawn, exit) times, ns.
    pub fn run<T>(
        &self,
        tag: &str,
        on_hello: impl FnOnce(u64) -> T,
    ) -> Result<(RunResult, T, (u64, u64)), CalibrateError> {
        let out = self.dir.join(format!("{tag}.json"));
        let frames = self.dir.join(format!("{tag}.frames"));
        let err = self.dir.join(format!("{tag}.stderr"));
        let errf = std::fs::File::create(&err).map_err(|source| CalibrateError::Io {
            what: format!("creating {}", err.display()),
            source,
        })?;
        let mut args: Vec<String> = vec![
            "--native".into(),
            "--workload".into(),
            self.workload.into(),
            "--cpus".into(),
            self.cpu.to_string(),
            "--duration".into(),
            format!("{}ms", self.run_ms),
            "--preheat".into(),
            format!("{}ms", self.preheat_ms),
            "--frames".into(),
            frames.display().to_string(),
            "--output".into(),
            out.display().to_string(),
            "--quiet".into(),
        ];
        if let Some(p) = self.priority {
            args.push("--priority".into());
            args.push(p.to_string());
        }
        args.extend(self.extra.iter().cloned());
        let spawned = monotonic_ns();
        let mut child = Command::new(self.agent)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(errf)
            .spawn()
            .map_err(|source| CalibrateError::Spawn {
                what: self.agent.display().to_string(),
                source,
            })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let hello = loop {
            if std::fs::metadata(&frames).is_ok_and(|m| m.len() > 0) {
                break monotonic_ns();
            }
            if let Ok(Some(_)) = child.try_wait() {
                break monotonic_ns();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CalibrateError::Timeout {
                    what: "say hello",
                    secs: 10,
                });
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        let extra = on_hello(hello);
        let deadline = Instant::now()
            + Duration::from_millis(self.preheat_ms + self.run_ms)
            + Duration::from_secs(10);
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(CalibrateError::Timeout {
                        what: "finish",
                        secs: 10,
                    });
                }
            }
        };
        let exited = monotonic_ns();
        if !status.success() {
            let text = std::fs::read_to_string(&err).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(3).collect();
            return Err(CalibrateError::AgentFailed {
                status: status.to_string(),
                stderr: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
            });
        }
        let result = std::fs::read(&out)
            .map_err(|e| CalibrateError::Result {
                path: out.clone(),
                source: Box::new(e),
            })
            .and_then(|b| {
                serde_json::from_slice::<RunResult>(&b).map_err(|e| CalibrateError::Result {
                    path: out.clone(),
                    source: Box::new(e),
                })
            })?;
        Ok((result, extra, (spawned, exited)))
    }
}

fn first_result(r: RunResult, path: &str) -> Result<CpuResult, CalibrateError> {
    r.results
        .into_iter()
        .next()
        .ok_or_else(|| CalibrateError::Result {
            path: PathBuf::from(path),
            source: "the agent returned no per-CPU result".into(),
        })
}

/// A private temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, CalibrateError> {
        let p = std::env::temp_dir().join(format!(
            "pinlat-calibrate-{}-{}",
            std::process::id(),
            monotonic_ns()
        ));
        std::fs::create_dir_all(&p).map_err(|source| CalibrateError::Io {
            what: format!("creating {}", p.display()),
            source,
        })?;
        Ok(Scratch(p))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An injector wake-up later than this past its deadline voids the trial, ns.
const VOID_WAKE_NS: u64 = 2_000_000;
/// Trials voided at most before the disturbed ones are judged anyway.
const MAX_VOIDED_TRIALS: u32 = 3;

/// The stall lengths (spin time, ns) for a floor (p99.99, ns).
pub fn stall_lengths(floor_ns: u64) -> Vec<u64> {
    FLOOR_MULTIPLES
        .iter()
        .zip(MIN_STALL_NS)
        .map(|(k, min)| (k * floor_ns).max(min))
        .collect()
}

/// The allowed |error| for a stall of `injected_ns`: `max(10 %, floor, switch allowance)`.
pub fn tolerance_ns(injected_ns: u64, floor_ns: u64) -> u64 {
    (injected_ns / 10).max(floor_ns).max(SWITCH_ALLOWANCE_NS)
}

/// Runs the calibration.
pub fn run(opts: &CalibrateOptions) -> Result<CalibrationReport, CalibrateError> {
    let agent = agent_path(opts.agent.as_deref())?;
    let dir = Scratch::new()?;
    // Keep this process (which watches for the agent's hello and times the stalls) off the
    // measured CPU: there the SCHED_FIFO agent would starve it, and a hello noticed hundreds
    // of ms late shifts every planned stall out of the agent's window (seen in CI). Threads
    // spawned later inherit this; the injector pins itself to the measured CPU.
    if let Ok(online) = pinlat::host::online_cpus() {
        let others: Vec<u32> = online.iter().filter(|&c| c != opts.cpu).collect();
        if !others.is_empty() {
            let _ = crate::affinity::set_affinity(0, &others);
        }
    }
    let rt_runtime_us: Option<i64> =
        std::fs::read_to_string("/proc/sys/kernel/sched_rt_runtime_us")
            .ok()
            .and_then(|s| s.trim().parse().ok());
    let rt_period_us: u64 = std::fs::read_to_string("/proc/sys/kernel/sched_rt_period_us")
        .ok()
        .and_then(|s| s.trim().parse().ok())
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
    let fs = floor_cpu.summary();
    let floor = Floor {
        samples: floor_cpu.samples,
        p50_ns: fs.p50_ns,
        p99_ns: fs.p99_ns,
        p9999_ns: fs.p9999_ns,
        max_ns: floor_cpu.max_ns,
    };
    let lengths = stall_lengths(floor.p9999_ns);
    let mut notes = vec![
        "the agent reports event offsets from its own measurement start, not absolute times: \
         each run's stalls are lined up with its events by one common time shift, then judged"
            .to_string(),
        format!(
            "injected = timer deadline to end of spin (the CPU time the agent lost); tolerance = max(10 %, p99.99 floor {} ns, {} µs for the interrupt and two context switches)",
            floor.p9999_ns,
            SWITCH_ALLOWANCE_NS / 1000
        ),
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
    // Every report this run returns carries the same setup; `passed` needs detections, all ok.
    let report =
        |floor, stall_lengths_ns, detections: Vec<Detection>, notes, rt_tests| CalibrationReport {
            cpu: opts.cpu,
            agent_path: agent.display().to_string(),
            agent_priority: opts.agent_priority,
            injector_priority,
            sched_rt_runtime_us: rt_runtime_us,
            run_ms,
            floor,
            stall_lengths_ns,
            passed: !detections.is_empty() && detections.iter().all(|d| d.ok),
            detections,
            sabotage: opts.sabotage,
            notes,
            rt_tests,
        };
    if lengths.iter().any(|&l| l > MAX_STALL_NS) {
        notes.push(format!(
            "noise floor p99.99 {} ns is too high: stalls would exceed {} ms; fix the host (pinlat doctor) first",
            floor.p9999_ns,
            MAX_STALL_NS / 1_000_000
        ));
        return Ok(report(floor, lengths, Vec::new(), notes, None));
    }

    // 2. Injection runs: every length twice per run, evenly spread, away from the edges.
    let mut detections = Vec::new();
    let mut trial = 0;
    let mut voided = 0;
    while trial < opts.trials {
        pause();
        let spins: Vec<u64> = lengths.iter().chain(lengths.iter()).copied().collect();
        let margin_ns = 80_000_000u64.min(run_ms * 1_000_000 / 6);
        let span_ns = run_ms * 1_000_000 - 2 * margin_ns;
        let step_ns = span_ns / spins.len() as u64;
        let preheat_ns = opts.preheat_ms * 1_000_000;
        let (res, handle, (spawned, exited)) = base.run(&format!("inject{trial}"), |hello| {
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
        let handle = handle.map_err(|source| CalibrateError::Spawn {
            what: "the injector thread".into(),
            source,
        })?;
        let injections = handle
            .join()
            .map_err(|_| CalibrateError::InjectorPanicked)??;
        // An injector that woke far past its deadlines did not inject what was planned (the
        // host held the CPU from it, e.g. a loaded machine delayed its start): that trial says
        // nothing about the instrument. It is voided, said so, and run again, a few times.
        let late_ns = injections
            .iter()
            .map(|i| i.start_ns.saturating_sub(i.deadline_ns))
            .max()
            .unwrap_or(0);
        if late_ns > VOID_WAKE_NS && voided < MAX_VOIDED_TRIALS {
            voided += 1;
            notes.push(format!(
                "trial {} voided and repeated: the injector woke {:.1} ms past a deadline (host busy), so the stalls were not injected as planned",
                trial + 1,
                late_ns as f64 / 1e6
            ));
            continue;
        }
        trial += 1;
        let mut cpu_res = first_result(res, "inject")?;
        if let Some(s) = opts.sabotage {
            s.apply(&mut cpu_res);
        }
        let shift = matching::best_shift(&injections, &cpu_res.top, (spawned, exited));
        detections.extend(matching::judge(&injections, &cpu_res.top, shift, |l| {
            tolerance_ns(l, floor.p9999_ns)
        }));
    }

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
    Ok(report(floor, lengths, detections, notes, rt_tests))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_lengths_scale_with_the_floor_above_their_minimums() {
        assert_eq!(stall_lengths(20), MIN_STALL_NS.to_vec());
        assert_eq!(stall_lengths(100_000), vec![500_000, 1_000_000, 4_000_000]);
        assert_eq!(
            stall_lengths(1_000_000),
            vec![5_000_000, 10_000_000, 20_000_000]
        );
    }

    #[test]
    fn tolerance_is_the_largest_of_ten_percent_floor_and_allowance() {
        assert_eq!(tolerance_ns(100_000, 20), SWITCH_ALLOWANCE_NS);
        assert_eq!(tolerance_ns(4_000_000, 20), 400_000);
        assert_eq!(tolerance_ns(100_000, 50_000), 50_000);
    }
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

/// `pinlat calibrate`: exit 0 when every stall was seen and sized within tolerance, 1 when the
/// instrument missed or mis-sized one, 3 when calibration could not run.
pub fn command(cmd: &CalibrateCommand) -> Result<crate::cli::Exit, crate::cli::Failure> {
    use crate::cli::{Exit, Failure};
    let report = run(&cmd.options).map_err(|e| match e {
        CalibrateError::AgentNotFound(_) => Failure::infra(e),
        e => Failure::infra(anyhow::Error::new(e).context("calibrating")),
    })?;
    let json = serde_json::to_string_pretty(&report).expect("report serialises");
    if let Some(dir) = &cmd.out {
        crate::doctor::probe::write_into(dir, CALIBRATE_FILE, &json)?;
    }
    if cmd.json {
        println!("{json}");
    } else {
        print!("{}", report.to_table());
    }
    Ok(if report.passed {
        Exit::Ok
    } else {
        Exit::BudgetExceeded
    })
}
