//! libvirt domain XML for each guest of each layout: the CPU elements (`<vcpu>`, `<iothreads>`
//! and `<cputune>` with `vcpupin`, `emulatorpin`, `iothreadpin` and `vcpusched`, as documented
//! in libvirt's "CPU Allocation" and "CPU Tuning" sections of the domain XML format), alone
//! (`pinlat plan --format libvirt`) or in a whole `<domain>` (`--format libvirt-domain`, and
//! [`domain`] for a launcher). CPU lists use libvirt's own syntax, which
//! [`CpuSet`](crate::cpuset::CpuSet) prints canonically.
//!
//! `float` pins no thread on its own, but the plan confines every thread to the config's host
//! CPUs: `<vcpu placement='static' cpuset='…'>` says that, and libvirt applies it to the
//! emulator threads and iothreads as well as the vCPUs when no `emulatorpin`/`iothreadpin`
//! says otherwise.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use super::libvirt_knobs::{knobs_xml, write_fragment, write_lines};
use crate::config::variant::{QemuKnobs, Variant};
use crate::config::{AccelChoice, Config, Guest, Policy};
use crate::cpuset::CpuSet;
use crate::plan::{GuestPlacement, LayoutPlan, Plan};
use crate::report::escape_xml;

/// The `type` of a libvirt `<domain>`: which accelerator libvirt asks QEMU for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainType {
    /// `kvm`: hardware virtualization.
    Kvm,
    /// `qemu`: QEMU's TCG emulation.
    Qemu,
}

impl DomainType {
    /// The domain type for a config's `run.accel`: `qemu` for `tcg`, else `kvm` (a domain does
    /// not fall back from KVM to TCG as `auto` does).
    pub fn for_accel(accel: AccelChoice) -> DomainType {
        match accel {
            AccelChoice::Tcg => DomainType::Qemu,
            AccelChoice::Kvm | AccelChoice::Auto => DomainType::Kvm,
        }
    }

    /// The value of `<domain type='…'>`.
    pub fn as_str(self) -> &'static str {
        match self {
            DomainType::Kvm => "kvm",
            DomainType::Qemu => "qemu",
        }
    }
}

/// A direct kernel boot: `<kernel>`, `<initrd>` and `<cmdline>` of the domain's `<os>`.
#[derive(Debug, Clone, Copy)]
pub struct DirectBoot<'a> {
    /// The guest kernel (bzImage).
    pub kernel: &'a Path,
    /// The initramfs, if any.
    pub initrd: Option<&'a Path>,
    /// The kernel command line.
    pub cmdline: &'a str,
}

/// Renders the CPU elements of every (layout, guest), each preceded by a comment naming them,
/// and with a `variant`, its QEMU knobs' elements ([`super::libvirt_knobs`]).
pub fn render(plan: &Plan, config: &Config, variant: Option<&Variant>) -> String {
    let knobs = variant.map(|v| knobs_xml(&v.qemu)).unwrap_or_default();
    let mut out = String::new();
    for l in &plan.layouts {
        for (g, gc) in l.guests.iter().zip(&config.guests) {
            let _ = writeln!(out, "{}", heading(l, gc, variant));
            cpu_elements(&mut out, g, gc, "");
            write_fragment(&mut out, &knobs, "");
        }
    }
    out
}

/// Renders one whole `<domain>` per (layout, guest), each preceded by a comment naming them,
/// with a `variant`'s QEMU knobs, and no boot device: add a disk or a `<kernel>` to boot it.
pub fn render_domains(plan: &Plan, config: &Config, variant: Option<&Variant>) -> String {
    let ty = DomainType::for_accel(config.run.accel);
    let extras = DomainExtras {
        knobs: variant.map(|v| &v.qemu),
        ..DomainExtras::default()
    };
    let mut out = String::new();
    for l in &plan.layouts {
        for (g, gc) in l.guests.iter().zip(&config.guests) {
            let _ = writeln!(out, "{}", heading(l, gc, variant));
            out.push_str(&domain_with(l, g, gc, ty, None, &extras));
        }
    }
    out
}

