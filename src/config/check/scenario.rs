//! `[[scenarios]]`: the list, and each scenario's disturbances and their keys.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;

use super::{only_for, valid_name};
use crate::agentcfg::{MAX_IO_BLOCK_BYTES, MAX_IO_QUEUE_DEPTH, MAX_NET_RATE_PPS};
use crate::config::raw::RawScenario;
use crate::config::{ConfigError, IoScenario, NetScenario, Scenario, ScenarioKind};
use ScenarioKind::{GuestIo, GuestNet, HostStress, MgmtPoll, Migrate};

/// `[[scenarios]]`; default `[idle]`, as `[[scenarios]] kind = "idle"` would give it (the
/// keys' defaults are [`scenario`]'s alone).
pub(super) fn scenarios(raw: Option<&[RawScenario]>) -> Result<Vec<Scenario>, ConfigError> {
    let Some(v) = raw else {
        let idle = RawScenario {
            kind: Some(ScenarioKind::Idle),
            ..RawScenario::default()
        };
        return Ok(vec![scenario("scenarios", &idle)?]);
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
    // Keys only one kind of disturbance reads.
    RATE_HZ.only(p, &kinds, s.rate_hz)?;
    WORKERS.only(p, &kinds, s.workers)?;
    BLOCK_KIB.only(p, &kinds, s.block_kib)?;
    QUEUE_DEPTH.only(p, &kinds, s.queue_depth)?;
    READ_PERCENT.only(p, &kinds, s.read_percent)?;
    FDATASYNC_EVERY.only(p, &kinds, s.fdatasync_every)?;
    DISK_MIB.only(p, &kinds, s.disk_mib)?;
    only(p, &kinds, s.aio.is_some(), "aio", ScenarioKind::GuestIo)?;
    RATE_PPS.only(p, &kinds, s.rate_pps)?;
    FRAME_BYTES.only(p, &kinds, s.frame_bytes)?;
    only(
        p,
        &kinds,
        s.queries.is_some(),
        "queries",
        ScenarioKind::MgmtStorm,
    )?;
    BANDWIDTH_MIB_S.only(p, &kinds, s.bandwidth_mib_s)?;

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
        block_kib: BLOCK_KIB.value(p, s.block_kib, d.block_kib)?,
        queue_depth: QUEUE_DEPTH.value(p, s.queue_depth, d.queue_depth)?,
        read_percent: READ_PERCENT.value(p, s.read_percent, d.read_percent)?,
        fdatasync_every: FDATASYNC_EVERY.value(p, s.fdatasync_every, d.fdatasync_every)?,
        disk_mib: DISK_MIB.value(p, s.disk_mib, d.disk_mib)?,
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
        rate_pps: RATE_PPS.value(p, s.rate_pps, d.rate_pps)?,
        frame_bytes: FRAME_BYTES.value(p, s.frame_bytes, d.frame_bytes)?,
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
        rate_hz: RATE_HZ.value(p, s.rate_hz, 10)?,
        workers: WORKERS.value(p, s.workers, 1)?,
        io,
        net,
        queries: s.queries.clone(),
        bandwidth_mib_s: BANDWIDTH_MIB_S.value(p, s.bandwidth_mib_s, DEFAULT_MIGRATE_MIB_S)?,
    })
}

/// An error naming `p.key` when `key` is given to a scenario without `kind`, the one
/// disturbance that reads it.
fn only(
    p: &str,
    kinds: &[ScenarioKind],
    given: bool,
    key: &str,
    kind: ScenarioKind,
) -> Result<(), ConfigError> {
    if given && !kinds.contains(&kind) {
        Err(only_for(&format!("{p}.{key}"), &format!("kind \"{kind}\"")))
    } else {
        Ok(())
    }
}

/// A numeric key of `[[scenarios]]`: the disturbance that reads it, what it allows, and the
/// unit an error names.
struct Key<T> {
    name: &'static str,
    kind: ScenarioKind,
    range: RangeInclusive<T>,
    unit: &'static str,
}

impl<T> Key<T> {
    const fn new(
        name: &'static str,
        kind: ScenarioKind,
        range: RangeInclusive<T>,
        unit: &'static str,
    ) -> Self {
        Key {
            name,
            kind,
            range,
            unit,
        }
    }
}

impl<T: PartialOrd + std::fmt::Display + Copy> Key<T> {
    /// [`only`] for this key.
    fn only(&self, p: &str, kinds: &[ScenarioKind], given: Option<T>) -> Result<(), ConfigError> {
        only(p, kinds, given.is_some(), self.name, self.kind)
    }

    /// The value given, else `default`, unless outside the range: then an error naming
    /// `p.name`, the range and the unit.
    fn value(&self, p: &str, given: Option<T>, default: T) -> Result<T, ConfigError> {
        let value = given.unwrap_or(default);
        if self.range.contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::new(
                format!("{p}.{}", self.name),
                format!(
                    "{value}: must be {}..={} {}",
                    self.range.start(),
                    self.range.end(),
                    self.unit
                ),
            ))
        }
    }
}

// What each numeric key allows.
const RATE_HZ: Key<u32> = Key::new("rate_hz", MgmtPoll, 1..=10_000, "queries per second");
const WORKERS: Key<u32> = Key::new("workers", HostStress, 1..=64, "workers");
const BLOCK_KIB: Key<u32> = Key::new("block_kib", GuestIo, 1..=MAX_IO_BLOCK_BYTES / 1024, "KiB");
const QUEUE_DEPTH: Key<u32> = Key::new("queue_depth", GuestIo, 1..=MAX_IO_QUEUE_DEPTH, "requests");
const READ_PERCENT: Key<u8> = Key::new("read_percent", GuestIo, 0..=100, "percent");
const FDATASYNC_EVERY: Key<u32> = Key::new("fdatasync_every", GuestIo, 0..=1_000_000, "writes");
const DISK_MIB: Key<u64> = Key::new("disk_mib", GuestIo, 1..=1_048_576, "MiB");
const RATE_PPS: Key<u32> = Key::new(
    "rate_pps",
    GuestNet,
    1..=MAX_NET_RATE_PPS,
    "frames per second",
);
const FRAME_BYTES: Key<u32> = Key::new(
    "frame_bytes",
    GuestNet,
    60..=1514,
    "bytes (an Ethernet frame without FCS)",
);
const BANDWIDTH_MIB_S: Key<u32> = Key::new("bandwidth_mib_s", Migrate, 1..=100_000, "MiB/s");
