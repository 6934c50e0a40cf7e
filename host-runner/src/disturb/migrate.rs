//! `migrate`: live migration of every running guest to a sink of the runner's that discards
//! ([`super::migrate_sink`]), one pass after another for the whole measurement, at a
//! configured `max-bandwidth`. QEMU's migration thread copies guest memory and its dirty-page
//! tracking works (bitmap syncs under the big QEMU lock, TLB flushes of every vCPU when
//! logging starts); libvirt's `emulatorpin` covers that thread, so this is a load a layout's
//! emulator set decides the place of. How the guest is kept running (a migration that
//! completes would leave it paused) is in [`crate::qmp::migration`].
//!
//! One driver thread per guest, pinned to the host's housekeeping pCPUs, on a management QMP
//! monitor of the guest's own, connected when the guests are released; the first pass starts
//! when they are told to measure ([`Disturbance::measuring`]), so the guests boot undisturbed. A migration that fails or stalls ends the disturbance on that
//! guest, not the run: the run carries [`Warning::ScenarioPartial`]. A rate far below
//! `max-bandwidth` is [`Warning::MigrateBelowBandwidth`].

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pinlat::config::ScenarioKind;
use pinlat::cpuset::CpuSet;
use pinlat::result::{MigrateStats, Warning};

use super::migrate_sink::MigrationSink;
use super::monitor::{self, ConnectError, Lifecycle, Switches};
use super::{Disturbance, DisturbanceError, Outcome, Targets};
use crate::qemu::VmSpec;
use crate::qmp::migration::{self, Action, Passes, DOWNTIME_LIMIT_MS};
use crate::qmp::{QmpClient, QmpError};

/// A pass that moves no byte for this long has stalled.
const STALL_AFTER: Duration = Duration::from_secs(5);
/// How long the driver waits for events before looking at its stop flag.
const EVENT_WAIT: Duration = Duration::from_millis(50);
/// How often the driver asks `query-migrate` (stall and failure detection).
const QUERY_EVERY: Duration = Duration::from_millis(500);
/// How long a cancel at the end may take.
const CANCEL_WAIT: Duration = Duration::from_secs(5);
/// Deadline of one QMP command, and of connecting.
const QMP_TIMEOUT: Duration = Duration::from_secs(5);

/// One guest's migrations.
#[derive(Debug)]
struct GuestMigration {
    name: String,
    sink: MigrationSink,
    driver: JoinHandle<Result<MigrateStats, ConnectError>>,
}

/// The migrations of one run.
#[derive(Debug)]
pub struct Migrate {
    bandwidth_mib_s: u32,
    life: Lifecycle,
    dir: Option<tempfile::TempDir>,
    guests: Vec<GuestMigration>,
}

impl Migrate {
    /// Migrations at `max-bandwidth` `bandwidth_mib_s` MiB/s (at least 1). The config's default,
    /// 128, is QEMU 7.2's own (`query-migrate-parameters` answers 134217728 bytes/s): what an
    /// unconfigured migration does.
    pub fn new(bandwidth_mib_s: u32) -> Self {
        Migrate {
            bandwidth_mib_s: bandwidth_mib_s.max(1),
            life: Lifecycle::default(),
            dir: None,
            guests: Vec::new(),
        }
    }
}

impl Disturbance for Migrate {
    fn prepare_vm(&self, _index: usize, vm: &mut VmSpec) {
        monitor::want_monitor(vm);
    }

