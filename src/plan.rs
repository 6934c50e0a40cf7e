//! The placement planner: each layout of a config becomes one CPU set and one scheduling policy
//! per kind of QEMU thread of every guest, or is refused with the reason before anything runs.
//!
//! Pure: it takes the host's online CPUs as a value. The layouts and their origins are in
//! docs/architecture.md "The layouts"; the refusal rules follow nova's where nova has one (a realtime guest
//! needs a non-realtime vCPU for its emulator threads unless they are isolated or on a shared
//! set; nova's `[libvirt] realtime_scheduler_priority` defaults to 1).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{Config, Guest, Layout, LayoutKind, Policy};
use crate::cpuset::CpuSet;

/// Scheduling of one QEMU thread on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sched {
    /// `other` or `fifo` (the priority is beside it).
    pub policy: Policy,
    /// Real-time priority 1..=99 for `fifo`; 0 for `other`.
    pub priority: u8,
}

impl Sched {
    /// `SCHED_OTHER`.
    pub const OTHER: Sched = Sched {
        policy: Policy::Other,
        priority: 0,
    };

    /// `SCHED_FIFO` at `priority`.
    pub fn fifo(priority: u8) -> Sched {
        Sched {
            policy: Policy::Fifo,
            priority,
        }
    }
}

impl std::fmt::Display for Sched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.policy {
            Policy::Other => f.write_str("other"),
            Policy::Fifo => write!(f, "fifo:{}", self.priority),
        }
    }
}

/// Placement of one vCPU thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcpuPlacement {
    /// Guest vCPU index (QMP `cpu-index`).
    pub vcpu: u32,
    /// Whether the vCPU is in the guest's realtime mask.
    pub realtime: bool,
    /// Host CPUs the thread may run on.
    pub cpus: CpuSet,
    /// Host scheduling.
    pub sched: Sched,
}

/// Placement of one guest's threads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestPlacement {
    /// Guest name.
    pub guest: String,
    /// Whether any thread is pinned (false for `float`).
    pub pinned: bool,
    /// One entry per vCPU, in vCPU order.
    pub vcpus: Vec<VcpuPlacement>,
    /// Emulator threads (main loop, workers): CPU set.
    pub emulator_cpus: CpuSet,
    /// Iothreads: CPU set (the emulator's, as nova does, unless `custom` says otherwise).
    pub iothread_cpus: CpuSet,
}

impl GuestPlacement {
    /// Union of the vCPU threads' CPUs.
    pub fn vcpu_cpus(&self) -> CpuSet {
        self.vcpus
            .iter()
            .fold(CpuSet::new(), |acc, v| acc.union(&v.cpus))
    }

    /// Every CPU any of the guest's threads may use.
    pub fn all_cpus(&self) -> CpuSet {
        self.vcpu_cpus()
            .union(&self.emulator_cpus)
            .union(&self.iothread_cpus)
    }
}

/// One layout resolved for every guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayoutPlan {
    /// Layout name (unique in the config).
    pub name: String,
    /// Layout rule.
    pub kind: LayoutKind,
    /// Per guest, in config order.
    pub guests: Vec<GuestPlacement>,
    /// `pinset`: the host-wide emulator set and the ratio that was enforced.
    pub pinset: Option<PinsetInfo>,
}

/// The host-wide emulator pin set of a `pinset` layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinsetInfo {
    /// The set (`rt_emulator_vcpu_pin_set`).
    pub cpus: CpuSet,
    /// At most this many guests' emulator threads per pCPU.
    pub overcommit_ratio: u32,
}

/// Every layout of a config, resolved against one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The host's online CPUs the plan was made for.
    pub online_cpus: CpuSet,
    /// CPUs pinlat may use (`host.cpus`, default every online CPU).
    pub usable_cpus: CpuSet,
    /// Host housekeeping CPUs (never dedicated).
    pub housekeeping_cpus: CpuSet,
    /// Layouts, in config order.
    pub layouts: Vec<LayoutPlan>,
}

/// A layout the host cannot satisfy: the same shape as a config error (the key path to change
/// and the reason with its fix), because the fix is always in the config or `--host-cpus`.
pub type PlanError = crate::config::ConfigError;

fn perr(path: impl Into<String>, message: impl Into<String>) -> PlanError {
    PlanError::new(path, message)
}

