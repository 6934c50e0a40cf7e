//! A results directory's [`Report`] for the commands that read many directories (`pinlat
//! merge`, `pinlat trend`): its `report.json` when it is of this pinlat's schema (no run file is
//! opened), else the report aggregated from its `runs/` by [`build`], as `pinlat report` does,
//! with why the `report.json` was not used. The callers word the outcome each in their own
//! report; the decision and its reasons are made here once.

use std::path::Path;

use super::aggregate::error_chain;
use super::{build, Report, ReportError, REPORT_SCHEMA_VERSION};
use crate::schema::SchemaError;

/// File name of a results directory's report.
pub const REPORT_FILE: &str = "report.json";

/// Why a directory's `report.json` was not used.
#[derive(Debug)]
pub enum JsonUnused {
    /// The directory has none.
    Missing,
    /// It is of another schema version.
    OtherVersion {
        /// The version it has (`None`: none recorded).
        found: Option<u32>,
        /// The error reading it.
        error: ReportError,
    },
    /// It cannot be read or parsed.
    Unreadable(ReportError),
}

impl JsonUnused {
    /// The error reading it (`None`: there is none).
    pub fn error(&self) -> Option<&ReportError> {
        match self {
            JsonUnused::Missing => None,
            JsonUnused::OtherVersion { error, .. } | JsonUnused::Unreadable(error) => Some(error),
        }
    }
}

/// `no report.json`, `report.json has schema version 1, this pinlat reads version 2`,
/// `report.json is unreadable (…)`.
impl std::fmt::Display for JsonUnused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsonUnused::Missing => write!(f, "no {REPORT_FILE}"),
            JsonUnused::OtherVersion { found, .. } => write!(
                f,
                "{REPORT_FILE} has {}, this pinlat reads version {REPORT_SCHEMA_VERSION}",
                found.map_or("no schema_version".into(), |v| format!(
                    "schema version {v}"
                ))
            ),
            JsonUnused::Unreadable(e) => {
                write!(f, "{REPORT_FILE} is unreadable ({})", error_chain(e))
            }
        }
    }
}

/// Where a directory's report came from.
#[derive(Debug)]
pub enum Origin {
    /// Its `report.json`.
    ReportJson,
    /// Aggregated from its `runs/`, because the `report.json` was not usable.
    Runs(JsonUnused),
}

/// A directory with neither a usable `report.json` nor readable `runs/`.
#[derive(Debug, thiserror::Error)]
#[error("{json}, and its runs/ cannot be aggregated")]
pub struct NoReport {
    /// Why the `report.json` was not used.
    pub json: JsonUnused,
    /// Why `runs/` could not be aggregated.
    #[source]
    pub runs: ReportError,
}

/// The report of the results directory `dir`: its `report.json` when it is of this pinlat's
/// schema, else aggregated from `runs/` ([`build`]), and where it came from.
pub fn read(dir: &Path) -> Result<(Report, Origin), NoReport> {
    let json = match Report::read_json(&dir.join(REPORT_FILE)) {
        Ok(r) => return Ok((r, Origin::ReportJson)),
        Err(ReportError::ReadReport(SchemaError::Read { source, .. }))
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            JsonUnused::Missing
        }
        Err(error @ ReportError::ReadReport(SchemaError::Version { found, .. })) => {
            JsonUnused::OtherVersion { found, error }
        }
        Err(e) => JsonUnused::Unreadable(e),
    };
    match build(dir, &mut |_| {}) {
        Ok(r) => Ok((r, Origin::Runs(json))),
        Err(runs) => Err(NoReport { json, runs }),
    }
}
