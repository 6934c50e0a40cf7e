//! nova flavor extra specs and `nova.conf` lines for each layout.
//!
//! nova chooses pCPUs itself from `[compute] cpu_dedicated_set`, so what can be exported is the
//! policy, not the exact pCPU numbers. Where nova has no way to say what the plan does, the
//! block says so in a `NOT EXPRESSIBLE` line instead of emitting something subtly different.
//! The rules below are nova's own (`nova/virt/hardware.py` and the libvirt driver):
//! - nova's libvirt driver puts a guest's emulator threads on all its vCPUs' pCPUs by default;
//!   with `hw:cpu_realtime=yes` on its non-realtime vCPUs' pCPUs only; with
//!   `hw:emulator_threads_policy=isolate` on one more dedicated pCPU; with `share` on
//!   `[compute] cpu_shared_set`. There is no emulator-threads mask
//!   (`hw:cpu_emulator_threads_mask` of the 2017 openstack-dev thread was never merged), so
//!   `vcpu0` is reproduced only through the realtime rule, and a `custom` emulator set through
//!   `share` when it is off every vCPU pCPU.
//! - `get_realtime_cpu_constraint` refuses `hw:cpu_realtime` when every vCPU is realtime and no
//!   `hw:emulator_threads_policy` is set (`RealtimeMaskNotFoundOrInvalid`); with a policy it
//!   accepts it (nova 22.0.0, Victoria).
//! - realtime vCPUs run SCHED_FIFO at `[libvirt] realtime_scheduler_priority` (default 1): one
//!   value for the whole compute host, not per flavor.
//! - nova has no `rt_emulator_overcommit_ratio`: with `cpu_shared_set` every guest's emulator
//!   threads float over the whole set.
//! - nova gives every instance exactly one iothread, pinned with its emulator threads
//!   ([`IOTHREAD_RULE`]).
//! - realtime requires `hw:cpu_policy=dedicated`.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::nova_knobs::nova_knobs;
use crate::config::variant::Variant;
use crate::config::{Config, Guest, LayoutKind, Policy};
use crate::cpuset::CpuSet;
use crate::plan::{GuestPlacement, LayoutPlan, Plan};

/// nova's iothread rule and where it comes from, as the exports cite it. The commit and its
/// rule are in nova's tree (the regression test for nova bug 2139351 names it); the month and
/// the first release are the cycle it merged in.
pub const IOTHREAD_RULE: &str = "nova's libvirt driver gives every instance exactly one iothread, pinned with its emulator threads (nova commit 76d64b9c, 2024-12; nova 2025.1 Epoxy and later)";

/// What one guest's flavor says, and what the layout's `nova.conf` needs for it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Flavor {
    /// `hw:cpu_policy=dedicated` (else `shared`).
    dedicated: bool,
    /// `hw:cpu_realtime=yes`, with the mask when some vCPU is not realtime.
    realtime: bool,
    /// `hw:emulator_threads_policy`, when one is needed.
    emulator_policy: Option<&'static str>,
    /// pCPUs the `share` policy needs in `cpu_shared_set` (empty without `share`).
    shared: CpuSet,
    /// Where this flavor does not reproduce the plan.
    missing: Vec<String>,
}

