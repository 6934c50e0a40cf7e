//! The typed events pinlat reads from a trace, and how each one's fields are read from its
//! text. The field layouts are the `print fmt` lines of each event's `format` file in tracefs
//! (`events/sched/sched_switch/format`, ...) on Linux 6.18, which have been stable in the
//! fields read here since 4.x; `kvm_exit` changed after its reason (`rip ... info1 ...` on
//! 5.x+, `rip ... info ...` before) and is read only up to ` rip `.
//!
//! Values that may hold spaces (comms, IRQ names, exit reasons) are read from the right or up
//! to a fixed keyword, so `prev_comm=CPU 1/TCG prev_pid=...` parses.

/// One event of the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Trace clock timestamp, ns (the text's resolution: [`super::parse::ParseStats::resolution_ns`]).
    pub ts_ns: u64,
    /// CPU whose ring buffer recorded the event (the CPU it happened on).
    pub cpu: u32,
    /// Thread id current on that CPU when the event was recorded; 0 is the idle task.
    pub pid: u32,
    /// That thread's comm as the header prints it (`<idle>`, `<...>` when unknown).
    pub comm: String,
    /// Execution context from the irq-info flags; `None` when the option was off.
    pub ctx: Option<Ctx>,
    /// What happened.
    pub kind: EventKind,
}

/// Execution context of an event, from the `irq-info` flags column (`d.h2.`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ctx {
    /// Interrupts were disabled (`d` or `D`).
    pub irqs_off: bool,
    /// A reschedule was pending (`N`, `n`, `p`, or the lazy variants `L`, `l`, `B`, `b`).
    pub need_resched: bool,
    /// Recorded in hard-IRQ context (`h`, or `H` = hard IRQ inside a softirq).
    pub hardirq: bool,
    /// Recorded in softirq context (`s`, or `H`).
    pub softirq: bool,
    /// Recorded in NMI context (`z` or `Z`).
    pub nmi: bool,
}

/// The events pinlat reads, typed; any other well-formed event is [`EventKind::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// `sched_switch`.
    Switch(Switch),
    /// `sched_wakeup` or `sched_wakeup_new`: `pid` became runnable on `target_cpu`.
    Wakeup {
        /// Woken thread's comm.
        comm: String,
        /// Woken thread id.
        pid: u32,
        /// Its kernel priority (0-99 RT, 100-139 normal).
        prio: i32,
        /// CPU it will run on.
        target_cpu: u32,
    },
    /// `sched_migrate_task`: `pid` moved from `orig_cpu` to `dest_cpu`.
    Migrate {
        /// Migrated thread's comm.
        comm: String,
        /// Migrated thread id.
        pid: u32,
        /// Its kernel priority.
        prio: i32,
        /// CPU it left.
        orig_cpu: u32,
        /// CPU it goes to.
        dest_cpu: u32,
    },
    /// `irq_handler_entry`.
    IrqEntry {
        /// IRQ number.
        irq: u32,
        /// Handler name (`virtio3-tx`).
        name: String,
    },
    /// `irq_handler_exit`.
    IrqExit {
        /// IRQ number.
        irq: u32,
    },
    /// `softirq_entry`.
    SoftirqEntry {
        /// Softirq vector number.
        vec: u32,
        /// Its name (`TIMER`, `RCU`, ...).
        action: String,
    },
    /// `softirq_exit`.
    SoftirqExit {
        /// Softirq vector number.
        vec: u32,
    },
    /// An x86 `irq_vectors` entry (`local_timer_entry`, `reschedule_entry`, ...).
    VectorEntry {
        /// The event name without `_entry` (`local_timer`, `call_function_single`).
        name: String,
        /// The APIC vector number.
        vector: u32,
    },
    /// An x86 `irq_vectors` exit.
    VectorExit {
        /// The event name without `_exit`.
        name: String,
        /// The APIC vector number.
        vector: u32,
    },
    /// `ipi_send_cpu` / `ipi_send_cpumask`: this CPU sent an IPI.
    IpiSend {
        /// Target CPU number or CPU mask, as printed.
        targets: String,
        /// Callback symbol (`generic_smp_call_function_single_interrupt+0x0/0x10`, `0x0`).
        callback: String,
    },
    /// `kvm_exit`: the vCPU thread left guest mode.
    KvmExit {
        /// vCPU index.
        vcpu: u32,
        /// Exit reason as printed (`EXTERNAL_INTERRUPT`, `HLT`, `npf`, `DE excp`).
        reason: String,
    },
    /// `kvm_entry`: the vCPU thread enters guest mode.
    KvmEntry {
        /// vCPU index.
        vcpu: u32,
    },
    /// A `trace_marker` write (`tracing_mark_write` or `print`).
    Marker {
        /// The text written.
        text: String,
    },
    /// A well-formed event pinlat does not interpret.
    Other {
        /// Event name.
        name: String,
    },
}

