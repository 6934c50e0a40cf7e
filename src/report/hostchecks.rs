//! The doctor and calibration verdicts for the host the runs were made on: `doctor.json`
//! (written by `pinlat run`, and by `pinlat doctor --out DIR`) and `calibrate.json` (written by
//! `pinlat calibrate --out DIR`) in the results directory. A latency figure is only as good as
//! the host and the instrument, so the report shows both when they are there.
//!
//! Both are read as their own types ([`crate::schema::DoctorReport`],
//! [`crate::calibration::CalibrationReport`]); a file of another schema version is left out.

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::calibration::CALIBRATE_FILE;
use crate::calibration::{CalibrationReport, Outcome, Verdict};
pub use crate::schema::DOCTOR_FILE;
use crate::schema::{read_versioned, CheckStatus, DoctorReport};

/// One doctor check that did not pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckLine {
    /// Check id, e.g. `kernel.preempt_rt`.
    pub id: String,
    /// `fail` or `warn`.
    pub status: String,
    /// What was found.
    pub found: String,
    /// The one-line fix.
    pub fix: String,
}

/// The doctor, summarized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorSummary {
    /// Checks that passed.
    pub pass: usize,
    /// Checks that warned.
    pub warn: usize,
    /// Checks that failed.
    pub fail: usize,
    /// Checks that were skipped.
    pub skip: usize,
    /// The RT pCPUs the checks were about.
    pub rt_cpus: String,
    /// Every failed or warning check.
    pub problems: Vec<CheckLine>,
}

/// The calibration, summarized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalibrationSummary {
    /// The verdict: `trusted`, `inconclusive` (host too noisy) or `failed`.
    pub verdict: String,
    /// Why it was inconclusive, with figures (empty otherwise).
    pub reasons: Vec<String>,
    /// The CPU calibrated.
    pub cpu: u64,
    /// Stalls judged (in trials the host did not void).
    pub judged: usize,
    /// Stalls detected and sized within tolerance among them.
    pub detected_ok: usize,
}

impl CalibrationSummary {
    /// The summary of a calibration report.
    pub fn of(c: &CalibrationReport) -> Self {
        CalibrationSummary {
            verdict: c.verdict.label().to_string(),
            reasons: match &c.verdict {
                Verdict::Inconclusive { reasons } => reasons.clone(),
                _ => Vec::new(),
            },
            cpu: u64::from(c.cpu),
            judged: c.judged_detections().count(),
            detected_ok: c
                .judged_detections()
                .filter(|d| d.outcome == Outcome::Ok)
                .count(),
        }
    }
}

/// Both, as far as present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostChecks {
    /// From `doctor.json`.
    pub doctor: Option<DoctorSummary>,
    /// From `calibrate.json`.
    pub calibration: Option<CalibrationSummary>,
}

impl HostChecks {
    /// Whether neither file was there.
    pub fn is_empty(&self) -> bool {
        self.doctor.is_none() && self.calibration.is_none()
    }

    /// One sentence for a report header.
    pub fn sentence(&self) -> String {
        let mut parts = Vec::new();
        if let Some(d) = &self.doctor {
            parts.push(format!(
                "pinlat doctor on this host: {} failed, {} warned, {} passed (RT pCPUs {})",
                d.fail, d.warn, d.pass, d.rt_cpus
            ));
        }
        if let Some(c) = &self.calibration {
            parts.push(match c.verdict.as_str() {
                "inconclusive" => format!(
                    "pinlat calibrate on CPU {}: inconclusive, the host was too noisy to judge the instrument ({})",
                    c.cpu,
                    c.reasons.join("; ")
                ),
                v => format!(
                    "pinlat calibrate on CPU {}: {} ({} of {} judged stalls detected and sized)",
                    c.cpu,
                    if v == "trusted" { "trusted" } else { "FAILED" },
                    c.detected_ok,
                    c.judged
                ),
            });
        }
        parts.join("; ")
    }
}

/// Reads `doctor.json` and `calibrate.json` from a results directory, if present and of this
/// pinlat's schema.
pub fn load(dir: &Path) -> HostChecks {
    let doctor = read_versioned::<DoctorReport>(&dir.join(DOCTOR_FILE))
        .ok()
        .map(|d| {
            let (pass, warn, fail, skip) = d.counts();
            DoctorSummary {
                pass,
                warn,
                fail,
                skip,
                rt_cpus: d.rt_cpus.to_string(),
                problems: d
                    .checks
                    .iter()
                    .filter(|c| matches!(c.status, CheckStatus::Fail | CheckStatus::Warn))
                    .map(|c| CheckLine {
                        id: c.id.clone(),
                        status: c.status.as_str().to_string(),
                        found: c.found.clone(),
                        fix: c.fix.clone(),
                    })
                    .collect(),
            }
        });
    let calibration = read_versioned::<CalibrationReport>(&dir.join(CALIBRATE_FILE))
        .ok()
        .map(|c| CalibrationSummary::of(&c));
    HostChecks {
        doctor,
        calibration,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarizes_both_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(DOCTOR_FILE),
            r#"{"schema_version":1,"rt_cpus":"1","rt_cpus_source":"config","checks":[
                {"id":"kernel.preempt_rt","status":"fail","found":"not RT","fix":"boot RT"},
                {"id":"sched.rt_throttling","status":"warn","found":"950000","fix":"set -1"},
                {"id":"thp","status":"pass","found":"madvise","fix":""}]}"#,
        )
        .unwrap();
        let h = load(dir.path());
        let d = h.doctor.as_ref().unwrap();
        assert_eq!((d.fail, d.warn, d.pass), (1, 1, 1));
        assert_eq!(d.problems.len(), 2);
        assert!(h.calibration.is_none());
    }

    #[test]
    fn absent_or_garbled_files_are_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).is_empty());
        std::fs::write(dir.path().join(DOCTOR_FILE), b"{not json").unwrap();
        assert!(load(dir.path()).is_empty());
    }
}