/// The name of guest `guest`'s domain in layout `layout`: `pinlat-<layout>-<guest>` (both names
/// are checked to be plain: letters, digits, `-`, `_`).
pub fn domain_name(layout: &str, guest: &str) -> String {
    format!("pinlat-{layout}-{guest}")
}

/// One guest's `<domain>` in layout `l`: name [`domain_name`], the guest's memory,
/// the CPU elements of [`render`], a serial console, and `boot` if given (without it the domain
/// has no boot device, and the `<os>` says so in a comment).
pub fn domain(
    l: &LayoutPlan,
    g: &GuestPlacement,
    gc: &Guest,
    ty: DomainType,
    boot: Option<&DirectBoot<'_>>,
) -> String {
    domain_with(l, g, gc, ty, boot, &DomainExtras::default())
}

/// What a launcher adds to a [`domain`] to run it: the one builder stays the one source of the
/// CPU elements, whoever starts the domain.
#[derive(Debug, Clone, Default)]
pub struct DomainExtras<'a> {
    /// Children of `<domain>` after `<os>`, `<features>` and `<cpu>` (`<on_poweroff>`…),
    /// verbatim.
    pub elements: &'a str,
    /// Children of `<features>` (`<acpi/>`), one each; the knobs' own follow them.
    pub features: &'a [&'a str],
    /// The `<cpu>` element, verbatim (indented, with its newline), unless the knobs set
    /// `cpu_host`, whose `<cpu mode='host-passthrough'>` replaces it.
    pub cpu: &'a str,
    /// A variant's QEMU knobs ([`super::libvirt_knobs`]); `None` sets none.
    pub knobs: Option<&'a QemuKnobs>,
    /// Children of `<devices>`, verbatim; empty means a `pty` serial console.
    pub devices: &'a str,
    /// QEMU arguments passed through libvirt's QEMU namespace (`<qemu:commandline>`), for what
    /// the domain XML cannot say; each escaped here.
    pub qemu_args: &'a [String],
}

/// Escapes text for a domain XML attribute or element (a launcher's [`DomainExtras`]).
pub fn escape(text: &str) -> String {
    escape_xml(text)
}

/// libvirt's QEMU namespace for `<qemu:commandline>`.
pub const QEMU_NAMESPACE: &str = "http://libvirt.org/schemas/domain/qemu/1.0";