/// A `sched_switch` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    /// Outgoing thread's comm.
    pub prev_comm: String,
    /// Outgoing thread id (0 = idle).
    pub prev_pid: u32,
    /// Outgoing thread's kernel priority (0-99 RT, 100-139 normal, 120 idle).
    pub prev_prio: i32,
    /// Outgoing thread's state.
    pub prev_state: TaskState,
    /// Incoming thread's comm.
    pub next_comm: String,
    /// Incoming thread id.
    pub next_pid: u32,
    /// Incoming thread's kernel priority.
    pub next_prio: i32,
}

/// `prev_state` of a `sched_switch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// `R` (still runnable: preempted or yielded); `R+` marks a preemption.
    Runnable {
        /// The `+` suffix: the switch was a preemption.
        preempted: bool,
    },
    /// Any other state (`S`, `D`, `I`, `X`, `Z`, `T`, `S|D`, ...), as printed: not runnable.
    Blocked(String),
}

impl TaskState {
    /// Whether the thread still wants the CPU.
    pub fn is_runnable(&self) -> bool {
        matches!(self, TaskState::Runnable { .. })
    }
}

/// The typed event `name` with text `body`; `None` when a known event's fields do not parse.
pub(crate) fn parse_body(name: &str, body: &str) -> Option<EventKind> {
    Some(match name {
        "sched_switch" => EventKind::Switch(switch(body)?),
        "sched_wakeup" | "sched_wakeup_new" => {
            let (rest, target_cpu) = rfield(body, " target_cpu=")?;
            let (rest, prio) = rfield(rest, " prio=")?;
            let (rest, pid) = rfield(rest, " pid=")?;
            EventKind::Wakeup {
                comm: rest.strip_prefix("comm=")?.to_string(),
                pid,
                prio,
                target_cpu,
            }
        }
        "sched_migrate_task" => {
            let (rest, dest_cpu) = rfield(body, " dest_cpu=")?;
            let (rest, orig_cpu) = rfield(rest, " orig_cpu=")?;
            let (rest, prio) = rfield(rest, " prio=")?;
            let (rest, pid) = rfield(rest, " pid=")?;
            EventKind::Migrate {
                comm: rest.strip_prefix("comm=")?.to_string(),
                pid,
                prio,
                orig_cpu,
                dest_cpu,
            }
        }
        "irq_handler_entry" => {
            let (irq, name) = body.strip_prefix("irq=")?.split_once(" name=")?;
            EventKind::IrqEntry {
                irq: irq.parse().ok()?,
                name: name.to_string(),
            }
        }
        "irq_handler_exit" => {
            let (irq, ret) = body.strip_prefix("irq=")?.split_once(" ret=")?;
            if ret != "handled" && ret != "unhandled" {
                return None;
            }
            EventKind::IrqExit {
                irq: irq.parse().ok()?,
            }
        }
        "softirq_entry" | "softirq_exit" => {
            let (vec, action) = body.strip_prefix("vec=")?.split_once(" [action=")?;
            let vec = vec.parse().ok()?;
            let action = action.strip_suffix(']')?;
            if name == "softirq_entry" {
                EventKind::SoftirqEntry {
                    vec,
                    action: action.to_string(),
                }
            } else {
                EventKind::SoftirqExit { vec }
            }
        }
        "ipi_send_cpu" | "ipi_send_cpumask" => {
            let key = if name == "ipi_send_cpu" {
                "cpu="
            } else {
                "cpumask="
            };
            let (targets, rest) = body.strip_prefix(key)?.split_once(" callsite=")?;
            let (_, callback) = rest.rsplit_once(" callback=")?;
            EventKind::IpiSend {
                targets: targets.to_string(),
                callback: callback.to_string(),
            }
        }
        "kvm_exit" => {
            let rest = body.strip_prefix("vcpu ")?;
            let (vcpu, rest) = rest.split_once(' ')?;
            let rest = rest.strip_prefix("reason ")?;
            let end = rest.find(" rip ").unwrap_or(rest.len());
            let reason = rest[..end].trim();
            if reason.is_empty() {
                return None;
            }
            EventKind::KvmExit {
                vcpu: vcpu.parse().ok()?,
                reason: reason.to_string(),
            }
        }
        "kvm_entry" => {
            let rest = body.strip_prefix("vcpu ")?;
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            EventKind::KvmEntry {
                vcpu: rest[..end].parse().ok()?,
            }
        }
        "tracing_mark_write" | "print" => EventKind::Marker {
            text: body.trim_end().to_string(),
        },
        _ => {
            if let Some(v) = vector(name, body) {
                return Some(v);
            }
            EventKind::Other {
                name: name.to_string(),
            }
        }
    })
}

