//! Checking a config as written ([`super::raw`]) into a [`Config`]: one validator per
//! section, each naming the key path and the fix of the first problem it finds. Pure: no
//! syscalls (the host's CPUs are the planner's business, [`crate::plan`]).

use std::collections::{BTreeMap, BTreeSet};

use super::raw::{
    RawBudget, RawConfig, RawGuest, RawHost, RawLayout, RawRun, RawScenario, RawWorkload,
};
use super::{
    Budget, Config, ConfigError, CustomGuest, Guest, HostSpec, IoScenario, Layout, LayoutKind,
    NetScenario, Policy, RunSettings, Scenario, ScenarioKind, Workload, WorkloadKind,
};
use crate::cpuset::CpuSet;

/// Checks every section, then the rules that span sections.
pub(super) fn config(raw: RawConfig) -> Result<Config, ConfigError> {
    let run = run(&raw.run)?;
    let host = host(&raw.host)?;
    let guests = guests(&raw.guests)?;
    let layouts = layouts(&raw.layouts, &guests)?;
    let scenarios = scenarios(raw.scenarios.as_deref())?;
    let workloads = workloads(raw.workloads.as_deref())?;
    across(&host, &guests, &scenarios, &workloads)?;
    let budgets = budgets(&raw.budgets)?;
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

/// `[run]`.
fn run(raw: &RawRun) -> Result<RunSettings, ConfigError> {
    let run = RunSettings {
        duration_s: raw.duration_s.unwrap_or(10),
        repetitions: raw.repetitions.unwrap_or(1),
        accel: raw.accel.unwrap_or_default(),
        interval_ms: raw.interval_ms.unwrap_or(1000),
        boot_timeout_s: raw.boot_timeout_s.unwrap_or(60),
        thread_placement: raw.thread_placement.unwrap_or_default(),
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

    Ok(run)
}

/// `[host]`.
fn host(raw: &RawHost) -> Result<HostSpec, ConfigError> {
    let host = HostSpec {
        cpus: raw
            .cpus
            .as_deref()
            .map(|s| cpu_list("host.cpus", s))
            .transpose()?,
        housekeeping_cpus: match raw.housekeeping_cpus.as_deref() {
            None | Some("") => CpuSet::new(),
            Some(s) => cpu_list("host.housekeeping_cpus", s)?,
        },
        emulator_pin_set: raw
            .emulator_pin_set
            .as_deref()
            .map(|s| cpu_list("host.emulator_pin_set", s))
            .transpose()?,
        overcommit_ratio: raw.overcommit_ratio.unwrap_or(1),
    };
    if host.overcommit_ratio == 0 {
        return Err(ConfigError::new(
            "host.overcommit_ratio",
            "0: must be at least 1 (guests' emulator threads per pCPU of the pin set)",
        ));
    }

    Ok(host)
}

/// `[[guests]]`.
fn guests(raw: &[RawGuest]) -> Result<Vec<Guest>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::new(
            "guests",
            "at least one [[guests]] entry is needed (name, vcpus)",
        ));
    }
    let mut guests = Vec::new();
    let mut names = BTreeSet::new();
    for (i, g) in raw.iter().enumerate() {
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

    Ok(guests)
}

/// `[[layouts]]`.
fn layouts(raw: &[RawLayout], guests: &[Guest]) -> Result<Vec<Layout>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::new(
            "layouts",
            "at least one [[layouts]] entry is needed (kind = float|share|vcpu0|isolate|pinset|custom)",
        ));
    }
    let mut layouts = Vec::new();
    let mut lnames = BTreeSet::new();
    for (i, l) in raw.iter().enumerate() {
        layouts.push(check_layout(i, l, guests, &mut lnames)?);
    }

    Ok(layouts)
}

/// `[[scenarios]]`; default `[idle]`.
fn scenarios(raw: Option<&[RawScenario]>) -> Result<Vec<Scenario>, ConfigError> {
    let Some(v) = raw else {
        return Ok(vec![Scenario {
            name: ScenarioKind::Idle.to_string(),
            kinds: vec![ScenarioKind::Idle],
            rate_hz: 10,
            workers: 1,
            io: IoScenario::default(),
            net: NetScenario::default(),
            queries: None,
            bandwidth_mib_s: DEFAULT_MIGRATE_MIB_S,
        }]);
    };
    if v.is_empty() {
        return Err(ConfigError::new(
            "scenarios",
            format!(
                "empty: leave it out for the default [idle], or list [[scenarios]] with kind = {}",
                ScenarioKind::NAMES
            ),
        ));
    }
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    for (i, s) in v.iter().enumerate() {
        let scenario = scenario(&format!("scenarios[{i}]"), s)?;
        if !names.insert(scenario.name.clone()) {
            return Err(ConfigError::new(
                format!("scenarios[{i}]"),
                format!(
                    "a scenario named \"{}\" is listed twice: give one a different name = \"...\"",
                    scenario.name
                ),
            ));
        }
        out.push(scenario);
    }
    Ok(out)
}

