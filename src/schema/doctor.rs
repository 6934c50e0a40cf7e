//! `doctor.json`: `pinlat doctor`'s checks of a host, each with what was found and its one-line
//! fix. The checks themselves are the runner's (`doctor`); this is what they produce.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::cpuset::CpuSet;

/// File name of the doctor report in a results directory.
pub const DOCTOR_FILE: &str = "doctor.json";
/// Version of [`DoctorReport`].
pub const DOCTOR_SCHEMA_VERSION: u32 = 1;

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// Fine for realtime measurements.
    Pass,
    /// Not applicable or not probed here (e.g. no `kvm_intel` module, `--no-kvm-probe`).
    Skip,
    /// Will add latency or make it less repeatable; measurements still mean something.
    Warn,
    /// Numbers from this host are not realtime numbers until fixed.
    Fail,
}

impl CheckStatus {
    /// The name `doctor.json` uses (`pass`, `skip`, `warn`, `fail`).
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Skip => "skip",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
        }
    }
}

impl std::fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Skip => "skip",
            CheckStatus::Warn => "WARN",
            CheckStatus::Fail => "FAIL",
        })
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Stable identifier, `group.name` (e.g. `kernel.preempt_rt`).
    pub id: String,
    /// pass, skip, warn or fail.
    pub status: CheckStatus,
    /// What was found, one line.
    pub found: String,
    /// What to do about it, one line (empty when passing).
    pub fix: String,
}

impl Check {
    fn new(
        id: &str,
        status: CheckStatus,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Check {
            id: id.to_string(),
            status,
            found: found.into(),
            fix: fix.into(),
        }
    }

    /// A passing check.
    pub fn pass(id: &str, found: impl Into<String>) -> Self {
        Self::new(id, CheckStatus::Pass, found, "")
    }

    /// A skipped check.
    pub fn skip(id: &str, found: impl Into<String>) -> Self {
        Self::new(id, CheckStatus::Skip, found, "")
    }

    /// A warning with its fix.
    pub fn warn(id: &str, found: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(id, CheckStatus::Warn, found, fix)
    }

    /// A failure with its fix.
    pub fn fail(id: &str, found: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(id, CheckStatus::Fail, found, fix)
    }
}

/// Every check's result, as `pinlat doctor --json` prints it and `doctor.json` stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorReport {
    /// [`DOCTOR_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The RT pCPUs the checks were made for.
    pub rt_cpus: CpuSet,
    /// Where they came from.
    pub rt_cpus_source: String,
    /// Checks in a fixed order.
    pub checks: Vec<Check>,
}

impl DoctorReport {
    /// The worst status of any check.
    pub fn worst(&self) -> CheckStatus {
        self.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(CheckStatus::Pass)
    }

    /// Whether any check failed (`pinlat doctor` then exits 1).
    pub fn failed(&self) -> bool {
        self.worst() == CheckStatus::Fail
    }

    /// The check with identifier `id`.
    pub fn get(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// Counts of (pass, warn, fail, skip).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let n = |s| self.checks.iter().filter(|c| c.status == s).count();
        (
            n(CheckStatus::Pass),
            n(CheckStatus::Warn),
            n(CheckStatus::Fail),
            n(CheckStatus::Skip),
        )
    }

    /// The text table of `pinlat doctor`.
    pub fn to_table(&self) -> String {
        let idw = self
            .checks
            .iter()
            .map(|c| c.id.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "RT pCPUs checked: {} ({})",
            if self.rt_cpus.is_empty() {
                "none".to_string()
            } else {
                self.rt_cpus.to_string()
            },
            self.rt_cpus_source
        );
        let _ = writeln!(s, "{:<idw$}  {:<6}  found / fix", "check", "status");
        for c in &self.checks {
            let _ = writeln!(
                s,
                "{:<idw$}  {:<6}  {}",
                c.id,
                c.status.to_string(),
                c.found
            );
            if !c.fix.is_empty() {
                let _ = writeln!(s, "{:<idw$}  {:<6}  fix: {}", "", "", c.fix);
            }
        }
        let (p, w, f, k) = self.counts();
        let _ = writeln!(
            s,
            "{p} pass, {w} warn, {f} fail, {k} skipped: {}",
            if f > 0 {
                "not ready for realtime measurements (exit 1)"
            } else {
                "ready (exit 0)"
            }
        );
        s
    }
}

impl super::Versioned for DoctorReport {
    const NAME: &'static str = DOCTOR_FILE;
    const VERSION: u32 = DOCTOR_SCHEMA_VERSION;
}
