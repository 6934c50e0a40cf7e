//! What the disturbances that work through each guest's management QMP monitor share
//! (`mgmt-poll`, `mgmt-storm`, `migrate`): one thread per guest, connected from the host's
//! housekeeping pCPUs, released by a go and ended by a stop, its connection shut down at stop,
//! and joined into the run's outcome.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pinlat::config::ScenarioKind;
use pinlat::cpuset::CpuSet;

use super::Outcome;
use crate::qemu::VmSpec;
use crate::qmp::{QmpClient, QmpError};

/// How often a connected thread looks for the go.
const GO_POLL: Duration = Duration::from_millis(5);

/// A disturbance's thread could not connect to its guest's management monitor.
#[derive(Debug, thiserror::Error)]
#[error("Cannot connect the {scenario} monitor")]
pub struct ConnectError {
    /// The disturbance.
    pub scenario: ScenarioKind,
    /// Cause.
    #[source]
    pub source: QmpError,
}

/// Asks for the management monitor these disturbances work through
/// ([`super::Disturbance::prepare_vm`]).
pub(super) fn want_monitor(vm: &mut VmSpec) {
    vm.mgmt_qmp = true;
}

/// The switches a disturbance's threads watch: `go` once the guests measure, `stop` at the
/// end.
#[derive(Debug, Clone, Default)]
pub(super) struct Switches {
    go: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Switches {
    /// The guests measure: the load may begin.
    pub(super) fn go(&self) {
        self.go.store(true, Ordering::Relaxed);
    }

    /// The run is ending: every thread stops.
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether the go was given.
    pub(super) fn went(&self) -> bool {
        self.go.load(Ordering::Relaxed)
    }

    /// Whether the stop was given.
    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Blocks until the go or the stop.
    pub(super) fn wait_for_go(&self) {
        while !self.went() && !self.stopped() {
            std::thread::sleep(GO_POLL);
        }
    }
}

/// A disturbance's switches and the outcome of its first stop, which every later stop gives
/// again ([`super::Disturbance::stop`] is idempotent).
#[derive(Debug, Default)]
pub(super) struct Lifecycle {
    switches: Switches,
    kept: Option<Outcome>,
}

impl Lifecycle {
    /// The switches, for the threads.
    pub(super) fn switches(&self) -> &Switches {
        &self.switches
    }

    /// The guests measure: gives the go ([`super::Disturbance::measuring`]).
    pub(super) fn measuring(&self) {
        self.switches.go();
    }

    /// [`super::Disturbance::stop`]: the first gives the stop and keeps what `finish` makes
    /// of the threads (told whether the go came); every stop returns that.
    pub(super) fn stop(&mut self, finish: impl FnOnce(bool) -> Outcome) -> Outcome {
        if self.kept.is_none() {
            self.switches.stop();
            self.kept = Some(finish(self.switches.went()));
        }
        self.kept.clone().unwrap_or_default()
    }
}

/// Connects the calling thread, one of `scenario`'s, to a guest's management monitor at
/// `socket`, after pinning it to `cpus` when there are any; `timeout` per command, six of them
/// to connect. The client, and whether the pinning held.
pub(super) fn connect(
    scenario: ScenarioKind,
    socket: &Path,
    cpus: &CpuSet,
    timeout: Duration,
) -> Result<(QmpClient<UnixStream>, bool), ConnectError> {
    let cpu_list: Vec<u32> = cpus.iter().collect();
    let pinned = !cpu_list.is_empty() && pinlat::sched::set_affinity(0, &cpu_list).is_ok();
    let qmp = crate::qmp::connect_unix(socket, Instant::now() + timeout * 6, timeout)
        .map_err(|source| ConnectError { scenario, source })?;
    Ok((qmp, pinned))
}

/// Joins `scenario`'s thread of one guest: what it returned, or `None` with the problem added
/// to `problems` (`{scenario}: guest {guest}: {error}`, or `{scenario}: {what} panicked`).
pub(super) fn join<T>(
    thread: JoinHandle<Result<T, ConnectError>>,
    scenario: ScenarioKind,
    guest: &dyn std::fmt::Display,
    what: &dyn std::fmt::Display,
    problems: &mut Vec<String>,
) -> Option<T> {
    match thread.join() {
        Ok(Ok(t)) => Some(t),
        Ok(Err(e)) => {
            problems.push(format!(
                "{scenario}: guest {guest}: {:#}",
                anyhow::Error::new(e)
            ));
            None
        }
        Err(_) => {
            problems.push(format!("{scenario}: {what} panicked"));
            None
        }
    }
}

/// The monitor connections of a disturbance's threads, shut down at stop, so that a thread
/// blocked on a call QEMU no longer answers (a guest powering off) returns at once instead of
/// holding the run for the call's timeout (seen in CI: 5 s, then QEMU killed 10 s later). A
/// thread that polls through a process of its own (`virsh` for a libvirt guest) keeps that
/// process here instead: stop kills it, and a read blocked on its output returns.
#[derive(Debug, Clone, Default)]
pub(crate) struct MonitorLinks(Arc<Mutex<Vec<Link>>>);

/// One connection [`MonitorLinks`] ends at stop.
#[derive(Debug)]
enum Link {
    /// A QMP socket: shut down.
    Socket(UnixStream),
    /// A client process: killed (a no-op once its owner has reaped it, so never another
    /// process that took its pid).
    Process(Arc<Mutex<Child>>),
}

impl MonitorLinks {
    /// Keeps a handle on `stream` to shut it down at stop.
    pub(crate) fn keep(&self, stream: &UnixStream) {
        if let Ok(s) = stream.try_clone() {
            self.push(Link::Socket(s));
        }
    }

    /// Keeps `process` to kill it at stop.
    pub(crate) fn keep_process(&self, process: Arc<Mutex<Child>>) {
        self.push(Link::Process(process));
    }

    fn push(&self, link: Link) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(link);
    }

    /// Shuts every kept connection down and kills every kept process: a read or write blocked
    /// on one returns.
    pub(crate) fn shut_all(&self) {
        for link in self.0.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            match link {
                Link::Socket(s) => {
                    let _ = s.shutdown(std::net::Shutdown::Both);
                }
                Link::Process(p) => {
                    let _ = p.lock().unwrap_or_else(|e| e.into_inner()).kill();
                }
            }
        }
    }
}