/// Renders one block per layout, with one flavor per guest, and with a `variant`, its knobs in
/// nova's terms ([`super::nova_knobs`]).
pub fn render(plan: &Plan, config: &Config, variant: Option<&Variant>) -> String {
    let mut out = String::new();
    for (l, layout) in plan.layouts.iter().zip(&config.layouts) {
        match variant {
            Some(v) => {
                let _ = writeln!(
                    out,
                    "# pinlat layout '{}' ({}), variant '{}'",
                    l.name, l.kind, v.name
                );
            }
            None => {
                let _ = writeln!(out, "# pinlat layout '{}' ({})", l.name, l.kind);
            }
        }
        let fifo = layout.rt_policy == Policy::Fifo;
        let dedicated = dedicated_set(l);
        let flavors: Vec<Flavor> = l
            .guests
            .iter()
            .zip(&config.guests)
            .map(|(g, gc)| flavor(l, fifo, g, gc, &dedicated))
            .collect();
        let mut missing = layout_missing(l, fifo, &flavors);
        missing.extend(flavors.iter().flat_map(|f| f.missing.iter().cloned()));
        missing.extend(iothread_missing(l, &config.guests));
        let knobs = variant
            .map(|v| {
                let realtime: Vec<(&str, bool)> = flavors
                    .iter()
                    .zip(&config.guests)
                    .map(|(f, gc)| (gc.name.as_str(), f.realtime))
                    .collect();
                nova_knobs(v, &realtime)
            })
            .unwrap_or_default();
        missing.extend(knobs.missing.iter().cloned());
        for m in &missing {
            let _ = writeln!(out, "# NOT EXPRESSIBLE in nova: {m}");
        }
        for (f, gc) in flavors.iter().zip(&config.guests) {
            write_flavor(&mut out, f, gc);
            for spec in &knobs.specs {
                let _ = writeln!(out, "{spec}");
            }
        }
        let _ = writeln!(out, "[nova.conf]");
        let _ = writeln!(out, "[compute]");
        if !dedicated.is_empty() {
            let _ = writeln!(out, "cpu_dedicated_set = {dedicated}");
        }
        let shared = shared_set(l, plan, &flavors);
        if !shared.is_empty() {
            let _ = writeln!(out, "cpu_shared_set = {shared}");
        }
        let mut libvirt_conf = Vec::new();
        if flavors.iter().any(|f| f.realtime) && layout.rt_priority != 1 {
            libvirt_conf.push(format!(
                "# host-wide, not per flavor: every realtime instance on this compute host runs its realtime vCPUs at SCHED_FIFO {}",
                layout.rt_priority
            ));
            libvirt_conf.push(format!(
                "realtime_scheduler_priority = {}",
                layout.rt_priority
            ));
        }
        libvirt_conf.extend(knobs.libvirt_conf.iter().cloned());
        if !libvirt_conf.is_empty() {
            let _ = writeln!(out, "[libvirt]");
            for line in &libvirt_conf {
                let _ = writeln!(out, "{line}");
            }
        }
        let _ = writeln!(out);
    }
    out
}