fn require_online(path: &str, set: &CpuSet, online: &CpuSet) -> Result<(), PlanError> {
    let missing = set.difference(online);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(perr(
            path,
            format!(
                "CPUs {missing} not online on the target host (online: {online}); use CPUs from {online} or plan for another host with --host-cpus"
            ),
        ))
    }
}

impl Plan {
    /// Resolves every layout of `config` on a host whose online CPUs are `online`.
    pub fn new(config: &Config, online: &CpuSet) -> Result<Plan, PlanError> {
        let usable = config.host.cpus.clone().unwrap_or_else(|| online.clone());
        require_online("host.cpus", &usable, online)?;
        let housekeeping = config.host.housekeeping_cpus.clone();
        require_online("host.housekeeping_cpus", &housekeeping, online)?;
        if let Some(set) = &config.host.emulator_pin_set {
            require_online("host.emulator_pin_set", set, online)?;
        }
        let layouts = config
            .layouts
            .iter()
            .enumerate()
            .map(|(i, l)| plan_layout(i, l, config, &usable, &housekeeping, online))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Plan {
            online_cpus: online.clone(),
            usable_cpus: usable,
            housekeeping_cpus: housekeeping,
            layouts,
        })
    }

    /// The host pCPUs that run RT vCPU threads in any pinned layout (unpinned `float` layouts
    /// have no dedicated pCPU and add none): what must stay free of everything else.
    pub fn rt_pcpus(&self) -> CpuSet {
        let mut set = CpuSet::new();
        for layout in &self.layouts {
            for guest in layout.guests.iter().filter(|g| g.pinned) {
                for v in guest.vcpus.iter().filter(|v| v.realtime) {
                    set = set.union(&v.cpus);
                }
            }
        }
        set
    }

    /// The plan of the layout named `name`.
    pub fn layout(&self, name: &str) -> Option<&LayoutPlan> {
        self.layouts.iter().find(|l| l.name == name)
    }
}

fn vcpu_sched(layout: &Layout, realtime: bool) -> Sched {
    if realtime && layout.rt_policy == Policy::Fifo {
        Sched::fifo(layout.rt_priority)
    } else {
        Sched::OTHER
    }
}

/// Takes `n` CPUs from the front of `pool`.
fn take(pool: &mut Vec<u32>, n: usize) -> Vec<u32> {
    pool.drain(..n.min(pool.len())).collect()
}

