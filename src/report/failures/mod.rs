//! Failed runs as results. A layout can break the guest it measures — a SCHED_FIFO vCPU that
//! shares its pCPU with the emulator thread starves the emulated timer, and the guest panics at
//! boot (issue #18, configs/README.md "The emulator on the RT vCPU's pCPU") — and that is the
//! strongest verdict a run can give on it. So a failed run is never only left out of the
//! numbers:
//!
//! - each group keeps the causes of its failed runs, counted ([`CauseCount`], in
//!   [`super::Group::failures`]): the typed [`FailureCause`] of the run record when it has one
//!   (its [`FailureCause::short`] words), else — records written before causes were typed, or
//!   runs failed on the host's own verdict — the stage and the status reason, cut short;
//! - a layout none of whose runs measured is ranked last in its verdict, after every measured
//!   layout, with the count and the cause ([`FailedLayout`] in [`super::Verdict::failed`]);
//! - a layout that failed only some of its runs is flagged unstable next to its numbers
//!   ([`partial`]);
//! - a failed run is over any budget ([`super::budget`]), and JUnit shows a guest failure as a
//!   `<failure>` with the cause ([`super::junit`]);
//! - Markdown and HTML show, in each layout × scenario × workload section, the causes with the
//!   console's evidence (bounded) and the guest kernel warnings of the runs that lived
//!   ([`render`]).

pub(crate) mod render;

use serde::{Deserialize, Serialize};

use super::{Group, Report, RunOutcome, RunSummary};
use crate::config::LayoutKind;
use crate::console::{FailureCause, GuestWarning};
use crate::result::{Stage, Warning};

/// Longest status reason quoted for a run without a typed cause, characters.
pub const REASON_CHARS: usize = 80;

/// One cause of a group's failed runs, with the runs it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CauseCount {
    /// The cause in a few words ([`FailureCause::short`], or the status reason cut to
    /// [`REASON_CHARS`]).
    pub cause: String,
    /// The stage the runs failed in.
    pub stage: Option<Stage>,
    /// The guest failed (kernel, agent, QEMU, a deadline), not the host side: the layout's
    /// result rather than an infrastructure problem.
    pub guest: bool,
    /// The runs that failed with it, in name order.
    pub runs: Vec<String>,
}

/// A run's failure in a few words, and whether the guest side failed: from the typed cause when
/// the record has one, else from the stage and the reason (a guest failure when the stage is
/// `boot`, `measure` or `agent`).
pub fn run_cause(o: &RunOutcome) -> (String, bool) {
    if let Some(f) = &o.failure {
        return (f.short(), f.is_guest());
    }
    let reason = o.reason.as_deref().unwrap_or("?");
    let reason = if reason.chars().count() > REASON_CHARS {
        format!("{}…", reason.chars().take(REASON_CHARS).collect::<String>())
    } else {
        reason.to_string()
    };
    let guest = matches!(o.stage, Some(Stage::Boot | Stage::Measure | Stage::Agent));
    (reason, guest)
}

/// Counts a failed run into a group's causes (same words and stage: same cause).
pub(crate) fn add(causes: &mut Vec<CauseCount>, run: &RunSummary) {
    let (cause, guest) = run_cause(&run.outcome);
    let stage = run.outcome.stage;
    match causes
        .iter_mut()
        .find(|c| c.cause == cause && c.stage == stage)
    {
        Some(c) => c.runs.push(run.name.clone()),
        None => causes.push(CauseCount {
            cause,
            stage,
            guest,
            runs: vec![run.name.clone()],
        }),
    }
}

/// `custom 'colocated'`, or `isolate` when the layout is named for its kind.
pub fn layout_label(name: &str, kind: LayoutKind) -> String {
    if name == kind.as_str() {
        name.to_string()
    } else {
        format!("{} '{name}'", kind.as_str())
    }
}

