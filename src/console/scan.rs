//! Reading a guest console line by line into the reports that matter: the kernel panic, oopses
//! and `BUG:` reports, and the four kinds of stall warnings.
//!
//! A console is whatever the guest's ttyS0 wrote: `\r\n` line ends, ANSI and control bytes,
//! `printk` timestamps (`[   12.345678]`) or none, two CPUs' lines interleaved, non-UTF-8
//! bytes, and possibly gigabytes of it. So only the last [`SCAN_TAIL_BYTES`](super::SCAN_TAIL_BYTES) are read, every
//! line is cleaned before it is matched, markers are searched anywhere in a line (an
//! interleaved line still carries its marker), and everything kept is bounded.
//!
//! The markers are the kernel's own format strings (Linux 6.1, as in the recorded fixtures):
//! `panic()` in `kernel/panic.c`, `die()` in `arch/x86/kernel/dumpstack.c` and the page-fault
//! report in `arch/x86/mm/fault.c`, `kernel/watchdog.c` (soft lockup),
//! `kernel/watchdog_hld.c` (hard lockup), `kernel/rcu/tree_stall.h` and `tree_exp.h` (RCU
//! stalls), `kernel/hung_task.c` (hung tasks).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::line::{bounded, lines, push_evidence, Line, EVIDENCE_LINES};

/// Lines of context kept before a panic (the timer check's "..... failed :(." lines).
const PANIC_CONTEXT_LINES: usize = 4;
/// Call-trace frames kept for a panic or an oops.
const TRACE_FRAMES: usize = 4;
/// Lines after a report's headline searched for its details (task, RIP, call trace).
const REPORT_SPAN_LINES: usize = 60;
/// Detail lines kept after an RCU stall headline.
const RCU_DETAIL_LINES: usize = 4;
/// Oops reports kept (the first ones; later ones are only counted).
const OOPS_KEPT: usize = 4;

/// A kind of stall or lockup warning, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StallKind {
    /// `NMI watchdog: Watchdog detected hard LOCKUP on cpu N`: a CPU took no timer interrupt
    /// for the watchdog threshold (10 s by default).
    HardLockup,
    /// `watchdog: BUG: soft lockup - CPU#N stuck for Ns!`: a CPU did not schedule its
    /// watchdog stopper for twice the threshold (20 s by default).
    SoftLockup,
    /// `rcu: INFO: rcu_preempt detected stalls on CPUs/tasks` and its siblings: a grace
    /// period waited longer than the stall timeout (21 s by default).
    RcuStall,
    /// `INFO: task NAME:PID blocked for more than N seconds.`: a task slept uninterruptibly
    /// for longer than `hung_task_timeout_secs` (120 s by default).
    HungTask,
}

impl StallKind {
    /// All kinds, most severe first.
    pub const ALL: [StallKind; 4] = [
        StallKind::HardLockup,
        StallKind::SoftLockup,
        StallKind::RcuStall,
        StallKind::HungTask,
    ];

    /// The name reports use ("RCU stall").
    pub fn as_str(self) -> &'static str {
        match self {
            StallKind::HardLockup => "hard lockup",
            StallKind::SoftLockup => "soft lockup",
            StallKind::RcuStall => "RCU stall",
            StallKind::HungTask => "hung task",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for StallKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kernel's panic.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct PanicReport {
    /// After `Kernel panic - not syncing: `.
    pub message: String,
    /// The whole panic line.
    pub line: String,
    /// Up to [`PANIC_CONTEXT_LINES`] lines printed just before it (no register dumps).
    pub context: Vec<String>,
    /// The `CPU: 0 PID: 1 Comm: init …` line.
    pub task: Option<String>,
    /// The first call-trace frames below `panic`.
    pub frames: Vec<String>,
    /// How many oops reports came before it.
    pub oopses_before: usize,
}

/// One oops or `BUG:` report.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct OopsReport {
    /// The first line: `BUG: kernel NULL pointer dereference, address: …`, `kernel BUG at …`,
    /// `general protection fault …` or `Oops: …`.
    pub headline: String,
    /// `#PF:` and `Oops:` lines after the headline.
    pub lines: Vec<String>,
    /// Where the kernel was: the first kernel-mode `RIP:` value (`__x64_sys_sysinfo+0x0/0x10`).
    pub rip: Option<String>,
    /// The task: `CPU: 0 PID: 103 Comm: init …` cut to `init (PID 103)`.
    pub task: Option<String>,
    /// The task's whole `CPU: … Comm: …` line.
    pub task_line: Option<String>,
    /// The first call-trace frames.
    pub frames: Vec<String>,
    /// The headline's timestamp, in microseconds since boot.
    pub at_us: Option<u64>,
}