/// `local_timer_entry: vector=236` and the other x86 `irq_vectors` events.
fn vector(name: &str, body: &str) -> Option<EventKind> {
    let vector: u32 = body.strip_prefix("vector=")?.trim().parse().ok()?;
    if let Some(n) = name.strip_suffix("_entry") {
        Some(EventKind::VectorEntry {
            name: n.to_string(),
            vector,
        })
    } else {
        name.strip_suffix("_exit").map(|n| EventKind::VectorExit {
            name: n.to_string(),
            vector,
        })
    }
}

/// `prev_comm=A B prev_pid=1 prev_prio=2 prev_state=R+ ==> next_comm=C next_pid=3 next_prio=4`.
fn switch(body: &str) -> Option<Switch> {
    // A comm could itself hold " ==> "; take the first split where both halves parse.
    for (i, _) in body.match_indices(" ==> ") {
        let (prev, next) = (&body[..i], &body[i + 5..]);
        let Some((rest, next_prio)) = rfield(next, " next_prio=") else {
            continue;
        };
        let Some((rest, next_pid)) = rfield(rest, " next_pid=") else {
            continue;
        };
        let Some(next_comm) = rest.strip_prefix("next_comm=") else {
            continue;
        };
        let Some((rest, state)) = prev.rsplit_once(" prev_state=") else {
            continue;
        };
        let Some((rest, prev_prio)) = rfield(rest, " prev_prio=") else {
            continue;
        };
        let Some((rest, prev_pid)) = rfield(rest, " prev_pid=") else {
            continue;
        };
        let Some(prev_comm) = rest.strip_prefix("prev_comm=") else {
            continue;
        };
        let Some(prev_state) = task_state(state) else {
            continue;
        };
        return Some(Switch {
            prev_comm: prev_comm.to_string(),
            prev_pid,
            prev_prio,
            prev_state,
            next_comm: next_comm.to_string(),
            next_pid,
            next_prio,
        });
    }
    None
}

fn task_state(s: &str) -> Option<TaskState> {
    if s.is_empty() || s.contains(' ') {
        return None;
    }
    Some(match s {
        "R" => TaskState::Runnable { preempted: false },
        "R+" => TaskState::Runnable { preempted: true },
        _ => TaskState::Blocked(s.to_string()),
    })
}

/// Splits `"... key=value"` at the last `key`, parsing `value`.
fn rfield<'a, T: std::str::FromStr>(s: &'a str, key: &str) -> Option<(&'a str, T)> {
    let (rest, v) = s.rsplit_once(key)?;
    Some((rest, v.trim().parse().ok()?))
}