/// `guest kernel panic during boot — timer check failed`, or with several causes
/// `… in 1, guest RCU stall during boot in 1`.
pub fn causes_text(causes: &[CauseCount]) -> String {
    match causes {
        [one] => one.cause.clone(),
        many => many
            .iter()
            .map(|c| format!("{} in {}", c.cause, c.runs.len()))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Whether none of a group's runs measured and some failed.
pub fn all_failed(g: &Group) -> bool {
    g.ok_runs.is_empty() && !g.failed_runs.is_empty()
}

/// Runs of a group that were read, measured or failed.
pub fn runs_read(g: &Group) -> usize {
    g.ok_runs.len() + g.failed_runs.len()
}

/// `1 of 2 runs failed (guest RCU stall during the run)` for a group that measured in some runs
/// and failed in others, else `None`.
pub fn partial(g: &Group) -> Option<String> {
    (!g.ok_runs.is_empty() && !g.failed_runs.is_empty()).then(|| {
        format!(
            "{} of {} runs failed ({})",
            g.failed_runs.len(),
            runs_read(g),
            causes_text(&g.failures)
        )
    })
}

/// A layout none of whose runs measured in one (scenario, workload): ranked after every
/// measured layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedLayout {
    /// The rank after the verdict's ranking (its length + 1; failed layouts tie), `None` when
    /// the measured layouts were not ranked (clocks differ, every percentile max-bound, none
    /// measured).
    pub rank: Option<usize>,
    /// Layout name.
    pub layout: String,
    /// Layout rule.
    pub layout_kind: LayoutKind,
    /// The tuning variant, `None` when the config has no variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Runs that failed.
    pub failed: usize,
    /// Runs read.
    pub runs: usize,
    /// Why, each cause once with its runs.
    pub causes: Vec<CauseCount>,
    /// `custom 'colocated': the guest did not survive (2 of 2 runs: guest kernel panic during
    /// boot — timer check failed)`; "every run failed" when a cause is on the host side.
    pub statement: String,
}

impl FailedLayout {
    /// The arm that failed ([`super::arm_name`]).
    pub fn arm(&self) -> String {
        super::arm_name(&self.layout, self.variant.as_deref())
    }

    /// The failed layout of a group none of whose runs measured (rank left to the verdict).
    pub fn of(g: &Group) -> FailedLayout {
        let what = if g.failures.iter().all(|c| c.guest) {
            "the guest did not survive"
        } else {
            "every run failed"
        };
        FailedLayout {
            rank: None,
            layout: g.layout.clone(),
            layout_kind: g.layout_kind,
            variant: g.variant.clone(),
            failed: g.failed_runs.len(),
            runs: runs_read(g),
            causes: g.failures.clone(),
            statement: format!(
                "{}: {what} ({} of {} runs: {})",
                super::arm_name(
                    &layout_label(&g.layout, g.layout_kind),
                    g.variant.as_deref()
                ),
                g.failed_runs.len(),
                runs_read(g),
                causes_text(&g.failures)
            ),
        }
    }
}

/// The failed layouts of a verdict in one clause: `A: …, ranked last` or `A: …; B: …; both
/// rank last`; `None` without any.
pub fn clause(failed: &[FailedLayout]) -> Option<String> {
    let all: Vec<&str> = failed.iter().map(|f| f.statement.as_str()).collect();
    match all.len() {
        0 => None,
        1 => Some(format!("{}, ranked last", all[0])),
        _ => Some(format!("{}; these rank last, tied", all.join("; "))),
    }
}

/// A guest kernel warning of one run of a group: (run, guest, report).
pub type KernelWarning<'a> = (&'a str, &'a str, &'a GuestWarning);

/// The guest kernel warnings (RCU stalls, hung tasks, lockups, oopses the guest lived through)
/// of a group's runs, in run order.
pub fn kernel_warnings<'a>(report: &'a Report, g: &Group) -> Vec<KernelWarning<'a>> {
    report
        .runs
        .iter()
        .filter(|r| {
            g.is_arm(&r.layout, r.variant.as_deref())
                && r.scenario == g.scenario
                && r.workload == g.workload
        })
        .flat_map(|r| {
            r.warnings.iter().filter_map(move |w| match w {
                Warning::GuestKernel { guest, report } => {
                    Some((r.name.as_str(), guest.as_str(), report))
                }
                _ => None,
            })
        })
        .collect()
}

/// The typed cause of a run of the report, when its record had one.
pub fn failure_of<'a>(report: &'a Report, run: &str) -> Option<&'a FailureCause> {
    report
        .runs
        .iter()
        .find(|r| r.name == run)
        .and_then(|r| r.outcome.failure.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(stage: Stage, reason: &str, failure: Option<FailureCause>) -> RunOutcome {
        RunOutcome {
            ok: false,
            stage: Some(stage),
            reason: Some(reason.to_string()),
            failure,
        }
    }

    #[test]
    fn a_typed_cause_wins_and_an_old_record_falls_back_to_its_reason() {
        let typed = outcome(
            Stage::Boot,
            "guest never sent hello within 60 s",
            Some(FailureCause::NoHello {
                deadline_s: Some(60),
                evidence: Vec::new(),
            }),
        );
        assert_eq!(
            run_cause(&typed),
            (
                "no agent hello before the 60 s boot deadline".to_string(),
                true
            )
        );
        let old = outcome(Stage::Boot, "guest never sent hello within 60 s", None);
        assert_eq!(
            run_cause(&old),
            ("guest never sent hello within 60 s".to_string(), true)
        );
        let host = outcome(Stage::Verify, &"x".repeat(200), None);
        let (text, guest) = run_cause(&host);
        assert!(
            !guest,
            "a placement that differs from the plan is the host's"
        );
        assert_eq!(text.chars().count(), REASON_CHARS + 1);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn labels_name_the_kind_when_the_name_differs() {
        assert_eq!(
            layout_label("colocated", LayoutKind::Custom),
            "custom 'colocated'"
        );
        assert_eq!(layout_label("isolate", LayoutKind::Isolate), "isolate");
    }

    #[test]
    fn several_causes_are_counted_each() {
        let c = |cause: &str, n: usize| CauseCount {
            cause: cause.into(),
            stage: Some(Stage::Boot),
            guest: true,
            runs: (0..n).map(|i| format!("r{i}")).collect(),
        };
        assert_eq!(causes_text(&[c("a", 2)]), "a");
        assert_eq!(causes_text(&[c("a", 2), c("b", 1)]), "a in 2, b in 1");
    }
}
