//! The doctor and calibration verdicts for the host the runs were made on: `doctor.json`
//! (written by `pinlat run`, and by `pinlat doctor --out DIR`) and `calibrate.json` (written by
//! `pinlat calibrate --out DIR`) in the results directory. A latency figure is only as good as
//! the host and the instrument, so the report shows both when they are there.
//!
//! The files are read loosely (as JSON values): a report must still build from an older or
//! partial file, and the doctor's and calibration's own types live in the runner.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// File name of the doctor's result in a results directory.
pub const DOCTOR_FILE: &str = "doctor.json";
/// File name of the calibration's result in a results directory.
pub const CALIBRATE_FILE: &str = "calibrate.json";

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
    /// Whether every injected stall was detected and sized within tolerance.
    pub passed: bool,
    /// The CPU calibrated.
    pub cpu: u64,
    /// Stalls injected.
    pub injected: usize,
    /// Stalls detected within tolerance.
    pub detected_ok: usize,
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
            parts.push(format!(
                "pinlat calibrate on CPU {}: {} ({} of {} injected stalls detected and sized)",
                c.cpu,
                if c.passed { "passed" } else { "FAILED" },
                c.detected_ok,
                c.injected
            ));
        }
        parts.join("; ")
    }
}

fn read(dir: &Path, name: &str) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(dir.join(name)).ok()?).ok()
}

fn text(v: &serde_json::Value, k: &str) -> String {
    match v.get(k) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Reads `doctor.json` and `calibrate.json` from a results directory, if present.
pub fn load(dir: &Path) -> HostChecks {
    let doctor = read(dir, DOCTOR_FILE).and_then(|d| {
        let checks = d.get("checks")?.as_array()?;
        let count = |s: &str| {
            checks
                .iter()
                .filter(|c| c.get("status").and_then(|v| v.as_str()) == Some(s))
                .count()
        };
        Some(DoctorSummary {
            pass: count("pass"),
            warn: count("warn"),
            fail: count("fail"),
            skip: count("skip"),
            rt_cpus: text(&d, "rt_cpus"),
            problems: checks
                .iter()
                .filter(|c| {
                    matches!(
                        c.get("status").and_then(|v| v.as_str()),
                        Some("fail" | "warn")
                    )
                })
                .map(|c| CheckLine {
                    id: text(c, "id"),
                    status: text(c, "status"),
                    found: text(c, "found"),
                    fix: text(c, "fix"),
                })
                .collect(),
        })
    });
    let calibration = read(dir, CALIBRATE_FILE).and_then(|c| {
        let detections = c.get("detections")?.as_array()?;
        Some(CalibrationSummary {
            passed: c.get("passed")?.as_bool()?,
            cpu: c.get("cpu").and_then(|v| v.as_u64()).unwrap_or(0),
            injected: detections.len(),
            detected_ok: detections
                .iter()
                .filter(|d| d.get("ok").and_then(|v| v.as_bool()) == Some(true))
                .count(),
        })
    });
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
            r#"{"rt_cpus":"1","checks":[
                {"id":"kernel.preempt_rt","status":"fail","found":"not RT","fix":"boot RT"},
                {"id":"sched.rt_throttling","status":"warn","found":"950000","fix":"set -1"},
                {"id":"thp","status":"pass","found":"madvise","fix":""}]}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join(CALIBRATE_FILE),
            r#"{"cpu":1,"passed":false,"detections":[{"ok":true},{"ok":false}]}"#,
        )
        .unwrap();
        let h = load(dir.path());
        let d = h.doctor.as_ref().unwrap();
        assert_eq!((d.fail, d.warn, d.pass), (1, 1, 1));
        assert_eq!(d.problems.len(), 2);
        let c = h.calibration.as_ref().unwrap();
        assert_eq!((c.passed, c.injected, c.detected_ok), (false, 2, 1));
        assert!(h.sentence().contains("FAILED (1 of 2"), "{}", h.sentence());
    }

    #[test]
    fn absent_or_garbled_files_are_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).is_empty());
        std::fs::write(dir.path().join(DOCTOR_FILE), b"{not json").unwrap();
        assert!(load(dir.path()).is_empty());
    }
}
