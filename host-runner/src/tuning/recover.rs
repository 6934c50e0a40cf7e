//! Putting journaled knobs back: the one restore both a running pinlat and `pinlat doctor
//! --restore` use, what the doctor says of a journal left behind, and the `--restore` command.

use std::path::PathBuf;

use pinlat::schema::{read_versioned, HostKnobsJournal, KnobChange, SchemaError};

use super::{read_knob, summary, write_knob, Held, HostTuner, KnobError, RestoreError, Restored};
use crate::doctor::{Check, SysRoot};

/// Writes every change of `journal` back, newest first, reading each back; removes the
/// journal file when every knob holds its old value again, else keeps it and says which
/// could not be restored.
pub fn restore_journal(
    root: &SysRoot,
    journal: &HostKnobsJournal,
) -> Result<Vec<Restored>, RestoreError> {
    let mut restored = Vec::new();
    let mut failed = Vec::new();
    for c in journal.changes.iter().rev() {
        match restore_one(root, c) {
            Ok(r) => restored.push(r),
            Err(e) => failed.push(e),
        }
    }
    let path = HostTuner::journal_path(root);
    if failed.is_empty() {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => failed.push(KnobError::Journal(pinlat::atomic_write::WriteError {
                path: path.clone(),
                source,
            })),
        }
    }
    if failed.is_empty() {
        Ok(restored)
    } else {
        Err(RestoreError {
            journal: path,
            total: journal.changes.len(),
            failed,
            restored,
        })
    }
}

/// One knob back to its old value. A knob that already holds it (its write never happened,
/// or was refused) is not written again.
fn restore_one(root: &SysRoot, c: &KnobChange) -> Result<Restored, KnobError> {
    let was = read_knob(root, c.knob)?;
    if was != c.old {
        write_knob(root, c.knob, &c.old)?;
        let now = read_knob(root, c.knob)?;
        if now != c.old {
            return Err(KnobError::Mismatch {
                knob: c.knob,
                path: root.path(c.knob.path()),
                wanted: c.old.clone(),
                applied: now,
            });
        }
    }
    Ok(Restored {
        knob: c.knob,
        was,
        old: c.old.clone(),
    })
}

/// The journal under `root`: `None` when there is none.
pub fn read(root: &SysRoot) -> Option<Result<HostKnobsJournal, SchemaError>> {
    let path = HostTuner::journal_path(root);
    path.exists().then(|| read_versioned(&path))
}

/// Whether `pid` is a running pinlat. A pid alone could have been reused since a crash, so
/// the process must also be called `pinlat`.
fn pinlat_running(pid: u32) -> bool {
    crate::trace::cleanup::alive(pid as i32)
        && std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "pinlat")
}

/// Why the journal under `root` stops pinlat from touching the knobs.
pub fn held(root: &SysRoot) -> Held {
    match read_versioned::<HostKnobsJournal>(&HostTuner::journal_path(root)) {
        Err(e) => Held::Unreadable(e),
        Ok(j) => held_by(root, &j),
    }
}

/// Why `journal`, read from under `root`, stops pinlat: its pinlat runs, or it was left.
pub(super) fn held_by(root: &SysRoot, journal: &HostKnobsJournal) -> Held {
    let path = HostTuner::journal_path(root);
    let (pid, variant) = (journal.runner_pid, journal.variant.clone());
    if pinlat_running(pid) {
        Held::Running {
            journal: path,
            pid,
            variant,
        }
    } else {
        Held::Left {
            journal: path,
            pid,
            variant,
        }
    }
}

/// The doctor's check of a journal under its root: none when there is no journal (a host
/// pinlat never tuned is not worth a line), a warning with the fix when there is one.
pub fn doctor_check(root: &SysRoot) -> Option<Check> {
    const ID: &str = "host.knobs_journal";
    let journal = read(root)?;
    let changed = |j: &HostKnobsJournal| {
        j.changes
            .iter()
            .map(|c| format!("{} was {}, pinlat wrote {}", c.knob.key(), c.old, c.new))
            .collect::<Vec<_>>()
            .join("; ")
    };
    Some(match journal.map(|j| (held_by(root, &j), j)) {
        Ok((Held::Running { pid, .. }, j)) => Check::warn(
            ID,
            format!(
                "pinlat {pid} is running with variant '{}' host knobs applied ({})",
                j.variant,
                changed(&j)
            ),
            "measure after it ends: it restores them",
        ),
        Ok((_, j)) => Check::warn(
            ID,
            format!(
                "a crashed pinlat ({}) left variant '{}' host knobs changed: {}",
                j.runner_pid,
                j.variant,
                changed(&j)
            ),
            "pinlat doctor --restore",
        ),
        Err(e) => Check::warn(
            ID,
            format!(
                "a host-knobs journal exists but cannot be read: {}",
                pinlat::report::aggregate::error_chain(&e)
            ),
            "put the knobs it lists back by hand, then delete it",
        ),
    })
}

/// What `pinlat doctor --restore` did.
#[derive(Debug)]
pub enum Recovered {
    /// No journal: nothing was changed.
    Nothing {
        /// Where it looked.
        journal: PathBuf,
    },
    /// The journal's knobs are back and it is removed.
    Restored {
        /// The journal.
        journal: HostKnobsJournal,
        /// Each knob.
        restored: Vec<Restored>,
    },
}

impl std::fmt::Display for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recovered::Nothing { journal } => write!(
                f,
                "pinlat: no host-knobs journal ({}): nothing to restore",
                journal.display()
            ),
            Recovered::Restored { journal, restored } => write!(
                f,
                "pinlat: restored the host knobs pinlat {} set for variant '{}': {}; journal removed",
                journal.runner_pid,
                journal.variant,
                summary(restored)
            ),
        }
    }
}

/// Why `pinlat doctor --restore` did not restore.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The journal's pinlat is running, or the journal cannot be read.
    #[error(transparent)]
    Held(Held),
    /// Some knob could not be put back.
    #[error(transparent)]
    Restore(#[from] RestoreError),
}

/// `pinlat doctor --restore`: restores the knobs of a journal left under `root` by a pinlat
/// that is no longer running, and removes it.
pub fn restore_command(root: &SysRoot) -> Result<Recovered, RecoverError> {
    let journal = match read(root) {
        None => {
            return Ok(Recovered::Nothing {
                journal: HostTuner::journal_path(root),
            })
        }
        Some(Err(e)) => return Err(RecoverError::Held(Held::Unreadable(e))),
        Some(Ok(j)) => j,
    };
    if let h @ Held::Running { .. } = held_by(root, &journal) {
        return Err(RecoverError::Held(h));
    }
    let restored = restore_journal(root, &journal)?;
    Ok(Recovered::Restored { journal, restored })
}
