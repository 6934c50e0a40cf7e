//! Why a guest failed, read from its console and what the host saw, and the warnings a guest
//! printed during a run that finished.
//!
//! A pinning layout can break the guest it measures: a SCHED_FIFO vCPU that shares its pCPU
//! with the emulator thread starves the emulated timer, and the guest panics at boot with
//! "IO-APIC + timer doesn't work!", or prints RCU stalls, hung tasks and soft lockups before it
//! dies. That is the verdict on the layout, so a failed run records its cause as a value
//! ([`FailureCause`]) with the console lines that prove it, and its real stage (`boot` when the
//! agent never said hello). Stall warnings from a run that finished are kept as
//! [`GuestWarning`]s: they are what a starved vCPU or emulator prints before it kills a guest.
//!
//! The console is scanned once ([`Console::scan`]); `scan.rs` says how it is read and which
//! kernel sources its markers come from. Fixtures recorded from the real guest kernel are in
//! `tests/fixtures/console/` (see its README).

mod cause;
mod line;
mod scan;
#[cfg(test)]
mod tests;
mod warning;

pub use cause::{FailureCause, GuestFacts, Outcome, Phase};
pub use line::{EVIDENCE_LINES, EVIDENCE_LINE_CHARS, SCAN_TAIL_BYTES};
pub use scan::StallKind;
pub use warning::{GuestWarning, WarningKind};

use line::{bounded, push_evidence};
use scan::Scan;

/// A scanned guest console: scan once, then [`Console::classify`] a failure or list the
/// [`Console::warnings`] of a run that finished.
#[derive(Debug, Clone)]
pub struct Console {
    scan: Scan,
}

impl Console {
    /// Scans the last [`SCAN_TAIL_BYTES`] of a console; any bytes are accepted.
    pub fn scan(console: &[u8]) -> Console {
        Console {
            scan: Scan::new(console),
        }
    }

    /// The cause of a failed run. Precedence, first match wins:
    ///
    /// 1. A kernel panic in the console: the guest is dead, and that explains a QEMU exit, a
    ///    missing hello, a lost QMP connection and an agent that stopped. An oops before it is
    ///    named ("after an oops: …"). Except "Attempted to kill init!" with no oops before it
    ///    when the agent reported an error: the agent (PID 1) exited after its error, so the
    ///    error is the cause (rule 3) and the panic line is kept in its evidence.
    /// 2. A host-side failure ([`GuestFacts::host_failure`]): the runner's own verdict; a guest
    ///    that only warned does not explain it.
    /// 3. An agent error: the agent's own words beat a later QEMU exit or deadline. Console
    ///    oopses and stalls are kept in its evidence.
    /// 4. An oops or `BUG:` report: the likely cause of what the host saw next.
    /// 5. A lockup or stall, the most severe kind first (hard lockup, soft lockup, RCU stall,
    ///    hung task): an RCU stall before a boot deadline is named as its likely cause.
    /// 6. QEMU exited ([`GuestFacts::qemu_exit`]).
    /// 7. No hello: the boot deadline passed.
    /// 8. The run deadline passed.
    pub fn classify(&self, facts: &GuestFacts) -> FailureCause {
        let scan = &self.scan;
        let phase = Phase::of(facts);
        // The agent is PID 1: when it reported an error and then exited, the kernel's
        // "Attempted to kill init!" is the consequence, not the cause.
        let agent_exit_panic = scan.panic.as_ref().filter(|p| {
            p.oopses_before == 0
                && p.message.contains("Attempted to kill init")
                && !facts.agent_errors.is_empty()
        });
        if let Some(panic) = scan.panic.as_ref().filter(|_| agent_exit_panic.is_none()) {
            let oops = (panic.oopses_before > 0)
                .then(|| {
                    scan.oopses
                        .get(panic.oopses_before.min(scan.oopses.len()) - 1)
                })
                .flatten();
            let mut evidence = Vec::new();
            if let Some(oops) = oops {
                push_evidence(&mut evidence, &oops.headline);
                for line in oops.lines.iter().take(3) {
                    push_evidence(&mut evidence, line);
                }
                for line in oops.task_line.iter() {
                    push_evidence(&mut evidence, line);
                }
                if let Some(rip) = &oops.rip {
                    push_evidence(&mut evidence, &format!("RIP: {rip}"));
                }
            } else {
                for line in &panic.context {
                    push_evidence(&mut evidence, line);
                }
            }
            push_evidence(&mut evidence, &panic.line);
            if let Some(task) = &panic.task {
                push_evidence(&mut evidence, task);
            }
            for frame in &panic.frames {
                push_evidence(&mut evidence, frame);
            }
            return FailureCause::KernelPanic {
                phase,
                message: panic.message.clone(),
                after_oops: oops.map(|o| o.headline.clone()),
                evidence,
            };
        }
        if let Some(message) = &facts.host_failure {
            return FailureCause::Infrastructure {
                message: bounded(message),
                evidence: self.tail(),
            };
        }
        if let Some(first) = facts.agent_errors.first() {
            let mut evidence = Vec::new();
            for error in &facts.agent_errors {
                push_evidence(&mut evidence, &format!("agent: {error}"));
            }
            for oops in &scan.oopses {
                push_evidence(&mut evidence, &oops.headline);
            }
            for kind in StallKind::ALL {
                if let Some(line) = &scan.stall(kind).first {
                    push_evidence(&mut evidence, line);
                }
            }
            if let Some(panic) = agent_exit_panic {
                push_evidence(&mut evidence, &panic.line);
            }
            return FailureCause::AgentError {
                phase,
                message: bounded(first),
                evidence,
            };
        }
        let outcome = Outcome::of(facts);
        if let Some(oops) = scan.oopses.first() {
            let mut evidence = vec![oops.headline.clone()];
            for line in oops.lines.iter().chain(&oops.task_line).chain(&oops.frames) {
                push_evidence(&mut evidence, line);
            }
            if let Some(rip) = &oops.rip {
                push_evidence(&mut evidence, &format!("RIP: {rip}"));
            }
            return FailureCause::Oops {
                phase,
                headline: oops.headline.clone(),
                location: oops.rip.clone(),
                task: oops.task.clone(),
                count: scan.oops_count,
                outcome,
                evidence,
            };
        }
        if let Some(kind) = StallKind::ALL
            .into_iter()
            .find(|&k| scan.stall(k).count > 0)
        {
            let tally = scan.stall(kind);
            let mut evidence = tally.evidence.clone();
            for other in StallKind::ALL.into_iter().filter(|&k| k != kind) {
                if let Some(line) = &scan.stall(other).first {
                    push_evidence(&mut evidence, line);
                }
            }
            return FailureCause::Stall {
                phase,
                kind,
                headline: tally.first.clone().unwrap_or_default(),
                count: tally.count,
                outcome,
                evidence,
            };
        }
        match outcome {
            Outcome::QemuExited { status } => FailureCause::QemuExited {
                phase,
                status,
                evidence: self.tail(),
            },
            Outcome::NoHello { deadline_s } => FailureCause::NoHello {
                deadline_s,
                evidence: self.tail(),
            },
            Outcome::RunDeadline { deadline_s } => FailureCause::RunDeadline {
                deadline_s,
                evidence: self.tail(),
            },
        }
    }

