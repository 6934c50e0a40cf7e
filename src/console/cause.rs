//! The failure causes and their one-sentence descriptions: the values a failed run records
//! (see the module above for why).

use serde::{Deserialize, Serialize};

use super::StallKind;

/// Where the guest was when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Before the agent's hello.
    Boot,
    /// After the agent's hello.
    Run,
}

impl Phase {
    pub(super) fn of(facts: &GuestFacts) -> Phase {
        if facts.hello {
            Phase::Run
        } else {
            Phase::Boot
        }
    }

    /// "boot" or "the run", as in "during boot".
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Boot => "boot",
            Phase::Run => "the run",
        }
    }
}

/// What the host knows about a failed run, besides the console.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestFacts {
    /// The agent said hello on its channel.
    pub hello: bool,
    /// Errors the agent reported, in arrival order.
    pub agent_errors: Vec<String>,
    /// QEMU exited by itself, with this status ("exit status 0", "signal 9 (SIGKILL)").
    pub qemu_exit: Option<String>,
    /// The run failed on the host side (launch, QMP, pinning, the runner's own I/O): what
    /// happened.
    pub host_failure: Option<String>,
    /// The deadline that passed, in seconds: the boot deadline without a hello, the run
    /// deadline after one. `None` when no deadline passed or it is not known.
    pub deadline_s: Option<u64>,
}

/// How the host saw a run end that the console explains only as "likely": the guest printed
/// an oops or stall, and then this happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// QEMU exited by itself.
    QemuExited {
        /// Its exit status.
        status: String,
    },
    /// The agent never said hello before the boot deadline.
    NoHello {
        /// The boot deadline, in seconds.
        deadline_s: Option<u64>,
    },
    /// The agent said hello but the run did not finish before its deadline.
    RunDeadline {
        /// The run deadline, in seconds.
        deadline_s: Option<u64>,
    },
}

impl Outcome {
    pub(super) fn of(facts: &GuestFacts) -> Outcome {
        if let Some(status) = &facts.qemu_exit {
            Outcome::QemuExited {
                status: status.clone(),
            }
        } else if !facts.hello {
            Outcome::NoHello {
                deadline_s: facts.deadline_s,
            }
        } else {
            Outcome::RunDeadline {
                deadline_s: facts.deadline_s,
            }
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::QemuExited { status } => write!(f, "QEMU exited ({status})"),
            Outcome::NoHello {
                deadline_s: Some(s),
            } => {
                write!(
                    f,
                    "the agent never said hello before the {s} s boot deadline"
                )
            }
            Outcome::NoHello { deadline_s: None } => {
                f.write_str("the agent never said hello before the boot deadline")
            }
            Outcome::RunDeadline {
                deadline_s: Some(s),
            } => {
                write!(f, "the run did not finish before its {s} s deadline")
            }
            Outcome::RunDeadline { deadline_s: None } => {
                f.write_str("the run did not finish before its deadline")
            }
        }
    }
}

