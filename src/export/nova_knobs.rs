//! A variant's knobs in nova's terms (`pinlat plan --format nova --variant NAME`), each rule
//! nova's own (flavor extra specs reference, nova's libvirt driver):
//! - `hugepages` → `hw:mem_page_size=2MB|1GB`.
//! - `mem_lock = "on"` → `hw:locked_memory=true` (nova 26.0.0, Zed), which nova accepts only
//!   with `hw:mem_page_size` (`LockMemoryForbidden`). nova's libvirt driver locks a realtime
//!   guest's memory (`<locked/>`) on its own, so a realtime flavor is locked either way, and a
//!   variant that measured unlocked memory cannot be reproduced by one.
//! - `pmu` → `hw:pmu=true|false` (nova 20.0.0, Train).
//! - `cpu_host`, `invtsc`, `tsc_deadline` are compute-host settings, not flavor ones:
//!   `[libvirt] cpu_mode = host-passthrough` and `cpu_model_extra_flags` (nova 18.0.0, Rocky).
//! - No flavor extra spec or `nova.conf` option says `migratable='off'`, `kvm-hint-dedicated`,
//!   `-overcommit cpu-pm=on` or `mem-lock=on-fault`; host knobs are the compute host's own
//!   settings, and guest knobs (command line, sysctls) belong to the image.

use crate::config::variant::{GuestKnobs, HostKnobs, HugePageSize, MemLock, Variant};

/// What a variant adds to every flavor of a layout, and to its `nova.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct NovaKnobs {
    /// Extra specs every flavor gets, `key=value`.
    pub specs: Vec<String>,
    /// Lines of `nova.conf`'s `[libvirt]` section (host-wide).
    pub libvirt_conf: Vec<String>,
    /// What nova cannot express, one sentence each.
    pub missing: Vec<String>,
}

