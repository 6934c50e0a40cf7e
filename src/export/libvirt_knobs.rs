//! A variant's QEMU knobs ([`QemuKnobs`]) in libvirt's domain XML, as libvirt's "Memory
//! Backing", "CPU model and topology" and "Hypervisor features" sections document them:
//!
//! | knob | domain XML |
//! |---|---|
//! | `mem_lock = "on"` | `<memoryBacking><locked/>` (libvirt writes `-overcommit mem-lock=on`) |
//! | `hugepages` | `<memoryBacking><hugepages><page size='…' unit='KiB'/>` and `<allocation mode='immediate'/>` (preallocated) |
//! | `cpu_host` | `<cpu mode='host-passthrough' migratable='off'>` |
//! | `invtsc`, `tsc_deadline` | `<feature policy='require' name='invtsc'/>`, `name='tsc-deadline'` in that `<cpu>` |
//! | `pmu` | `<features><pmu state='on\|off'/>` |
//! | `kvm_hint_dedicated` | `<features><kvm><hint-dedicated state='on'/>` (libvirt accepts it with host-passthrough only) |
//!
//! What the domain XML cannot say, said plainly in a comment:
//! - `cpu_pm`: libvirt has no element for `-overcommit cpu-pm=on` (libvirt 9.0's QEMU driver
//!   writes `-overcommit mem-lock=` only). It goes through `<qemu:commandline>` as
//!   `-overcommit cpu-pm=on,mem-lock=on|off`, repeating libvirt's own mem-lock: before QEMU
//!   9.1 a second `-overcommit` reset every key it did not name.
//! - `mem_lock = "on-fault"`: `<locked/>` is `mem-lock=on`; nothing asks for `MCL_ONFAULT`.

use std::fmt::Write;

use crate::config::variant::{MemLock, QemuKnobs};

/// A variant's QEMU knobs as pieces of a `<domain>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnobsXml {
    /// `<memoryBacking>` with its children, one line each, unindented; empty when no knob
    /// needs it.
    pub memory_backing: Vec<String>,
    /// Children of `<features>`, one line each, unindented.
    pub features: Vec<String>,
    /// `<cpu>` with its children, one line each, unindented; empty without `cpu_host`.
    pub cpu: Vec<String>,
    /// QEMU arguments for what the domain XML cannot say (`<qemu:commandline>`).
    pub qemu_args: Vec<String>,
    /// What libvirt's domain XML cannot express, one sentence each.
    pub not_expressible: Vec<String>,
}

/// The CPU feature flags the knobs require (`invtsc`, `tsc-deadline`), as QEMU, libvirt and
/// nova's `cpu_model_extra_flags` all spell them.
pub fn cpu_flags(k: &QemuKnobs) -> Vec<&'static str> {
    [("invtsc", k.invtsc), ("tsc-deadline", k.tsc_deadline)]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(f, _)| f)
        .collect()
}

/// The domain XML of knobs `k`.
pub fn knobs_xml(k: &QemuKnobs) -> KnobsXml {
    let mut x = KnobsXml::default();
    let locked = k.mem_lock == Some(MemLock::On);
    if k.hugepages.is_some() || locked {
        x.memory_backing.push("<memoryBacking>".into());
        if let Some(size) = k.hugepages {
            x.memory_backing.push("  <hugepages>".into());
            x.memory_backing
                .push(format!("    <page size='{}' unit='KiB'/>", size.kib()));
            x.memory_backing.push("  </hugepages>".into());
        }
        if locked {
            x.memory_backing.push("  <locked/>".into());
        }
        if k.hugepages.is_some() {
            x.memory_backing
                .push("  <allocation mode='immediate'/>".into());
        }
        x.memory_backing.push("</memoryBacking>".into());
    }
    if k.mem_lock == Some(MemLock::OnFault) {
        x.not_expressible.push(
            "mem_lock = \"on-fault\" (-overcommit mem-lock=on-fault, QEMU 10.0): libvirt's <memoryBacking><locked/> locks every page at start (mem-lock=on) and nothing asks for MCL_ONFAULT; pinlat's libvirt launcher refuses it".into(),
        );
    }
    if k.kvm_hint_dedicated {
        x.features.push("<kvm>".into());
        x.features.push("  <hint-dedicated state='on'/>".into());
        x.features.push("</kvm>".into());
    }
    if let Some(pmu) = k.pmu {
        x.features
            .push(format!("<pmu state='{}'/>", if pmu { "on" } else { "off" }));
    }
    if k.cpu_host {
        let flags = cpu_flags(k);
        if flags.is_empty() {
            x.cpu
                .push("<cpu mode='host-passthrough' migratable='off'/>".into());
        } else {
            x.cpu
                .push("<cpu mode='host-passthrough' migratable='off'>".into());
            for f in flags {
                x.cpu
                    .push(format!("  <feature policy='require' name='{f}'/>"));
            }
            x.cpu.push("</cpu>".into());
        }
    }
    if k.cpu_pm {
        let lock = if locked { "on" } else { "off" };
        x.qemu_args.push("-overcommit".into());
        x.qemu_args.push(format!("cpu-pm=on,mem-lock={lock}"));
        x.not_expressible.push(format!(
            "cpu_pm = true (-overcommit cpu-pm=on): libvirt's domain XML has no element for it; a whole domain passes -overcommit cpu-pm=on,mem-lock={lock} through <qemu:commandline> (mem-lock repeated: before QEMU 9.1 a second -overcommit resets the keys it leaves out)"
        ));
    }
    x
}

