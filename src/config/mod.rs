//! The experiment config (TOML): what to measure, on which host CPUs, with which layouts.
//!
//! Two stages, as ripgrep separates low-level from high-level arguments: [`RawConfig`] is what
//! the user wrote (serde, unknown keys refused), [`Config::from_toml_str`] checks it without any
//! syscall and produces typed values. Every error carries the key path (`layouts[2].emulator_set`)
//! and says what is allowed. Every key is documented in `configs/README.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use crate::cpuset::CpuSet;

mod raw;
pub use crate::kinds::*;
use raw::{RawConfig, RawLayout};

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
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Run-wide settings (`[run]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSettings {
    /// Measured time per run, seconds (after preheat). `run.duration_s`, default 10.
    pub duration_s: u64,
    /// Repetitions of every layout × scenario × workload. `run.repetitions`, default 1.
    pub repetitions: u32,
    /// QEMU accelerator. `run.accel`, default `auto`.
    pub accel: Accel,
    /// Interval histogram length, milliseconds. `run.interval_ms`, default 1000.
    pub interval_ms: u64,
    /// Deadline from QEMU start to the agent's hello, seconds. `run.boot_timeout_s`, default 60.
    pub boot_timeout_s: u64,
}

/// Host CPUs pinlat may use (`[host]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomGuest {
    /// One CPU list per vCPU, in vCPU order.
    pub vcpus: Vec<CpuSet>,
    /// Emulator threads.
    pub emulator: CpuSet,
    /// Iothreads; default the emulator set.
    pub iothreads: CpuSet,
}

/// A layout to compare (`[[layouts]]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// Which.
    pub kind: ScenarioKind,
    /// `mgmt-poll`: QMP stats queries per second. Default 10.
    pub rate_hz: u32,
    /// `host-stress`: stress workers per housekeeping pCPU. Default 1.
    pub workers: u32,
}

/// A guest measurement (`[[workloads]]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    /// Which.
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Budget {
    /// The largest latency allowed, nanoseconds.
    pub max_ns: Option<u64>,
    /// A percentile (e.g. 99.99) and the latency it must stay under, nanoseconds.
    pub percentile: Option<(f64, u64)>,
}

/// A checked config.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

fn cpu_list(path: &str, s: &str) -> Result<CpuSet, ConfigError> {
    CpuSet::parse_any(s).map_err(|e| ConfigError::new(path, format!("{e}")))
}

fn priority(path: &str, p: u8) -> Result<u8, ConfigError> {
    if (1..=99).contains(&p) {
        Ok(p)
    } else {
        Err(ConfigError::new(
            path,
            format!("{p} is not a SCHED_FIFO priority: use 1..=99"),
        ))
    }
}

fn only_for(path: &str, what: &str) -> ConfigError {
    ConfigError::new(path, format!("only allowed with {what}: remove it"))
}

