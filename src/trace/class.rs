//! What kind of thing took an RT pCPU: the classes of the "who took the RT pCPUs" table, and
//! the thread id → class map the caller builds (from QMP `query-cpus-fast` / `query-iothreads`
//! and `/proc/<pid>/task/*/comm`).
//!
//! Threads the map does not name are classed by what the trace shows: pid 0 is the idle task;
//! a comm with a kernel thread's name pattern (`ksoftirqd/N`, `kworker/N:M`, `rcuc/N`,
//! `migration/N`, ... as the kernel names them in `kernel/softirq.c`, `kernel/workqueue.c`,
//! `kernel/rcu/tree.c`, `kernel/stop_machine.c`) is a kernel thread; anything else is "other".
//! Comm patterns are a heuristic (a user thread may call itself `kworker/0:0`); a caller that
//! read `PF_KTHREAD` from `/proc/<tid>/stat` can put the truth in the map instead.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Who or what used an RT pCPU while the planned vCPU thread did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// QEMU's main loop thread (device emulation, QMP, timers).
    Emulator,
    /// A QEMU thread-pool worker (`worker` threads: block I/O, ...).
    Worker,
    /// A QEMU iothread.
    Iothread,
    /// QEMU's live-migration thread.
    Migration,
    /// Another vCPU thread of the same guest.
    Vcpu,
    /// A vCPU thread of another guest.
    ForeignVcpu,
    /// A kernel thread (`ksoftirqd/N`, `kworker/N:M`, `rcuc/N`, `migration/N`, ...).
    KernelThread,
    /// A hard IRQ handler or a non-IPI x86 vector (local timer, ...), by name.
    HardIrq,
    /// An IPI handler (reschedule, call-function, irq-work vectors).
    Ipi,
    /// A softirq (`TIMER`, `RCU`, `SCHED`, ...).
    Softirq,
    /// Host time inside a KVM exit of the planned vCPU thread, by exit reason.
    KvmExit,
    /// The planned thread was runnable but RT-throttled (`sched_rt_runtime_us` exhausted, or
    /// the fair server's reserve): whatever ran meanwhile is named under this class.
    Throttled,
    /// The CPU was idle while the planned thread was runnable (a wake-up from idle).
    Idle,
    /// Anything else: a host process that should not be on an RT pCPU.
    Other,
}

impl Class {
    /// Every class, in table order.
    pub const ALL: [Class; 14] = [
        Class::Emulator,
        Class::Worker,
        Class::Iothread,
        Class::Migration,
        Class::Vcpu,
        Class::ForeignVcpu,
        Class::KernelThread,
        Class::HardIrq,
        Class::Ipi,
        Class::Softirq,
        Class::KvmExit,
        Class::Throttled,
        Class::Idle,
        Class::Other,
    ];

    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Class::Emulator => "emulator",
            Class::Worker => "worker",
            Class::Iothread => "iothread",
            Class::Migration => "migration",
            Class::Vcpu => "vcpu",
            Class::ForeignVcpu => "foreign-vcpu",
            Class::KernelThread => "kernel-thread",
            Class::HardIrq => "hard-irq",
            Class::Ipi => "ipi",
            Class::Softirq => "softirq",
            Class::KvmExit => "kvm-exit",
            Class::Throttled => "throttled",
            Class::Idle => "idle",
            Class::Other => "other",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Thread id → class, for the threads the caller knows (QEMU's, other guests' vCPUs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassMap {
    by_tid: HashMap<u32, Class>,
}

impl ClassMap {
    /// An empty map: every thread is classed from the trace alone.
    pub fn new() -> Self {
        Self::default()
    }

    /// Classes thread `tid` as `class` (replacing an earlier entry).
    pub fn insert(&mut self, tid: u32, class: Class) {
        self.by_tid.insert(tid, class);
    }

    /// The class the caller gave `tid`, if any.
    pub fn get(&self, tid: u32) -> Option<Class> {
        self.by_tid.get(&tid).copied()
    }

    /// The class of a task seen on a CPU: the map's, else idle (pid 0), a kernel thread by
    /// its comm, or other.
    pub fn task(&self, pid: u32, comm: &str) -> Class {
        if let Some(c) = self.get(pid) {
            return c;
        }
        if pid == 0 {
            Class::Idle
        } else if is_kernel_thread_name(comm) {
            Class::KernelThread
        } else {
            Class::Other
        }
    }
}

impl FromIterator<(u32, Class)> for ClassMap {
    fn from_iter<I: IntoIterator<Item = (u32, Class)>>(iter: I) -> Self {
        ClassMap {
            by_tid: iter.into_iter().collect(),
        }
    }
}

/// Comm prefixes of kernel threads (mainline and PREEMPT_RT).
const KTHREAD_PREFIXES: &[&str] = &[
    "ksoftirqd/",
    "kworker/",
    "rcuc/",
    "rcuop/",
    "rcuos/",
    "rcuog/",
    "rcu_",
    "migration/",
    "cpuhp/",
    "watchdog/",
    "idle_inject/",
    "irq/",
    "irq_work/",
    "ktimers/",
    "ktimersoftd/",
    "posixcputmr/",
    "kthreadd",
    "kcompactd",
    "kswapd",
    "khugepaged",
    "ksmd",
    "kdamond",
    "kauditd",
    "khungtaskd",
    "oom_reaper",
    "kblockd",
    "jbd2/",
    "writeback",
    "kintegrityd",
    "kthrotld",
    "kdevtmpfs",
];

/// Whether `comm` is named like a kernel thread.
pub fn is_kernel_thread_name(comm: &str) -> bool {
    KTHREAD_PREFIXES.iter().any(|p| comm.starts_with(p))
}

/// The class of an x86 `irq_vectors` vector by its event name (`reschedule` → IPI).
pub fn vector_class(name: &str) -> Class {
    match name {
        "reschedule" | "call_function" | "call_function_single" | "irq_work" | "reboot" => {
            Class::Ipi
        }
        _ => Class::HardIrq,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_wins_then_idle_kernel_thread_other() {
        let mut m = ClassMap::new();
        m.insert(41, Class::Emulator);
        assert_eq!(m.task(41, "kworker/1:1"), Class::Emulator);
        assert_eq!(m.task(0, "swapper/1"), Class::Idle);
        for k in [
            "kworker/1:1H",
            "ksoftirqd/3",
            "rcuc/2",
            "migration/1",
            "rcu_preempt",
        ] {
            assert_eq!(m.task(7, k), Class::KernelThread, "{k}");
        }
        for o in ["rustc", "opt cgu.09", "CPU 1/TCG", "kworke"] {
            assert_eq!(m.task(7, o), Class::Other, "{o}");
        }
    }

    #[test]
    fn vectors() {
        assert_eq!(vector_class("call_function_single"), Class::Ipi);
        assert_eq!(vector_class("local_timer"), Class::HardIrq);
    }

    #[test]
    fn labels_are_distinct() {
        let mut l: Vec<_> = Class::ALL.iter().map(|c| c.label()).collect();
        l.sort_unstable();
        l.dedup();
        assert_eq!(l.len(), Class::ALL.len());
    }
}
