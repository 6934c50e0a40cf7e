//! libvirt domain XML `<cputune>` for each guest of each layout: `vcpupin`, `emulatorpin`,
//! `iothreadpin` and `vcpusched`, as documented in libvirt's "CPU Tuning" section of the domain
//! XML format. CPU lists use libvirt's own syntax, which [`CpuSet`](crate::cpuset::CpuSet)
//! prints canonically.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::config::{Config, Policy};
use crate::cpuset::CpuSet;
use crate::plan::Plan;

/// Renders one `<cputune>` element per (layout, guest), each preceded by a comment naming them.
pub fn render(plan: &Plan, config: &Config) -> String {
    let mut out = String::new();
    for l in &plan.layouts {
        for (g, gc) in l.guests.iter().zip(&config.guests) {
            let _ = writeln!(
                out,
                "<!-- pinlat layout '{}' ({}), guest '{}': {} vCPUs, realtime vCPUs {} -->",
                l.name, l.kind, g.guest, gc.vcpus, gc.realtime
            );
            if gc.iothreads > 0 {
                let _ = writeln!(out, "<iothreads>{}</iothreads>", gc.iothreads);
            }
            let _ = writeln!(out, "<cputune>");
            if g.pinned {
                for v in &g.vcpus {
                    let _ = writeln!(out, "  <vcpupin vcpu='{}' cpuset='{}'/>", v.vcpu, v.cpus);
                }
                let _ = writeln!(out, "  <emulatorpin cpuset='{}'/>", g.emulator_cpus);
                for id in 1..=gc.iothreads {
                    let _ = writeln!(
                        out,
                        "  <iothreadpin iothread='{id}' cpuset='{}'/>",
                        g.iothread_cpus
                    );
                }
            } else {
                let _ = writeln!(out, "  <!-- float: no thread is pinned -->");
            }
            // One vcpusched per priority, listing its vCPUs.
            let mut by_prio: BTreeMap<u8, CpuSet> = BTreeMap::new();
            for v in g.vcpus.iter().filter(|v| v.sched.policy == Policy::Fifo) {
                by_prio.entry(v.sched.priority).or_default().insert(v.vcpu);
            }
            for (prio, vcpus) in by_prio {
                let _ = writeln!(
                    out,
                    "  <vcpusched vcpus='{vcpus}' scheduler='fifo' priority='{prio}'/>"
                );
            }
            let _ = writeln!(out, "</cputune>");
        }
    }
    out
}
