//! Live migration as a load (`migrate` scenario): the QMP commands that start a pass, and the
//! pure bookkeeping ([`Passes`]) that turns QEMU's migration events into what to do next, so
//! that the guest keeps running for the whole measurement.
//!
//! Why the guest keeps running. A precopy migration that converges stops the source guest
//! (`finish-migrate`) and, once complete, leaves it paused in `postmigrate` ("guest is paused
//! following a successful 'migrate'", QAPI `RunState`). pinlat never lets a pass complete:
//! - the `pause-before-switchover` capability (QAPI `MigrationCapability`, since 2.11: "Pause
//!   outgoing migration before serialising device state and before disabling block IO") makes
//!   a converged pass wait in `pre-switchover` for `migrate-continue`, which pinlat never
//!   sends;
//! - pinlat answers `pre-switchover` (and `device`, should a pass slip past it) with
//!   `migrate_cancel` ("Cancel the current executing migration process"); QEMU then restarts
//!   the guest it stopped for switchover (`migration_iteration_finish` restarts a VM that was
//!   running) and emits `RESUME` and `MIGRATION cancelled`, and the next pass starts;
//! - should a pass complete anyway, the guest is resumed with `cont` and the pass counted as
//!   completed.
//!
//! The guest is stopped from QEMU's `STOP` event to its `RESUME` event for each converged pass
//! (a few ms measured on this 2-CPU TCG host: QEMU 7.2, 256 MiB guest): [`Passes`] records
//! every such pause from the events' own timestamps. `downtime-limit` is set to 1 ms (QAPI:
//! "maximum tolerated downtime for migration", in ms; QEMU 7.2's default is 300) so that a
//! pass converges only when the guest dirties almost nothing, and the dirty-page iterations
//! (bitmap syncs, QEMU's dirty tracking) run as long as they can. `max-bandwidth` (bytes per
//! second, default 128 MiB/s in QEMU 7.2) is the configured rate. The `events` capability
//! makes QEMU emit `MIGRATION` events, so the runner reacts to `pre-switchover` at once instead
//! of at its next poll.

use std::io::{Read, Write};

use serde::Deserialize;
use serde_json::json;

use super::{QmpClient, QmpError, QmpEvent};

/// `downtime-limit` pinlat asks for, ms (see the module documentation).
pub const DOWNTIME_LIMIT_MS: u64 = 1;

/// Turns on `events` and `pause-before-switchover` and sets `max-bandwidth` (bytes/s) and
/// [`DOWNTIME_LIMIT_MS`].
pub fn prepare<S: Read + Write>(
    qmp: &mut QmpClient<S>,
    max_bandwidth_bytes_s: u64,
) -> Result<(), QmpError> {
    qmp.execute(
        "migrate-set-capabilities",
        Some(json!({"capabilities": [
            {"capability": "events", "state": true},
            {"capability": "pause-before-switchover", "state": true},
        ]})),
    )?;
    qmp.execute(
        "migrate-set-parameters",
        Some(json!({
            "max-bandwidth": max_bandwidth_bytes_s,
            "downtime-limit": DOWNTIME_LIMIT_MS,
        })),
    )?;
    Ok(())
}

/// Starts a migration pass to `uri` (e.g. `unix:/run/…/migrate-0.sock`).
pub fn start<S: Read + Write>(qmp: &mut QmpClient<S>, uri: &str) -> Result<(), QmpError> {
    qmp.execute("migrate", Some(json!({ "uri": uri })))
        .map(|_| ())
}

/// Cancels the current pass (QEMU answers even when none runs).
pub fn cancel<S: Read + Write>(qmp: &mut QmpClient<S>) -> Result<(), QmpError> {
    qmp.execute("migrate_cancel", None).map(|_| ())
}

/// The RAM part of `query-migrate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MigrationRam {
    /// Bytes sent so far in this pass.
    #[serde(default)]
    pub transferred: u64,
    /// Bytes still to send.
    #[serde(default)]
    pub remaining: u64,
    /// Dirty bitmap syncs so far.
    #[serde(rename = "dirty-sync-count", default)]
    pub dirty_sync_count: u64,
}