fn valid_name(path: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            path,
            format!("\"{name}\": names are 1-40 characters of a-z, A-Z, 0-9, '-' and '_' (they become file names)"),
        ))
    }
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
        let run = RunSettings {
            duration_s: raw.run.duration_s.unwrap_or(10),
            repetitions: raw.run.repetitions.unwrap_or(1),
            accel: raw.run.accel.unwrap_or_default(),
            interval_ms: raw.run.interval_ms.unwrap_or(1000),
            boot_timeout_s: raw.run.boot_timeout_s.unwrap_or(60),
        };
        if run.duration_s == 0 || run.duration_s > 7 * 24 * 3600 {
            return Err(ConfigError::new(
                "run.duration_s",
                format!("{}: must be 1 second to 7 days (604800)", run.duration_s),
            ));
        }
        if run.repetitions == 0 || run.repetitions > 1000 {
            return Err(ConfigError::new(
                "run.repetitions",
                format!("{}: must be 1..=1000", run.repetitions),
            ));
        }
        if !(10..=60_000).contains(&run.interval_ms) {
            return Err(ConfigError::new(
                "run.interval_ms",
                format!("{}: must be 10..=60000 milliseconds", run.interval_ms),
            ));
        }
        if !(1..=3600).contains(&run.boot_timeout_s) {
            return Err(ConfigError::new(
                "run.boot_timeout_s",
                format!("{}: must be 1..=3600 seconds", run.boot_timeout_s),
            ));
        }

        let host = HostSpec {
            cpus: raw
                .host
                .cpus
                .as_deref()
                .map(|s| cpu_list("host.cpus", s))
                .transpose()?,
            housekeeping_cpus: match raw.host.housekeeping_cpus.as_deref() {
                None | Some("") => CpuSet::new(),
                Some(s) => cpu_list("host.housekeeping_cpus", s)?,
            },
            emulator_pin_set: raw
                .host
                .emulator_pin_set
                .as_deref()
                .map(|s| cpu_list("host.emulator_pin_set", s))
                .transpose()?,
            overcommit_ratio: raw.host.overcommit_ratio.unwrap_or(1),
        };
        if host.overcommit_ratio == 0 {
            return Err(ConfigError::new(
                "host.overcommit_ratio",
                "0: must be at least 1 (guests' emulator threads per pCPU of the pin set)",
            ));
        }

        if raw.guests.is_empty() {
            return Err(ConfigError::new(
                "guests",
                "at least one [[guests]] entry is needed (name, vcpus)",
            ));
        }
        let mut guests = Vec::new();
        let mut names = BTreeSet::new();
        for (i, g) in raw.guests.iter().enumerate() {
            let p = format!("guests[{i}]");
            valid_name(&format!("{p}.name"), &g.name)?;
            if !names.insert(g.name.clone()) {
                return Err(ConfigError::new(
                    format!("{p}.name"),
                    format!(
                        "\"{}\" is used by another guest: names must be unique",
                        g.name
                    ),
                ));
            }
            if !(1..=1024).contains(&g.vcpus) {
                return Err(ConfigError::new(
                    format!("{p}.vcpus"),
                    format!("{}: must be 1..=1024", g.vcpus),
                ));
            }
            let memory_mib = g.memory_mib.unwrap_or(256);
            if memory_mib < 64 {
                return Err(ConfigError::new(
                    format!("{p}.memory_mib"),
                    format!("{memory_mib}: must be at least 64 MiB for a kernel and the agent"),
                ));
            }
            let mask = g.realtime_mask.clone().unwrap_or_else(|| "^0".to_string());
            let realtime = CpuSet::parse_mask(&mask, g.vcpus).map_err(|e| {
                ConfigError::new(
                    format!("{p}.realtime_mask"),
                    format!("{e} (the mask is relative to the guest's {} vCPUs, as nova's hw:cpu_realtime_mask: \"^0\" = all but vCPU 0)", g.vcpus),
                )
            })?;
            guests.push(Guest {
                name: g.name.clone(),
                vcpus: g.vcpus,
                memory_mib,
                realtime,
                realtime_mask: mask,
                kernel: g.kernel.clone(),
                cmdline_extra: g.cmdline_extra.clone(),
                iothreads: g.iothreads.unwrap_or(0),
            });
        }

        if raw.layouts.is_empty() {
            return Err(ConfigError::new(
                "layouts",
                "at least one [[layouts]] entry is needed (kind = float|share|vcpu0|isolate|pinset|custom)",
            ));
        }
        let mut layouts = Vec::new();
        let mut lnames = BTreeSet::new();
        for (i, l) in raw.layouts.iter().enumerate() {
            layouts.push(check_layout(i, l, &guests, &mut lnames)?);
        }

        let scenarios = match &raw.scenarios {
            None => vec![Scenario {
                kind: ScenarioKind::Idle,
                rate_hz: 10,
                workers: 1,
            }],
            Some(v) if v.is_empty() => {
                return Err(ConfigError::new(
                    "scenarios",
                    "empty: leave it out for the default [idle], or list [[scenarios]] with kind = idle|mgmt-poll|guest-io|host-stress",
                ))
            }
            Some(v) => {
                let mut seen = BTreeSet::new();
                let mut out = Vec::new();
                for (i, s) in v.iter().enumerate() {
                    let p = format!("scenarios[{i}]");
                    if !seen.insert(s.kind) {
                        return Err(ConfigError::new(
                            format!("{p}.kind"),
                            format!("\"{}\" is listed twice", s.kind),
                        ));
                    }
                    if s.rate_hz.is_some() && s.kind != ScenarioKind::MgmtPoll {
                        return Err(only_for(&format!("{p}.rate_hz"), "kind = \"mgmt-poll\""));
                    }
                    if s.workers.is_some() && s.kind != ScenarioKind::HostStress {
                        return Err(only_for(&format!("{p}.workers"), "kind = \"host-stress\""));
                    }
                    let rate_hz = s.rate_hz.unwrap_or(10);
                    if !(1..=10_000).contains(&rate_hz) {
                        return Err(ConfigError::new(
                            format!("{p}.rate_hz"),
                            format!("{rate_hz}: must be 1..=10000"),
                        ));
                    }
                    let workers = s.workers.unwrap_or(1);
                    if !(1..=64).contains(&workers) {
                        return Err(ConfigError::new(
                            format!("{p}.workers"),
                            format!("{workers}: must be 1..=64"),
                        ));
                    }
                    out.push(Scenario {
                        kind: s.kind,
                        rate_hz,
                        workers,
                    });
                }
                out
            }
        };
        if scenarios.iter().any(|s| s.kind == ScenarioKind::HostStress)
            && host.housekeeping_cpus.is_empty()
        {
            return Err(ConfigError::new(
                "host.housekeeping_cpus",
                "scenario host-stress runs on the host housekeeping pCPUs: set host.housekeeping_cpus",
            ));
        }

        let workloads = match &raw.workloads {
            None => vec![default_workload(WorkloadKind::BusyPoll)],
            Some(v) if v.is_empty() => {
                return Err(ConfigError::new(
                    "workloads",
                    "empty: leave it out for the default [busy-poll], or list [[workloads]] with kind = busy-poll|timer|ring",
                ))
            }
            Some(v) => {
                let mut seen = BTreeSet::new();
                let mut out = Vec::new();
                for (i, w) in v.iter().enumerate() {
                    let p = format!("workloads[{i}]");
                    if !seen.insert(w.kind) {
                        return Err(ConfigError::new(
                            format!("{p}.kind"),
                            format!("\"{}\" is listed twice", w.kind),
                        ));
                    }
                    let d = default_workload(w.kind);
                    if w.interval_us.is_some() && w.kind != WorkloadKind::Timer {
                        return Err(only_for(&format!("{p}.interval_us"), "kind = \"timer\""));
                    }
                    let interval_us = w.interval_us.unwrap_or(d.interval_us);
                    if !(10..=1_000_000).contains(&interval_us) {
                        return Err(ConfigError::new(
                            format!("{p}.interval_us"),
                            format!("{interval_us}: must be 10..=1000000 microseconds"),
                        ));
                    }
                    let preheat_ms = w.preheat_ms.unwrap_or(d.preheat_ms);
                    if preheat_ms > 600_000 {
                        return Err(ConfigError::new(
                            format!("{p}.preheat_ms"),
                            format!("{preheat_ms}: must be at most 600000 (10 minutes)"),
                        ));
                    }
                    out.push(Workload {
                        kind: w.kind,
                        preheat_ms,
                        interval_us,
                        priority: w
                            .priority
                            .or(d.priority)
                            .map(|v| priority(&format!("{p}.priority"), v))
                            .transpose()?,
                        housekeeping: w.housekeeping.iter().flatten().copied().collect(),
                    });
                }
                out
            }
        };
        for (i, w) in workloads.iter().enumerate() {
            if w.kind == WorkloadKind::Ring {
                if let Some(g) = guests.iter().find(|g| g.realtime.len() < 2) {
                    return Err(ConfigError::new(
                        format!("workloads[{i}].kind"),
                        format!("ring needs two RT vCPUs (producer and consumer) but guest \"{}\" has {} (realtime_mask \"{}\")", g.name, g.realtime.len(), g.realtime_mask),
                    ));
                }
            }
            if !w.housekeeping.is_empty() {
                if let Some(g) = guests.iter().find(|g| g.housekeeping().is_empty()) {
                    return Err(ConfigError::new(
                        format!("workloads[{i}].housekeeping"),
                        format!("guest \"{}\" has no housekeeping vCPU to run loads on (realtime_mask \"{}\" covers every vCPU)", g.name, g.realtime_mask),
                    ));
                }
            }
        }
        if scenarios.iter().any(|s| s.kind == ScenarioKind::GuestIo) {
            if let Some(g) = guests.iter().find(|g| g.housekeeping().is_empty()) {
                return Err(ConfigError::new(
                    "scenarios",
                    format!("guest-io drives I/O from a housekeeping vCPU, but guest \"{}\" has none (realtime_mask \"{}\")", g.name, g.realtime_mask),
                ));
            }
        }

        let mut budgets = BTreeMap::new();
        for (key, b) in &raw.budgets {
            let p = format!("budgets.{key}");
            let kind: WorkloadKind = match key.as_str() {
                "busy-poll" => WorkloadKind::BusyPoll,
                "timer" => WorkloadKind::Timer,
                "ring" => WorkloadKind::Ring,
                _ => {
                    return Err(ConfigError::new(
                        p,
                        "unknown workload: budgets are keyed by busy-poll, timer or ring",
                    ))
                }
            };
            let percentile = match (b.percentile, b.percentile_us) {
                (None, None) => None,
                (Some(q), Some(us)) => {
                    if !(q > 0.0 && q < 100.0) {
                        return Err(ConfigError::new(
                            format!("{p}.percentile"),
                            format!("{q} is not a percentile: use a value between 0 and 100 exclusive, e.g. 99.99"),
                        ));
                    }
                    Some((q, us.saturating_mul(1000)))
                }
                (Some(_), None) => {
                    return Err(ConfigError::new(
                        format!("{p}.percentile_us"),
                        "missing: a percentile needs the latency it must stay under",
                    ))
                }
                (None, Some(_)) => {
                    return Err(ConfigError::new(
                        format!("{p}.percentile"),
                        "missing: say which percentile percentile_us is for, e.g. 99.99",
                    ))
                }
            };
            let max_ns = b.max_us.map(|us| us.saturating_mul(1000));
            if max_ns.is_none() && percentile.is_none() {
                return Err(ConfigError::new(
                    p,
                    "empty budget: give max_us and/or percentile + percentile_us",
                ));
            }
            budgets.insert(kind, Budget { max_ns, percentile });
        }

        Ok(Config {
            run,
            host,
            guests,
            layouts,
            scenarios,
            workloads,
            budgets,
        })
    }
}

