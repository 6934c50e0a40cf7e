//! One typed schema for every file pinlat writes under `reports/<run-id>/`: each file has
//! exactly one Rust type in this library, used both to write it and to read it back, and
//! carries a `schema_version`. Reading an older or newer file says which version it found and
//! which this pinlat reads ([`read_versioned`]). Each type implements [`Versioned`] beside its
//! definition, so this module depends on none of the modules whose files it reads.
//!
//! | file | type | written by |
//! |---|---|---|
//! | `plan.json` | [`PlanFile`] | `pinlat run` |
//! | `host.json` | [`HostFacts`] | `pinlat run` |
//! | `doctor.json` | [`DoctorReport`] | `pinlat run`, `pinlat doctor --out` |
//! | `calibrate.json` | [`crate::calibration::CalibrationReport`] | `pinlat calibrate --out` |
//! | `runs/<run>.json` | [`crate::result::RunRecord`] | `pinlat run`, as each run ends |
//! | `report.json` | [`crate::report::Report`] | `pinlat run`, `pinlat report` |
//! | `checkpoint.json` | [`Checkpoint`] | `pinlat run --report-every`, while a run measures |
//! | `report.json` of a fleet (`--out` of `pinlat merge`) | [`crate::report::fleet::FleetReport`] | `pinlat merge` |
//! | `report.json` of a trend (`--out`) | [`crate::report::trend::TrendReport`] | `pinlat trend` |
//!
//! One file lives outside any results directory: `/run/pinlat/host-knobs.journal.json`
//! ([`HostKnobsJournal`]), the host knobs a running (or crashed) pinlat changed.

pub mod checkpoint;
pub mod doctor;
pub mod host;
pub mod host_knobs;
pub mod plan_file;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;

pub use checkpoint::{Checkpoint, CHECKPOINT_FILE, CHECKPOINT_SCHEMA_VERSION};
pub use doctor::{Check, CheckStatus, DoctorReport, DOCTOR_FILE, DOCTOR_SCHEMA_VERSION};
pub use host::{HostFacts, LocalFacts, HOST_FILE, HOST_SCHEMA_VERSION};
pub use host_knobs::{
    AppliedKnob, HostKnobsJournal, KnobChange, HOST_KNOBS_JOURNAL,
    HOST_KNOBS_JOURNAL_SCHEMA_VERSION,
};
pub use plan_file::{PlanFile, PLAN_FILE, PLAN_SCHEMA_VERSION};

/// A file type of a results directory.
pub trait Versioned: DeserializeOwned {
    /// Its name in the results directory, e.g. `plan.json` (for messages).
    const NAME: &'static str;
    /// The schema version this pinlat writes and reads.
    const VERSION: u32;
}

/// A results-directory file could not be read as its type.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The file cannot be read.
    #[error("Cannot read {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is of another schema version.
    #[error("{} has {}, this pinlat reads {name} version {expected}", .path.display(), found_text(*.found))]
    Version {
        /// The file.
        path: PathBuf,
        /// Its kind, e.g. `plan.json`.
        name: &'static str,
        /// The version it has (`None`: none, written before versions were recorded).
        found: Option<u32>,
        /// The version this pinlat reads.
        expected: u32,
    },
    /// The file is not valid JSON of its type.
    #[error("{} is not a valid {name}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Its kind.
        name: &'static str,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

fn found_text(found: Option<u32>) -> String {
    match found {
        Some(v) => format!("schema version {v}"),
        None => "no schema_version (written by an older pinlat)".into(),
    }
}

#[derive(Deserialize)]
struct VersionOnly {
    schema_version: Option<u32>,
}

/// Parses `bytes` as `T`, checking its `schema_version` first so a file of another version is
/// named as such rather than as a parse error. `path` is for messages.
pub fn parse_versioned<T: Versioned>(path: &Path, bytes: &[u8]) -> Result<T, SchemaError> {
    let parse = |source| SchemaError::Parse {
        path: path.to_path_buf(),
        name: T::NAME,
        source,
    };
    let v: VersionOnly = serde_json::from_slice(bytes).map_err(parse)?;
    if v.schema_version != Some(T::VERSION) {
        return Err(SchemaError::Version {
            path: path.to_path_buf(),
            name: T::NAME,
            found: v.schema_version,
            expected: T::VERSION,
        });
    }
    serde_json::from_slice(bytes).map_err(parse)
}

/// Reads `path` as `T` ([`parse_versioned`]).
pub fn read_versioned<T: Versioned>(path: &Path) -> Result<T, SchemaError> {
    let bytes = std::fs::read(path).map_err(|source| SchemaError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_versioned(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_version_is_named_with_both_numbers() {
        let p = Path::new("/r/host.json");
        let e = parse_versioned::<HostFacts>(p, br#"{"schema_version": 9}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("/r/host.json has schema version 9, this pinlat reads host.json version {HOST_SCHEMA_VERSION}")
        );
        let e = parse_versioned::<HostFacts>(p, br#"{"kernel_release": "x"}"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("no schema_version (written by an older pinlat)"),
            "{e}"
        );
        let e = parse_versioned::<HostFacts>(p, b"{nope").unwrap_err();
        assert!(matches!(e, SchemaError::Parse { .. }), "{e}");
    }
}
