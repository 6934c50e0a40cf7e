//! Checking a config as written ([`super::raw`]) into a [`Config`]: one validator per
//! section, each naming the key path and the fix of the first problem it finds. Pure: no
//! syscalls (the host's CPUs are the planner's business, [`crate::plan`]).

use std::collections::BTreeMap;

use super::raw::{RawBudget, RawConfig, RawHost, RawRun};
use super::{
    Budget, Config, ConfigError, Guest, HostSpec, RunSettings, Scenario, ScenarioKind, Workload,
    WorkloadKind,
};
use crate::cpuset::CpuSet;

mod guest;
mod layout;
mod scenario;
mod variant;
mod workload;

use guest::guests;
use layout::layouts;
use scenario::scenarios;
use variant::variants;
use workload::workloads;

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
    let variants = variants(&raw.variants)?;
    Ok(Config {
        run,
        host,
        guests,
        layouts,
        scenarios,
        workloads,
        budgets,
        variants,
    })
}

/// `run.duration` (`"12h"`, `"90m"`, a whole number of seconds in any unit) or
/// `run.duration_s`, not both: (the key used, seconds).
fn run_duration(raw: &RawRun) -> Result<(&'static str, u64), ConfigError> {
    match (&raw.duration, raw.duration_s) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            "run.duration",
            "set either run.duration (\"12h\") or run.duration_s (seconds), not both",
        )),
        (Some(text), None) => crate::duration::parse_positive_in(text, crate::duration::Unit::S)
            .map(|s| ("run.duration", s))
            .map_err(|e| ConfigError::new("run.duration", e.to_string())),
        (None, s) => Ok(("run.duration_s", s.unwrap_or(10))),
    }
}

/// `[run]`.
fn run(raw: &RawRun) -> Result<RunSettings, ConfigError> {
    let (duration_key, duration_s) = run_duration(raw)?;
    let run = RunSettings {
        duration_s,
        repetitions: raw.repetitions.unwrap_or(1),
        accel: raw.accel.unwrap_or_default(),
        interval_ms: raw.interval_ms.unwrap_or(1000),
        boot_timeout_s: raw.boot_timeout_s.unwrap_or(60),
        thread_placement: raw.thread_placement.unwrap_or_default(),
        launcher: raw.launcher.unwrap_or_default(),
        boot_per: raw.boot_per.unwrap_or(crate::kinds::BootPer::Repetition),
        order_seed: raw.order_seed,
    };
    if run.duration_s == 0 || run.duration_s > 7 * 24 * 3600 {
        let given = match &raw.duration {
            Some(text) => format!("\"{text}\" ({} s)", run.duration_s),
            None => run.duration_s.to_string(),
        };
        return Err(ConfigError::new(
            duration_key,
            format!("{given}: must be 1 second to 7 days (604800, or \"168h\")"),
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

#[cfg(test)]
mod tests {
    use crate::config::{Config, RunSettings};
    use crate::kinds::LauncherKind;

    const GUEST: &str = "[[guests]]\nname = \"g\"\nvcpus = 2\n[[layouts]]\nkind = \"vcpu0\"\n";

    #[test]
    fn the_launcher_is_qemu_unless_the_config_says_libvirt() {
        let c = Config::from_toml_str(GUEST).unwrap();
        assert_eq!(c.run.launcher, LauncherKind::Qemu);
        let c = Config::from_toml_str(&format!("[run]\nlauncher = \"libvirt\"\n{GUEST}")).unwrap();
        assert_eq!(c.run.launcher, LauncherKind::Libvirt);
        let e = Config::from_toml_str(&format!("[run]\nlauncher = \"virsh\"\n{GUEST}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("launcher") && e.contains("libvirt"), "{e}");
    }

    #[test]
    fn a_boot_serves_a_repetition_unless_the_config_says_measurement() {
        use crate::kinds::BootPer;
        let c = Config::from_toml_str(GUEST).unwrap();
        assert_eq!(
            (c.run.boot_per, c.run.order_seed),
            (BootPer::Repetition, None)
        );
        let c = Config::from_toml_str(&format!(
            "[run]\nboot_per = \"measurement\"\norder_seed = 42\n{GUEST}"
        ))
        .unwrap();
        assert_eq!(
            (c.run.boot_per, c.run.order_seed),
            (BootPer::Measurement, Some(42))
        );
        let e = Config::from_toml_str(&format!("[run]\nboot_per = \"run\"\n{GUEST}"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("boot_per") && e.contains("repetition") && e.contains("measurement"),
            "{e}"
        );
        // A plan.json of before boot_per ran one boot per measurement, and reads so.
        let mut json = serde_json::to_value(&c.run).unwrap();
        json.as_object_mut().unwrap().remove("boot_per");
        let old: RunSettings = serde_json::from_value(json).unwrap();
        assert_eq!(old.boot_per, BootPer::Measurement);
    }
}
