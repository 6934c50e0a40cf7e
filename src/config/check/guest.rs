//! The `[[guests]]` validator.

use std::collections::BTreeSet;

use super::valid_name;
use crate::config::raw::RawGuest;
use crate::config::{ConfigError, Guest};
use crate::cpuset::CpuSet;

/// `[[guests]]`.
pub(super) fn guests(raw: &[RawGuest]) -> Result<Vec<Guest>, ConfigError> {
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
