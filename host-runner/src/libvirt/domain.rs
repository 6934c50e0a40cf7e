//! The domain pinlat asks libvirt to start for one guest of a run: the export's own
//! [`pinlat::export::libvirt::domain_with`] (so the `<vcpu>`, `<iothreads>` and `<cputune>`
//! libvirt applies are exactly what `pinlat plan --format libvirt` prints), plus what the run
//! needs, from the same [`VmSpec`] the QEMU launcher starts:
//!
//! - the direct kernel boot of the agent's initramfs and the guest command line;
//! - ttyS0 (console) to a `file` serial and ttyS1 (the agent's channel) to a `pipe` serial,
//!   both in pinlat's private runtime directory;
//! - ACPI (the agent powers the guest off) and `destroy` on poweroff, reboot and crash, as
//!   QEMU's `-no-reboot` does; no USB controller and no balloon (QEMU's `-nodefaults`);
//! - the variant's QEMU knobs, as the export writes them
//!   ([`pinlat::export::libvirt_knobs`]): the same domain `pinlat plan --format libvirt-domain
//!   --variant` prints, so a libvirt run measures what the export deploys;
//! - the scenario's disks and NICs, and the second QMP monitor of the QMP-driven scenarios,
//!   through `<qemu:commandline>` with the QEMU launcher's own arguments: libvirt neither sees
//!   nor tunes these devices, but their iothread is libvirt's (`iothread1`), pinned by the
//!   `<iothreadpin>` of the plan.

use std::path::Path;

use pinlat::config::Guest;
use pinlat::export::libvirt::{domain_with, escape, DirectBoot, DomainExtras, DomainType};
use pinlat::kinds::Accel;
use pinlat::plan::{GuestPlacement, LayoutPlan};

use crate::qemu::{device_args, qmp_args, AgentChannel, VmSpec};