fn plan_layout(
    i: usize,
    layout: &Layout,
    config: &Config,
    usable: &CpuSet,
    housekeeping: &CpuSet,
    online: &CpuSet,
) -> Result<LayoutPlan, PlanError> {
    let p = format!("layouts[{i}]");
    let kind = layout.kind;
    let guests = &config.guests;

    // Nova refuses a realtime guest whose emulator threads would have only RT pCPUs.
    if matches!(kind, LayoutKind::Share | LayoutKind::Vcpu0) {
        if let Some(g) = guests.iter().find(|g| g.housekeeping().is_empty()) {
            return Err(perr(
                format!("{p}.kind"),
                format!(
                    "{kind} leaves the emulator threads of guest \"{}\" nowhere but RT pCPUs: every vCPU is realtime (realtime_mask \"{}\"). Leave a housekeeping vCPU (e.g. realtime_mask = \"^0\") or use isolate or pinset",
                    g.name, g.realtime_mask
                ),
            ));
        }
    }

    if kind == LayoutKind::Float {
        return Ok(LayoutPlan {
            name: layout.name.clone(),
            kind,
            pinset: None,
            guests: guests
                .iter()
                .map(|g| GuestPlacement {
                    guest: g.name.clone(),
                    pinned: false,
                    vcpus: (0..g.vcpus)
                        .map(|v| {
                            let rt = g.realtime.contains(v);
                            VcpuPlacement {
                                vcpu: v,
                                realtime: rt,
                                cpus: usable.clone(),
                                sched: vcpu_sched(layout, rt),
                            }
                        })
                        .collect(),
                    emulator_cpus: usable.clone(),
                    iothread_cpus: usable.clone(),
                })
                .collect(),
        });
    }

    if kind == LayoutKind::Custom {
        return plan_custom(&p, layout, guests, online);
    }

    // Dedicated layouts: one pCPU per vCPU from the pool, in ascending order, guest by guest.
    let pinset = if kind == LayoutKind::Pinset {
        let Some(set) = layout
            .emulator_set
            .clone()
            .or_else(|| config.host.emulator_pin_set.clone())
        else {
            return Err(perr(
                format!("{p}.emulator_set"),
                "pinset needs a host-wide emulator set: set host.emulator_pin_set (the thread's rt_emulator_vcpu_pin_set, nova's cpu_shared_set) or this layout's emulator_set",
            ));
        };
        require_online(&format!("{p}.emulator_set"), &set, online)?;
        let ratio = layout
            .overcommit_ratio
            .unwrap_or(config.host.overcommit_ratio);
        let capacity = set.len() * ratio as usize;
        if guests.len() > capacity {
            return Err(perr(
                format!("{p}.overcommit_ratio"),
                format!(
                    "overcommit ratio exceeded: {} guests' emulator threads on the {} pCPU(s) of emulator set {set} at most {ratio} per pCPU fit {capacity}; raise the ratio or add CPUs to the set",
                    guests.len(),
                    set.len()
                ),
            ));
        }
        Some(PinsetInfo {
            cpus: set,
            overcommit_ratio: ratio,
        })
    } else {
        None
    };

    let mut reserved = housekeeping.clone();
    if let Some(ps) = &pinset {
        reserved = reserved.union(&ps.cpus);
    }
    let pool_set = usable.difference(&reserved);
    let per_guest_extra = usize::from(kind == LayoutKind::Isolate);
    let need: usize = guests
        .iter()
        .map(|g| g.vcpus as usize + per_guest_extra)
        .sum();
    if need > pool_set.len() {
        let what = match kind {
            LayoutKind::Isolate => "one pCPU per vCPU plus one for each guest's emulator threads",
            _ => "one pCPU per vCPU",
        };
        return Err(perr(
            p.clone(),
            format!(
                "too few pCPUs: {kind} needs {need} dedicated pCPUs ({what}) but only {} are free: {} (host.cpus {usable} minus housekeeping {housekeeping}{}); use fewer vCPUs or guests, or a host with more CPUs",
                pool_set.len(),
                if pool_set.is_empty() { "none".to_string() } else { pool_set.to_string() },
                pinset.as_ref().map(|ps| format!(" minus emulator set {}", ps.cpus)).unwrap_or_default(),
            ),
        ));
    }
    let mut pool: Vec<u32> = pool_set.iter().collect();
    let pinset_cpus: Vec<u32> = pinset
        .as_ref()
        .map(|ps| ps.cpus.iter().collect())
        .unwrap_or_default();

    let mut placements = Vec::new();
    for (gi, g) in guests.iter().enumerate() {
        let dedicated = take(&mut pool, g.vcpus as usize);
        let vcpus: Vec<VcpuPlacement> = dedicated
            .iter()
            .enumerate()
            .map(|(v, &cpu)| {
                let v = v as u32;
                let rt = g.realtime.contains(v);
                VcpuPlacement {
                    vcpu: v,
                    realtime: rt,
                    cpus: [cpu].into_iter().collect(),
                    sched: vcpu_sched(layout, rt),
                }
            })
            .collect();
        let emulator: CpuSet = match kind {
            LayoutKind::Share => dedicated.iter().copied().collect(),
            LayoutKind::Vcpu0 => vcpus
                .iter()
                .filter(|v| !v.realtime)
                .flat_map(|v| v.cpus.iter())
                .collect(),
            LayoutKind::Isolate => take(&mut pool, 1).into_iter().collect(),
            // Round-robin over the set: guest i on pCPU i mod n, so no pCPU carries more than
            // ceil(guests / n) <= ratio guests.
            LayoutKind::Pinset => [pinset_cpus[gi % pinset_cpus.len()]].into_iter().collect(),
            LayoutKind::Float | LayoutKind::Custom => unreachable!("handled above"),
        };
        placements.push(GuestPlacement {
            guest: g.name.clone(),
            pinned: true,
            vcpus,
            iothread_cpus: emulator.clone(),
            emulator_cpus: emulator,
        });
    }
    Ok(LayoutPlan {
        name: layout.name.clone(),
        kind,
        guests: placements,
        pinset,
    })
}

