//! The config exactly as written: serde structs whose only job is to refuse unknown keys and
//! wrong types with the key path (`serde_path_to_error`). [`super::Config`] checks them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{
    AccelChoice, Aio, HousekeepingLoad, LayoutKind, Policy, ScenarioKind, ThreadPlacement,
    WorkloadKind,
};

/// The config as written. Unknown keys are refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) run: RawRun,
    #[serde(default)]
    pub(super) host: RawHost,
    #[serde(default)]
    pub(super) guests: Vec<RawGuest>,
    #[serde(default)]
    pub(super) layouts: Vec<RawLayout>,
    pub(super) scenarios: Option<Vec<RawScenario>>,
    pub(super) workloads: Option<Vec<RawWorkload>>,
    #[serde(default)]
    pub(super) budgets: BTreeMap<String, RawBudget>,
    #[serde(default)]
    pub(super) variants: Vec<RawVariant>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRun {
    pub(super) duration_s: Option<u64>,
    pub(super) duration: Option<String>,
    pub(super) repetitions: Option<u32>,
    pub(super) accel: Option<AccelChoice>,
    pub(super) interval_ms: Option<u64>,
    pub(super) boot_timeout_s: Option<u64>,
    pub(super) thread_placement: Option<ThreadPlacement>,
    pub(super) launcher: Option<crate::kinds::LauncherKind>,
    pub(super) boot_per: Option<crate::kinds::BootPer>,
    pub(super) order_seed: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHost {
    pub(super) cpus: Option<String>,
    pub(super) housekeeping_cpus: Option<String>,
    pub(super) emulator_pin_set: Option<String>,
    pub(super) overcommit_ratio: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGuest {
    pub(super) name: String,
    pub(super) vcpus: u32,
    pub(super) memory_mib: Option<u32>,
    pub(super) realtime_mask: Option<String>,
    pub(super) kernel: Option<PathBuf>,
    #[serde(default)]
    pub(super) cmdline_extra: String,
    pub(super) iothreads: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLayout {
    pub(super) kind: LayoutKind,
    pub(super) name: Option<String>,
    pub(super) rt_policy: Option<Policy>,
    pub(super) rt_priority: Option<u8>,
    pub(super) emulator_set: Option<String>,
    pub(super) overcommit_ratio: Option<u32>,
    pub(super) allow_overlap: Option<bool>,
    #[serde(default)]
    pub(super) custom: BTreeMap<String, RawCustomGuest>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCustomGuest {
    pub(super) vcpus: Vec<String>,
    pub(super) emulator: String,
    pub(super) iothreads: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub(super) name: Option<String>,
    pub(super) kind: Option<ScenarioKind>,
    pub(super) kinds: Option<Vec<ScenarioKind>>,
    pub(super) rate_hz: Option<u32>,
    pub(super) workers: Option<u32>,
    pub(super) block_kib: Option<u32>,
    pub(super) queue_depth: Option<u32>,
    pub(super) read_percent: Option<u8>,
    pub(super) fdatasync_every: Option<u32>,
    pub(super) disk_mib: Option<u64>,
    pub(super) aio: Option<Aio>,
    pub(super) rate_pps: Option<u32>,
    pub(super) frame_bytes: Option<u32>,
    pub(super) queries: Option<Vec<String>>,
    pub(super) bandwidth_mib_s: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkload {
    pub(super) kind: WorkloadKind,
    pub(super) preheat_ms: Option<u64>,
    pub(super) interval_us: Option<u64>,
    pub(super) priority: Option<u8>,
    pub(super) housekeeping: Option<Vec<HousekeepingLoad>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBudget {
    pub(super) max_us: Option<u64>,
    pub(super) percentile: Option<f64>,
    pub(super) percentile_us: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVariant {
    pub(super) name: String,
    #[serde(default)]
    pub(super) qemu: RawQemuKnobs,
    #[serde(default)]
    pub(super) guest: RawGuestKnobs,
    #[serde(default)]
    pub(super) host: super::variant::HostKnobs,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQemuKnobs {
    pub(super) mem_lock: Option<super::variant::MemLock>,
    pub(super) hugepages: Option<super::variant::HugePageSize>,
    #[serde(default)]
    pub(super) cpu_host: bool,
    #[serde(default)]
    pub(super) invtsc: bool,
    #[serde(default)]
    pub(super) tsc_deadline: bool,
    pub(super) pmu: Option<bool>,
    #[serde(default)]
    pub(super) kvm_hint_dedicated: bool,
    #[serde(default)]
    pub(super) cpu_pm: bool,
}

/// A sysctl value as written: a number or a string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum RawSysctl {
    Int(i64),
    Text(String),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGuestKnobs {
    pub(super) preset: Option<super::variant::CmdlinePreset>,
    pub(super) idle: Option<super::variant::GuestIdle>,
    pub(super) tsc_reliable: Option<bool>,
    #[serde(default)]
    pub(super) mce_off: bool,
    pub(super) timer_migration: Option<bool>,
    #[serde(default)]
    pub(super) cmdline_extra: Vec<String>,
    #[serde(default)]
    pub(super) sysctls: BTreeMap<String, RawSysctl>,
}