    fn start(&mut self, targets: &Targets) -> Result<(), DisturbanceError> {
        let spawn_err = |what: String, source| DisturbanceError::Spawn {
            scenario: ScenarioKind::Migrate,
            what,
            source,
        };
        let dir = crate::qemu::runtime_dir().map_err(|e| {
            spawn_err(
                "the sink's private directory".into(),
                std::io::Error::other(format!("{:#}", anyhow::Error::new(e))),
            )
        })?;
        for (guest, socket) in targets.mgmt_sockets.iter().enumerate() {
            let socket = socket.clone().ok_or(DisturbanceError::NoMonitor {
                scenario: ScenarioKind::Migrate,
                guest,
            })?;
            let path = dir.path().join(format!("migrate-{guest}.sock"));
            let sink = MigrationSink::start(&path, &targets.housekeeping_cpus).map_err(|e| {
                spawn_err(
                    format!("the migration sink of guest {guest}"),
                    std::io::Error::other(format!("{:#}", anyhow::Error::new(e))),
                )
            })?;
            let driver = driver_thread(Driver {
                socket,
                uri: format!("unix:{}", path.display()),
                bandwidth_mib_s: self.bandwidth_mib_s,
                sink_bytes: sink.bytes_counter(),
                cpus: targets.housekeeping_cpus.clone(),
                switches: self.life.switches().clone(),
            })
            .map_err(|e| spawn_err(format!("the migration driver of guest {guest}"), e))?;
            self.guests.push(GuestMigration {
                name: targets
                    .names
                    .get(guest)
                    .cloned()
                    .unwrap_or_else(|| guest.to_string()),
                sink,
                driver,
            });
        }
        self.dir = Some(dir);
        Ok(())
    }

    fn measuring(&mut self) {
        self.life.measuring();
    }

    fn stop(&mut self) -> Outcome {
        let (guests, dir) = (&mut self.guests, &mut self.dir);
        self.life.stop(|_| {
            let outcome = outcome(std::mem::take(guests));
            *dir = None;
            outcome
        })
    }
}

/// What the migrations did: each guest's driver joined and its sink stopped.
fn outcome(guests: Vec<GuestMigration>) -> Outcome {
    let mut outcome = Outcome::default();
    let mut problems = Vec::new();
    for (i, g) in guests.into_iter().enumerate() {
        let what = format!("the migration driver of guest {} ({i})", g.name);
        let joined = monitor::join(
            g.driver,
            ScenarioKind::Migrate,
            &g.name,
            &what,
            &mut problems,
        );
        // The driver has cancelled its last pass: the sink has seen everything.
        let connections = g.sink.connections();
        let sink_result = g.sink.stop();
        let Some(mut stats) = joined else {
            outcome.per_guest_migrate.push(None);
            continue;
        };
        if stats.passes_started > 0 && connections == 0 {
            stats.failure.get_or_insert_with(|| {
                format!(
                    "QEMU never connected to the sink in {} pass(es)",
                    stats.passes_started
                )
            });
        }
        match sink_result {
            Ok(bytes) => stats.bytes = bytes,
            Err(e) => {
                stats
                    .failure
                    .get_or_insert_with(|| format!("{:#}", anyhow::Error::new(e)));
            }
        }
        outcome.warnings.extend(warnings(&g.name, &stats));
        outcome.per_guest_migrate.push(Some(stats));
    }
    outcome.migrate = Some(total(outcome.per_guest_migrate.iter().flatten()));
    outcome.problem = (!problems.is_empty()).then(|| problems.join("; "));
    outcome
}

/// What a guest's migrations warn about: stopping early, or moving far less than allowed.
pub fn warnings(guest: &str, s: &MigrateStats) -> Vec<Warning> {
    let mut w = Vec::new();
    if let Some(why) = &s.failure {
        w.push(Warning::ScenarioPartial {
            scenario: ScenarioKind::Migrate,
            guest: guest.to_owned(),
            why: why.clone(),
        });
    } else if s.below_bandwidth() {
        w.push(Warning::MigrateBelowBandwidth {
            guest: guest.to_owned(),
            achieved_kib_s: (s.achieved_mib_s() * 1024.0).round() as u64,
            max_bandwidth_mib_s: s.max_bandwidth_mib_s,
        });
    }
    w
}