    /// The warnings of a run that finished: one per kind of lockup or stall report, and one
    /// for oopses the guest survived, most severe first. A panic is not a warning (a run whose
    /// guest panicked did not finish: [`Console::classify`] it).
    pub fn warnings(&self) -> Vec<GuestWarning> {
        let scan = &self.scan;
        let mut out: Vec<GuestWarning> = StallKind::ALL
            .into_iter()
            .filter_map(|kind| {
                let tally = scan.stall(kind);
                Some(GuestWarning {
                    kind: kind.into(),
                    count: tally.count,
                    first_at_us: tally.first_at_us,
                    headline: tally.first.clone()?,
                    evidence: tally.evidence.clone(),
                })
            })
            .collect();
        // The oops right before a panic caused it: that one is no warning.
        let survived = match &scan.panic {
            Some(panic) => panic.oopses_before.saturating_sub(1).min(scan.oopses.len()),
            None => scan.oopses.len(),
        };
        if let Some(first) = scan.oopses.first().filter(|_| survived > 0) {
            let mut evidence = Vec::new();
            for oops in &scan.oopses[..survived] {
                push_evidence(&mut evidence, &oops.headline);
                for line in oops.lines.iter().chain(oops.rip.iter()) {
                    push_evidence(&mut evidence, line);
                }
            }
            out.push(GuestWarning {
                kind: WarningKind::Oops,
                count: if scan.panic.is_some() {
                    survived as u32
                } else {
                    scan.oops_count
                },
                first_at_us: first.at_us,
                headline: first.headline.clone(),
                evidence,
            });
        }
        out
    }

    /// The console's last non-empty lines, at most [`EVIDENCE_LINES`].
    pub fn tail(&self) -> Vec<String> {
        self.scan.tail.iter().cloned().collect()
    }
}

/// The cause of a failed run from its console and the host's facts; see
/// [`Console::classify`] for the precedence.
pub fn classify(console: &[u8], facts: &GuestFacts) -> FailureCause {
    Console::scan(console).classify(facts)
}

/// The warnings in the console of a run that finished; see [`Console::warnings`].
pub fn scan_warnings(console: &[u8]) -> Vec<GuestWarning> {
    Console::scan(console).warnings()
}