/// `query-migrate`'s answer (the fields pinlat reads).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MigrationInfo {
    /// `MigrationStatus`, absent before the first migration.
    #[serde(default)]
    pub status: Option<String>,
    /// Present while `active` and when `completed`.
    #[serde(default)]
    pub ram: Option<MigrationRam>,
    /// QEMU's reason for a `failed` migration.
    #[serde(rename = "error-desc", default)]
    pub error_desc: Option<String>,
}

/// `query-migrate`.
pub fn query<S: Read + Write>(qmp: &mut QmpClient<S>) -> Result<MigrationInfo, QmpError> {
    qmp.execute_as("query-migrate", None)
}

/// Whether a `MigrationStatus` means a migration is under way (QEMU's
/// `migration_is_running`: everything but none, completed, failed, cancelled).
pub fn is_running(status: &str) -> bool {
    !matches!(status, "none" | "completed" | "failed" | "cancelled")
}

/// What the runner must do after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `migrate_cancel`: a pass reached switchover.
    Cancel,
    /// `cont`, then start the next pass: a pass completed and left the guest paused.
    ResumeAndNext,
    /// `cont` only: a pass completed as the measurement ended.
    Resume,
    /// Start the next pass.
    Next,
    /// The migrations are over: a pass failed (QEMU restarts a guest it stopped).
    Failed,
}

/// The passes of one guest's migrations, counted from QEMU's events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Passes {
    /// Passes started.
    pub started: u64,
    /// Passes that reached switchover and were cancelled there.
    pub converged: u64,
    /// Passes that ended cancelled.
    pub cancelled: u64,
    /// Passes that completed.
    pub completed: u64,
    /// Passes that failed.
    pub failed: u64,
    /// `STOP` events.
    pub pauses: u64,
    /// `STOP` to `RESUME`, summed, µs.
    pub paused_us: u64,
    /// Longest `STOP` to `RESUME`, µs.
    pub max_pause_us: u64,
    /// The last `MIGRATION` status.
    pub status: Option<String>,
    /// No new pass is wanted (the measurement is over).
    pub stopping: bool,
    cancel_sent: bool,
    ended: bool,
    stopped_at_us: Option<u64>,
}

impl Passes {
    /// A `migrate` command was accepted.
    pub fn pass_started(&mut self) {
        self.started += 1;
        self.cancel_sent = false;
        self.ended = false;
        self.status = Some("setup".into());
    }

    /// Whether a pass is under way, by the last event.
    pub fn running(&self) -> bool {
        self.status.as_deref().is_some_and(is_running)
    }

    /// Handles one event; returns what to do.
    pub fn on_event(&mut self, ev: &QmpEvent) -> Option<Action> {
        match ev.event.as_str() {
            "STOP" => {
                self.pauses += 1;
                self.stopped_at_us = Some(ev.timestamp_us);
                None
            }
            "RESUME" => {
                if let Some(at) = self.stopped_at_us.take() {
                    let d = ev.timestamp_us.saturating_sub(at);
                    self.paused_us += d;
                    self.max_pause_us = self.max_pause_us.max(d);
                }
                None
            }
            "MIGRATION" => self.on_status(ev.data["status"].as_str().unwrap_or("")),
            _ => None,
        }
    }

    /// Handles a migration status, from a `MIGRATION` event or `query-migrate` (events can be
    /// missed: QEMU's own status is the truth); a pass's end counts once, whichever said it
    /// first.
    pub fn on_status(&mut self, status: &str) -> Option<Action> {
        self.status = Some(status.to_owned());
        match status {
            "pre-switchover" | "device" if !self.cancel_sent => {
                self.cancel_sent = true;
                self.converged += 1;
                Some(Action::Cancel)
            }
            "cancelled" | "completed" | "failed" if self.ended => None,
            "cancelled" => {
                self.ended = true;
                self.cancelled += 1;
                (!self.stopping).then_some(Action::Next)
            }
            "completed" => {
                self.ended = true;
                self.completed += 1;
                Some(if self.stopping {
                    Action::Resume
                } else {
                    Action::ResumeAndNext
                })
            }
            "failed" => {
                self.ended = true;
                self.failed += 1;
                Some(Action::Failed)
            }
            _ => None,
        }
    }

    /// The runner cancelled the pass itself (at the end, or on a stall).
    pub fn cancel_sent(&mut self) {
        self.cancel_sent = true;
    }
}