fn plan_custom(
    p: &str,
    layout: &Layout,
    guests: &[Guest],
    online: &CpuSet,
) -> Result<LayoutPlan, PlanError> {
    let mut placements = Vec::new();
    // Which (guest, vCPU) holds each pCPU through an RT vCPU, to find overlaps.
    let mut rt_owner: BTreeMap<u32, String> = BTreeMap::new();
    for g in guests {
        let c = &layout.custom[&g.name];
        let gp = format!("{p}.custom.{}", g.name);
        for (v, set) in c.vcpus.iter().enumerate() {
            require_online(&format!("{gp}.vcpus[{v}]"), set, online)?;
        }
        require_online(&format!("{gp}.emulator"), &c.emulator, online)?;
        require_online(&format!("{gp}.iothreads"), &c.iothreads, online)?;
        let vcpus: Vec<VcpuPlacement> = c
            .vcpus
            .iter()
            .enumerate()
            .map(|(v, set)| {
                let rt = g.realtime.contains(v as u32);
                VcpuPlacement {
                    vcpu: v as u32,
                    realtime: rt,
                    cpus: set.clone(),
                    sched: vcpu_sched(layout, rt),
                }
            })
            .collect();
        if !layout.allow_overlap {
            for v in vcpus.iter().filter(|v| v.realtime) {
                for cpu in v.cpus.iter() {
                    let me = format!("guest \"{}\" vCPU {}", g.name, v.vcpu);
                    if let Some(other) = rt_owner.insert(cpu, me.clone()) {
                        return Err(perr(
                            format!("{gp}.vcpus[{}]", v.vcpu),
                            format!("dedicated sets overlap: pCPU {cpu} is given to RT {me} and to RT {other}; give each RT vCPU its own pCPUs, or set allow_overlap = true to measure that on purpose"),
                        ));
                    }
                }
            }
        }
        placements.push((g, gp, vcpus, c));
    }
    let mut out = Vec::new();
    for (g, gp, vcpus, c) in placements {
        if !layout.allow_overlap {
            // No emulator or iothread of any guest, and no non-RT vCPU, on an RT vCPU's pCPU.
            for (what, set) in [("emulator", &c.emulator), ("iothreads", &c.iothreads)] {
                if let Some(cpu) = set.iter().find(|c| rt_owner.contains_key(c)) {
                    return Err(perr(
                        format!("{gp}.{what}"),
                        format!("{what} set {set} includes pCPU {cpu} of RT {}: custom layouts keep emulator threads off RT pCPUs unless allow_overlap = true", rt_owner[&cpu]),
                    ));
                }
            }
            for v in vcpus.iter().filter(|v| !v.realtime) {
                if let Some(cpu) = v.cpus.iter().find(|c| rt_owner.contains_key(c)) {
                    return Err(perr(
                        format!("{gp}.vcpus[{}]", v.vcpu),
                        format!("dedicated sets overlap: housekeeping vCPU {} shares pCPU {cpu} with RT {}; set allow_overlap = true to measure that on purpose", v.vcpu, rt_owner[&cpu]),
                    ));
                }
            }
        }
        out.push(GuestPlacement {
            guest: g.name.clone(),
            pinned: true,
            vcpus,
            emulator_cpus: c.emulator.clone(),
            iothread_cpus: c.iothreads.clone(),
        });
    }
    Ok(LayoutPlan {
        name: layout.name.clone(),
        kind: LayoutKind::Custom,
        guests: out,
        pinset: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(toml: &str, online: &str) -> Result<Plan, PlanError> {
        let c = Config::from_toml_str(toml).unwrap();
        Plan::new(&c, &CpuSet::parse(online).unwrap())
    }

    fn one_guest(vcpus: u32, mask: &str, layout: &str) -> String {
        format!(
            "[host]\nhousekeeping_cpus = \"0-1\"\n[[guests]]\nname = \"rt\"\nvcpus = {vcpus}\nrealtime_mask = \"{mask}\"\n[[layouts]]\n{layout}\n"
        )
    }

    #[test]
    fn vcpu0_puts_emulator_on_housekeeping_vcpu() {
        let p = plan(&one_guest(4, "^0", "kind = \"vcpu0\""), "0-7").unwrap();
        let g = &p.layouts[0].guests[0];
        let cpus: Vec<String> = g.vcpus.iter().map(|v| v.cpus.to_string()).collect();
        assert_eq!(cpus, ["2", "3", "4", "5"]);
        assert_eq!(g.emulator_cpus.to_string(), "2");
        assert_eq!(g.vcpus[0].sched, Sched::OTHER);
        assert_eq!(g.vcpus[1].sched, Sched::fifo(1));
    }

    #[test]
    fn share_floats_emulator_over_guest_pcpus() {
        let p = plan(&one_guest(4, "^0", "kind = \"share\""), "0-7").unwrap();
        assert_eq!(p.layouts[0].guests[0].emulator_cpus.to_string(), "2-5");
    }

    #[test]
    fn isolate_adds_one_pcpu() {
        let p = plan(&one_guest(4, "0-3", "kind = \"isolate\""), "0-7").unwrap();
        let g = &p.layouts[0].guests[0];
        assert_eq!(g.vcpu_cpus().to_string(), "2-5");
        assert_eq!(g.emulator_cpus.to_string(), "6");
        assert_eq!(g.iothread_cpus.to_string(), "6");
    }

    #[test]
    fn float_is_unpinned_and_other() {
        let p = plan(&one_guest(2, "^0", "kind = \"float\""), "0-3").unwrap();
        let g = &p.layouts[0].guests[0];
        assert!(!g.pinned);
        assert_eq!(g.vcpus[1].cpus.to_string(), "0-3");
        assert_eq!(g.vcpus[1].sched, Sched::OTHER);
    }

    #[test]
    fn too_few_pcpus_is_refused() {
        let e = plan(&one_guest(4, "^0", "kind = \"isolate\""), "0-5").unwrap_err();
        assert_eq!(e.path, "layouts[0]");
        assert!(
            e.message.starts_with("too few pCPUs: isolate needs 5"),
            "{e}"
        );
    }

    #[test]
    fn all_realtime_guest_refused_where_emulator_has_no_home() {
        for kind in ["share", "vcpu0"] {
            let e = plan(&one_guest(2, "0-1", &format!("kind = \"{kind}\"")), "0-7").unwrap_err();
            assert_eq!(e.path, "layouts[0].kind");
            assert!(e.message.contains("nowhere but RT pCPUs"), "{e}");
        }
        plan(&one_guest(2, "0-1", "kind = \"isolate\""), "0-7").unwrap();
    }

    #[test]
    fn pinset_enforces_ratio_round_robin() {
        let guests: String = (0..3)
            .map(|i| format!("[[guests]]\nname = \"g{i}\"\nvcpus = 2\n"))
            .collect();
        let base = format!("[host]\nhousekeeping_cpus = \"0\"\nemulator_pin_set = \"1-2\"\novercommit_ratio = 2\n{guests}[[layouts]]\nkind = \"pinset\"\n");
        let p = plan(&base, "0-15").unwrap();
        let emu: Vec<String> = p.layouts[0]
            .guests
            .iter()
            .map(|g| g.emulator_cpus.to_string())
            .collect();
        assert_eq!(emu, ["1", "2", "1"]);
        assert_eq!(p.layouts[0].guests[0].vcpu_cpus().to_string(), "3-4");
        let e = plan(&base.replace("ratio = 2", "ratio = 1"), "0-15").unwrap_err();
        assert!(e.message.starts_with("overcommit ratio exceeded"), "{e}");
    }

    #[test]
    fn offline_cpus_are_refused() {
        let e = plan("[host]\ncpus = \"0-9\"\n[[guests]]\nname = \"a\"\nvcpus = 2\n[[layouts]]\nkind = \"float\"\n", "0-7").unwrap_err();
        assert_eq!(e.path, "host.cpus");
        assert!(e.message.contains("CPUs 8-9 not online"), "{e}");
    }

    #[test]
    fn custom_overlap_refused_unless_allowed() {
        let t = "[[guests]]\nname = \"a\"\nvcpus = 2\n[[layouts]]\nkind = \"custom\"\n[layouts.custom.a]\nvcpus = [\"0\", \"1\"]\nemulator = \"1\"\n";
        let e = plan(t, "0-3").unwrap_err();
        assert_eq!(e.path, "layouts[0].custom.a.emulator");
        let ok = t.replace(
            "kind = \"custom\"",
            "kind = \"custom\"\nallow_overlap = true",
        );
        plan(&ok, "0-3").unwrap();
    }
}
