//! Host knobs a variant sets (`variants[i].host`: KVM's `halt_poll_ns` and
//! `lapic_timer_advance_ns`, `kernel.sched_rt_runtime_us`), set for the variant's runs and put
//! back afterwards, as rtla's `osnoise_context` remembers and restores every setting it touches.
//!
//! Every change is journaled before it is made ([`pinlat::schema::HostKnobsJournal`], under
//! `/run/pinlat/`, where and why in its module): the knob's value is read, the journal with
//! {file, old value, new value} is made durable, then the new value is written and read back;
//! the run records what the file says after the write ([`AppliedKnob`]), not what was asked.
//!
//! Restoring writes every journaled old value back, newest first, reads each back, and removes
//! the journal only when all are back. `pinlat run` restores when the matrix moves to another
//! variant (restore-then-apply: simplest correct, and a knob two variants share is written
//! twice, harmless), at its end, on SIGINT/SIGTERM (the run loop stops and unwinds) and on
//! every error path ([`HostTuner`]'s `Drop`). A crash (SIGKILL, power loss of the process)
//! leaves the journal: `pinlat doctor` warns, `pinlat run` refuses to start, and `pinlat
//! doctor --restore` ([`recover`]) puts the values back.
//!
//! Everything goes through a [`SysRoot`]: `/` on a live host, a directory of fake files in
//! tests.

mod check;
mod error;
pub mod recover;

#[cfg(test)]
mod tests;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use pinlat::atomic_write::{write_json_atomic, WriteError};
use pinlat::config::variant::{HostKnob, Variant};
use pinlat::schema::{
    AppliedKnob, HostKnobsJournal, KnobChange, HOST_KNOBS_JOURNAL,
    HOST_KNOBS_JOURNAL_SCHEMA_VERSION,
};

pub use check::{preflight, refuse_leftover, PreflightError};
pub use error::{Held, KnobError, RestoreError};

use crate::doctor::SysRoot;

/// A knob put back by a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The knob.
    pub knob: HostKnob,
    /// The value it held before the restore.
    pub was: String,
    /// The value restored (and read back).
    pub old: String,
}

impl std::fmt::Display for Restored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.was == self.old {
            write!(f, "{} already {}", self.knob.key(), self.old)
        } else {
            write!(f, "{} {} -> {}", self.knob.key(), self.was, self.old)
        }
    }
}

/// Sets a variant's host knobs and puts them back; restores in `Drop` whatever is still
/// applied.
#[derive(Debug)]
pub struct HostTuner {
    root: SysRoot,
    /// The journal while knobs are changed (its file exists).
    journal: Option<HostKnobsJournal>,
    /// The variant whose knobs are applied (by name), and what was applied.
    current: Option<(String, Vec<AppliedKnob>)>,
}

impl HostTuner {
    /// A tuner over `root`; changes nothing yet.
    pub fn new(root: SysRoot) -> Self {
        HostTuner {
            root,
            journal: None,
            current: None,
        }
    }

    /// The journal's path under `root`.
    pub fn journal_path(root: &SysRoot) -> PathBuf {
        root.path(HOST_KNOBS_JOURNAL)
    }

    /// For the run of `variant`: when it is another variant than the last one, restores the
    /// knobs applied for that one and applies `variant`'s. Returns what its runs run under.
    pub fn enter(&mut self, variant: Option<&Variant>) -> Result<&[AppliedKnob], KnobError> {
        let name = variant.map(|v| v.name.clone()).unwrap_or_default();
        if self.current.as_ref().map(|(n, _)| n) != Some(&name) {
            self.current = None;
            let applied = match variant {
                Some(v) => {
                    let applied = self.apply(v)?;
                    // The check before the first run refused values the kernel does not keep;
                    // one that changes now was changed by someone else. The record says so.
                    for a in applied.iter().filter(|a| !a.took()) {
                        eprintln!(
                            "pinlat: warning: variant '{}': {} reads back {} after pinlat wrote {}; its runs record {}",
                            v.name,
                            a.knob.key(),
                            a.applied,
                            a.wanted,
                            a.applied
                        );
                    }
                    applied
                }
                None => {
                    self.restore()?;
                    Vec::new()
                }
            };
            self.current = Some((name, applied));
        }
        Ok(self
            .current
            .as_ref()
            .map(|(_, a)| a.as_slice())
            .unwrap_or(&[]))
    }