/// Default `migrate` bandwidth cap, MiB/s.
const DEFAULT_MIGRATE_MIB_S: u32 = 128;

/// One `[[scenarios]]` entry at `p`.
fn scenario(p: &str, s: &RawScenario) -> Result<Scenario, ConfigError> {
    let kinds: Vec<ScenarioKind> = match (&s.kind, &s.kinds) {
        (Some(k), None) => vec![*k],
        (None, Some(ks)) if !ks.is_empty() => ks.clone(),
        (None, Some(_)) => {
            return Err(ConfigError::new(
                format!("{p}.kinds"),
                format!("empty: list at least one of {}", ScenarioKind::NAMES),
            ))
        }
        (Some(_), Some(_)) => return Err(ConfigError::new(
            format!("{p}.kinds"),
            "both kind and kinds given: use kind for one disturbance, kinds = [...] for several",
        )),
        (None, None) => {
            return Err(ConfigError::new(
                format!("{p}.kind"),
                format!("missing: set kind = one of {}", ScenarioKind::NAMES),
            ))
        }
    };
    let mut seen = BTreeSet::new();
    for k in &kinds {
        if !seen.insert(*k) {
            return Err(ConfigError::new(
                format!("{p}.kinds"),
                format!("\"{k}\" is listed twice"),
            ));
        }
    }
    if kinds.len() > 1 && seen.contains(&ScenarioKind::Idle) {
        return Err(ConfigError::new(
            format!("{p}.kinds"),
            "idle means nothing runs: it cannot be combined with other kinds",
        ));
    }
    let has = |k: ScenarioKind| kinds.contains(&k);
    let only = |set: bool, key: &str, k: ScenarioKind| -> Result<(), ConfigError> {
        if set && !has(k) {
            Err(only_for(&format!("{p}.{key}"), &format!("kind \"{k}\"")))
        } else {
            Ok(())
        }
    };
    only(s.rate_hz.is_some(), "rate_hz", ScenarioKind::MgmtPoll)?;
    only(s.workers.is_some(), "workers", ScenarioKind::HostStress)?;
    for (set, key) in [
        (s.block_kib.is_some(), "block_kib"),
        (s.queue_depth.is_some(), "queue_depth"),
        (s.read_percent.is_some(), "read_percent"),
        (s.fdatasync_every.is_some(), "fdatasync_every"),
        (s.disk_mib.is_some(), "disk_mib"),
        (s.aio.is_some(), "aio"),
    ] {
        only(set, key, ScenarioKind::GuestIo)?;
    }
    only(s.rate_pps.is_some(), "rate_pps", ScenarioKind::GuestNet)?;
    only(
        s.frame_bytes.is_some(),
        "frame_bytes",
        ScenarioKind::GuestNet,
    )?;
    only(s.queries.is_some(), "queries", ScenarioKind::MgmtStorm)?;
    only(
        s.bandwidth_mib_s.is_some(),
        "bandwidth_mib_s",
        ScenarioKind::Migrate,
    )?;

    let name = match &s.name {
        Some(n) => {
            valid_name(&format!("{p}.name"), n)?;
            n.clone()
        }
        None => kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join("+"),
    };
    let d = IoScenario::default();
    let io = IoScenario {
        block_kib: in_range(
            p,
            "block_kib",
            s.block_kib.unwrap_or(d.block_kib),
            1..=crate::agentcfg::MAX_IO_BLOCK_BYTES / 1024,
            "KiB",
        )?,
        queue_depth: in_range(
            p,
            "queue_depth",
            s.queue_depth.unwrap_or(d.queue_depth),
            1..=crate::agentcfg::MAX_IO_QUEUE_DEPTH,
            "requests",
        )?,
        read_percent: in_range(
            p,
            "read_percent",
            s.read_percent.unwrap_or(d.read_percent),
            0..=100,
            "percent",
        )?,
        fdatasync_every: in_range(
            p,
            "fdatasync_every",
            s.fdatasync_every.unwrap_or(d.fdatasync_every),
            0..=1_000_000,
            "writes",
        )?,
        disk_mib: in_range(
            p,
            "disk_mib",
            s.disk_mib.unwrap_or(d.disk_mib),
            1..=1_048_576,
            "MiB",
        )?,
        aio: s.aio.unwrap_or_default(),
    };
    if u64::from(io.block_kib) > io.disk_mib * 1024 {
        return Err(ConfigError::new(
            format!("{p}.block_kib"),
            format!(
                "{} KiB is larger than the disk ({} MiB): lower block_kib or raise disk_mib",
                io.block_kib, io.disk_mib
            ),
        ));
    }
    let d = NetScenario::default();
    let net = NetScenario {
        rate_pps: in_range(
            p,
            "rate_pps",
            s.rate_pps.unwrap_or(d.rate_pps),
            1..=crate::agentcfg::MAX_NET_RATE_PPS,
            "frames per second",
        )?,
        frame_bytes: in_range(
            p,
            "frame_bytes",
            s.frame_bytes.unwrap_or(d.frame_bytes),
            60..=1514,
            "bytes (an Ethernet frame without FCS)",
        )?,
    };
    if let Some(q) = &s.queries {
        if q.is_empty() || q.iter().any(|c| c.trim().is_empty()) {
            return Err(ConfigError::new(
                format!("{p}.queries"),
                "empty: list QMP commands such as \"query-block\", or leave it out for the default mix",
            ));
        }
    }
    Ok(Scenario {
        name,
        kinds,
        rate_hz: in_range(
            p,
            "rate_hz",
            s.rate_hz.unwrap_or(10),
            1..=10_000,
            "queries per second",
        )?,
        workers: in_range(p, "workers", s.workers.unwrap_or(1), 1..=64, "workers")?,
        io,
        net,
        queries: s.queries.clone(),
        bandwidth_mib_s: in_range(
            p,
            "bandwidth_mib_s",
            s.bandwidth_mib_s.unwrap_or(DEFAULT_MIGRATE_MIB_S),
            1..=100_000,
            "MiB/s",
        )?,
    })
}