/// [`domain`] with a launcher's [`DomainExtras`].
pub fn domain_with(
    l: &LayoutPlan,
    g: &GuestPlacement,
    gc: &Guest,
    ty: DomainType,
    boot: Option<&DirectBoot<'_>>,
    extras: &DomainExtras<'_>,
) -> String {
    let knobs = extras.knobs.map(knobs_xml).unwrap_or_default();
    let mut qemu_args: Vec<String> = extras.qemu_args.to_vec();
    qemu_args.extend(knobs.qemu_args.iter().cloned());
    let mut out = String::new();
    if qemu_args.is_empty() {
        let _ = writeln!(out, "<domain type='{}'>", ty.as_str());
    } else {
        let _ = writeln!(
            out,
            "<domain type='{}' xmlns:qemu='{QEMU_NAMESPACE}'>",
            ty.as_str()
        );
    }
    let _ = writeln!(out, "  <name>{}</name>", domain_name(&l.name, &gc.name));
    let _ = writeln!(out, "  <memory unit='MiB'>{}</memory>", gc.memory_mib);
    for n in &knobs.not_expressible {
        let _ = writeln!(out, "  <!-- NOT EXPRESSIBLE in libvirt: {n} -->");
    }
    write_lines(&mut out, &knobs.memory_backing, "  ");
    cpu_elements(&mut out, g, gc, "  ");
    let _ = writeln!(out, "  <os>");
    let _ = writeln!(out, "    <type arch='x86_64'>hvm</type>");
    match boot {
        Some(b) => {
            let path = |p: &Path| escape_xml(&p.display().to_string());
            let _ = writeln!(out, "    <kernel>{}</kernel>", path(b.kernel));
            if let Some(initrd) = b.initrd {
                let _ = writeln!(out, "    <initrd>{}</initrd>", path(initrd));
            }
            let _ = writeln!(out, "    <cmdline>{}</cmdline>", escape_xml(b.cmdline));
        }
        None => {
            let _ = writeln!(
                out,
                "    <!-- no boot device: add <kernel> here, or a <disk> below with <boot dev='hd'/> -->"
            );
        }
    }
    let _ = writeln!(out, "  </os>");
    if !extras.features.is_empty() || !knobs.features.is_empty() {
        let _ = writeln!(out, "  <features>");
        for f in extras.features {
            let _ = writeln!(out, "    {f}");
        }
        write_lines(&mut out, &knobs.features, "    ");
        let _ = writeln!(out, "  </features>");
    }
    if knobs.cpu.is_empty() {
        out.push_str(extras.cpu);
    } else {
        write_lines(&mut out, &knobs.cpu, "  ");
    }
    out.push_str(extras.elements);
    let _ = writeln!(out, "  <devices>");
    if extras.devices.is_empty() {
        let _ = writeln!(out, "    <serial type='pty'/>");
        let _ = writeln!(out, "    <console type='pty'/>");
    } else {
        out.push_str(extras.devices);
    }
    let _ = writeln!(out, "  </devices>");
    if !qemu_args.is_empty() {
        let _ = writeln!(out, "  <qemu:commandline>");
        for a in &qemu_args {
            let _ = writeln!(out, "    <qemu:arg value='{}'/>", escape_xml(a));
        }
        let _ = writeln!(out, "  </qemu:commandline>");
    }
    let _ = writeln!(out, "</domain>");
    out
}

fn heading(l: &LayoutPlan, gc: &Guest, variant: Option<&Variant>) -> String {
    let v = variant.map_or(String::new(), |v| format!(", variant '{}'", v.name));
    format!(
        "<!-- pinlat layout '{}' ({}){v}, guest '{}': {} vCPUs, realtime vCPUs {} -->",
        l.name, l.kind, gc.name, gc.vcpus, gc.realtime
    )
}