fn write_flavor(out: &mut String, f: &Flavor, gc: &Guest) {
    let _ = writeln!(out, "[flavor {}]", gc.name);
    let policy = if f.dedicated { "dedicated" } else { "shared" };
    let _ = writeln!(out, "hw:cpu_policy={policy}");
    if f.realtime {
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
    if let Some(p) = f.emulator_policy {
        let _ = writeln!(out, "hw:emulator_threads_policy={p}");
    }
}

/// The flavor of guest `g` (config `gc`) in layout `l`; `fifo` when the layout runs its
/// realtime vCPUs SCHED_FIFO; `dedicated` the layout's `cpu_dedicated_set`.
fn flavor(
    l: &LayoutPlan,
    fifo: bool,
    g: &GuestPlacement,
    gc: &Guest,
    dedicated: &CpuSet,
) -> Flavor {
    let mut f = Flavor {
        dedicated: l.kind != LayoutKind::Float,
        realtime: fifo && !matches!(l.kind, LayoutKind::Float | LayoutKind::Share),
        emulator_policy: None,
        shared: CpuSet::new(),
        missing: Vec::new(),
    };
    match l.kind {
        LayoutKind::Isolate => f.emulator_policy = Some("isolate"),
        LayoutKind::Pinset => {
            f.emulator_policy = Some("share");
            f.shared = l
                .pinset
                .as_ref()
                .map(|p| p.cpus.clone())
                .unwrap_or_default();
        }
        LayoutKind::Custom => custom_emulator(&mut f, fifo, g, gc, dedicated),
        LayoutKind::Float | LayoutKind::Share | LayoutKind::Vcpu0 => {}
    }
    f
}

/// A `custom` guest's emulator placement in nova's terms, in `f`.
fn custom_emulator(f: &mut Flavor, fifo: bool, g: &GuestPlacement, gc: &Guest, dedicated: &CpuSet) {
    let emu = &g.emulator_cpus;
    let vcpu_pcpus = g.vcpu_cpus();
    let housekeeping_pcpus = g
        .vcpus
        .iter()
        .filter(|v| !v.realtime)
        .fold(CpuSet::new(), |acc, v| acc.union(&v.cpus));
    let all_rt = housekeeping_pcpus.is_empty();
    let name = &gc.name;
    if emu.is_disjoint(dedicated) {
        // Off every vCPU pCPU: `share` puts it on cpu_shared_set, which is exactly these pCPUs
        // (and lets nova accept an all-realtime guest).
        f.emulator_policy = Some("share");
        f.shared = emu.clone();
    } else if fifo && !all_rt && *emu == housekeeping_pcpus {
        // nova's realtime rule gives exactly this (as layout vcpu0).
    } else if *emu == vcpu_pcpus {
        if fifo {
            // nova's default placement, which hw:cpu_realtime would change or refuse.
            f.realtime = false;
            let why = if all_rt {
                "nova refuses hw:cpu_realtime for a guest whose every vCPU is realtime unless hw:emulator_threads_policy moves the emulator threads off its vCPUs' pCPUs (RealtimeMaskNotFoundOrInvalid), and neither isolate nor share can put them on a vCPU's pCPU"
            } else {
                "with hw:cpu_realtime=yes nova's libvirt driver pins a realtime guest's emulator threads to its non-realtime vCPUs' pCPUs only"
            };
            f.missing.push(format!(
                "guest '{name}': the emulator threads on its vCPUs' pCPUs {emu}, realtime vCPUs among them: {why}; the flavor below keeps the emulator placement and leaves out hw:cpu_realtime, so nova would run the vCPUs SCHED_OTHER"
            ));
        }
    } else {
        let (nova_emu, note) = if fifo && !all_rt {
            (housekeeping_pcpus.clone(), "its non-realtime vCPUs' pCPUs")
        } else {
            if fifo {
                f.realtime = false;
            }
            (vcpu_pcpus.clone(), "all its vCPUs' pCPUs")
        };
        let dropped = if fifo && all_rt {
            ", without hw:cpu_realtime (refused for an all-realtime guest without an emulator policy), so nova would run the vCPUs SCHED_OTHER"
        } else {
            ""
        };
        let overlap = emu.intersection(dedicated);
        f.missing.push(format!(
            "guest '{name}': the emulator threads on {emu}, which takes in vCPU pCPUs ({overlap} of cpu_dedicated_set {dedicated}): nova puts a guest's emulator threads on its vCPUs' pCPUs (all of them, or the non-realtime ones with hw:cpu_realtime), on one more dedicated pCPU (isolate) or on cpu_shared_set (share), which nova keeps apart from cpu_dedicated_set; with the flavor below nova would put them on {note} {nova_emu}{dropped}"
        ));
    }
}

/// Lines the layout as a whole cannot express, before the flavors' own.
fn layout_missing(l: &LayoutPlan, fifo: bool, flavors: &[Flavor]) -> Vec<String> {
    let mut missing = Vec::new();
    match l.kind {
        LayoutKind::Float if fifo => missing.push(
            "SCHED_FIFO vCPUs without pinning: nova's hw:cpu_realtime requires hw:cpu_policy=dedicated".into(),
        ),
        LayoutKind::Share if fifo => missing.push(
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
        LayoutKind::Custom => {
            missing.push(
                "explicit pCPUs per vCPU: nova picks each vCPU's pCPU itself from cpu_dedicated_set".into(),
            );
            // share: every such guest's emulator threads float over the union.
            let sharing: Vec<(&GuestPlacement, &Flavor)> = l
                .guests
                .iter()
                .zip(flavors)
                .filter(|(_, f)| !f.shared.is_empty())
                .collect();
            let union = sharing
                .iter()
                .fold(CpuSet::new(), |acc, (_, f)| acc.union(&f.shared));
            if sharing.iter().any(|(_, f)| f.shared != union) {
                let each = sharing
                    .iter()
                    .map(|(g, f)| format!("'{}' on {}", g.guest, f.shared))
                    .collect::<Vec<_>>()
                    .join(", ");
                missing.push(format!(
                    "each guest's emulator threads on pCPUs of its own ({each}): with hw:emulator_threads_policy=share every guest's emulator threads float over the whole cpu_shared_set {union}"
                ));
            }
        }
        _ => {}
    }
    if l.kind == LayoutKind::Vcpu0 && !fifo {
        missing.push(
            "vcpu0 without realtime scheduling: without hw:cpu_realtime nova lets emulator threads float over all the guest's pCPUs (layout share)".into(),
        );
    }
    missing
}

/// Where nova's one iothread per instance differs from the plan: guests asking for another
/// count (grouped by count), and `custom` guests whose iothreads are planned away from their
/// emulator threads.
fn iothread_missing(l: &LayoutPlan, guests: &[Guest]) -> Vec<String> {
    let mut by_count: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let mut missing = Vec::new();
    for (g, gc) in l.guests.iter().zip(guests) {
        if gc.iothreads != 1 {
            by_count
                .entry(gc.iothreads)
                .or_default()
                .push(format!("'{}'", gc.name));
        }
        if l.kind == LayoutKind::Custom && gc.iothreads > 0 && g.iothread_cpus != g.emulator_cpus {
            missing.push(format!(
                "guest '{}' has its iothreads on {} and its emulator threads on {}: {IOTHREAD_RULE}",
                gc.name, g.iothread_cpus, g.emulator_cpus
            ));
        }
    }
    let counted = by_count.into_iter().map(|(n, names)| {
        let (who, verb) = match names.len() {
            1 => ("guest", "asks"),
            _ => ("guests", "ask"),
        };
        format!(
            "{who} {} {verb} for {n} iothreads: {IOTHREAD_RULE}",
            names.join(", ")
        )
    });
    counted.chain(missing).collect()
}

/// nova's realtime mask for `realtime` of `vcpus`, in exclusions only (`^0`, `^0,^1`), which
/// every nova reads the same way (`parse_cpu_spec("0-<vcpus-1>," + mask)`): before 22.0.0
/// (Victoria) a mask without a leading caret, such as `2-7`, counted as no mask at all and the
/// instance failed to spawn. `None` when every vCPU is realtime (no exclusion to write).
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

/// `cpu_dedicated_set` of a layout: every guest's vCPU pCPUs, and `isolate`'s emulator pCPUs,
/// which nova takes from the dedicated set; empty for `float`.
fn dedicated_set(l: &LayoutPlan) -> CpuSet {
    if l.kind == LayoutKind::Float {
        return CpuSet::new();
    }
    l.guests.iter().fold(CpuSet::new(), |acc, g| {
        let acc = acc.union(&g.vcpu_cpus());
        if l.kind == LayoutKind::Isolate {
            acc.union(&g.emulator_cpus)
        } else {
            acc
        }
    })
}

/// `cpu_shared_set` of a layout: what the flavors' `share` policy needs, or else the host
/// housekeeping CPUs; `float` guests run on it, so for `float` it is every usable CPU.
fn shared_set(l: &LayoutPlan, plan: &Plan, flavors: &[Flavor]) -> CpuSet {
    if l.kind == LayoutKind::Float {
        return plan.usable_cpus.clone();
    }
    let shared = flavors
        .iter()
        .fold(CpuSet::new(), |acc, f| acc.union(&f.shared));
    if shared.is_empty() {
        plan.housekeeping_cpus.clone()
    } else {
        shared
    }
}

#[cfg(test)]
#[path = "nova_tests.rs"]
mod tests;