/// Why a run failed. Each cause keeps `evidence`: at most [`EVIDENCE_LINES`](super::EVIDENCE_LINES) console (or
/// agent, or host) lines of at most [`EVIDENCE_LINE_CHARS`](super::EVIDENCE_LINE_CHARS) characters that prove it, without
/// timestamps. `Display` is one sentence for a lab engineer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "kebab-case")]
pub enum FailureCause {
    /// The guest kernel panicked (`Kernel panic - not syncing: …`).
    KernelPanic {
        /// When.
        phase: Phase,
        /// The panic message, whole ("IO-APIC + timer doesn't work!  Boot with apic=debug …").
        message: String,
        /// The headline of the oops that led to the panic, when one came before it.
        after_oops: Option<String>,
        /// The lines before the panic, the panic, the task and the first call-trace frames.
        evidence: Vec<String>,
    },
    /// The kernel oopsed or printed a `BUG:` report and the guest did not panic, but the run
    /// failed: the oops is the likely cause.
    Oops {
        /// When.
        phase: Phase,
        /// The report's first line (`BUG: kernel NULL pointer dereference, address: …`).
        headline: String,
        /// Where the kernel was (`__x64_sys_sysinfo+0x0/0x10`), from the kernel-mode `RIP:`.
        location: Option<String>,
        /// The task that oopsed (`init (PID 103)`).
        task: Option<String>,
        /// Oops reports in the console.
        count: u32,
        /// What the host saw next.
        outcome: Outcome,
        /// The report's lines.
        evidence: Vec<String>,
    },
    /// The kernel reported a lockup or stall, and the run failed: the likely cause. When
    /// several kinds were reported, the most severe is named ([`StallKind`] order).
    Stall {
        /// When.
        phase: Phase,
        /// The kind named.
        kind: StallKind,
        /// Its first report line.
        headline: String,
        /// How many reports of that kind.
        count: u32,
        /// What the host saw next.
        outcome: Outcome,
        /// Its report lines, then the first line of each other kind reported.
        evidence: Vec<String>,
    },
    /// The agent reported an error.
    AgentError {
        /// When.
        phase: Phase,
        /// The first error.
        message: String,
        /// The agent's errors, then the console's oops and stall lines if any.
        evidence: Vec<String>,
    },
    /// QEMU exited and the console names no reason.
    QemuExited {
        /// When.
        phase: Phase,
        /// The exit status.
        status: String,
        /// The console's last lines.
        evidence: Vec<String>,
    },
    /// The agent never said hello before the boot deadline and the console names no reason.
    NoHello {
        /// The boot deadline, in seconds.
        deadline_s: Option<u64>,
        /// The console's last lines.
        evidence: Vec<String>,
    },
    /// The agent said hello, the run did not finish before its deadline, and neither the
    /// console nor the agent says why.
    RunDeadline {
        /// The run deadline, in seconds.
        deadline_s: Option<u64>,
        /// The console's last lines.
        evidence: Vec<String>,
    },
    /// The host side failed (launch, QMP, pinning, the runner itself).
    Infrastructure {
        /// What failed.
        message: String,
        /// The console's last lines.
        evidence: Vec<String>,
    },
}

impl FailureCause {
    /// The lines that prove the cause.
    pub fn evidence(&self) -> &[String] {
        match self {
            FailureCause::KernelPanic { evidence, .. }
            | FailureCause::Oops { evidence, .. }
            | FailureCause::Stall { evidence, .. }
            | FailureCause::AgentError { evidence, .. }
            | FailureCause::QemuExited { evidence, .. }
            | FailureCause::NoHello { evidence, .. }
            | FailureCause::RunDeadline { evidence, .. }
            | FailureCause::Infrastructure { evidence, .. } => evidence,
        }
    }
}

/// Longest free text (a panic message, an oops headline, an agent error) in
/// [`FailureCause::short`], characters.
const SHORT_TEXT_CHARS: usize = 60;

/// `text` cut to [`SHORT_TEXT_CHARS`] characters, with `…` when cut.
fn cut(text: &str) -> String {
    let text = text.trim().trim_end_matches(':');
    if text.chars().count() > SHORT_TEXT_CHARS {
        format!(
            "{}…",
            text.chars().take(SHORT_TEXT_CHARS).collect::<String>()
        )
    } else {
        text.to_string()
    }
}

impl FailureCause {
    /// The cause in a few words, for a verdict or a comparison line where the whole sentence
    /// ([`Display`](std::fmt::Display)) would not fit: "guest kernel panic during boot — timer
    /// check failed", "guest RCU stall during the run", "no agent hello before the 60 s boot
    /// deadline".
    pub fn short(&self) -> String {
        match self {
            FailureCause::KernelPanic { phase, message, .. } => {
                let what = match panic_hint(message) {
                    // "timer check failed: no timer interrupt…" → "timer check failed".
                    Some(hint) => hint.split(':').next().unwrap_or(hint).to_string(),
                    None => cut(short_panic(message)),
                };
                format!("guest kernel panic during {} — {what}", phase.as_str())
            }
            FailureCause::Oops {
                phase, headline, ..
            } => format!(
                "guest kernel oops during {} — {}",
                phase.as_str(),
                cut(headline)
            ),
            FailureCause::Stall { phase, kind, .. } => {
                format!("guest {kind} during {}", phase.as_str())
            }
            FailureCause::AgentError { phase, message, .. } => {
                format!("agent error during {} — {}", phase.as_str(), cut(message))
            }
            FailureCause::QemuExited { phase, status, .. } => {
                format!("QEMU exited during {} ({status})", phase.as_str())
            }
            FailureCause::NoHello {
                deadline_s: Some(s),
                ..
            } => format!("no agent hello before the {s} s boot deadline"),
            FailureCause::NoHello {
                deadline_s: None, ..
            } => "no agent hello before the boot deadline".to_string(),
            FailureCause::RunDeadline {
                deadline_s: Some(s),
                ..
            } => format!("the run missed its {s} s deadline"),
            FailureCause::RunDeadline {
                deadline_s: None, ..
            } => "the run missed its deadline".to_string(),
            FailureCause::Infrastructure { message, .. } => {
                format!("host-side failure — {}", cut(message))
            }
        }
    }