/// The guests' migrations together: counts and bytes summed, the longest elapsed time (they
/// ran side by side), the failures joined.
pub fn total<'a>(guests: impl Iterator<Item = &'a MigrateStats>) -> MigrateStats {
    let mut t = MigrateStats::default();
    let mut failures = Vec::new();
    let mut n = 0u32;
    for g in guests {
        n += 1;
        t.max_bandwidth_mib_s = g.max_bandwidth_mib_s;
        t.downtime_limit_ms = g.downtime_limit_ms;
        t.passes_started += g.passes_started;
        t.passes_converged += g.passes_converged;
        t.passes_cancelled += g.passes_cancelled;
        t.passes_completed += g.passes_completed;
        t.passes_failed += g.passes_failed;
        t.bytes += g.bytes;
        t.elapsed_ms = t.elapsed_ms.max(g.elapsed_ms);
        t.pauses += g.pauses;
        t.paused_us += g.paused_us;
        t.max_pause_us = t.max_pause_us.max(g.max_pause_us);
        failures.extend(g.failure.clone());
    }
    // Side by side, the guests' allowances add up as their rates do.
    t.max_bandwidth_mib_s = t.max_bandwidth_mib_s.saturating_mul(n.max(1));
    t.failure = (!failures.is_empty()).then(|| failures.join("; "));
    t
}

/// What one driver thread needs.
struct Driver {
    socket: PathBuf,
    uri: String,
    bandwidth_mib_s: u32,
    sink_bytes: Arc<AtomicU64>,
    cpus: CpuSet,
    switches: Switches,
}

fn driver_thread(d: Driver) -> std::io::Result<JoinHandle<Result<MigrateStats, ConnectError>>> {
    std::thread::Builder::new()
        .name("migrate-driver".into())
        .spawn(move || {
            let (mut qmp, _) =
                monitor::connect(ScenarioKind::Migrate, &d.socket, &d.cpus, QMP_TIMEOUT)?;
            // Waiting for events must not block for a whole command timeout.
            qmp.get_ref()
                .set_read_timeout(Some(EVENT_WAIT))
                .map_err(|e| ConnectError {
                    scenario: ScenarioKind::Migrate,
                    source: QmpError::Io(e),
                })?;
            d.switches.wait_for_go();
            Ok(drive(&mut qmp, &d))
        })
}

/// Runs passes until stopped or until one fails or stalls; the guest is left running.
fn drive(qmp: &mut QmpClient<UnixStream>, d: &Driver) -> MigrateStats {
    let mut passes = Passes::default();
    let started = Instant::now();
    let failure = if d.switches.stopped() {
        None
    } else {
        run_passes(qmp, d, &mut passes).err()
    };
    // Whatever ended the passes, none may be left running, nor the guest paused.
    passes.stopping = true;
    let closed = matches!(&failure, Some(Ended::Closed));
    if !closed {
        finish(qmp, &mut passes);
    }
    MigrateStats {
        max_bandwidth_mib_s: d.bandwidth_mib_s,
        downtime_limit_ms: DOWNTIME_LIMIT_MS,
        passes_started: passes.started,
        passes_converged: passes.converged,
        passes_cancelled: passes.cancelled,
        passes_completed: passes.completed,
        passes_failed: passes.failed,
        bytes: d.sink_bytes.load(Ordering::Relaxed),
        elapsed_ms: started.elapsed().as_millis() as u64,
        pauses: passes.pauses,
        paused_us: passes.paused_us,
        max_pause_us: passes.max_pause_us,
        // QEMU closing its monitor is the guest powering off once its results are in (it can
        // happen before the stop reaches this thread), or QEMU dying, which fails the run on
        // its own: neither is the migration's failure.
        failure: match failure {
            None | Some(Ended::Closed) => None,
            Some(e) => Some(e.to_string()),
        },
    }
}

/// Why the passes ended before the measurement did.
#[derive(Debug)]
enum Ended {
    /// QEMU closed the monitor (not a failure, see [`drive`]).
    Closed,
    /// Anything else, said in full.
    Failed(String),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Closed => f.write_str("QEMU closed its monitor"),
            Ended::Failed(why) => f.write_str(why),
        }
    }
}

fn qmp_err(what: &str) -> impl Fn(QmpError) -> Ended + '_ {
    move |e| match e {
        QmpError::Closed => Ended::Closed,
        e => Ended::Failed(format!("{what}: {:#}", anyhow::Error::new(e))),
    }
}

