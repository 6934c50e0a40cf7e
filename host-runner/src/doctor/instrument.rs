//! The instrument check: what the last `pinlat calibrate` on this host said (kept in pinlat's
//! cache, [`crate::calibrate::last_calibration_path`]). A host too noisy to judge the instrument
//! (steal time, stray gaps) is a warning with its figures; an instrument that missed or
//! mis-sized stalls the host did not disturb is a failure.

use pinlat::report::hostchecks::CalibrationSummary;
use serde::{Deserialize, Serialize};

use super::{Check, Env};

/// The last calibration of this host, as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CalibrationFact {
    /// `pinlat calibrate` never ran here (no file in the cache).
    Never,
    /// The file is there but unreadable (an older pinlat's format, or damaged).
    Unreadable {
        /// Why.
        reason: String,
    },
    /// Its summary.
    Found {
        /// The calibrated CPU, the verdict and its figures.
        summary: CalibrationSummary,
    },
}

/// Reads the last calibration from pinlat's cache.
pub fn last_calibration() -> CalibrationFact {
    let Some(path) = crate::calibrate::last_calibration_path() else {
        return CalibrationFact::Never;
    };
    match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => CalibrationFact::Never,
        Err(e) => CalibrationFact::Unreadable {
            reason: format!("{}: {e}", path.display()),
        },
        Ok(bytes) => {
            match serde_json::from_slice::<pinlat::calibration::CalibrationReport>(&bytes) {
                Ok(r) => CalibrationFact::Found {
                    summary: CalibrationSummary::of(&r),
                },
                Err(e) => CalibrationFact::Unreadable {
                    reason: format!("{}: {e}", path.display()),
                },
            }
        }
    }
}

pub(super) fn checks(env: &Env) -> Vec<Check> {
    const ID: &str = "instrument.calibration";
    const RERUN: &str = "run `pinlat calibrate` on this host";
    vec![match &env.external.calibration {
        None => Check::skip(ID, "not looked for"),
        Some(CalibrationFact::Never) => {
            Check::skip(ID, format!("pinlat calibrate has not run on this host: {RERUN}"))
        }
        Some(CalibrationFact::Unreadable { reason }) => Check::warn(
            ID,
            format!("the last calibration cannot be read ({reason})"),
            RERUN,
        ),
        Some(CalibrationFact::Found { summary: s }) => match s.verdict.as_str() {
            "trusted" => Check::pass(
                ID,
                format!(
                    "CPU {}: {} of {} injected stalls seen and sized",
                    s.cpu, s.detected_ok, s.judged
                ),
            ),
            "inconclusive" => Check::warn(
                ID,
                format!(
                    "CPU {}: the host was too noisy to judge the instrument: {}",
                    s.cpu,
                    s.reasons.join("; ")
                ),
                "quiet the host first (the other checks here; on a VM, steal time comes from the hypervisor: use a dedicated or bare-metal host), then run `pinlat calibrate` again",
            ),
            _ => Check::fail(
                ID,
                format!(
                    "CPU {}: the instrument missed or mis-sized stalls the host did not disturb ({} of {} sized)",
                    s.cpu, s.detected_ok, s.judged
                ),
                "run `pinlat calibrate` again; if it fails again, the agent or this host's clock is broken: report it with calibrate.json",
            ),
        },
    }]
}
