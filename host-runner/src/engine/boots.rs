//! Which measurements share a guest boot, and in what order (README "One boot, many
//! measurements").
//!
//! With `run.boot_per = "repetition"` one boot serves every scenario × workload of a layout ×
//! variant × repetition that launches the same VM: the layout, the variant's kernel command
//! line and QEMU arguments, and the devices and monitors the scenario's disturbance adds
//! ([`crate::disturb::Disturbance::prepare_vm`]) cannot change without a reboot, so scenarios
//! whose VMs differ (`guest-io`'s disk, `guest-net`'s NIC, a management monitor) get a boot of
//! their own. Repetitions never share a boot, so the boot-to-boot variance is still measured.
//! Within a boot the phases run in an order drawn from `run.order_seed` (SplitMix64,
//! Fisher–Yates), a new draw per boot, so an order effect cannot pose as a layout effect.
//!
//! With `run.boot_per = "measurement"` every measurement is a boot of one phase, in the
//! matrix's order (layout × variant × scenario × workload × repetition), as before phases.

use std::path::PathBuf;

use pinlat::config::variant::Variant;
use pinlat::config::{Config, Scenario, Workload};
use pinlat::kinds::{Accel, BootPer};
use pinlat::plan::{LayoutPlan, Plan};
use pinlat::prng::SplitMix64;
use pinlat::result::run_name;

use crate::qemu::{AgentChannel, VmSpec};

/// One measurement of a boot: a scenario × workload.
#[derive(Clone, Copy)]
pub struct PhasePlan<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// The workload.
    pub workload: &'a Workload,
}

/// One planned guest boot and the phases it measures, in order.
#[derive(Clone)]
pub struct BootPlan<'a> {
    /// The layout.
    pub layout: &'a LayoutPlan,
    /// The variant, when the config has variants.
    pub variant: Option<&'a Variant>,
    /// The repetition, from 1.
    pub repetition: u32,
    /// The phases, in the order they run.
    pub phases: Vec<PhasePlan<'a>>,
    /// How boots are shared in this session.
    pub boot_per: BootPer,
    /// The seed the order was drawn from (`None` with a boot per measurement).
    pub order_seed: Option<u64>,
}

impl BootPlan<'_> {
    /// The run name of phase `i`.
    pub fn run_name(&self, i: usize) -> String {
        let p = &self.phases[i];
        run_name(
            &self.layout.name,
            self.variant.map(|v| v.name.as_str()),
            &p.scenario.name,
            p.workload.kind,
            self.repetition,
        )
    }
}

/// What a scenario's disturbance makes of the VM of each guest: scenarios share a boot only
/// when these are equal.
fn vm_of(config: &Config, scenario: &Scenario) -> Vec<VmSpec> {
    let d = crate::disturb::for_scenario(scenario, config.run.launcher);
    config
        .guests
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let mut spec = VmSpec::for_guest(
                g,
                Accel::Tcg,
                &PathBuf::new(),
                PathBuf::new(),
                PathBuf::new(),
                AgentChannel::Pipe(PathBuf::new()),
            );
            d.prepare_vm(i, &mut spec);
            spec
        })
        .collect()
}

/// The config's scenarios grouped by the VM they launch, in config order (a group's place is
/// its first scenario's).
fn device_sets(config: &Config) -> Vec<Vec<&Scenario>> {
    let mut groups: Vec<(Vec<VmSpec>, Vec<&Scenario>)> = Vec::new();
    for s in &config.scenarios {
        let vm = vm_of(config, s);
        match groups.iter_mut().find(|(v, _)| *v == vm) {
            Some((_, members)) => members.push(s),
            None => groups.push((vm, vec![s])),
        }
    }
    groups.into_iter().map(|(_, s)| s).collect()
}

