//! The host-knobs journal (`/run/pinlat/host-knobs.journal.json`) and what a run records of
//! the host knobs it ran under ([`AppliedKnob`], in [`crate::result::RunRecord::host_knobs`]).
//!
//! Before `pinlat run` writes a host knob of a variant (`variants[i].host`: KVM's
//! `halt_poll_ns`, `lapic_timer_advance_ns`, `kernel.sched_rt_runtime_us`) it adds the knob's
//! file, its value then and the value about to be written to this journal, and makes that
//! durable ([`crate::atomic_write`]), so a pinlat killed at any point leaves what it changed
//! and how to put it back. It restores the old values, newest first, when the matrix moves to
//! another variant, at its end, on SIGINT/SIGTERM and on errors; `pinlat doctor --restore`
//! restores from a journal a crash left behind.
//!
//! Where: `/run/pinlat/`, one journal per host. `/run` is a tmpfs that outlives a crashed
//! pinlat and is emptied at boot, exactly like the knobs it records: sysctls and module
//! parameters return to their boot-time values on reboot, so a journal never outlives the
//! state it describes. A journal under `/var/lib` would survive the reboot, and restoring it
//! would write stale values over whatever the new boot configured (a modprobe.d change, for
//! one). The file is created exclusively (`O_EXCL`): while it exists no other pinlat starts,
//! so two never fight over the knobs.

use serde::{Deserialize, Serialize};

use crate::config::variant::HostKnob;

/// The journal's path relative to the filesystem root (`/` on a live host).
pub const HOST_KNOBS_JOURNAL: &str = "run/pinlat/host-knobs.journal.json";
/// Version of [`HostKnobsJournal`].
pub const HOST_KNOBS_JOURNAL_SCHEMA_VERSION: u32 = 1;

/// `host-knobs.journal.json`: the host knobs a pinlat has changed and not yet restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostKnobsJournal {
    /// [`HOST_KNOBS_JOURNAL_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Process id of the pinlat that changed them.
    pub runner_pid: u32,
    /// The variant whose knobs these are (`[[variants]] name`).
    pub variant: String,
    /// When the journal was created, ms since the Unix epoch.
    pub created_unix_ms: u64,
    /// The changes, in the order they were made; each is journaled before its write.
    pub changes: Vec<KnobChange>,
}

impl super::Versioned for HostKnobsJournal {
    const NAME: &'static str = "host-knobs journal";
    const VERSION: u32 = HOST_KNOBS_JOURNAL_SCHEMA_VERSION;
}

/// One host knob about to be written: enough to put it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnobChange {
    /// The knob.
    pub knob: HostKnob,
    /// Its file relative to the root (`proc/sys/kernel/sched_rt_runtime_us`).
    pub path: String,
    /// The value the file held before, as read (trimmed).
    pub old: String,
    /// The value written.
    pub new: String,
}

/// A host knob as it was during a run (`runs/<run>.json` `host_knobs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedKnob {
    /// The knob.
    pub knob: HostKnob,
    /// The value its file held before pinlat wrote it.
    pub before: String,
    /// The value the variant asked for.
    pub wanted: String,
    /// The value the file held after the write, read back: what the run ran under.
    pub applied: String,
}

impl AppliedKnob {
    /// Whether the file reads back the value asked for.
    pub fn took(&self) -> bool {
        self.applied == self.wanted
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::schema::{parse_versioned, SchemaError};

    #[test]
    fn round_trips_and_refuses_another_version_by_name() {
        let j = HostKnobsJournal {
            schema_version: HOST_KNOBS_JOURNAL_SCHEMA_VERSION,
            runner_pid: 7,
            variant: "rt".into(),
            created_unix_ms: 1,
            changes: vec![KnobChange {
                knob: HostKnob::SchedRtRuntimeUs,
                path: HostKnob::SchedRtRuntimeUs.path().into(),
                old: "950000".into(),
                new: "-1".into(),
            }],
        };
        let json = serde_json::to_vec(&j).unwrap();
        let p = Path::new("/run/pinlat/host-knobs.journal.json");
        assert_eq!(parse_versioned::<HostKnobsJournal>(p, &json).unwrap(), j);
        let mut v = serde_json::to_value(&j).unwrap();
        v["schema_version"] = 9.into();
        let e =
            parse_versioned::<HostKnobsJournal>(p, &serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(
            matches!(e, SchemaError::Version { found: Some(9), .. }),
            "{e}"
        );
        assert!(
            e.to_string().contains("host-knobs journal version 1"),
            "{e}"
        );
    }

    #[test]
    fn a_knob_took_only_when_it_reads_back_what_was_asked() {
        let mut a = AppliedKnob {
            knob: HostKnob::HaltPollNs,
            before: "200000".into(),
            wanted: "0".into(),
            applied: "0".into(),
        };
        assert!(a.took());
        a.applied = "200000".into();
        assert!(!a.took());
    }
}
