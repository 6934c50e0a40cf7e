//! `[[layouts]]`: the list, and each layout's keys against its kind.

use std::collections::{BTreeMap, BTreeSet};

use super::{cpu_list, only_for, priority, valid_name};
use crate::config::raw::RawLayout;
use crate::config::{ConfigError, CustomGuest, Guest, Layout, LayoutKind, Policy};

/// `[[layouts]]`.
pub(super) fn layouts(raw: &[RawLayout], guests: &[Guest]) -> Result<Vec<Layout>, ConfigError> {
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
