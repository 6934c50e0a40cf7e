//! The guest's side of realtime readiness, as the agent reads it before it says hello
//! ([`super::SystemFacts::tuning`]): idle, tick and RCU isolation as the kernel applied them,
//! the two sysctls RT tuning sets, where device interrupts go, and the run's own sysctls read
//! back. The report judges them (`crate::report::readiness`).
//!
//! A file the kernel does not have is `None` ("unknown"), never a default: a kernel built
//! without `CONFIG_NO_HZ_FULL` has no `nohz_full` file, and that is not "no CPUs in
//! nohz_full". Hellos of agents before these facts have no `tuning` at all.

use serde::{Deserialize, Serialize};

use crate::cpuset::CpuSet;

/// `/sys/devices/system/cpu/cpuidle/current_driver`.
pub const CPUIDLE_DRIVER_PATH: &str = "/sys/devices/system/cpu/cpuidle/current_driver";
/// `/sys/devices/system/cpu/cpuidle/current_governor_ro` (read-only form, tried first).
pub const CPUIDLE_GOVERNOR_RO_PATH: &str = "/sys/devices/system/cpu/cpuidle/current_governor_ro";
/// `/sys/devices/system/cpu/cpuidle/current_governor` (with `cpuidle_sysfs_switch`, or newer
/// kernels).
pub const CPUIDLE_GOVERNOR_PATH: &str = "/sys/devices/system/cpu/cpuidle/current_governor";
/// `/sys/devices/system/cpu/nohz_full` (`(null)` when none; absent without
/// `CONFIG_NO_HZ_FULL`).
pub const NOHZ_FULL_PATH: &str = "/sys/devices/system/cpu/nohz_full";
/// `kernel.timer_migration`.
pub const TIMER_MIGRATION_PATH: &str = "/proc/sys/kernel/timer_migration";
/// `kernel.sched_rt_runtime_us`.
pub const SCHED_RT_RUNTIME_PATH: &str = "/proc/sys/kernel/sched_rt_runtime_us";
/// Where each IRQ's directory is.
pub const PROC_IRQ_DIR: &str = "/proc/irq";
/// Most IRQs a hello lists (a guest has a few dozen; the cap bounds the frame).
pub const MAX_IRQS: usize = 256;

/// The guest's tuning as its kernel shows it. `None` fields: the file is absent or unreadable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestTuning {
    /// The cpuidle driver ([`CPUIDLE_DRIVER_PATH`]; `none` when no driver registered, as with
    /// `idle=poll`).
    #[serde(default)]
    pub cpuidle_driver: Option<String>,
    /// The cpuidle governor ([`CPUIDLE_GOVERNOR_RO_PATH`], else [`CPUIDLE_GOVERNOR_PATH`]).
    #[serde(default)]
    pub cpuidle_governor: Option<String>,
    /// `/sys/devices/system/cpu/isolated` (what `isolcpus=` made of it; empty when none).
    #[serde(default)]
    pub isolated: Option<String>,
    /// [`NOHZ_FULL_PATH`] as the kernel prints it (`(null)` when none).
    #[serde(default)]
    pub nohz_full: Option<String>,
    /// `kernel.timer_migration` ([`TIMER_MIGRATION_PATH`]).
    #[serde(default)]
    pub timer_migration: Option<String>,
    /// `kernel.sched_rt_runtime_us` ([`SCHED_RT_RUNTIME_PATH`]).
    #[serde(default)]
    pub sched_rt_runtime_us: Option<String>,
    /// Every IRQ with a handler (an action directory under `/proc/irq/<n>/`), in number order,
    /// at most [`MAX_IRQS`]; `None` when `/proc/irq` could not be read.
    #[serde(default)]
    pub irqs: Option<Vec<GuestIrq>>,
    /// The run's sysctls ([`crate::agentcfg::AgentConfig::sysctls`]) as read back after the
    /// agent wrote them, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sysctls: Vec<SysctlReadBack>,
}

/// One IRQ of the guest with a handler.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestIrq {
    /// The IRQ number.
    pub irq: u32,
    /// Its actions (handler names: `ttyS0`, `virtio0-requests`), sorted.
    pub actions: Vec<String>,
    /// `effective_affinity_list`: the CPUs it is delivered to (absent on kernels or chips
    /// without effective affinity).
    #[serde(default)]
    pub effective: Option<String>,
    /// `smp_affinity_list`: the CPUs it may be delivered to.
    #[serde(default)]
    pub affinity: Option<String>,
}

impl GuestIrq {
    /// The CPUs it goes to: the effective affinity when the kernel shows it, else the allowed
    /// one; `None` when neither reads as a CPU list.
    pub fn delivered_to(&self) -> Option<crate::cpuset::CpuSet> {
        self.effective
            .as_deref()
            .or(self.affinity.as_deref())
            .and_then(kernel_cpu_list)
    }
}

/// A CPU list as the kernel prints it in sysfs and procfs: empty or `(null)` (`nohz_full`
/// without CPUs) is the empty set; `None` when it is not a CPU list.
pub fn kernel_cpu_list(text: &str) -> Option<CpuSet> {
    match text.trim() {
        "" | "(null)" => Some(CpuSet::new()),
        t => CpuSet::parse(t).ok(),
    }
}

/// One sysctl the agent wrote, and what it read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlReadBack {
    /// Dotted key (`kernel.timer_migration`).
    pub key: String,
    /// The value written.
    pub written: String,
    /// The file's contents after the write, trimmed.
    pub read: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_cpu_lists() {
        assert_eq!(kernel_cpu_list("(null)\n"), Some(CpuSet::new()));
        assert_eq!(kernel_cpu_list(""), Some(CpuSet::new()));
        assert_eq!(kernel_cpu_list("1-3\n"), CpuSet::parse("1-3").ok());
        assert_eq!(kernel_cpu_list("garbage"), None);
    }

    #[test]
    fn an_irq_goes_where_its_effective_affinity_says() {
        let mut irq = GuestIrq {
            irq: 4,
            actions: vec!["ttyS0".into()],
            effective: Some("1".into()),
            affinity: Some("0-3".into()),
        };
        assert_eq!(irq.delivered_to(), CpuSet::parse("1").ok());
        irq.effective = None;
        assert_eq!(irq.delivered_to(), CpuSet::parse("0-3").ok());
        irq.affinity = None;
        assert_eq!(irq.delivered_to(), None);
    }
}
