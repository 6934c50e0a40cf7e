//! Who took the RT pCPU: replays the scheduling, IRQ and KVM events of each RT pCPU and books
//! every ns of the measurement window to the planned vCPU thread (ran), to its own choice
//! (voluntary idle: not runnable, e.g. the timer workload sleeping), or to what held the CPU
//! while it wanted it (stolen, by [`Class`] and name).
//!
//! The replay is the one `perf sched timehist` and rtla's `timerlat` auto-analysis do from the
//! same tracepoints: `sched_switch` says who is on the CPU and whether the outgoing thread is
//! still runnable (`prev_state=R`), `sched_wakeup`/`sched_migrate_task` when a sleeping or
//! remote thread becomes runnable here, `irq_handler_*`, `softirq_*` and the x86
//! `irq_vectors` events bracket interrupt time (an IRQ inside any task's run is the IRQ's),
//! and `kvm_exit`/`kvm_entry` bracket host time of the vCPU thread itself.
//!
//! RT throttling is recognised when an RT thread (`prio` < 100) is switched out still runnable
//! in favour of a non-RT thread or idle: with RT tasks runnable, only the RT bandwidth limit
//! (or, since Linux 6.12, the fair server's reserve) lets a lower class run. From then until an
//! RT thread is seen on the CPU again, the stolen time of an RT planned thread is booked as
//! [`Class::Throttled`] under the name of whatever ran.
//!
//! The trace is not trusted to be complete. Each event's header names the task current on its
//! CPU and its flags say whether it ran in hard-IRQ or softirq context, so a missed
//! `sched_switch` or IRQ exit is noticed at the next event: the span before it is booked
//! conservatively (to the task below the IRQ, or as unknown when the planned thread's state is
//! in doubt), never invented. One case is exact: the idle task switches as soon as an IRQ that
//! set need-resched returns (`do_idle()` checks `need_resched()` on every wake-up), so a task
//! seen after such an IRQ in idle took over at its return. (This VM's kernel never records
//! switches out of idle on CPU 1: see `tests/fixtures/trace/README.md`.) After a lost-events
//! marker the CPU's state is unknown until the events establish it again. Time is only booked
//! inside the window; events up to one per CPU past its end are read to close what was open.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::account::{Books, ClassStats, Interval, Use, Window};
use super::class::{vector_class, Class, ClassMap};
use super::parse::{Ctx, Event, EventKind, Trace};

/// The planned vCPU thread of one RT pCPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    /// The RT pCPU.
    pub cpu: u32,
    /// Host thread id of the vCPU thread pinned there.
    pub tid: u32,
}

/// Knobs of the attribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Longest stolen intervals kept in [`CpuAttribution::longest`].
    pub top_intervals: usize,
    /// Names kept per class in [`ClassStats::names`].
    pub top_names: usize,
    /// Stolen intervals shorter than this are counted but not kept in
    /// [`CpuAttribution::intervals`], ns.
    pub keep_intervals_min_ns: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            top_intervals: 10,
            top_names: 5,
            keep_intervals_min_ns: 0,
        }
    }
}

/// Where one RT pCPU's window went.
///
/// `ran_ns + idle_ns + stolen_ns + away_ns + unknown_ns` is the window's length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuAttribution {
    /// The RT pCPU.
    pub cpu: u32,
    /// The planned vCPU thread.
    pub planned_tid: u32,
    /// The window attributed.
    pub window: Window,
    /// Time the planned thread ran (outside IRQs and KVM exits), ns.
    pub ran_ns: u64,
    /// Time the planned thread did not want the CPU (sleeping: not stolen), ns.
    pub idle_ns: u64,
    /// Time the planned thread wanted the CPU and something else had it, ns.
    pub stolen_ns: u64,
    /// Time the planned thread was on another CPU, ns.
    pub away_ns: u64,
    /// Time the events do not account for (before the first evidence, after lost events), ns.
    pub unknown_ns: u64,
    /// Stolen time by class, most first.
    pub by_class: Vec<ClassStats>,
    /// The longest stolen intervals, longest first.
    pub longest: Vec<Interval>,
    /// Every kept stolen interval, in time order (for [`super::matcher`]).
    pub intervals: Vec<Interval>,
    /// Stolen intervals shorter than [`Options::keep_intervals_min_ns`], not kept.
    pub dropped_intervals: u64,
    /// Times RT throttling began while the planned thread was runnable.
    pub throttle_episodes: u64,
    /// Lost-events markers of this CPU before its first event past the window's end.
    pub lost_markers: u64,
    /// Task changes seen in event headers without their `sched_switch`.
    pub inferred_switches: u64,
    /// IRQ/softirq entries whose exit never came (their time went to what they interrupted).
    pub unmatched_irqs: u64,
}

