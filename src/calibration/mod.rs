//! `calibrate.json`: what `pinlat calibrate` measured, and its verdict on the instrument.
//!
//! Calibration checks the agent against stalls of known length: a SCHED_FIFO injector on the
//! measured CPU spins for known times at known `CLOCK_MONOTONIC` instants while the agent
//! busy-polls there (the runner's `calibrate` module does this). Everything needed to judge a
//! trial is kept raw in [`Trial`] (the injections, the agent's largest gaps and its measurement
//! window, the host's steal time), so a verdict can be recomputed from the file alone, and the
//! judging itself ([`judge`]) is pure.
//!
//! Three verdicts ([`Verdict`]), because a noisy host is not a broken instrument:
//! * **trusted**: every stall of every judged trial was seen and sized;
//! * **inconclusive**: the host was too noisy to judge (steal time, stray gaps, stalls the
//!   agent's window did not cover) in too many trials, with the figures;
//! * **failed**: a stall was missed, or measured shorter than it can have been, or longer
//!   than any noise recorded in its trial explains. Noise only ever adds time to a gap, so a
//!   missed or short stall is the instrument's fault whatever the host did.

pub mod judge;
pub mod rttests;

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::wire::TopEvent;

/// File name of the calibration report in a results directory.
pub const CALIBRATE_FILE: &str = "calibrate.json";
/// Version of [`CalibrationReport`]; bumped on any incompatible change.
pub const CALIBRATION_SCHEMA_VERSION: u32 = 2;

/// Gap distribution of the agent's run without injections, ns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Floor {
    /// Loop iterations recorded.
    pub samples: u64,
    /// Median gap, ns.
    pub p50_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// 99.99th percentile, ns: the noise floor the stall lengths are scaled from.
    pub p9999_ns: u64,
    /// Largest gap, ns.
    pub max_ns: u64,
}

/// One stall as the injector performed it, `CLOCK_MONOTONIC` ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Injection {
    /// The timer deadline: the CPU can be taken from the agent from here (the timer interrupt).
    pub deadline_ns: u64,
    /// The injector's first clock read after waking.
    pub start_ns: u64,
    /// The injector's last clock read before sleeping again.
    pub end_ns: u64,
    /// The spin length asked for, ns.
    pub spin_ns: u64,
}

impl Injection {
    /// The longest time the agent can have lost: timer deadline to end of spin, ns.
    pub fn stall_ns(&self) -> u64 {
        self.end_ns
            .saturating_sub(self.deadline_ns.min(self.start_ns))
    }

    /// The shortest time the agent can have lost: the spin itself, ns.
    pub fn spun_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// The injector's wake-up latency (start − deadline), ns.
    pub fn wakeup_ns(&self) -> u64 {
        self.start_ns.saturating_sub(self.deadline_ns)
    }
}

/// The agent's recording window, `CLOCK_MONOTONIC` ns (from its result's `start_mono_ns` and
/// `end_mono_ns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonoWindow {
    /// Recording started.
    pub start_ns: u64,
    /// Recording stopped.
    pub end_ns: u64,
}

/// What the agent made of one injected stall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Seen, and sized between the spin and the whole injected interval (± tolerance).
    Ok,
    /// No gap of the agent overlaps the stall.
    Missed,
    /// Seen, but shorter than the spin alone: impossible for a working instrument.
    Undersized,
    /// Seen, but longer than the injected interval, with nothing in the trial to explain it.
    Oversized,
    /// Seen, longer than the injected interval, and host noise recorded in the same trial
    /// (steal time, a stray gap at least as long as the excess, or the injector itself held off
    /// the CPU that long) can explain the excess.
    OversizedByNoise,
    /// Injected outside the agent's recording window: not judged.
    OutsideWindow,
}

impl Outcome {
    /// Whether this outcome, in a trial that was judged, says the instrument is broken.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Outcome::Missed | Outcome::Undersized | Outcome::Oversized
        )
    }

    /// Upper-case label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Missed => "MISSED",
            Outcome::Undersized => "UNDERSIZED",
            Outcome::Oversized => "OVERSIZED",
            Outcome::OversizedByNoise => "oversized (host noise)",
            Outcome::OutsideWindow => "outside window",
        }
    }
}

