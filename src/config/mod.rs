//! The experiment config (TOML): what to measure, on which host CPUs, with which layouts.
//!
//! Two stages, as ripgrep separates low-level from high-level arguments: [`RawConfig`] is what
//! the user wrote (serde, unknown keys refused), [`Config::from_toml_str`] checks it without any
//! syscall and produces typed values. Every error carries the key path (`layouts[2].emulator_set`)
//! and says what is allowed. Every key is documented in `configs/README.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cpuset::CpuSet;

mod check;
mod raw;
pub use crate::kinds::*;
use raw::RawConfig;

/// A config the user has to fix: the key path, and what is wrong with it and allowed instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// Key path in the config, e.g. `layouts[2].emulator_set`; `(file)` for syntax errors.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl ConfigError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Run-wide settings (`[run]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// Measured time per run, seconds (after preheat). `run.duration_s`, default 10.
    pub duration_s: u64,
    /// Repetitions of every layout × scenario × workload. `run.repetitions`, default 1.
    pub repetitions: u32,
    /// QEMU accelerator. `run.accel`, default `auto`.
    pub accel: AccelChoice,
    /// Interval histogram length, milliseconds. `run.interval_ms`, default 1000.
    pub interval_ms: u64,
    /// Deadline from QEMU start to the agent's hello, seconds. `run.boot_timeout_s`, default 60.
    pub boot_timeout_s: u64,
    /// How threads QEMU starts after pinning are kept off the RT pCPUs.
    /// `run.thread_placement`, default `cpuset`.
    #[serde(default)]
    pub thread_placement: ThreadPlacement,
}

/// Host CPUs pinlat may use (`[host]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostSpec {
    /// pCPUs pinlat may use; `None` = every online CPU.
    pub cpus: Option<CpuSet>,
    /// Host housekeeping pCPUs: never dedicated to a vCPU; host-stress runs here.
    pub housekeeping_cpus: CpuSet,
    /// `pinset`'s host-wide emulator set (the thread's `rt_emulator_vcpu_pin_set`).
    pub emulator_pin_set: Option<CpuSet>,
    /// At most this many guests' emulator threads per pCPU of the pin set (the thread's
    /// `rt_emulator_overcommit_ratio`). Default 1.
    pub overcommit_ratio: u32,
}

/// A guest (`[[guests]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Guest {
    /// Unique name, used in run names and exports.
    pub name: String,
    /// vCPU count.
    pub vcpus: u32,
    /// Guest RAM, MiB. Default 256.
    pub memory_mib: u32,
    /// The RT vCPUs (nova `hw:cpu_realtime_mask` semantics). Default `^0`.
    pub realtime: CpuSet,
    /// The mask as written, for nova exports.
    pub realtime_mask: String,
    /// Guest kernel; `None` = the runner's search order.
    pub kernel: Option<PathBuf>,
    /// Appended to the guest kernel command line.
    pub cmdline_extra: String,
    /// Number of QEMU iothreads (`-object iothread`). Default 0.
    pub iothreads: u32,
}

impl Guest {
    /// The non-RT (housekeeping) vCPUs.
    pub fn housekeeping(&self) -> CpuSet {
        CpuSet::first_n(self.vcpus).difference(&self.realtime)
    }
}

/// Explicit placement of one guest under a `custom` layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomGuest {
    /// One CPU list per vCPU, in vCPU order.
    pub vcpus: Vec<CpuSet>,
    /// Emulator threads.
    pub emulator: CpuSet,
    /// Iothreads; default the emulator set.
    pub iothreads: CpuSet,
}

/// A layout to compare (`[[layouts]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// Unique name; default the kind.
    pub name: String,
    /// The rule.
    pub kind: LayoutKind,
    /// Host policy of RT vCPU threads: `fifo` except for `float`, whose default is `other`.
    pub rt_policy: Policy,
    /// SCHED_FIFO priority of RT vCPU threads, 1..=99. Default 1 (nova's default).
    pub rt_priority: u8,
    /// `pinset` only: overrides `host.emulator_pin_set`.
    pub emulator_set: Option<CpuSet>,
    /// `pinset` only: overrides `host.overcommit_ratio`.
    pub overcommit_ratio: Option<u32>,
    /// `custom` only: allow RT vCPUs to share pCPUs with each other or the emulator.
    pub allow_overlap: bool,
    /// `custom` only: per guest name.
    pub custom: BTreeMap<String, CustomGuest>,
}

/// A host disturbance (`[[scenarios]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// The scenario, as `[[scenarios]] kind` names it.
    pub kind: ScenarioKind,
    /// `mgmt-poll`: QMP stats queries per second. Default 10.
    pub rate_hz: u32,
    /// `host-stress`: stress workers per housekeeping pCPU. Default 1.
    pub workers: u32,
}

