//! The `[[variants]]` validator: unique names, knobs that need another knob, values in range.
//! Whether a knob can apply on this host (KVM, writable files, free huge pages) is the runner's
//! business before any guest starts.

use std::collections::BTreeSet;

use super::valid_name;
use crate::config::raw::{RawSysctl, RawVariant};
use crate::config::variant::{valid_sysctl_key, GuestKnobs, QemuKnobs, Variant};
use crate::config::ConfigError;

/// `[[variants]]`; none is the untuned matrix of a config without variants.
pub(super) fn variants(raw: &[RawVariant]) -> Result<Vec<Variant>, ConfigError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, v) in raw.iter().enumerate() {
        let p = format!("variants[{i}]");
        valid_name(&format!("{p}.name"), &v.name)?;
        if !seen.insert(v.name.clone()) {
            return Err(ConfigError::new(
                format!("{p}.name"),
                format!(
                    "\"{}\" is used twice: give every variant its own name",
                    v.name
                ),
            ));
        }
        let q = &v.qemu;
        let qemu = QemuKnobs {
            mem_lock: q.mem_lock,
            hugepages: q.hugepages,
            cpu_host: q.cpu_host,
            invtsc: q.invtsc,
            tsc_deadline: q.tsc_deadline,
            pmu: q.pmu,
            kvm_hint_dedicated: q.kvm_hint_dedicated,
            cpu_pm: q.cpu_pm,
        };
        for (key, on) in [
            ("invtsc", q.invtsc),
            ("tsc_deadline", q.tsc_deadline),
            ("pmu", q.pmu.is_some()),
            ("kvm_hint_dedicated", q.kvm_hint_dedicated),
        ] {
            if on && !q.cpu_host {
                return Err(ConfigError::new(
                    format!("{p}.qemu.{key}"),
                    "a -cpu host flag: set qemu.cpu_host = true as well (pinlat's default CPU model has no such flag to set)",
                ));
            }
        }
        let g = &v.guest;
        for (j, t) in g.cmdline_extra.iter().enumerate() {
            if t.is_empty() || t.chars().any(char::is_whitespace) {
                return Err(ConfigError::new(
                    format!("{p}.guest.cmdline_extra[{j}]"),
                    format!("{t:?}: one kernel parameter per element, without spaces"),
                ));
            }
        }
        let mut sysctls = std::collections::BTreeMap::new();
        for (key, value) in &g.sysctls {
            let kp = format!("{p}.guest.sysctls.\"{key}\"");
            if !valid_sysctl_key(key) {
                return Err(ConfigError::new(
                    kp,
                    "not a sysctl name: dotted lower-case names under /proc/sys, e.g. \"kernel.timer_migration\"",
                ));
            }
            let value = match value {
                RawSysctl::Int(n) => n.to_string(),
                RawSysctl::Text(t) => t.clone(),
            };
            if !crate::agentcfg::valid_sysctl_value(&value) {
                return Err(ConfigError::new(
                    kp,
                    format!(
                        "{value:?}: a value of 1-{} bytes on one line",
                        crate::agentcfg::MAX_SYSCTL_VALUE_BYTES
                    ),
                ));
            }
            sysctls.insert(key.clone(), value);
        }
        let guest = GuestKnobs {
            preset: g.preset.unwrap_or_default(),
            idle: g.idle,
            tsc_reliable: g.tsc_reliable.unwrap_or(true),
            mce_off: g.mce_off,
            timer_migration: g.timer_migration,
            cmdline_extra: g.cmdline_extra.clone(),
            sysctls,
        };
        let h = &v.host;
        if let Some(r) = h.sched_rt_runtime_us {
            if !(-1..=1_000_000).contains(&r) {
                return Err(ConfigError::new(
                    format!("{p}.host.sched_rt_runtime_us"),
                    format!("{r}: -1 (no RT throttling) or 0..=1000000 µs of each sched_rt_period_us (default period 1000000)"),
                ));
            }
        }
        if let Some(a) = h.lapic_timer_advance_ns {
            if !(-1..=5_000_000).contains(&a) {
                return Err(ConfigError::new(
                    format!("{p}.host.lapic_timer_advance_ns"),
                    format!("{a}: -1 (adaptive) or 0..=5000000 ns (tuned sweeps 1000-7000)"),
                ));
            }
        }
        out.push(Variant {
            name: v.name.clone(),
            qemu,
            guest,
            host: h.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::config::variant::{CmdlinePreset, GuestIdle, HugePageSize, MemLock};
    use crate::config::Config;

    const MIN: &str = "[[guests]]\nname = \"g\"\nvcpus = 2\n[[layouts]]\nkind = \"vcpu0\"\n";

    fn err(v: &str) -> String {
        Config::from_toml_str(&format!("{MIN}{v}"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn no_variants_is_one_untuned_arm() {
        let c = Config::from_toml_str(MIN).unwrap();
        assert!(c.variants.is_empty());
        assert_eq!(c.variant_axis(), [None]);
    }

    #[test]
    fn every_knob_reads_from_its_key() {
        let c = Config::from_toml_str(&format!(
            "{MIN}[[variants]]\nname = \"base\"\n\
             [[variants]]\nname = \"tuned\"\n\
             qemu.mem_lock = \"on-fault\"\nqemu.hugepages = \"2M\"\nqemu.cpu_host = true\n\
             qemu.invtsc = true\nqemu.tsc_deadline = true\nqemu.pmu = false\n\
             qemu.kvm_hint_dedicated = true\nqemu.cpu_pm = true\n\
             guest.preset = \"realtime-virtual-guest\"\nguest.idle = \"haltpoll\"\n\
             guest.tsc_reliable = false\nguest.mce_off = true\nguest.timer_migration = false\n\
             guest.cmdline_extra = [\"nmi_watchdog=0\"]\n\
             guest.sysctls = {{ \"kernel.sched_rt_runtime_us\" = -1, \"vm.stat_interval\" = \"10\" }}\n\
             host.halt_poll_ns = 0\nhost.lapic_timer_advance_ns = -1\nhost.sched_rt_runtime_us = 980000\n"
        ))
        .unwrap();
        assert_eq!(c.variant_axis().len(), 2);
        assert!(c.variants[0].is_baseline());
        let v = &c.variants[1];
        assert_eq!(v.qemu.mem_lock, Some(MemLock::OnFault));
        assert_eq!(v.qemu.hugepages, Some(HugePageSize::M2));
        assert!(v.qemu.cpu_host && v.qemu.invtsc && v.qemu.tsc_deadline);
        assert!(v.qemu.kvm_hint_dedicated && v.qemu.cpu_pm);
        assert_eq!(v.qemu.pmu, Some(false));
        assert_eq!(v.guest.preset, CmdlinePreset::RealtimeVirtualGuest);
        assert_eq!(v.guest.idle, Some(GuestIdle::Haltpoll));
        assert!(!v.guest.tsc_reliable && v.guest.mce_off);
        assert_eq!(v.guest.timer_migration, Some(false));
        assert_eq!(v.guest.sysctls["kernel.sched_rt_runtime_us"], "-1");
        assert_eq!(v.guest.sysctls["vm.stat_interval"], "10");
        assert_eq!(v.host.halt_poll_ns, Some(0));
        assert_eq!(v.host.lapic_timer_advance_ns, Some(-1));
        assert_eq!(v.host.sched_rt_runtime_us, Some(980_000));
        let round: Config = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(round, c, "plan.json carries the variants unchanged");
    }

    #[test]
    fn bad_variants_name_the_key_and_the_fix() {
        let e = err("[[variants]]\nname = \"a\"\n[[variants]]\nname = \"a\"\n");
        assert!(
            e.starts_with("variants[1].name: \"a\" is used twice"),
            "{e}"
        );
        let e = err("[[variants]]\nname = \"a b\"\n");
        assert!(e.starts_with("variants[0].name:"), "{e}");
        let e = err("[[variants]]\nname = \"a\"\nqemu.invtsc = true\n");
        assert!(
            e.starts_with("variants[0].qemu.invtsc:") && e.contains("cpu_host = true"),
            "{e}"
        );
        let e = err("[[variants]]\nname = \"a\"\nqemu.mem_lock = \"yes\"\n");
        assert!(e.starts_with("variants[0].qemu.mem_lock:"), "{e}");
        let e = err("[[variants]]\nname = \"a\"\nqemu.bogus = 1\n");
        assert!(e.starts_with("variants[0].qemu.bogus:"), "{e}");
        let e = err("[[variants]]\nname = \"a\"\nhost.sched_rt_runtime_us = -5\n");
        assert!(
            e.starts_with("variants[0].host.sched_rt_runtime_us: -5"),
            "{e}"
        );
        let e = err("[[variants]]\nname = \"a\"\nhost.lapic_timer_advance_ns = -2\n");
        assert!(
            e.starts_with("variants[0].host.lapic_timer_advance_ns:"),
            "{e}"
        );
        let e = err("[[variants]]\nname = \"a\"\nguest.sysctls = { \"../etc\" = 1 }\n");
        assert!(
            e.starts_with("variants[0].guest.sysctls.\"../etc\":"),
            "{e}"
        );
        let e = err("[[variants]]\nname = \"a\"\nguest.cmdline_extra = [\"a b\"]\n");
        assert!(e.starts_with("variants[0].guest.cmdline_extra[0]:"), "{e}");
        let e = err("[[variants]]\nname = \"a\"\nhost.swappiness = 1\n");
        assert!(e.starts_with("variants[0].host.swappiness:"), "{e}");
    }
}
