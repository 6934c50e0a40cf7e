//! The results directory `reports/<run-id>/` (docs/architecture.md "Results on disk").
//!
//! Every file is written to a temporary name in the same directory, synced, then renamed, so a
//! crash, a full disk or a signal never leaves a half-written result where a report would read
//! it. The directory is checked for writability before the first guest starts.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Results directory errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Creating or writing failed.
    #[error("Cannot write {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A result did not serialize.
    #[error("Cannot serialize {what}")]
    Json {
        /// What was being done, for the message.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A run id: UTC date and time, then the runner's pid (`20261125T224501Z-4242`), so ids sort by
/// start time and two runners never collide.
pub fn new_run_id() -> String {
    run_id_at(unix_ms(), std::process::id())
}

fn run_id_at(ms: u64, pid: u32) -> String {
    // `2026-11-25T22:45:01.066Z` -> `20261125T224501Z`
    let iso = pinlat::report::hlog::iso8601_ms(ms);
    let compact: String = iso[..19]
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    format!("{compact}Z-{pid}")
}

/// `reports/<run-id>/` with its `runs/` subdirectory.
#[derive(Debug, Clone)]
pub struct ResultDir {
    root: PathBuf,
}

impl ResultDir {
    /// Creates `parent/<run_id>/runs/` and proves it writable by writing and removing a probe
    /// file, so an unwritable or full disk is reported before any guest starts.
    pub fn create(parent: &Path, run_id: &str) -> Result<Self, StoreError> {
        let root = parent.join(run_id);
        let runs = root.join("runs");
        fs::create_dir_all(&runs).map_err(io_err(&runs))?;
        let probe = root.join(".write-probe");
        let mut f = File::create(&probe).map_err(io_err(&probe))?;
        f.write_all(&[0u8; 4096]).map_err(io_err(&probe))?;
        f.sync_all().map_err(io_err(&probe))?;
        drop(f);
        fs::remove_file(&probe).map_err(io_err(&probe))?;
        Ok(Self { root })
    }

    /// Opens an existing results directory (for `pinlat report`).
    pub fn open(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// `reports/<run-id>/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `reports/<run-id>/runs/`.
    pub fn runs(&self) -> PathBuf {
        self.root.join("runs")
    }

    /// Writes `value` as pretty JSON to `rel` (relative to the root), atomically.
    pub fn write_json<T: Serialize>(&self, rel: &str, value: &T) -> Result<PathBuf, StoreError> {
        let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| StoreError::Json {
            what: rel.to_string(),
            source,
        })?;
        bytes.push(b'\n');
        self.write_bytes(rel, &bytes)
    }

    /// Writes `bytes` to `rel` (relative to the root), atomically: temporary file, fsync,
    /// rename, fsync of the directory.
    pub fn write_bytes(&self, rel: &str, bytes: &[u8]) -> Result<PathBuf, StoreError> {
        let path = self.root.join(rel);
        pinlat::atomic_write::write_atomic(&path, bytes).map_err(|e| StoreError::Io {
            path: e.path,
            source: e.source,
        })?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_dated() {
        assert_eq!(run_id_at(0, 7), "19700101T000000Z-7");
        assert_eq!(run_id_at(1_764_110_701_066, 42), "20251125T224501Z-42");
        let id = new_run_id();
        assert_eq!(&id[8..9], "T");
        assert!(id.contains("Z-"));
    }

    #[test]
    fn atomic_write_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let rd = ResultDir::create(dir.path(), "r1").unwrap();
        rd.write_json("runs/a.json", &serde_json::json!({"x": 1}))
            .unwrap();
        let names: Vec<String> = fs::read_dir(rd.runs())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.json"]);
    }

    #[test]
    fn unwritable_parent_fails_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        fs::write(&file, b"x").unwrap();
        let e = ResultDir::create(&file, "r1").unwrap_err();
        assert!(matches!(e, StoreError::Io { .. }), "{e}");
    }
}