/// One injected stall and what the agent saw of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detection {
    /// The spin length asked for, ns.
    pub spin_ns: u64,
    /// The longest time the agent can have lost (deadline to end of spin), ns.
    pub injected_ns: u64,
    /// The injector's wake-up latency (part of `injected_ns`), ns.
    pub wakeup_ns: u64,
    /// The largest gap of the agent overlapping the stall, ns. `None`: missed.
    pub detected_ns: Option<u64>,
    /// `detected − injected`, ns.
    pub error_ns: Option<i64>,
    /// Allowed error beyond `[spin, injected]`, ns.
    pub tolerance_ns: u64,
    /// The judgement.
    pub outcome: Outcome,
}

/// Why a trial could not judge the instrument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Disturbance {
    /// The agent's result had no recording window to place the stalls in.
    NoWindow,
    /// Stalls were injected outside the agent's recording window (its start was late).
    OutsideWindow {
        /// How many.
        stalls: usize,
    },
    /// The hypervisor took the measured CPU during the trial (`/proc/stat` steal).
    Steal {
        /// Steal time on the measured CPU during the trial, ns (10 ms resolution).
        steal_ns: u64,
    },
    /// The agent saw gaps no injection explains, long enough to explain a stall measured too
    /// long.
    StrayGap {
        /// The longest such gap, ns.
        gap_ns: u64,
    },
    /// The injector (SCHED_FIFO, above the agent) was held off the CPU past its deadline for at
    /// least as long as a stall was measured too long: something else had the CPU around it.
    InjectorHeldOff {
        /// The injector's wake-up latency at that stall, ns.
        late_ns: u64,
    },
}

impl std::fmt::Display for Disturbance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Disturbance::NoWindow => f.write_str("the agent reported no recording window"),
            Disturbance::OutsideWindow { stalls } => write!(
                f,
                "{stalls} stall(s) fell outside the agent's recording window"
            ),
            Disturbance::Steal { steal_ns } => write!(
                f,
                "{:.0} ms steal time on the measured CPU",
                *steal_ns as f64 / 1e6
            ),
            Disturbance::StrayGap { gap_ns } => write!(
                f,
                "a {:.1} µs gap no injection explains",
                *gap_ns as f64 / 1e3
            ),
            Disturbance::InjectorHeldOff { late_ns } => write!(
                f,
                "the injector was held off the CPU {:.1} µs past its deadline",
                *late_ns as f64 / 1e3
            ),
        }
    }
}

/// How a trial was judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum TrialStatus {
    /// Judged, every stall seen and sized.
    Passed,
    /// Judged, and at least one stall says the instrument is broken.
    Failed,
    /// Not judged: the host disturbed it beyond what it can judge; repeated.
    Voided {
        /// Why.
        reasons: Vec<Disturbance>,
    },
}

/// One injection run: raw data, then its judgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// Attempt number, from 1 (voided attempts count).
    pub attempt: u32,
    /// The agent's recording window.
    pub window: Option<MonoWindow>,
    /// The agent's measured recording time, ns (by its clock).
    pub duration_ns: u64,
    /// The stalls as injected.
    pub injections: Vec<Injection>,
    /// The agent's largest gaps.
    pub events: Vec<TopEvent>,
    /// Steal time of the measured CPU over the trial, ns (`None`: `/proc/stat` unreadable).
    pub steal_ns: Option<u64>,
    /// p99.99 of the agent's gaps in this trial, ns: its own noise floor.
    pub floor_p9999_ns: u64,
    /// One per injection, in order.
    pub detections: Vec<Detection>,
    /// The judgement.
    pub status: TrialStatus,
}

impl Trial {
    /// The injector's largest wake-up latency, ns.
    pub fn max_wakeup_ns(&self) -> u64 {
        self.injections
            .iter()
            .map(Injection::wakeup_ns)
            .max()
            .unwrap_or(0)
    }
}

/// The calibration's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// Every stall of every judged trial was seen and sized: the instrument can be trusted.
    Trusted,
    /// The host was too noisy to judge the instrument.
    Inconclusive {
        /// What made it so, with figures.
        reasons: Vec<String>,
    },
    /// A stall was missed or mis-sized in a trial the host did not disturb.
    Failed,
}

impl Verdict {
    /// One word for tables and summaries.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Trusted => "trusted",
            Verdict::Inconclusive { .. } => "inconclusive",
            Verdict::Failed => "failed",
        }
    }
}