/// The reports of one kind of stall.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct StallTally {
    /// How many reports (headlines) were printed.
    pub count: u32,
    /// The first headline.
    pub first: Option<String>,
    /// The first headline's timestamp, in microseconds since boot.
    pub first_at_us: Option<u64>,
    /// Headlines and their detail lines, deduplicated, bounded.
    pub evidence: Vec<String>,
}

/// What is being read after a headline.
#[derive(Debug, Clone, Copy)]
enum Collect {
    Nothing,
    Panic { left: usize, in_trace: bool },
    Oops { left: usize, in_trace: bool },
    Rcu { left: usize },
}

/// Everything found in a console.
#[derive(Debug, Clone)]
pub(super) struct Scan {
    /// The first panic.
    pub panic: Option<PanicReport>,
    /// The first [`OOPS_KEPT`] oops reports.
    pub oopses: Vec<OopsReport>,
    /// All oops reports, counted.
    pub oops_count: u32,
    /// Stall reports, indexed by [`StallKind`] order.
    pub stalls: [StallTally; 4],
    /// The last non-empty lines, for a cause the console does not name.
    pub tail: VecDeque<String>,
    /// The last lines that are not register dumps or call traces.
    recent: VecDeque<String>,
    /// A `BUG:` headline whose `Oops:` line has not come yet: that line is part of it.
    oops_open: bool,
    collect: Collect,
}

impl Scan {
    /// Scans the tail of `console`.
    pub fn new(console: &[u8]) -> Scan {
        let mut scan = Scan {
            panic: None,
            oopses: Vec::new(),
            oops_count: 0,
            stalls: Default::default(),
            tail: VecDeque::new(),
            recent: VecDeque::new(),
            oops_open: false,
            collect: Collect::Nothing,
        };
        for line in lines(console) {
            scan.line(&line);
        }
        scan
    }

    /// The tally of one kind.
    pub fn stall(&self, kind: StallKind) -> &StallTally {
        &self.stalls[kind.index()]
    }

    fn line(&mut self, line: &Line) {
        let text = line.text.as_str();
        if text.is_empty() {
            return;
        }
        if self.tail.len() == EVIDENCE_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(bounded(text));
        if let Some(kind) = stall_kind(text) {
            self.oops_open = false;
            self.stall_headline(kind, line);
        } else if let Some(message) = panic_message(text) {
            self.oops_open = false;
            self.panic_headline(message, text);
        } else if is_oops_headline(text) {
            self.oops_headline(text, line.at_us);
        } else {
            self.detail(text);
        }
        // Context is the kernel's own lines: not dumps, not indented continuations.
        if !is_dump_line(text) && !text.starts_with(' ') {
            if self.recent.len() == PANIC_CONTEXT_LINES {
                self.recent.pop_front();
            }
            self.recent.push_back(bounded(text));
        }
    }

    fn stall_headline(&mut self, kind: StallKind, line: &Line) {
        let tally = &mut self.stalls[kind.index()];
        tally.count = tally.count.saturating_add(1);
        if tally.first.is_none() {
            tally.first = Some(bounded(&line.text));
            tally.first_at_us = line.at_us;
        }
        push_evidence(&mut tally.evidence, &line.text);
        self.collect = match kind {
            StallKind::RcuStall => Collect::Rcu {
                left: RCU_DETAIL_LINES,
            },
            _ => Collect::Nothing,
        };
    }

    fn panic_headline(&mut self, message: &str, text: &str) {
        if self.panic.is_some() {
            self.collect = Collect::Nothing;
            return;
        }
        self.panic = Some(PanicReport {
            message: bounded(message.trim()),
            line: bounded(text),
            context: self.recent.iter().cloned().collect(),
            oopses_before: self.oops_count as usize,
            ..PanicReport::default()
        });
        self.collect = Collect::Panic {
            left: REPORT_SPAN_LINES,
            in_trace: false,
        };
    }

    fn oops_headline(&mut self, text: &str, at_us: Option<u64>) {
        let die = is_die_line(text);
        if die && self.oops_open && matches!(self.collect, Collect::Oops { .. }) {
            // `BUG: …` then `Oops: 0000 [#1] …` is one report.
            self.oops_open = false;
            if self.oopses.len() == self.oops_count as usize {
                if let Some(last) = self.oopses.last_mut() {
                    push_evidence(&mut last.lines, text);
                }
            }
            return;
        }
        self.oops_open = !die;
        self.oops_count = self.oops_count.saturating_add(1);
        if self.oopses.len() < OOPS_KEPT {
            self.oopses.push(OopsReport {
                headline: bounded(text),
                at_us,
                ..OopsReport::default()
            });
        }
        self.collect = Collect::Oops {
            left: REPORT_SPAN_LINES,
            in_trace: false,
        };
    }

