//! `[[scenarios]]`: the list, and each scenario's disturbances and their keys.

use std::collections::BTreeSet;

use super::{only_for, valid_name};
use crate::config::raw::RawScenario;
use crate::config::{ConfigError, IoScenario, NetScenario, Scenario, ScenarioKind};

/// `[[scenarios]]`; default `[idle]`.
pub(super) fn scenarios(raw: Option<&[RawScenario]>) -> Result<Vec<Scenario>, ConfigError> {
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
