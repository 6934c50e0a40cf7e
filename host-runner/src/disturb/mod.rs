//! Disturbances: what a scenario makes happen while the guests measure, each one implementation
//! of [`Disturbance`] in a file of its own (rtla's `tool_ops` is the model). A new scenario is a
//! new file here and one arm in [`for_scenario`], never a new branch in the run engine.
//!
//! Lifecycle, driven by [`crate::engine`]:
//! 1. [`Disturbance::prepare_agent`] and [`Disturbance::prepare_vm`] for every guest before it
//!    is launched: agent loads, devices and monitors go into its [`AgentConfig`] and
//!    [`VmSpec`];
//! 2. [`Disturbance::start`] once every guest is booted, pinned and released;
//!    [`Disturbance::measuring`] when every guest has said hello and is told to measure (a
//!    load that would slow the guests' boot, such as a QMP storm, waits for it);
//! 3. [`Disturbance::stop`] when every guest has sent its results (so the load never competes
//!    with the guests' power-off), or when the run ends otherwise; it says what was achieved.

mod guest_io;
mod guest_net;
pub mod host_stress;
mod idle;
mod mgmt_poll;
pub mod mgmt_storm;
pub mod migrate;
mod migrate_sink;
mod monitor;

use std::path::PathBuf;

use pinlat::agentcfg::AgentConfig;
use pinlat::config::{Scenario, ScenarioKind};
use pinlat::cpuset::CpuSet;
use pinlat::kinds::LauncherKind;
use pinlat::result::{MgmtPollStats, MgmtStormStats, MigrateStats, Warning};

use crate::qemu::VmSpec;

/// A disturbance could not start; the run fails in its `scenario` stage.
#[derive(Debug, thiserror::Error)]
pub enum DisturbanceError {
    /// A guest that should be polled has no management monitor.
    #[error("{scenario}: guest {guest} has no management QMP monitor")]
    NoMonitor {
        /// The scenario.
        scenario: ScenarioKind,
        /// The guest's index in the config.
        guest: usize,
    },
    /// The scenario's parameters cannot be used.
    #[error("{scenario}: {why}")]
    Config {
        /// The scenario.
        scenario: ScenarioKind,
        /// What is wrong, naming the bad value.
        why: String,
    },
    /// A thread or process of the disturbance could not be started.
    #[error("{scenario}: cannot start {what}")]
    Spawn {
        /// The scenario.
        scenario: ScenarioKind,
        /// What was started.
        what: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// What a started disturbance may use of the launched guests and the host.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// Per guest, in config order: its management QMP socket, when
    /// [`Disturbance::prepare_vm`] asked for one.
    pub mgmt_sockets: Vec<Option<PathBuf>>,
    /// The host pCPUs a disturbance's own threads run on: the configured housekeeping pCPUs,
    /// else those no RT vCPU of the layout may run on ([`crate::engine::housekeeping_cpus`]).
    pub housekeeping_cpus: CpuSet,
    /// The guests' names, in config order, for what a disturbance reports per guest.
    pub names: Vec<String>,
    /// Per guest, its libvirt domain when libvirt launched it (`mgmt-poll` then polls through
    /// libvirt, as a cloud does).
    pub libvirt: Vec<Option<crate::libvirt::LibvirtDomain>>,
}

/// What a disturbance did, for the run record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// `mgmt-poll` counters over every guest.
    pub mgmt_poll: Option<MgmtPollStats>,
    /// `mgmt-poll` counters per guest, in config order (`None`: that guest's poller failed).
    pub per_guest_mgmt_poll: Vec<Option<MgmtPollStats>>,
    /// `mgmt-storm` counters over every guest.
    pub mgmt_storm: Option<MgmtStormStats>,
    /// `mgmt-storm` counters per guest, in config order (`None`: that guest's storm failed).
    pub per_guest_mgmt_storm: Vec<Option<MgmtStormStats>>,
    /// `migrate` counters over every guest.
    pub migrate: Option<MigrateStats>,
    /// `migrate` counters per guest, in config order (`None`: never started on that guest).
    pub per_guest_migrate: Vec<Option<MigrateStats>>,
    /// Things the reader should know.
    pub warnings: Vec<Warning>,
    /// Why the disturbance did not do what the scenario asked (fails an otherwise good run).
    pub problem: Option<String>,
}

/// One scenario's load on the guests or the host.
pub trait Disturbance: Send {
    /// Adds what the disturbance needs to the agent config of guest `index` (loads on its
    /// housekeeping vCPUs) before it is written into the guest.
    fn prepare_agent(&self, _index: usize, _agent: &mut AgentConfig) {}

    /// Adds what the disturbance needs to the VM of guest `index` (devices, monitors) before
    /// it is launched.
    fn prepare_vm(&self, _index: usize, _vm: &mut VmSpec) {}

    /// Starts the load once every guest runs.
    fn start(&mut self, targets: &Targets) -> Result<(), DisturbanceError>;

    /// Every guest has booted and been told to measure (after `start`; not called when a
    /// guest never said hello).
    fn measuring(&mut self) {}

    /// Stops the load (idempotent) and says what it achieved; called at least once after a
    /// successful `start`.
    fn stop(&mut self) -> Outcome;
}