    /// Whether the guest failed (its kernel, its agent, its QEMU, a deadline it missed), rather
    /// than the host side: a guest failure is the layout's result, a host failure is not.
    pub fn is_guest(&self) -> bool {
        !matches!(self, FailureCause::Infrastructure { .. })
    }
}

/// A panic message up to its first double space, where the kernel's advice starts
/// ("No working init found.  Try passing init= …" → "No working init found.").
fn short_panic(message: &str) -> &str {
    message.split("  ").next().unwrap_or(message).trim()
}

/// What a known panic message means, in a few words.
fn panic_hint(message: &str) -> Option<&'static str> {
    const HINTS: [(&str, &str); 11] = [
        (
            "IO-APIC + timer doesn't work",
            "timer check failed: no timer interrupt reached the guest",
        ),
        (
            "Attempted to kill init",
            "PID 1, the agent, exited or was killed",
        ),
        (
            "Unable to mount root fs",
            "no /init in the initramfs and no root disk",
        ),
        ("No working init found", "/init could not be executed"),
        (
            "sysrq triggered crash",
            "a crash was requested through sysrq",
        ),
        ("Fatal exception", "an oops the kernel could not survive"),
        (
            "softlockup: hung tasks",
            "a soft lockup, with softlockup_panic set",
        ),
        (
            "hung_task: blocked tasks",
            "a hung task, with hung_task_panic set",
        ),
        ("Hard LOCKUP", "a hard lockup, with hardlockup_panic set"),
        ("RCU Stall", "an RCU stall, with panic_on_rcu_stall set"),
        ("Out of memory", "out of memory: give the guest more memory"),
    ];
    HINTS
        .iter()
        .find(|(needle, _)| message.contains(needle))
        .map(|(_, hint)| *hint)
}

impl std::fmt::Display for FailureCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailureCause::KernelPanic {
                phase,
                message,
                after_oops,
                ..
            } => {
                write!(f, "guest kernel panic during {}: {}", phase.as_str(), short_panic(message))?;
                if let Some(hint) = panic_hint(message) {
                    write!(f, " ({hint})")?;
                }
                if let Some(oops) = after_oops {
                    write!(f, " (after an oops: {oops})")?;
                }
                Ok(())
            }
            FailureCause::Oops {
                phase,
                headline,
                location,
                task,
                count,
                outcome,
                ..
            } => {
                write!(f, "guest kernel oops during {}: {headline}", phase.as_str())?;
                if let Some(location) = location {
                    write!(f, " at {location}")?;
                }
                if let Some(task) = task {
                    write!(f, " in {task}")?;
                }
                if *count > 1 {
                    write!(f, " ({count} reports)")?;
                }
                write!(f, "; the likely reason {outcome}")
            }
            FailureCause::Stall {
                phase,
                kind,
                headline,
                count,
                outcome,
                ..
            } => {
                let headline = headline.trim_end_matches(':');
                write!(f, "guest {kind} during {}: {headline}", phase.as_str())?;
                if *count > 1 {
                    write!(f, " ({count} reports)")?;
                }
                write!(f, "; the likely reason {outcome}")
            }
            FailureCause::AgentError {
                phase,
                message,
                evidence,
            } => {
                write!(f, "the guest agent reported an error during {}: {message}", phase.as_str())?;
                let more = evidence.iter().skip(1).filter(|l| l.starts_with("agent: ")).count();
                if more > 0 {
                    write!(f, " (and {more} more)")?;
                }
                Ok(())
            }
            FailureCause::QemuExited { phase, status, .. } => write!(
                f,
                "QEMU exited during {} ({status}); the console shows no kernel panic, oops or stall",
                phase.as_str()
            ),
            FailureCause::NoHello { deadline_s, .. } => {
                let outcome = Outcome::NoHello {
                    deadline_s: *deadline_s,
                };
                write!(f, "{outcome}; the console shows no kernel panic, oops or stall")
            }
            FailureCause::RunDeadline { deadline_s, .. } => {
                let outcome = Outcome::RunDeadline {
                    deadline_s: *deadline_s,
                };
                write!(f, "{outcome}; neither the console nor the agent says why")
            }
            FailureCause::Infrastructure { message, .. } => {
                write!(f, "host-side failure: {message}")
            }
        }
    }
}