/// Writes `lines` after `indent`.
pub(super) fn write_lines(out: &mut String, lines: &[String], indent: &str) {
    for l in lines {
        let _ = writeln!(out, "{indent}{l}");
    }
}

/// The elements of `x` that stand alone in a fragment (`pinlat plan --format libvirt`):
/// `<memoryBacking>`, `<features>`, `<cpu>`, and a comment per thing libvirt cannot express,
/// each line after `indent`.
pub fn write_fragment(out: &mut String, x: &KnobsXml, indent: &str) {
    for n in &x.not_expressible {
        let _ = writeln!(out, "{indent}<!-- NOT EXPRESSIBLE in libvirt: {n} -->");
    }
    write_lines(out, &x.memory_backing, indent);
    if !x.features.is_empty() {
        let _ = writeln!(out, "{indent}<features>");
        write_lines(out, &x.features, &format!("{indent}  "));
        let _ = writeln!(out, "{indent}</features>");
    }
    write_lines(out, &x.cpu, indent);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::variant::HugePageSize;

    #[test]
    fn every_knob_has_its_element_or_says_why_not() {
        assert_eq!(knobs_xml(&QemuKnobs::default()), KnobsXml::default());
        let x = knobs_xml(&QemuKnobs {
            mem_lock: Some(MemLock::On),
            hugepages: Some(HugePageSize::G1),
            cpu_host: true,
            invtsc: true,
            tsc_deadline: true,
            pmu: Some(false),
            kvm_hint_dedicated: true,
            cpu_pm: true,
        });
        assert_eq!(
            x.memory_backing,
            [
                "<memoryBacking>",
                "  <hugepages>",
                "    <page size='1048576' unit='KiB'/>",
                "  </hugepages>",
                "  <locked/>",
                "  <allocation mode='immediate'/>",
                "</memoryBacking>"
            ]
        );
        assert_eq!(
            x.features,
            [
                "<kvm>",
                "  <hint-dedicated state='on'/>",
                "</kvm>",
                "<pmu state='off'/>"
            ]
        );
        assert_eq!(
            x.cpu,
            [
                "<cpu mode='host-passthrough' migratable='off'>",
                "  <feature policy='require' name='invtsc'/>",
                "  <feature policy='require' name='tsc-deadline'/>",
                "</cpu>"
            ]
        );
        assert_eq!(x.qemu_args, ["-overcommit", "cpu-pm=on,mem-lock=on"]);
        assert_eq!(x.not_expressible.len(), 1);
    }

    #[test]
    fn on_fault_is_said_not_approximated() {
        let x = knobs_xml(&QemuKnobs {
            mem_lock: Some(MemLock::OnFault),
            ..QemuKnobs::default()
        });
        assert!(x.memory_backing.is_empty(), "no <locked/> for on-fault");
        assert!(x.not_expressible[0].contains("on-fault"));
        // mem-lock=off is libvirt's default: nothing to write.
        let off = knobs_xml(&QemuKnobs {
            mem_lock: Some(MemLock::Off),
            ..QemuKnobs::default()
        });
        assert_eq!(off, KnobsXml::default());
    }
}