    fn detail(&mut self, text: &str) {
        match self.collect {
            Collect::Nothing => {}
            Collect::Rcu { left } => {
                let t = text.trim_start();
                let is_detail = t.starts_with("rcu:") || text.starts_with(' ');
                if left == 0 || !is_detail {
                    self.collect = Collect::Nothing;
                    return;
                }
                let tally = &mut self.stalls[StallKind::RcuStall.index()];
                push_evidence(&mut tally.evidence, text);
                self.collect = Collect::Rcu { left: left - 1 };
            }
            Collect::Panic { left, in_trace } => {
                let Some(panic) = self.panic.as_mut() else {
                    return;
                };
                let mut in_trace = in_trace;
                if panic.task.is_none() && is_task_line(text) {
                    panic.task = Some(bounded(text));
                }
                let frames = &mut panic.frames;
                trace_line(text, &mut in_trace, frames);
                self.collect = next(left, |left| Collect::Panic { left, in_trace });
            }
            Collect::Oops { left, in_trace } => {
                if self.oops_count as usize > self.oopses.len() {
                    self.collect = Collect::Nothing; // details of a report not kept
                    return;
                }
                let Some(oops) = self.oopses.last_mut() else {
                    return;
                };
                let t = text.trim_start();
                if t.starts_with("#PF: ") {
                    push_evidence(&mut oops.lines, t);
                }
                if oops.task_line.is_none() && is_task_line(text) {
                    oops.task = task_of(text);
                    oops.task_line = Some(bounded(t));
                }
                if oops.rip.is_none() {
                    if let Some(rip) = t.strip_prefix("RIP: ") {
                        if !rip.starts_with("0033:") {
                            let rip = rip.split_once(':').map_or(rip, |(_, r)| r);
                            oops.rip = Some(bounded(rip.trim()));
                        }
                    }
                }
                let mut in_trace = in_trace;
                trace_line(text, &mut in_trace, &mut oops.frames);
                if t.starts_with("---[ end trace") {
                    self.collect = Collect::Nothing;
                } else {
                    self.collect = next(left, |left| Collect::Oops { left, in_trace });
                }
            }
        }
    }
}

/// The collection state after one more line.
fn next(left: usize, more: impl FnOnce(usize) -> Collect) -> Collect {
    if left <= 1 {
        Collect::Nothing
    } else {
        more(left - 1)
    }
}

/// Follows a call trace: `Call Trace:` opens it, `</TASK>` closes it; reliable frames (not
/// `? …`, not the dump and panic helpers) are kept.
fn trace_line(text: &str, in_trace: &mut bool, frames: &mut Vec<String>) {
    let t = text.trim();
    if t.starts_with("Call Trace:") {
        *in_trace = true;
    } else if t.starts_with("</TASK>") || t.starts_with("---[ end") {
        *in_trace = false;
    } else if *in_trace && is_frame(t) && frames.len() < TRACE_FRAMES {
        const HELPERS: [&str; 5] = ["dump_stack", "panic+", "show_stack", "nmi_panic", "<TASK>"];
        if !HELPERS.iter().any(|h| t.starts_with(h)) {
            frames.push(bounded(t));
        }
    }
}

/// `setup_IO_APIC+0x803/0x83b` (optionally with a `[module]`).
fn is_frame(t: &str) -> bool {
    let word = t.split(' ').next().unwrap_or("");
    !t.starts_with('?') && word.contains("+0x") && word.contains('/')
}

/// `CPU: 0 PID: 1 Comm: init Not tainted …`.
fn is_task_line(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with("CPU: ") && t.contains(" PID: ") && t.contains(" Comm: ")
}

/// `CPU: 0 PID: 103 Comm: init Not tainted …` → `init (PID 103)`.
fn task_of(text: &str) -> Option<String> {
    let pid = text.split(" PID: ").nth(1)?.split(' ').next()?;
    let comm = text.split(" Comm: ").nth(1)?.split(' ').next()?;
    Some(bounded(&format!("{comm} (PID {pid})")))
}

/// Which stall a line reports, if it is a stall headline.
pub(super) fn stall_kind(text: &str) -> Option<StallKind> {
    if text.contains("soft lockup - CPU#") {
        Some(StallKind::SoftLockup)
    } else if text.contains("detected hard LOCKUP on cpu") {
        Some(StallKind::HardLockup)
    } else if [
        "detected stalls on CPUs/tasks",
        "self-detected stall on CPU",
        "detected expedited stalls on CPUs/tasks",
        "detected stalls on tasks",
    ]
    .iter()
    .any(|m| text.contains(m))
    {
        Some(StallKind::RcuStall)
    } else if text.contains("INFO: task ") && text.contains(" blocked for more than ") {
        Some(StallKind::HungTask)
    } else {
        None
    }
}