    /// Restores whatever is applied, then applies `variant`'s knobs in [`HostKnob::ALL`]
    /// order: each is read, journaled (durably), written and read back. A variant without host
    /// knobs changes nothing and writes no journal.
    pub fn apply(&mut self, variant: &Variant) -> Result<Vec<AppliedKnob>, KnobError> {
        self.restore()?;
        let set = variant.host.set();
        if set.is_empty() {
            return Ok(Vec::new());
        }
        // Every file exists and is writable before anything is changed.
        for (knob, value) in &set {
            self.writable(*knob, value)?;
        }
        let journal = HostKnobsJournal {
            schema_version: HOST_KNOBS_JOURNAL_SCHEMA_VERSION,
            runner_pid: std::process::id(),
            variant: variant.name.clone(),
            created_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            changes: Vec::new(),
        };
        self.claim(&journal)?;
        self.journal = Some(journal);
        let path = Self::journal_path(&self.root);
        let mut applied = Vec::new();
        for (knob, value) in set {
            let old = read_knob(&self.root, knob)?;
            let journal = self.journal.as_mut().expect("claimed above");
            journal.changes.push(KnobChange {
                knob,
                path: knob.path().to_string(),
                old: old.clone(),
                new: value.clone(),
            });
            write_json_atomic(&path, journal).map_err(KnobError::Journal)?;
            write_knob(&self.root, knob, &value)?;
            let now = read_knob(&self.root, knob)?;
            applied.push(AppliedKnob {
                knob,
                before: old,
                wanted: value,
                applied: now,
            });
        }
        Ok(applied)
    }

    /// Writes every journaled old value back, newest first, verifies each by reading it back,
    /// and removes the journal. Nothing applied: nothing to do.
    pub fn restore(&mut self) -> Result<Vec<Restored>, RestoreError> {
        self.current = None;
        match self.journal.take() {
            Some(j) => recover::restore_journal(&self.root, &j),
            None => Ok(Vec::new()),
        }
    }

    fn writable(&self, knob: HostKnob, value: &str) -> Result<(), KnobError> {
        let path = self.root.path(knob.path());
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(KnobError::Missing {
                    knob,
                    fix: error::missing_fix(
                        knob,
                        self.root.exists("sys/module/kvm"),
                        self.root
                            .exists("sys/module/kvm/parameters/lapic_timer_advance"),
                    ),
                    path,
                })
            }
            Err(source) => return Err(KnobError::Read { knob, path, source }),
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o222 == 0 {
            return Err(KnobError::ReadOnly {
                knob,
                fix: error::read_only_fix(knob, value),
                path,
                mode,
            });
        }
        Ok(())
    }

    /// Creates the journal exclusively: a journal already there means another pinlat holds
    /// the knobs, or a crashed one left them changed.
    fn claim(&self, journal: &HostKnobsJournal) -> Result<(), KnobError> {
        let path = Self::journal_path(&self.root);
        let dir = path.parent().expect("the journal is in a directory");
        let io_err = |p: &std::path::Path| {
            let p = p.to_path_buf();
            move |source| KnobError::Journal(WriteError { path: p, source })
        };
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut f = match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(recover::held(&self.root).into())
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let mut bytes = serde_json::to_vec_pretty(journal).expect("the journal serialises");
        bytes.push(b'\n');
        f.write_all(&bytes).map_err(io_err(&path))?;
        f.sync_all().map_err(io_err(&path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))
    }
}

impl Drop for HostTuner {
    /// Every path out of a run (an error, a panic, a signal that stopped the loop) puts the
    /// knobs back.
    fn drop(&mut self) {
        if self.journal.is_none() {
            return;
        }
        match self.restore() {
            Ok(r) => eprintln!("pinlat: host knobs restored: {}", summary(&r)),
            Err(e) => eprintln!(
                "pinlat: error: {}",
                pinlat::report::aggregate::error_chain(&e)
            ),
        }
    }
}

/// Restores what `tuner` applied and says so on stderr: the end of `pinlat run`.
pub fn restore_reported(tuner: &mut HostTuner) -> Result<(), crate::exit::Failure> {
    let restored = tuner.restore().map_err(crate::exit::Failure::infra)?;
    if !restored.is_empty() {
        eprintln!("pinlat: host knobs restored: {}", summary(&restored));
    }
    Ok(())
}

/// `halt_poll_ns 0 -> 200000, …` for messages.
pub fn summary(restored: &[Restored]) -> String {
    restored
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The knob's value, trimmed.
fn read_knob(root: &SysRoot, knob: HostKnob) -> Result<String, KnobError> {
    root.read(knob.path())
        .map(|s| s.trim().to_string())
        .map_err(|source| KnobError::Read {
            knob,
            path: root.path(knob.path()),
            source,
        })
}

/// Writes `value` to the knob's existing file in one write.
fn write_knob(root: &SysRoot, knob: HostKnob, value: &str) -> Result<(), KnobError> {
    let path = root.path(knob.path());
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| KnobError::Write {
            knob,
            fix: error::write_fix(knob, value, &source),
            path,
            value: value.to_string(),
            source,
        })
}