/// One guest's domain XML for `spec` (named [`pinlat::export::libvirt::domain_name`]), with a second QMP monitor on `mgmt_socket` when given.
pub fn domain_xml(
    layout: &LayoutPlan,
    placement: &GuestPlacement,
    guest: &Guest,
    spec: &VmSpec,
    mgmt_socket: Option<&Path>,
) -> String {
    let ty = match spec.accel {
        Accel::Kvm => DomainType::Kvm,
        Accel::Tcg => DomainType::Qemu,
    };
    let path = |p: &Path| escape(&p.display().to_string());
    let elements = "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n\
         \x20 <on_crash>destroy</on_crash>\n";
    // The variant's `cpu_host` knob replaces this <cpu> (in `domain_with`).
    let cpu = match (&spec.cpu_model, spec.accel) {
        (Some(model), _) => format!(
            "  <cpu mode='custom'>\n    <model fallback='forbid'>{}</model>\n  </cpu>\n",
            escape(model)
        ),
        (None, Accel::Kvm) => "  <cpu mode='host-passthrough'/>\n".to_owned(),
        (None, Accel::Tcg) => String::new(),
    };
    let agent = match &spec.agent_channel {
        AgentChannel::Pipe(base) => format!(
            "    <serial type='pipe'>\n      <source path='{}'/>\n      <target port='1'/>\n    </serial>\n",
            path(base)
        ),
        AgentChannel::File(file) => format!(
            "    <serial type='file'>\n      <source path='{}'/>\n      <target port='1'/>\n    </serial>\n",
            path(file)
        ),
    };
    let devices = format!(
        "    <serial type='file'>\n      <source path='{}'/>\n      <target port='0'/>\n    </serial>\n\
         {agent}\
         \x20   <controller type='usb' model='none'/>\n    <memballoon model='none'/>\n",
        path(&spec.console_log)
    );
    let mut qemu_args: Vec<String> = device_args(&spec.devices)
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(sock) = mgmt_socket {
        qemu_args.extend(qmp_args(sock).map(|a| a.to_string_lossy().into_owned()));
    }
    let boot = DirectBoot {
        kernel: &spec.kernel,
        initrd: Some(&spec.initrd),
        cmdline: &spec.append,
    };
    domain_with(
        layout,
        placement,
        guest,
        ty,
        Some(&boot),
        &DomainExtras {
            elements,
            features: &["<acpi/>", "<apic/>"],
            cpu: &cpu,
            knobs: Some(&spec.knobs),
            devices: &devices,
            qemu_args: &qemu_args,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::{Device, VirtioBlk};
    use pinlat::config::Config;
    use pinlat::cpuset::CpuSet;
    use pinlat::plan::Plan;

    fn setup(toml: &str) -> (Config, Plan) {
        let cfg = Config::from_toml_str(toml).unwrap();
        let plan = Plan::new(&cfg, &CpuSet::parse("0-3").unwrap()).unwrap();
        (cfg, plan)
    }

    #[test]
    fn the_domain_carries_the_plan_the_channels_and_the_devices() {
        let (cfg, plan) = setup(
            "[[guests]]\nname = \"rt\"\nvcpus = 2\nrealtime_mask = \"^0\"\niothreads = 1\n\
             [[layouts]]\nkind = \"vcpu0\"\n",
        );
        let l = &plan.layouts[0];
        let spec = VmSpec::for_guest(
            &cfg.guests[0],
            Accel::Tcg,
            Path::new("/k/vmlinuz"),
            "/run/p/initrd.cpio".into(),
            "/r/console/x.rt.log".into(),
            AgentChannel::Pipe("/run/p/x.rt.agent".into()),
        )
        .with_devices([Device::VirtioBlk(VirtioBlk::in_dir(Path::new("/run/p"), 8))]);
        let xml = domain_xml(
            l,
            &l.guests[0],
            &cfg.guests[0],
            &spec,
            Some(Path::new("/run/p/mgmt.sock")),
        );
        for want in [
            "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>",
            "<name>pinlat-vcpu0-rt</name>",
            "<emulatorpin cpuset='0'/>",
            "<vcpusched vcpus='1' scheduler='fifo' priority='1'/>",
            "<kernel>/k/vmlinuz</kernel>",
            "<initrd>/run/p/initrd.cpio</initrd>",
            "<source path='/r/console/x.rt.log'/>\n      <target port='0'/>",
            "<serial type='pipe'>\n      <source path='/run/p/x.rt.agent'/>\n      <target port='1'/>",
            "<on_poweroff>destroy</on_poweroff>",
            "<qemu:arg value='virtio-blk-pci,id=vblk0,drive=disk0,write-cache=on,iothread=iothread1'/>",
            "<qemu:arg value='unix:/run/p/mgmt.sock,server=on,wait=off'/>",
        ] {
            assert!(xml.contains(want), "{want} missing from\n{xml}");
        }
        assert!(
            !xml.contains("<cpu "),
            "TCG keeps QEMU's default CPU model:\n{xml}"
        );
    }

    #[test]
    fn a_libvirt_launch_applies_the_variants_knobs_once() {
        let (cfg, plan) = setup(
            "[[guests]]\nname = \"rt\"\nvcpus = 2\n[[layouts]]\nkind = \"vcpu0\"\n\
             [[variants]]\nname = \"t\"\nqemu.mem_lock = \"on\"\nqemu.cpu_host = true\n\
             qemu.invtsc = true\nqemu.kvm_hint_dedicated = true\nqemu.cpu_pm = true\n",
        );
        let l = &plan.layouts[0];
        let spec = VmSpec::for_guest(
            &cfg.guests[0],
            Accel::Kvm,
            Path::new("/k"),
            "/i".into(),
            "/c".into(),
            AgentChannel::Pipe("/a".into()),
        )
        .with_variant(cfg.variants.first());
        let xml = domain_xml(l, &l.guests[0], &cfg.guests[0], &spec, None);
        for want in [
            "<memoryBacking>\n    <locked/>\n  </memoryBacking>",
            "<features>\n    <acpi/>\n    <apic/>\n    <kvm>\n      <hint-dedicated state='on'/>\n    </kvm>\n  </features>",
            "<cpu mode='host-passthrough' migratable='off'>\n    <feature policy='require' name='invtsc'/>\n  </cpu>",
            "<qemu:arg value='cpu-pm=on,mem-lock=on'/>",
        ] {
            assert!(xml.contains(want), "{want} missing from\n{xml}");
        }
        assert_eq!(xml.matches("<features>").count(), 1, "{xml}");
        assert_eq!(
            xml.matches("<cpu ").count(),
            1,
            "the knob's <cpu> replaces the launcher's:\n{xml}"
        );
    }
}