fn default_workload(kind: WorkloadKind) -> Workload {
    Workload {
        kind,
        preheat_ms: 1000,
        interval_us: 1000,
        priority: (kind == WorkloadKind::Timer).then_some(95),
        housekeeping: BTreeSet::new(),
    }
}

fn check_layout(
    i: usize,
    l: &RawLayout,
    guests: &[Guest],
    names: &mut BTreeSet<String>,
) -> Result<Layout, ConfigError> {
    let p = format!("layouts[{i}]");
    let name = l.name.clone().unwrap_or_else(|| l.kind.to_string());
    valid_name(&format!("{p}.name"), &name)?;
    if !names.insert(name.clone()) {
        return Err(ConfigError::new(
            format!("{p}.name"),
            format!("\"{name}\" is used by another layout: give each layout of the same kind its own name"),
        ));
    }
    if l.emulator_set.is_some() && l.kind != LayoutKind::Pinset {
        return Err(only_for(
            &format!("{p}.emulator_set"),
            "kind = \"pinset\" (use custom.<guest>.emulator for custom)",
        ));
    }
    if l.overcommit_ratio.is_some() && l.kind != LayoutKind::Pinset {
        return Err(only_for(
            &format!("{p}.overcommit_ratio"),
            "kind = \"pinset\"",
        ));
    }
    if l.overcommit_ratio == Some(0) {
        return Err(ConfigError::new(
            format!("{p}.overcommit_ratio"),
            "0: must be at least 1",
        ));
    }
    if l.allow_overlap.is_some() && l.kind != LayoutKind::Custom {
        return Err(only_for(&format!("{p}.allow_overlap"), "kind = \"custom\""));
    }
    if !l.custom.is_empty() && l.kind != LayoutKind::Custom {
        return Err(only_for(&format!("{p}.custom"), "kind = \"custom\""));
    }
    let rt_policy = l.rt_policy.unwrap_or(if l.kind == LayoutKind::Float {
        Policy::Other
    } else {
        Policy::Fifo
    });
    let rt_priority = priority(&format!("{p}.rt_priority"), l.rt_priority.unwrap_or(1))?;
    if l.rt_priority.is_some() && rt_policy == Policy::Other {
        return Err(ConfigError::new(
            format!("{p}.rt_priority"),
            "set, but rt_policy is \"other\": a priority needs rt_policy = \"fifo\"",
        ));
    }
    let mut custom = BTreeMap::new();
    if l.kind == LayoutKind::Custom {
        for g in guests {
            let gp = format!("{p}.custom.{}", g.name);
            let Some(c) = l.custom.get(&g.name) else {
                return Err(ConfigError::new(
                    gp,
                    format!("missing: a custom layout needs vcpus = [one CPU list per vCPU] and emulator = \"CPU list\" for guest \"{}\"", g.name),
                ));
            };
            if c.vcpus.len() != g.vcpus as usize {
                return Err(ConfigError::new(
                    format!("{gp}.vcpus"),
                    format!(
                        "has {} entries but guest \"{}\" has {} vCPUs: give one CPU list per vCPU",
                        c.vcpus.len(),
                        g.name,
                        g.vcpus
                    ),
                ));
            }
            let vcpus = c
                .vcpus
                .iter()
                .enumerate()
                .map(|(v, s)| cpu_list(&format!("{gp}.vcpus[{v}]"), s))
                .collect::<Result<Vec<_>, _>>()?;
            let emulator = cpu_list(&format!("{gp}.emulator"), &c.emulator)?;
            let iothreads = match &c.iothreads {
                Some(s) => cpu_list(&format!("{gp}.iothreads"), s)?,
                None => emulator.clone(),
            };
            custom.insert(
                g.name.clone(),
                CustomGuest {
                    vcpus,
                    emulator,
                    iothreads,
                },
            );
        }
        if let Some(unknown) = l
            .custom
            .keys()
            .find(|k| !guests.iter().any(|g| &g.name == *k))
        {
            return Err(ConfigError::new(
                format!("{p}.custom.{unknown}"),
                format!(
                    "no guest is named \"{unknown}\": custom entries are keyed by guests[].name"
                ),
            ));
        }
    }
    Ok(Layout {
        name,
        kind: l.kind,
        rt_policy,
        rt_priority,
        emulator_set: l
            .emulator_set
            .as_deref()
            .map(|s| cpu_list(&format!("{p}.emulator_set"), s))
            .transpose()?,
        overcommit_ratio: l.overcommit_ratio,
        allow_overlap: l.allow_overlap.unwrap_or(false),
        custom,
    })
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