/// The message of a `Kernel panic - not syncing: …` line (not of its `---[ end …` echo).
fn panic_message(text: &str) -> Option<&str> {
    const MARK: &str = "Kernel panic - not syncing: ";
    let at = text.find(MARK)?;
    (!text[..at].ends_with("---[ end ")).then(|| &text[at + MARK.len()..])
}

/// The first line of an oops or `BUG:` report. Soft lockups (`watchdog: BUG: soft lockup`)
/// are matched before this.
fn is_oops_headline(text: &str) -> bool {
    text.contains("BUG: ")
        || text.contains("kernel BUG at ")
        || text.contains("general protection fault")
        || is_die_line(text)
}

/// `die()`'s line: `Oops: 0000 [#1] PREEMPT_RT SMP NOPTI`, `invalid opcode: 0000 [#1] …`.
fn is_die_line(text: &str) -> bool {
    if text.contains("Oops: ") && text.contains("[#") {
        return true;
    }
    // "<what>: %04lx [#%d]"
    text.match_indices(": ").any(|(i, _)| {
        let rest = &text.as_bytes()[i + 2..];
        rest.len() >= 8
            && rest[..4].iter().all(|b| b.is_ascii_hexdigit())
            && &rest[4..7] == b" [#"
            && rest[7].is_ascii_digit()
    })
}

/// Lines of a register dump or call trace, kept out of a panic's context.
fn is_dump_line(text: &str) -> bool {
    let t = text.trim_start();
    const PREFIXES: [&str; 12] = [
        "<TASK>",
        "</TASK>",
        "Call Trace",
        "Code: ",
        "Modules linked in",
        "---[ end",
        "? ",
        "FS: ",
        "CS: ",
        "CR2: ",
        "DR",
        "PKRU: ",
    ];
    if PREFIXES.iter().any(|p| t.starts_with(p)) || is_frame(t) {
        return true;
    }
    // "RAX: …", "R13: …", "RIP: …", "RSP: …"
    let b = t.as_bytes();
    b.len() > 4 && b[0] == b'R' && b[3] == b':' && b[1].is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_headlines_and_their_look_alikes() {
        use StallKind::*;
        let cases = [
            (
                "watchdog: BUG: soft lockup - CPU#1 stuck for 39s! [init:100]",
                Some(SoftLockup),
            ),
            (
                "NMI watchdog: Watchdog detected hard LOCKUP on cpu 1",
                Some(HardLockup),
            ),
            (
                "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
                Some(RcuStall),
            ),
            (
                "rcu: INFO: rcu_sched self-detected stall on CPU",
                Some(RcuStall),
            ),
            ("INFO: rcu_tasks detected stalls on tasks:", Some(RcuStall)),
            (
                "INFO: task init:102 blocked for more than 10 seconds.",
                Some(HungTask),
            ),
            ("IRQ lockup detection disabled", None),
            ("NMI watchdog: Perf NMI watchdog permanently disabled", None),
            (
                "watchdog: Disabling watchdog on nohz_full cores by default",
                None,
            ),
            (
                "rcu: RCU calculated value of scheduler-enlistment delay is 25 jiffies.",
                None,
            ),
        ];
        for (line, want) in cases {
            assert_eq!(stall_kind(line), want, "{line}");
        }
    }

    #[test]
    fn oops_headlines_and_their_look_alikes() {
        for yes in [
            "BUG: kernel NULL pointer dereference, address: 0000000000000000",
            "kernel BUG at mm/slub.c:435!",
            "invalid opcode: 0000 [#1] PREEMPT_RT SMP NOPTI",
            "general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP",
            "Oops: 0000 [#1] PREEMPT_RT SMP NOPTI",
            "Internal error: Oops: 96000004 [#1] PREEMPT SMP",
        ] {
            assert!(is_oops_headline(yes), "{yes}");
        }
        for no in [
            "PCI: Using host bridge windows from ACPI; if necessary, use \"pci=nocrs\" and report a bug",
            "AMD-Vi: AMD IOMMUv2 functionality not available on this system - This is not a bug.",
            "..MP-BIOS bug: 8254 timer not connected to IO-APIC",
        ] {
            assert!(!is_oops_headline(no), "{no}");
        }
    }

    #[test]
    fn the_panic_end_marker_is_not_a_second_panic() {
        assert_eq!(
            panic_message("Kernel panic - not syncing: Fatal exception"),
            Some("Fatal exception")
        );
        assert_eq!(
            panic_message("---[ end Kernel panic - not syncing: Fatal exception ]---"),
            None
        );
    }
}