/// The passes, until `d.stop` (Ok) or a failure.
fn run_passes(
    qmp: &mut QmpClient<UnixStream>,
    d: &Driver,
    passes: &mut Passes,
) -> Result<(), Ended> {
    migration::prepare(qmp, u64::from(d.bandwidth_mib_s) << 20).map_err(qmp_err(
        "setting up migration (capabilities events and pause-before-switchover, max-bandwidth, downtime-limit)",
    ))?;
    let mut want_pass = true;
    let mut last_query = Instant::now();
    let (mut last_bytes, mut last_progress) = (0u64, Instant::now());
    while !d.switches.stopped() {
        if want_pass {
            migration::start(qmp, &d.uri).map_err(qmp_err("migrate"))?;
            passes.pass_started();
            want_pass = false;
            last_progress = Instant::now();
        }
        qmp.poll_events(EVENT_WAIT)
            .map_err(qmp_err("waiting for migration events"))?;
        for ev in qmp.take_events() {
            if let Some(a) = passes.on_event(&ev) {
                want_pass |= act(qmp, passes, a, None)?;
            }
        }
        if last_query.elapsed() >= QUERY_EVERY {
            last_query = Instant::now();
            let info = migration::query(qmp).map_err(qmp_err("query-migrate"))?;
            if let Some(status) = info.status.as_deref() {
                if !migration::is_running(status) {
                    if let Some(a) = passes.on_status(status) {
                        want_pass |= act(qmp, passes, a, info.error_desc.clone())?;
                    }
                }
            }
        }
        let bytes = d.sink_bytes.load(Ordering::Relaxed);
        if bytes != last_bytes || !passes.running() {
            (last_bytes, last_progress) = (bytes, Instant::now());
        }
        if last_progress.elapsed() >= STALL_AFTER {
            let status = migration::query(qmp)
                .ok()
                .and_then(|i| i.status)
                .unwrap_or_else(|| "unknown".into());
            return Err(Ended::Failed(format!(
                "pass {} stalled: no byte reached the sink for {} s (status {status})",
                passes.started,
                STALL_AFTER.as_secs()
            )));
        }
    }
    Ok(())
}

/// Does what an event or status asks; whether a new pass is wanted.
fn act(
    qmp: &mut QmpClient<UnixStream>,
    passes: &Passes,
    action: Action,
    error_desc: Option<String>,
) -> Result<bool, Ended> {
    match action {
        Action::Cancel => migration::cancel(qmp)
            .map(|()| false)
            .map_err(qmp_err("migrate_cancel at switchover")),
        Action::Next => Ok(true),
        Action::ResumeAndNext => qmp
            .cont()
            .map(|()| true)
            .map_err(qmp_err("cont after a completed pass")),
        Action::Resume => qmp.cont().map(|()| false).map_err(qmp_err("cont")),
        Action::Failed => {
            let why = error_desc
                .or_else(|| migration::query(qmp).ok().and_then(|i| i.error_desc))
                .unwrap_or_else(|| "no reason given".into());
            Err(Ended::Failed(format!(
                "pass {} failed: {why}",
                passes.started
            )))
        }
    }
}

/// Cancels the pass under way, waits for QEMU to say it ended, and resumes the guest if a
/// pass left it paused. Errors are ignored: QEMU may be exiting as the guest powers off.
fn finish(qmp: &mut QmpClient<UnixStream>, passes: &mut Passes) {
    let deadline = Instant::now() + CANCEL_WAIT;
    if passes.running() {
        passes.cancel_sent();
        if migration::cancel(qmp).is_err() {
            return;
        }
    }
    while passes.running() && Instant::now() < deadline {
        if qmp.poll_events(EVENT_WAIT).is_err() {
            return;
        }
        for ev in qmp.take_events() {
            passes.on_event(&ev);
        }
        match migration::query(qmp) {
            Ok(i) => {
                if let Some(s) = i.status.as_deref().filter(|s| !migration::is_running(s)) {
                    passes.on_status(s);
                }
            }
            Err(_) => return,
        }
    }
    for ev in qmp.take_events() {
        passes.on_event(&ev);
    }
    if let Ok(s) = qmp.query_status() {
        if !s.running
            && matches!(
                s.status.as_str(),
                "postmigrate" | "finish-migrate" | "paused"
            )
        {
            let _ = qmp.cont();
        }
    }
}

#[cfg(test)]
#[path = "migrate_tests.rs"]
mod tests;