/// Every boot of the session, in the order they run. `seed` orders the phases of shared
/// boots.
pub fn plan_boots<'a>(config: &'a Config, plan: &'a Plan, seed: u64) -> Vec<BootPlan<'a>> {
    let mut boots = Vec::new();
    match config.run.boot_per {
        BootPer::Measurement => {
            for layout in &plan.layouts {
                for variant in config.variant_axis() {
                    for scenario in &config.scenarios {
                        for workload in &config.workloads {
                            for repetition in 1..=config.run.repetitions {
                                boots.push(BootPlan {
                                    layout,
                                    variant,
                                    repetition,
                                    phases: vec![PhasePlan { scenario, workload }],
                                    boot_per: BootPer::Measurement,
                                    order_seed: None,
                                });
                            }
                        }
                    }
                }
            }
        }
        BootPer::Repetition => {
            let sets = device_sets(config);
            let mut rng = SplitMix64::new(seed);
            for layout in &plan.layouts {
                for variant in config.variant_axis() {
                    for repetition in 1..=config.run.repetitions {
                        for set in &sets {
                            let mut phases: Vec<PhasePlan> = set
                                .iter()
                                .flat_map(|&scenario| {
                                    config
                                        .workloads
                                        .iter()
                                        .map(move |workload| PhasePlan { scenario, workload })
                                })
                                .collect();
                            rng.shuffle(&mut phases);
                            boots.push(BootPlan {
                                layout,
                                variant,
                                repetition,
                                phases,
                                boot_per: BootPer::Repetition,
                                order_seed: Some(seed),
                            });
                        }
                    }
                }
            }
        }
    }
    boots
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinlat::cpuset::CpuSet;

    fn config(boot_per: &str, reps: u32, scenarios: &[&str]) -> Config {
        let mut s = format!(
            "[run]\nboot_per = \"{boot_per}\"\nrepetitions = {reps}\n[host]\ncpus = \"0-1\"\n\
             [[guests]]\nname = \"g\"\nvcpus = 2\n[[layouts]]\nkind = \"share\"\n\
             [[layouts]]\nkind = \"vcpu0\"\n\
             [[workloads]]\nkind = \"busy-poll\"\n[[workloads]]\nkind = \"timer\"\n"
        );
        for k in scenarios {
            s += &format!("[[scenarios]]\nkind = \"{k}\"\n");
        }
        Config::from_toml_str(&s).unwrap()
    }

    fn names(boots: &[BootPlan<'_>]) -> Vec<Vec<String>> {
        boots
            .iter()
            .map(|b| (0..b.phases.len()).map(|i| b.run_name(i)).collect())
            .collect()
    }

    fn plan_of(c: &Config) -> Plan {
        Plan::new(c, &CpuSet::parse("0-1").unwrap()).unwrap()
    }

    /// Scenarios that launch the same VM share a boot; a disk or a NIC makes a VM of its own;
    /// every measurement of the matrix is planned exactly once.
    #[test]
    fn a_boot_per_repetition_and_device_set_covers_the_matrix_once() {
        let c = config(
            "repetition",
            2,
            &[
                "mgmt-storm",
                "guest-io",
                "migrate",
                "guest-net",
                "idle",
                "mgmt-poll",
            ],
        );
        let p = plan_of(&c);
        let boots = plan_boots(&c, &p, 7);
        // 2 layouts × 2 repetitions × 4 VMs: monitor (storm, migrate, poll), disk, NIC, plain
        // (idle).
        assert_eq!(boots.len(), 16);
        let mut all: Vec<String> = names(&boots).concat();
        assert_eq!(all.len(), 2 * 6 * 2 * 2);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 2 * 6 * 2 * 2, "a measurement planned twice");
        for b in &boots {
            let kinds: Vec<&str> = b.phases.iter().map(|p| p.scenario.name.as_str()).collect();
            let set = |k: &str| match k {
                "mgmt-storm" | "migrate" | "mgmt-poll" => 0,
                "guest-io" => 1,
                "guest-net" => 2,
                _ => 3,
            };
            assert!(
                kinds.iter().all(|k| set(k) == set(kinds[0])),
                "one boot mixes VMs: {kinds:?}"
            );
            assert_eq!(b.order_seed, Some(7));
        }
        // Repetitions never share a boot.
        for b in &boots {
            assert!(names(std::slice::from_ref(b))[0]
                .iter()
                .all(|n| n.ends_with(&format!(".r{}", b.repetition))));
        }
    }

    /// The order is fixed by the seed, drawn anew per boot (two repetitions of a layout differ
    /// here), and another seed gives other orders.
    #[test]
    fn phase_orders_are_seeded_and_drawn_per_boot() {
        let c = config("repetition", 2, &["mgmt-storm", "migrate"]);
        let p = plan_of(&c);
        let a = names(&plan_boots(&c, &p, 1));
        assert_eq!(a, names(&plan_boots(&c, &p, 1)));
        assert_eq!(a.len(), 4);
        let order = |b: &Vec<String>| -> Vec<String> {
            b.iter()
                .map(|n| n.rsplit_once(".r").unwrap().0.to_string())
                .collect()
        };
        assert!(
            a.iter().skip(1).any(|b| order(b) != order(&a[0])),
            "every boot in the same order: {a:?}"
        );
        assert!((2..6).any(|seed| names(&plan_boots(&c, &p, seed)) != a));
    }

    /// A boot per measurement is the matrix's order, one phase each, with no seed.
    #[test]
    fn a_boot_per_measurement_is_the_matrix_in_order() {
        let c = config("measurement", 2, &["idle"]);
        let p = plan_of(&c);
        let boots = plan_boots(&c, &p, 1);
        assert!(boots
            .iter()
            .all(|b| b.phases.len() == 1 && b.order_seed.is_none()));
        assert_eq!(
            names(&boots).concat(),
            [
                "share.idle.busy-poll.r1",
                "share.idle.busy-poll.r2",
                "share.idle.timer.r1",
                "share.idle.timer.r2",
                "vcpu0.idle.busy-poll.r1",
                "vcpu0.idle.busy-poll.r2",
                "vcpu0.idle.timer.r1",
                "vcpu0.idle.timer.r2",
            ]
        );
    }
}
