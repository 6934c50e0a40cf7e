//! nova flavor extra specs and `nova.conf` lines for each layout.
//!
//! nova chooses pCPUs itself from `[compute] cpu_dedicated_set`, so what can be exported is the
//! policy, not the exact pCPU numbers. Where nova has no way to say what the plan does, the
//! block says so in a `NOT EXPRESSIBLE` line instead of emitting something subtly different:
//! - nova has no emulator-threads mask (the `hw:cpu_emulator_threads_mask` of the 2017
//!   openstack-dev thread was never merged): `vcpu0` is only reproduced indirectly, through the
//!   libvirt driver pinning a realtime guest's emulator threads to its non-realtime vCPUs' pCPUs
//!   when `hw:emulator_threads_policy` is unset;
//! - nova has no `rt_emulator_overcommit_ratio`: with `cpu_shared_set` every guest's emulator
//!   threads float over the whole set;
//! - nova always gives realtime vCPUs SCHED_FIFO priority 1; a `custom` layout's exact CPUs cannot
//!   be requested; realtime requires `hw:cpu_policy=dedicated`.

use std::fmt::Write;

use crate::config::{Config, LayoutKind, Policy};
use crate::cpuset::CpuSet;
use crate::plan::{LayoutPlan, Plan};

/// Renders one block per layout, with one flavor per guest.
pub fn render(plan: &Plan, config: &Config) -> String {
    let mut out = String::new();
    for (l, layout) in plan.layouts.iter().zip(&config.layouts) {
        let _ = writeln!(out, "# pinlat layout '{}' ({})", l.name, l.kind);
        let mut missing: Vec<String> = Vec::new();
        let realtime = layout.rt_policy == Policy::Fifo;
        match l.kind {
            LayoutKind::Float if realtime => missing.push(
                "SCHED_FIFO vCPUs without pinning: nova's hw:cpu_realtime requires hw:cpu_policy=dedicated".into(),
            ),
            LayoutKind::Share if realtime => missing.push(
                "emulator threads floating over RT vCPUs' pCPUs: with hw:cpu_realtime=yes nova's libvirt driver pins a realtime guest's emulator threads to its non-realtime vCPUs' pCPUs (that is layout vcpu0); the specs below keep the emulator placement and leave out hw:cpu_realtime, so nova would run the vCPUs SCHED_OTHER".into(),
            ),
            LayoutKind::Vcpu0 => missing.push(
                "an emulator-threads mask: nova has none (hw:cpu_emulator_threads_mask was proposed, never merged); the specs below reproduce this layout only indirectly, because nova's libvirt driver pins a realtime guest's emulator threads to the pCPUs of its non-realtime vCPUs when hw:emulator_threads_policy is unset".into(),
            ),
            LayoutKind::Pinset => {
                if let Some(p) = &l.pinset {
                    missing.push(format!(
                    "the overcommit ratio (at most {} guest(s) per pCPU, each guest's emulator threads on one pCPU of {}): nova has no rt_emulator_overcommit_ratio; with cpu_shared_set every guest's emulator threads float over the whole set",
                    p.overcommit_ratio, p.cpus
                    ));
                }
            }
            LayoutKind::Custom => missing.push(
                "explicit pCPUs per vCPU and emulator: nova picks pCPUs itself from cpu_dedicated_set".into(),
            ),
            _ => {}
        }
        if realtime && layout.rt_priority != 1 {
            missing.push(format!(
                "SCHED_FIFO priority {}: nova always uses priority 1 for realtime vCPUs",
                layout.rt_priority
            ));
        }
        if l.kind == LayoutKind::Vcpu0 && !realtime {
            missing.push(
                "vcpu0 without realtime scheduling: without hw:cpu_realtime nova lets emulator threads float over all the guest's pCPUs (layout share)".into(),
            );
        }
        for m in &missing {
            let _ = writeln!(out, "# NOT EXPRESSIBLE in nova: {m}");
        }
        for gc in &config.guests {
            let _ = writeln!(out, "[flavor {}]", gc.name);
            if l.kind == LayoutKind::Float {
                let _ = writeln!(out, "hw:cpu_policy=shared");
            } else {
                let _ = writeln!(out, "hw:cpu_policy=dedicated");
                // share with realtime would give vcpu0's placement in nova: emit the specs
                // that keep the emulator placement and say what is lost (above).
                if realtime && l.kind != LayoutKind::Share {
                    let _ = writeln!(out, "hw:cpu_realtime=yes");
                    match nova_mask(gc.vcpus, &gc.realtime) {
                        Some(mask) => {
                            let _ = writeln!(out, "hw:cpu_realtime_mask={mask}");
                        }
                        None => {
                            let _ = writeln!(
                                out,
                                "# no hw:cpu_realtime_mask: every vCPU is realtime (nova accepts that only with hw:emulator_threads_policy)"
                            );
                        }
                    }
                }
                match l.kind {
                    LayoutKind::Isolate => {
                        let _ = writeln!(out, "hw:emulator_threads_policy=isolate");
                    }
                    LayoutKind::Pinset => {
                        let _ = writeln!(out, "hw:emulator_threads_policy=share");
                    }
                    _ => {}
                }
            }
        }
        let _ = writeln!(out, "[nova.conf]");
        let _ = writeln!(out, "[compute]");
        let (dedicated, shared) = compute_sets(l, plan);
        if !dedicated.is_empty() {
            let _ = writeln!(out, "cpu_dedicated_set = {dedicated}");
        }
        if !shared.is_empty() {
            let _ = writeln!(out, "cpu_shared_set = {shared}");
        }
        let _ = writeln!(out);
    }
    out
}