impl CpuAttribution {
    /// Stolen time of `class`, ns (0 when none).
    pub fn class_ns(&self, class: Class) -> u64 {
        self.by_class
            .iter()
            .find(|c| c.class == class)
            .map_or(0, |c| c.total_ns)
    }
}

/// Attributes the window of every planned RT pCPU. Events may be in any order (they are
/// replayed in timestamp order); events of CPUs without a planned thread are ignored except
/// wakeups and migrations of a planned thread.
pub fn attribute(
    trace: &Trace,
    planned: &[Planned],
    classes: &ClassMap,
    window: Window,
    opts: &Options,
) -> Vec<CpuAttribution> {
    let mut cpus: Vec<CpuState> = planned
        .iter()
        .map(|p| CpuState::new(*p, window, opts))
        .collect();
    let mut lost_before = vec![false; trace.events.len()];
    for l in &trace.lost {
        let next = trace.events[l.before_event.min(trace.events.len())..]
            .iter()
            .position(|e| e.cpu == l.cpu);
        if let Some(i) = next {
            lost_before[l.before_event + i] = true;
        }
    }
    let mut order: Vec<usize> = (0..trace.events.len()).collect();
    order.sort_by_key(|&i| trace.events[i].ts_ns);
    for i in order {
        let e = &trace.events[i];
        if e.ts_ns >= window.end_ns {
            // One more event per CPU tells whether what was open at the end was still on.
            for st in cpus.iter_mut().filter(|s| s.cpu == e.cpu && !s.past_end) {
                st.local(e, lost_before[i], classes);
                st.past_end = true;
            }
            if cpus.iter().all(|s| s.past_end) {
                break;
            }
            continue;
        }
        for st in cpus.iter_mut() {
            if e.cpu == st.cpu {
                st.local(e, lost_before[i], classes);
            } else {
                st.remote(e, classes);
            }
        }
    }
    cpus.into_iter()
        .map(|st| st.finish(classes, opts))
        .collect()
}

/// What the planned thread is doing, as far as the events tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PState {
    Running,
    Runnable,
    Sleeping,
    Away,
    Unknown,
}

#[derive(Debug, Clone)]
struct Task {
    pid: u32,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Irq(u32),
    Softirq(u32),
    Vector(String),
}

#[derive(Debug, Clone)]
struct Frame {
    key: Key,
    class: Class,
    name: String,
}

impl Frame {
    fn hard(&self) -> bool {
        !matches!(self.key, Key::Softirq(_))
    }
}

struct CpuState {
    cpu: u32,
    planned: u32,
    current: Option<Task>,
    stack: Vec<Frame>,
    pstate: PState,
    throttled: bool,
    /// Kernel priority of the planned thread, once an event showed it.
    planned_prio: Option<i32>,
    /// Kernel priorities of the tasks seen on this CPU (for switches the trace lost).
    prios: HashMap<u32, i32>,
    /// The last event was the idle task's, with a reschedule pending.
    idle_resched: bool,
    /// An event at or after the window's end was replayed (IRQs open at the end are real).
    past_end: bool,
    kvm_exit: Option<String>,
    last_ns: u64,
    books: Books,
    throttle_episodes: u64,
    lost_markers: u64,
    inferred_switches: u64,
    unmatched_irqs: u64,
}

/// Deepest IRQ nesting tracked; deeper entries (corrupt input) are not pushed.
const MAX_DEPTH: usize = 8;
/// Most task priorities remembered per CPU.
const MAX_PRIOS: usize = 4096;

impl CpuState {
    fn new(p: Planned, window: Window, opts: &Options) -> Self {
        CpuState {
            cpu: p.cpu,
            planned: p.tid,
            current: None,
            stack: Vec::new(),
            pstate: PState::Unknown,
            throttled: false,
            planned_prio: None,
            prios: HashMap::new(),
            idle_resched: false,
            past_end: false,
            kvm_exit: None,
            last_ns: 0,
            books: Books::new(window, opts.keep_intervals_min_ns),
            throttle_episodes: 0,
            lost_markers: 0,
            inferred_switches: 0,
            unmatched_irqs: 0,
        }
    }