impl Outcome {
    /// Adds what another disturbance of the same scenario did.
    fn merge(&mut self, other: Outcome) {
        self.mgmt_poll = self.mgmt_poll.take().or(other.mgmt_poll);
        if self.per_guest_mgmt_poll.is_empty() {
            self.per_guest_mgmt_poll = other.per_guest_mgmt_poll;
        }
        self.mgmt_storm = self.mgmt_storm.take().or(other.mgmt_storm);
        if self.per_guest_mgmt_storm.is_empty() {
            self.per_guest_mgmt_storm = other.per_guest_mgmt_storm;
        }
        self.migrate = self.migrate.take().or(other.migrate);
        if self.per_guest_migrate.is_empty() {
            self.per_guest_migrate = other.per_guest_migrate;
        }
        self.warnings.extend(other.warnings);
        self.problem = match (self.problem.take(), other.problem) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        };
    }
}

/// Several disturbances of one scenario run together (`kinds = [...]`): prepared, started and
/// stopped in config order, their outcomes merged.
struct Combined(Vec<Box<dyn Disturbance>>);

impl Disturbance for Combined {
    fn prepare_agent(&self, index: usize, agent: &mut AgentConfig) {
        for d in &self.0 {
            d.prepare_agent(index, agent);
        }
    }

    fn prepare_vm(&self, index: usize, vm: &mut VmSpec) {
        for d in &self.0 {
            d.prepare_vm(index, vm);
        }
    }

    fn start(&mut self, targets: &Targets) -> Result<(), DisturbanceError> {
        for i in 0..self.0.len() {
            if let Err(e) = self.0[i].start(targets) {
                // Those already running stop; what they did is lost with the run.
                for d in &mut self.0[..i] {
                    d.stop();
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn measuring(&mut self) {
        for d in &mut self.0 {
            d.measuring();
        }
    }

    fn stop(&mut self) -> Outcome {
        let mut all = Outcome::default();
        for d in &mut self.0 {
            all.merge(d.stop());
        }
        all
    }
}

/// The disturbance of one kind, with the scenario's settings, for guests `launcher` starts.
fn for_kind(kind: ScenarioKind, s: &Scenario, launcher: LauncherKind) -> Box<dyn Disturbance> {
    match kind {
        ScenarioKind::Idle => Box::new(idle::Idle),
        ScenarioKind::MgmtPoll => Box::new(mgmt_poll::MgmtPollLoad::new(s.rate_hz, launcher)),
        ScenarioKind::GuestIo => Box::new(guest_io::GuestIo::new(s.io)),
        ScenarioKind::HostStress => Box::new(host_stress::HostStressLoad::new(s.workers)),
        ScenarioKind::MgmtStorm => Box::new(mgmt_storm::MgmtStorm::new(s.queries.clone())),
        ScenarioKind::Migrate => Box::new(migrate::Migrate::new(s.bandwidth_mib_s)),
        ScenarioKind::GuestNet => Box::new(guest_net::GuestNet::new(s.net)),
    }
}

/// The disturbances of a configured scenario, as one, for guests `launcher` starts.
pub fn for_scenario(s: &Scenario, launcher: LauncherKind) -> Box<dyn Disturbance> {
    match s.kinds.as_slice() {
        [one] => for_kind(*one, s, launcher),
        many => Box::new(Combined(
            many.iter().map(|&k| for_kind(k, s, launcher)).collect(),
        )),
    }
}

/// A QEMU monitor on a real socket at `path` that greets, accepts `qmp_capabilities`, then reads
/// every command and answers none: QEMU as it powers off.
#[cfg(test)]
pub(crate) fn unanswering_monitor(path: &std::path::Path) -> std::thread::JoinHandle<()> {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let mut w = s.try_clone().unwrap();
        w.write_all(b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": []}}\r\n").unwrap();
        let mut lines = BufReader::new(s).lines();
        lines.next();
        w.write_all(b"{\"return\": {}, \"id\": 1}\r\n").unwrap();
        for _ in lines {}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_of_a_combination_merge() {
        let mut a = Outcome {
            problem: Some("migrate: stalled".into()),
            ..Outcome::default()
        };
        a.merge(Outcome {
            mgmt_poll: Some(MgmtPollStats {
                rate_hz: 10,
                rounds: 3,
                errors: 0,
                queries: vec![],
            }),
            problem: Some("mgmt-poll: 3 of 10".into()),
            ..Outcome::default()
        });
        assert_eq!(a.mgmt_poll.unwrap().rounds, 3);
        assert_eq!(a.problem.unwrap(), "migrate: stalled; mgmt-poll: 3 of 10");
    }

    /// Counts the lifecycle calls it gets.
    struct Probe(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl Disturbance for Probe {
        fn start(&mut self, _: &Targets) -> Result<(), DisturbanceError> {
            Ok(())
        }
        fn measuring(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        fn stop(&mut self) -> Outcome {
            Outcome::default()
        }
    }

    #[test]
    fn every_disturbance_of_a_combination_hears_the_measurement_begin() {
        let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut c = Combined(vec![Box::new(Probe(n.clone())), Box::new(Probe(n.clone()))]);
        c.start(&Targets::default()).unwrap();
        c.measuring();
        assert_eq!(n.load(std::sync::atomic::Ordering::Relaxed), 2);
    }
}