/// nova's realtime mask for `realtime` of `vcpus`, in exclusions only (`^0`, `^0,^1`): nova
/// reads the mask as `parse_cpu_spec("0-<vcpus-1>," + mask)`, so an inclusion such as `2-7`
/// would add nothing and make every vCPU realtime. `None` when every vCPU is realtime (no
/// exclusion to write).
fn nova_mask(vcpus: u32, realtime: &CpuSet) -> Option<String> {
    let housekeeping = CpuSet::first_n(vcpus).difference(realtime);
    if housekeeping.is_empty() {
        return None;
    }
    Some(
        housekeeping
            .iter()
            .map(|c| format!("^{c}"))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// `cpu_dedicated_set` and `cpu_shared_set` for a layout: vCPUs (and `isolate`'s emulator
/// pCPUs, which nova takes from the dedicated set) are dedicated; a `pinset` set, or else the
/// host housekeeping CPUs, is shared; `float` guests use the shared set.
fn compute_sets(l: &LayoutPlan, plan: &Plan) -> (CpuSet, CpuSet) {
    if l.kind == LayoutKind::Float {
        return (CpuSet::new(), plan.usable_cpus.clone());
    }
    let mut dedicated = CpuSet::new();
    for g in &l.guests {
        dedicated = dedicated.union(&g.vcpu_cpus());
        if l.kind == LayoutKind::Isolate {
            dedicated = dedicated.union(&g.emulator_cpus);
        }
    }
    let shared = match &l.pinset {
        Some(p) => p.cpus.clone(),
        None => plan.housekeeping_cpus.clone(),
    };
    (dedicated, shared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_exclusions_as_nova_parses_them() {
        let rt = CpuSet::parse("1-3").unwrap();
        assert_eq!(nova_mask(4, &rt).as_deref(), Some("^0"));
        let rt = CpuSet::parse("0-3").unwrap();
        assert_eq!(nova_mask(4, &rt), None);
        // Not "2-7": nova would read that as every vCPU realtime.
        let rt = CpuSet::parse("2-7").unwrap();
        assert_eq!(nova_mask(8, &rt).as_deref(), Some("^0,^1"));
    }
}