/// `value` unless it is outside `range`: then an error naming `p.key`, the range and its unit.
fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    p: &str,
    key: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
    unit: &str,
) -> Result<T, ConfigError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::new(
            format!("{p}.{key}"),
            format!(
                "{value}: must be {}..={} {unit}",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// `[[workloads]]`; default `[busy-poll]`.
fn workloads(raw: Option<&[RawWorkload]>) -> Result<Vec<Workload>, ConfigError> {
    let workloads = match raw {
        None => vec![default_workload(WorkloadKind::BusyPoll)],
        Some([]) => {
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
    Ok(workloads)
}

/// Rules that span sections: what scenarios and workloads need of the host and the guests.
fn across(
    host: &HostSpec,
    guests: &[Guest],
    scenarios: &[Scenario],
    workloads: &[Workload],
) -> Result<(), ConfigError> {
    if scenarios.iter().any(|s| s.has(ScenarioKind::HostStress))
        && host.housekeeping_cpus.is_empty()
    {
        return Err(ConfigError::new(
            "host.housekeeping_cpus",
            "scenario host-stress runs on the host housekeeping pCPUs: set host.housekeeping_cpus",
        ));
    }

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
    for (i, s) in scenarios.iter().enumerate() {
        for k in [ScenarioKind::GuestIo, ScenarioKind::GuestNet] {
            if !s.has(k) {
                continue;
            }
            if let Some(g) = guests.iter().find(|g| g.housekeeping().is_empty()) {
                return Err(ConfigError::new(
                    format!("scenarios[{i}]"),
                    format!("{k} drives its load from a housekeeping vCPU, but guest \"{}\" has none (realtime_mask \"{}\"): leave a vCPU out of the mask", g.name, g.realtime_mask),
                ));
            }
        }
    }

    Ok(())
}

/// `[budgets.<workload>]`, in ns.
fn budgets(
    raw: &BTreeMap<String, RawBudget>,
) -> Result<BTreeMap<WorkloadKind, Budget>, ConfigError> {
    let mut budgets = BTreeMap::new();
    for (key, b) in raw {
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

    Ok(budgets)
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