/// `<vcpu>`, `<iothreads>` and `<cputune>` (when it has anything to say) of guest `g`, each
/// line after `indent`.
fn cpu_elements(out: &mut String, g: &GuestPlacement, gc: &Guest, indent: &str) {
    if g.pinned {
        let _ = writeln!(out, "{indent}<vcpu placement='static'>{}</vcpu>", gc.vcpus);
    } else {
        // float: the planner gives every thread the same set, the config's host CPUs.
        let _ = writeln!(
            out,
            "{indent}<!-- float: no thread pinned on its own; every thread on the <vcpu> cpuset -->"
        );
        let _ = writeln!(
            out,
            "{indent}<vcpu placement='static' cpuset='{}'>{}</vcpu>",
            g.all_cpus(),
            gc.vcpus
        );
    }
    if gc.iothreads > 0 {
        let _ = writeln!(out, "{indent}<iothreads>{}</iothreads>", gc.iothreads);
    }
    let mut tune = Vec::new();
    if g.pinned {
        for v in &g.vcpus {
            tune.push(format!("<vcpupin vcpu='{}' cpuset='{}'/>", v.vcpu, v.cpus));
        }
        tune.push(format!("<emulatorpin cpuset='{}'/>", g.emulator_cpus));
        for id in 1..=gc.iothreads {
            tune.push(format!(
                "<iothreadpin iothread='{id}' cpuset='{}'/>",
                g.iothread_cpus
            ));
        }
    }
    // One vcpusched per priority, listing its vCPUs.
    let mut by_prio: BTreeMap<u8, CpuSet> = BTreeMap::new();
    for v in g.vcpus.iter().filter(|v| v.sched.policy == Policy::Fifo) {
        by_prio.entry(v.sched.priority).or_default().insert(v.vcpu);
    }
    for (prio, vcpus) in by_prio {
        tune.push(format!(
            "<vcpusched vcpus='{vcpus}' scheduler='fifo' priority='{prio}'/>"
        ));
    }
    if tune.is_empty() {
        return;
    }
    let _ = writeln!(out, "{indent}<cputune>");
    for t in tune {
        let _ = writeln!(out, "{indent}  {t}");
    }
    let _ = writeln!(out, "{indent}</cputune>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(toml: &str, online: &str) -> (Config, Plan) {
        let c = Config::from_toml_str(toml).unwrap();
        let p = Plan::new(&c, &CpuSet::parse(online).unwrap()).unwrap();
        (c, p)
    }

    #[test]
    fn float_confines_every_thread_to_the_host_cpus() {
        let (c, p) = plan(
            "[host]\ncpus = \"2-5\"\n[[guests]]\nname = \"g\"\nvcpus = 2\niothreads = 1\n[[layouts]]\nkind = \"float\"\n",
            "0-7",
        );
        let out = render(&p, &c, None);
        assert!(
            out.contains(
                "<vcpu placement='static' cpuset='2-5'>2</vcpu>\n<iothreads>1</iothreads>\n"
            ),
            "{out}"
        );
        // Nothing pinned on its own, no FIFO: no <cputune> at all.
        assert!(!out.contains("<cputune>"), "{out}");
    }

    #[test]
    fn float_with_fifo_keeps_its_vcpusched() {
        let (c, p) = plan(
            "[[guests]]\nname = \"g\"\nvcpus = 2\n[[layouts]]\nkind = \"float\"\nrt_policy = \"fifo\"\nrt_priority = 50\n",
            "0-3",
        );
        let out = render(&p, &c, None);
        assert!(
            out.contains(
                "<cputune>\n  <vcpusched vcpus='1' scheduler='fifo' priority='50'/>\n</cputune>\n"
            ),
            "{out}"
        );
        assert!(!out.contains("vcpupin"), "{out}");
    }

    #[test]
    fn a_domain_holds_the_fragment_and_escapes_the_boot_paths() {
        let (c, p) = plan(
            "[[guests]]\nname = \"g\"\nvcpus = 2\nmemory_mib = 512\n[[layouts]]\nkind = \"vcpu0\"\n",
            "0-3",
        );
        let (l, g) = (&p.layouts[0], &p.layouts[0].guests[0]);
        let boot = DirectBoot {
            kernel: Path::new("/k/a&b"),
            initrd: None,
            cmdline: "console=ttyS0 x=<y>",
        };
        let d = domain(l, g, &c.guests[0], DomainType::Qemu, Some(&boot));
        assert!(d.starts_with("<domain type='qemu'>\n  <name>pinlat-vcpu0-g</name>\n  <memory unit='MiB'>512</memory>\n  <vcpu placement='static'>2</vcpu>\n  <cputune>\n    <vcpupin vcpu='0' cpuset='0'/>\n"), "{d}");
        assert!(d.contains("<kernel>/k/a&amp;b</kernel>"), "{d}");
        assert!(
            d.contains("<cmdline>console=ttyS0 x=&lt;y&gt;</cmdline>"),
            "{d}"
        );
        assert!(!d.contains("<initrd>"), "{d}");
        assert!(d.ends_with("</domain>\n"), "{d}");
    }

    #[test]
    fn the_domain_type_follows_the_accelerator() {
        assert_eq!(DomainType::for_accel(AccelChoice::Tcg).as_str(), "qemu");
        assert_eq!(DomainType::for_accel(AccelChoice::Auto).as_str(), "kvm");
        assert_eq!(DomainType::for_accel(AccelChoice::Kvm).as_str(), "kvm");
    }
}
