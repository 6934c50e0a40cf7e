//! Warnings for a run that finished: what the guest kernel reported while it lived.

use serde::{Deserialize, Serialize};

use super::StallKind;

/// What a guest printed that a finished run should carry as a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WarningKind {
    /// See [`StallKind::HardLockup`].
    HardLockup,
    /// See [`StallKind::SoftLockup`].
    SoftLockup,
    /// See [`StallKind::RcuStall`].
    RcuStall,
    /// See [`StallKind::HungTask`].
    HungTask,
    /// An oops or `BUG:` report the guest survived: its kernel is tainted from then on.
    Oops,
}

impl From<StallKind> for WarningKind {
    fn from(kind: StallKind) -> Self {
        match kind {
            StallKind::HardLockup => WarningKind::HardLockup,
            StallKind::SoftLockup => WarningKind::SoftLockup,
            StallKind::RcuStall => WarningKind::RcuStall,
            StallKind::HungTask => WarningKind::HungTask,
        }
    }
}

/// A kind of kernel report printed while the guest lived, deduplicated: one per kind, with
/// how many times it was printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestWarning {
    /// What the kernel reported.
    pub kind: WarningKind,
    /// How many reports of that kind.
    pub count: u32,
    /// The first report's timestamp, in microseconds since the guest booted, when the console
    /// has timestamps.
    pub first_at_us: Option<u64>,
    /// The first report's line.
    pub headline: String,
    /// Distinct report lines, at most [`EVIDENCE_LINES`](super::EVIDENCE_LINES).
    pub evidence: Vec<String>,
}

impl std::fmt::Display for GuestWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            WarningKind::HardLockup => "hard lockup",
            WarningKind::SoftLockup => "soft lockup",
            WarningKind::RcuStall => "RCU stall",
            WarningKind::HungTask => "hung task",
            WarningKind::Oops => "kernel oops",
        };
        write!(f, "guest {what}")?;
        if self.count > 1 {
            write!(f, " ×{}", self.count)?;
        }
        if let Some(us) = self.first_at_us {
            write!(
                f,
                " (first {}.{:02} s after boot)",
                us / 1_000_000,
                us % 1_000_000 / 10_000
            )?;
        }
        write!(f, ": {}", self.headline.trim_end_matches(':'))?;
        let advice = match self.kind {
            WarningKind::Oops => {
                " (the guest kernel is tainted from here on: its later measurements are suspect)"
            }
            _ => {
                " (a guest CPU went without running: check that no vCPU or emulator thread was starved on the host)"
            }
        };
        f.write_str(advice)
    }
}