/// Everything `pinlat calibrate` measured: `calibrate.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationReport {
    /// [`CALIBRATION_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The measured CPU (host numbering).
    pub cpu: u32,
    /// The agent binary that was checked.
    pub agent_path: String,
    /// SCHED_FIFO priority of the agent's measuring thread.
    pub agent_priority: u8,
    /// SCHED_FIFO priority of the injector (above the agent's).
    pub injector_priority: u8,
    /// `kernel.sched_rt_runtime_us` (-1 = no throttling).
    pub sched_rt_runtime_us: Option<i64>,
    /// Recording time of each agent run, ms.
    pub run_ms: u64,
    /// The run without injections.
    pub floor: Floor,
    /// The spin lengths injected, ns.
    pub stall_lengths_ns: Vec<u64>,
    /// Trials that had to be judged for a verdict.
    pub trials_wanted: u32,
    /// Every attempt, voided ones included, in order.
    pub trials: Vec<Trial>,
    /// The verdict, derived by [`judge::verdict`] from the trials.
    pub verdict: Verdict,
    /// How the comparison was made and what it cannot show.
    pub notes: Vec<String>,
    /// oslat / cyclictest beside the agent, when rt-tests is installed and asked for.
    pub rt_tests: Option<rttests::Comparison>,
}

impl crate::schema::Versioned for CalibrationReport {
    const NAME: &'static str = CALIBRATE_FILE;
    const VERSION: u32 = CALIBRATION_SCHEMA_VERSION;
}

impl CalibrationReport {
    /// Detections of judged (not voided) trials.
    pub fn judged_detections(&self) -> impl Iterator<Item = &Detection> {
        self.trials
            .iter()
            .filter(|t| !matches!(t.status, TrialStatus::Voided { .. }))
            .flat_map(|t| &t.detections)
    }

    /// Stalls missed in judged trials.
    pub fn missed(&self) -> usize {
        self.judged_detections()
            .filter(|d| d.outcome == Outcome::Missed)
            .count()
    }

    /// Stalls seen but mis-sized (too short, or too long with nothing to explain it) in judged
    /// trials.
    pub fn mis_sized(&self) -> usize {
        self.judged_detections()
            .filter(|d| matches!(d.outcome, Outcome::Undersized | Outcome::Oversized))
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
        for t in &self.trials {
            let status = match &t.status {
                TrialStatus::Passed => "judged: every stall seen and sized".to_string(),
                TrialStatus::Failed => "judged: FAILED".to_string(),
                TrialStatus::Voided { reasons } => format!(
                    "voided and repeated: {}",
                    reasons
                        .iter()
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            };
            let _ = writeln!(
                s,
                "trial {}: steal {}, injector woke up to {} µs late, own floor p99.99 {} ns: {status}",
                t.attempt,
                t.steal_ns
                    .map_or("unknown".into(), |v| format!("{:.0} ms", v as f64 / 1e6)),
                us(t.max_wakeup_ns()),
                t.floor_p9999_ns,
            );
            let _ = writeln!(
                s,
                "  {:>3}  {:>10}  {:>12}  {:>9}  {:>12}  {:>10}  {:>9}  result",
                "#", "spin µs", "injected µs", "wake µs", "detected µs", "error µs", "tol µs"
            );
            for (i, d) in t.detections.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "  {:>3}  {:>10}  {:>12}  {:>9}  {:>12}  {:>10}  {:>9}  {}",
                    i + 1,
                    us(d.spin_ns),
                    us(d.injected_ns),
                    us(d.wakeup_ns),
                    d.detected_ns.map_or("-".into(), us),
                    d.error_ns
                        .map_or("-".into(), |e| format!("{:+.1}", e as f64 / 1000.0)),
                    us(d.tolerance_ns),
                    d.outcome.label()
                );
            }
        }
        let judged = self.judged_detections().count();
        let ok = self
            .judged_detections()
            .filter(|d| d.outcome == Outcome::Ok)
            .count();
        let verdict = match &self.verdict {
            Verdict::Trusted => "trusted: the instrument sees every stall (exit 0)".to_string(),
            Verdict::Failed => {
                "FAILED: the instrument missed or mis-sized stalls the host did not disturb (exit 1)"
                    .to_string()
            }
            Verdict::Inconclusive { reasons } => format!(
                "inconclusive: this host is too noisy to judge the instrument (exit 4): {}",
                reasons.join("; ")
            ),
        };
        let _ = writeln!(
            s,
            "{judged} stalls judged in {} of {} trials: {ok} within tolerance, {} missed, {} mis-sized: {verdict}",
            self.trials
                .iter()
                .filter(|t| !matches!(t.status, TrialStatus::Voided { .. }))
                .count(),
            self.trials.len(),
            self.missed(),
            self.mis_sized(),
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