    /// Books `[last, t)` by the current state.
    fn advance(&mut self, t: u64, classes: &ClassMap) {
        if t <= self.last_ns {
            return;
        }
        let (a, b) = (self.last_ns, t);
        self.last_ns = t;
        match self.pstate {
            PState::Unknown => self.books.credit(a, b, Use::Unknown),
            PState::Away => self.books.credit(a, b, Use::Away),
            PState::Sleeping => self.books.credit(a, b, Use::Idle),
            PState::Running | PState::Runnable => {
                let level = self.stack.len();
                let (class, name): (Class, &str) = if let Some(f) = self.stack.last() {
                    (f.class, &f.name)
                } else if self.pstate == PState::Running {
                    match &self.kvm_exit {
                        Some(reason) => (Class::KvmExit, reason),
                        None => {
                            self.books.credit(a, b, Use::Ran);
                            return;
                        }
                    }
                } else {
                    match &self.current {
                        Some(t) => (classes.task(t.pid, &t.name), &t.name),
                        None => (Class::Other, "?"),
                    }
                };
                let rt = self.planned_prio.is_some_and(|p| p < 100);
                let class = if rt && self.throttled && self.pstate == PState::Runnable {
                    Class::Throttled
                } else {
                    class
                };
                self.books.credit(a, b, Use::Stolen { class, name, level });
            }
        }
    }

    /// An event recorded on this CPU.
    fn local(&mut self, e: &Event, lost_before: bool, classes: &ClassMap) {
        if lost_before {
            self.lost_markers += 1;
            self.forget();
        }
        if let Some(ctx) = e.ctx {
            self.check_context(ctx);
        }
        // A header naming another task than the current one: a sched_switch is missing.
        let inferred = matches!(&self.current, Some(t) if t.pid != e.pid);
        if inferred {
            self.inferred_switches += 1;
            if self.idle_resched {
                // The idle loop reschedules as soon as the IRQ that set need-resched returns:
                // the switch followed the last event.
                self.switch_to(e.pid, &e.comm, None);
            } else if self.pstate == PState::Running || e.pid == self.planned {
                // When it happened is unknown: so is the planned thread's time meanwhile.
                self.pstate = PState::Unknown;
            }
        }
        self.advance(e.ts_ns, classes);
        if !matches!(&self.current, Some(t) if t.pid == e.pid) {
            self.switch_to(e.pid, &e.comm, None);
        }
        self.idle_resched = e.pid == 0 && e.ctx.is_some_and(|c| c.need_resched);
        match &e.kind {
            EventKind::Switch(s) => {
                if !self.stack.is_empty() {
                    self.unmatched_irqs += self.stack.len() as u64;
                    self.stack.clear();
                }
                self.books.close_from(0);
                let rt_preempted_by_lower = s.prev_prio < 100
                    && s.prev_state.is_runnable()
                    && (s.next_prio >= 100 || s.next_pid == 0);
                if s.prev_pid == self.planned {
                    self.pstate = if s.prev_state.is_runnable() {
                        PState::Runnable
                    } else {
                        PState::Sleeping
                    };
                }
                if rt_preempted_by_lower && !self.throttled {
                    self.throttled = true;
                    if self.pstate == PState::Runnable {
                        self.throttle_episodes += 1;
                    }
                }
                self.note_prio(s.prev_pid, s.prev_prio);
                self.switch_to(s.next_pid, &s.next_comm, Some(s.next_prio));
            }
            EventKind::IrqEntry { irq, name } => {
                self.drop_frames(|f| f.hard());
                self.push(Frame {
                    key: Key::Irq(*irq),
                    class: Class::HardIrq,
                    name: format!("irq{irq} {name}"),
                });
            }
            EventKind::VectorEntry { name, .. } => {
                self.drop_frames(|f| f.hard());
                self.push(Frame {
                    key: Key::Vector(name.clone()),
                    class: vector_class(name),
                    name: name.clone(),
                });
            }
            EventKind::SoftirqEntry { vec, action } => {
                self.drop_frames(|_| true);
                self.push(Frame {
                    key: Key::Softirq(*vec),
                    class: Class::Softirq,
                    name: action.clone(),
                });
            }
            EventKind::IrqExit { irq } => self.pop(&Key::Irq(*irq)),
            EventKind::VectorExit { name, .. } => self.pop(&Key::Vector(name.clone())),
            EventKind::SoftirqExit { vec } => self.pop(&Key::Softirq(*vec)),
            EventKind::KvmExit { reason, .. } if e.pid == self.planned => {
                self.kvm_exit = Some(reason.clone());
            }
            EventKind::KvmEntry { .. } if e.pid == self.planned => self.kvm_exit = None,
            EventKind::Wakeup { .. } | EventKind::Migrate { .. } => self.sched(&e.kind),
            _ => {}
        }
    }

    /// `pid` is now on the CPU (`prio` when the event tells it).
    fn switch_to(&mut self, pid: u32, comm: &str, prio: Option<i32>) {
        self.books.close_from(0);
        if let Some(p) = prio {
            self.note_prio(pid, p);
        }
        if self.prios.get(&pid).is_some_and(|&p| p < 100) {
            // An RT thread runs: RT bandwidth is not exhausted.
            self.throttled = false;
        }
        self.current = Some(Task {
            pid,
            name: task_name(pid, comm),
        });
        if pid == self.planned {
            self.pstate = PState::Running;
        }
    }