/// The variant `v` in nova's terms, for flavors `realtime` (guest name, `hw:cpu_realtime=yes`).
pub(super) fn nova_knobs(v: &Variant, realtime: &[(&str, bool)]) -> NovaKnobs {
    let k = &v.qemu;
    let mut n = NovaKnobs::default();
    if let Some(size) = k.hugepages {
        n.specs.push(format!(
            "hw:mem_page_size={}",
            match size {
                HugePageSize::M2 => "2MB",
                HugePageSize::G1 => "1GB",
            }
        ));
    }
    let rt: Vec<&str> = realtime
        .iter()
        .filter(|(_, r)| *r)
        .map(|(g, _)| *g)
        .collect();
    let not_rt: Vec<&str> = realtime
        .iter()
        .filter(|(_, r)| !*r)
        .map(|(g, _)| *g)
        .collect();
    let names = |gs: &[&str]| {
        gs.iter()
            .map(|g| format!("'{g}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match k.mem_lock {
        Some(MemLock::On) if k.hugepages.is_some() => n.specs.push("hw:locked_memory=true".into()),
        Some(MemLock::On) if !not_rt.is_empty() => n.missing.push(format!(
            "mem_lock = \"on\" for guest(s) {} without hw:cpu_realtime: nova accepts hw:locked_memory only with hw:mem_page_size (LockMemoryForbidden), and locks memory on its own only for realtime flavors; add qemu.hugepages to the variant",
            names(&not_rt)
        )),
        Some(MemLock::OnFault) => n.missing.push(
            "mem_lock = \"on-fault\": nova locks all of a guest's memory at start (hw:locked_memory, <locked/>) or none of it".into(),
        ),
        _ => {}
    }
    if k.mem_lock != Some(MemLock::On) && !rt.is_empty() {
        n.missing.push(format!(
            "unlocked guest memory for realtime guest(s) {}: nova's libvirt driver locks a realtime guest's memory on its own, so nova would run them with memory locked, which this variant did not measure",
            names(&rt)
        ));
    }
    if let Some(pmu) = k.pmu {
        n.specs.push(format!("hw:pmu={pmu}"));
    }
    if k.cpu_host {
        n.libvirt_conf
            .push("# host-wide, not per flavor: the variant's -cpu host (cpu_host = true)".into());
        n.libvirt_conf.push("cpu_mode = host-passthrough".into());
        let flags = super::libvirt_knobs::cpu_flags(k);
        if !flags.is_empty() {
            n.libvirt_conf
                .push(format!("cpu_model_extra_flags = {}", flags.join(", ")));
        }
        n.missing.push(
            "cpu_host's migratable='off': no nova option sets it on the host-passthrough CPU"
                .into(),
        );
    }
    if k.kvm_hint_dedicated {
        n.missing.push(
            "kvm_hint_dedicated = true (<kvm><hint-dedicated state='on'/>, KVM_HINTS_REALTIME): no nova flavor extra spec or option sets it".into(),
        );
    }
    if k.cpu_pm {
        n.missing.push(
            "cpu_pm = true (-overcommit cpu-pm=on): neither nova nor libvirt's domain XML has a setting for it".into(),
        );
    }
    if v.host != HostKnobs::default() {
        let keys: Vec<String> = v
            .host
            .set()
            .iter()
            .map(|(h, val)| format!("host.{} = {val}", h.key()))
            .collect();
        n.missing.push(format!(
            "the variant's host knobs ({}): the compute host's own settings (KVM module parameters, sysctls), outside nova; set them on every compute host",
            keys.join(", ")
        ));
    }
    if v.guest != GuestKnobs::default() {
        n.missing.push(
            "the variant's guest knobs (kernel command line, sysctls): the guest image's own settings; nova does not set them".into(),
        );
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::variant::QemuKnobs;

    fn variant(qemu: QemuKnobs) -> Variant {
        Variant {
            name: "v".into(),
            qemu,
            ..Variant::default()
        }
    }

    #[test]
    fn locked_memory_needs_a_page_size_or_a_realtime_flavor() {
        let on = QemuKnobs {
            mem_lock: Some(MemLock::On),
            ..QemuKnobs::default()
        };
        // Realtime flavors are locked by nova itself: nothing to add, nothing missing.
        let n = nova_knobs(&variant(on.clone()), &[("rt", true)]);
        assert_eq!(n, NovaKnobs::default());
        let n = nova_knobs(&variant(on.clone()), &[("rt", true), ("plain", false)]);
        assert!(n.specs.is_empty());
        assert!(
            n.missing[0].contains("guest(s) 'plain' without hw:cpu_realtime"),
            "{n:?}"
        );
        let hp = QemuKnobs {
            hugepages: Some(HugePageSize::G1),
            ..on
        };
        let n = nova_knobs(&variant(hp), &[("plain", false)]);
        assert_eq!(n.specs, ["hw:mem_page_size=1GB", "hw:locked_memory=true"]);
        assert!(n.missing.is_empty());
    }

    #[test]
    fn unlocked_realtime_memory_is_not_what_nova_runs() {
        let n = nova_knobs(&variant(QemuKnobs::default()), &[("rt", true)]);
        assert!(
            n.missing[0].starts_with("unlocked guest memory for realtime guest(s) 'rt'"),
            "{n:?}"
        );
        assert!(nova_knobs(&variant(QemuKnobs::default()), &[("x", false)])
            .missing
            .is_empty());
    }

    #[test]
    fn host_cpu_flags_go_to_nova_conf() {
        let n = nova_knobs(
            &variant(QemuKnobs {
                cpu_host: true,
                invtsc: true,
                pmu: Some(false),
                ..QemuKnobs::default()
            }),
            &[("x", false)],
        );
        assert_eq!(n.specs, ["hw:pmu=false"]);
        assert_eq!(
            n.libvirt_conf[1..],
            [
                "cpu_mode = host-passthrough",
                "cpu_model_extra_flags = invtsc"
            ]
        );
        assert!(n.missing[0].contains("migratable='off'"));
    }
}