/// A guest measurement (`[[workloads]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// The workload, as `[[workloads]] kind` names it.
    pub kind: WorkloadKind,
    /// Warm-up before recording, milliseconds. Default 1000.
    pub preheat_ms: u64,
    /// `timer`: wake-up period, microseconds. Default 1000 (cyclictest's default).
    pub interval_us: u64,
    /// Guest SCHED_FIFO priority of the measuring threads, 1..=99. Default 95 for `timer`
    /// (cyclictest's usual `-p95`); `busy-poll` and `ring` run SCHED_OTHER unless set, as oslat
    /// does without `-f`.
    pub priority: Option<u8>,
    /// Loads on the guest's housekeeping vCPUs during the measurement. Default none.
    pub housekeeping: BTreeSet<HousekeepingLoad>,
}

/// A latency budget for one workload (`[budgets.<workload>]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// The largest latency allowed, nanoseconds.
    pub max_ns: Option<u64>,
    /// A percentile (e.g. 99.99) and the latency it must stay under, nanoseconds.
    pub percentile: Option<(f64, u64)>,
}

/// A checked config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// `[run]`.
    pub run: RunSettings,
    /// `[host]`.
    pub host: HostSpec,
    /// `[[guests]]`, at least one.
    pub guests: Vec<Guest>,
    /// `[[layouts]]`, at least one.
    pub layouts: Vec<Layout>,
    /// `[[scenarios]]`; default `idle`.
    pub scenarios: Vec<Scenario>,
    /// `[[workloads]]`; default `busy-poll`.
    pub workloads: Vec<Workload>,
    /// `[budgets.<workload>]`.
    pub budgets: BTreeMap<WorkloadKind, Budget>,
}

impl Config {
    /// Parses and checks a TOML config. Pure: no syscalls.
    pub fn from_toml_str(s: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::new(s);
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let msg = inner.message().to_string();
            let loc = inner
                .span()
                .map(|sp| {
                    let line = s[..sp.start.min(s.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            let path = if path == "." || path.is_empty() {
                "(file)".to_string()
            } else {
                path
            };
            ConfigError::new(path, format!("{msg}{loc}"))
        })?;
        Self::check(raw)
    }

    /// Reads and checks a config file.
    pub fn from_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new("(file)", format!("cannot read {}: {e}", path.display()))
        })?;
        Self::from_toml_str(&text)
    }

    fn check(raw: RawConfig) -> Result<Config, ConfigError> {
        check::config(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "[[guests]]\nname = \"rt\"\nvcpus = 2\n[[layouts]]\nkind = \"vcpu0\"\n";

    fn err(s: &str) -> ConfigError {
        Config::from_toml_str(s).unwrap_err()
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::from_toml_str(MIN).unwrap();
        assert_eq!(c.run.duration_s, 10);
        assert_eq!(c.guests[0].realtime.to_string(), "1");
        assert_eq!(c.guests[0].housekeeping().to_string(), "0");
        assert_eq!(c.layouts[0].name, "vcpu0");
        assert_eq!(c.layouts[0].rt_policy, Policy::Fifo);
        assert_eq!(c.layouts[0].rt_priority, 1);
        assert_eq!(c.scenarios[0].kind, ScenarioKind::Idle);
        assert_eq!(c.workloads[0].kind, WorkloadKind::BusyPoll);
    }

    #[test]
    fn unknown_key_names_its_path() {
        let e = err(&format!("{MIN}emulator_set = \"1\"\nbogus = 1\n"));
        assert_eq!(e.path, "layouts[0].bogus");
        assert!(e.message.contains("unknown field"), "{e}");
    }

    #[test]
    fn bad_cpu_list_names_field_and_token() {
        let e = err(&format!("{MIN}[host]\ncpus = \"3-1\"\n"));
        assert_eq!(e.to_string(), "host.cpus: \"3-1\": range end before start");
    }

    #[test]
    fn wrong_type_names_path() {
        let e = err("[[guests]]\nname = \"a\"\nvcpus = \"two\"\n");
        assert_eq!(e.path, "guests[0].vcpus");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = err("[[guests]\nname=");
        assert!(e.message.contains("line 1"), "{e}");
    }

    #[test]
    fn options_for_other_kinds_are_refused() {
        let e = err(&format!("{MIN}overcommit_ratio = 2\n"));
        assert_eq!(e.path, "layouts[0].overcommit_ratio");
        assert!(e.message.contains("pinset"));
    }

    #[test]
    fn budgets_in_ns() {
        let c = Config::from_toml_str(&format!(
            "{MIN}[budgets.busy-poll]\nmax_us = 50\npercentile = 99.9\npercentile_us = 20\n"
        ))
        .unwrap();
        let b = &c.budgets[&WorkloadKind::BusyPoll];
        assert_eq!(b.max_ns, Some(50_000));
        assert_eq!(b.percentile, Some((99.9, 20_000)));
        let e = err(&format!(
            "{MIN}[budgets.busy-poll]\npercentile = 100\npercentile_us = 1\n"
        ));
        assert_eq!(e.path, "budgets.busy-poll.percentile");
    }
}