    fn note_prio(&mut self, pid: u32, prio: i32) {
        if pid == self.planned {
            self.planned_prio = Some(prio);
        }
        if self.prios.len() < MAX_PRIOS || self.prios.contains_key(&pid) {
            self.prios.insert(pid, prio);
        }
    }

    /// An event recorded on another CPU: only a wakeup or migration of the planned thread
    /// concerns this one.
    fn remote(&mut self, e: &Event, classes: &ClassMap) {
        let pid = match &e.kind {
            EventKind::Wakeup { pid, .. } | EventKind::Migrate { pid, .. } => *pid,
            _ => return,
        };
        if pid == self.planned {
            self.advance(e.ts_ns, classes);
            self.sched(&e.kind);
        }
    }

    fn sched(&mut self, kind: &EventKind) {
        match *kind {
            EventKind::Wakeup {
                pid,
                target_cpu,
                prio,
                ..
            } if pid == self.planned && self.pstate != PState::Running => {
                self.note_prio(pid, prio);
                self.pstate = if target_cpu == self.cpu {
                    PState::Runnable
                } else {
                    PState::Away
                };
            }
            EventKind::Migrate {
                pid,
                orig_cpu,
                dest_cpu,
                ..
            } if pid == self.planned && self.pstate != PState::Running => {
                if dest_cpu == self.cpu {
                    self.pstate = PState::Runnable;
                } else if orig_cpu == self.cpu {
                    self.pstate = PState::Away;
                }
            }
            _ => {}
        }
    }

    /// Frames the event's context contradicts lost their exit: drop them before booking.
    fn check_context(&mut self, ctx: Ctx) {
        if !ctx.hardirq && !ctx.nmi {
            self.drop_frames(|f| f.hard());
        }
        if !ctx.softirq {
            self.drop_frames(|f| !f.hard());
        }
    }

    fn drop_frames(&mut self, which: impl Fn(&Frame) -> bool) {
        if let Some(i) = self.stack.iter().position(which) {
            self.unmatched_irqs += (self.stack.len() - i) as u64;
            self.stack.truncate(i);
            self.books.close_from(i + 1);
        }
    }

    fn push(&mut self, f: Frame) {
        if self.stack.len() < MAX_DEPTH {
            self.stack.push(f);
            self.books.close_from(self.stack.len());
        }
    }

    fn pop(&mut self, key: &Key) {
        if let Some(i) = self.stack.iter().rposition(|f| &f.key == key) {
            self.unmatched_irqs += (self.stack.len() - i - 1) as u64;
            self.stack.truncate(i);
            self.books.close_from(i + 1);
        }
    }

    /// After lost events nothing is known until events say it again.
    fn forget(&mut self) {
        self.current = None;
        self.stack.clear();
        self.pstate = PState::Unknown;
        self.throttled = false;
        self.kvm_exit = None;
    }

    fn finish(mut self, classes: &ClassMap, opts: &Options) -> CpuAttribution {
        if !self.past_end {
            // The trace ends before the window does: an IRQ still open lost its exit.
            self.drop_frames(|_| true);
        }
        let end = self.books.window.end_ns;
        self.advance(end, classes);
        let by_class = self.books.finish(opts.top_names);
        let mut longest = self.books.intervals.clone();
        longest.sort_by(|x, y| {
            y.len_ns()
                .cmp(&x.len_ns())
                .then_with(|| x.start_ns.cmp(&y.start_ns))
        });
        longest.truncate(opts.top_intervals);
        let b = self.books;
        CpuAttribution {
            cpu: self.cpu,
            planned_tid: self.planned,
            window: b.window,
            ran_ns: b.ran_ns,
            idle_ns: b.idle_ns,
            stolen_ns: b.stolen_ns,
            away_ns: b.away_ns,
            unknown_ns: b.unknown_ns,
            by_class,
            longest,
            intervals: b.intervals,
            dropped_intervals: b.dropped_intervals,
            throttle_episodes: self.throttle_episodes,
            lost_markers: self.lost_markers,
            inferred_switches: self.inferred_switches,
            unmatched_irqs: self.unmatched_irqs,
        }
    }
}

/// The name a task is booked under: its comm, `<idle>` for pid 0.
fn task_name(pid: u32, comm: &str) -> String {
    if pid == 0 {
        "<idle>".to_string()
    } else {
        comm.to_string()
    }
}

#[cfg(test)]
#[path = "attribute_tests.rs"]
mod tests;
