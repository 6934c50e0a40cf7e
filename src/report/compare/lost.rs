//! The rows of a comparison that NEW lost: a layout × scenario × workload of BASE that is absent
//! from NEW, whose runs all failed or went missing in NEW, or that lost more runs (failed,
//! missing, unreadable) in NEW than in BASE. Each is a regression unless `--allow-missing`: a
//! gate that only compared percentiles of what still measured passed a broken layout.
//!
//! A failed run is quoted by its typed cause when its record has one ("boot: guest kernel panic
//! during boot — timer check failed"), else by its status reason cut short
//! ([`super::super::failures::run_cause`]).

use serde::Serialize;

use super::super::failures::run_cause;
use super::super::{Group, Report};

/// A row NEW lost, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lost {
    /// `layout.scenario.workload`.
    pub name: String,
    /// `2 of 2 runs failed in NEW (boot: guest kernel panic during boot — timer check failed)`.
    pub cause: String,
    /// Counts for the exit code (`false`: waived by `--allow-missing`).
    pub regression: bool,
}

/// The runs a report has for one row beyond its measured ones.
#[derive(Debug, Default)]
struct RowRuns {
    /// Runs read (ok and failed).
    read: usize,
    /// Failed runs: (stage, cause in a few words).
    failed: Vec<(&'static str, String)>,
    /// Planned runs without a run file, and run files that could not be read.
    missing: usize,
}

impl RowRuns {
    fn lost(&self) -> usize {
        self.failed.len() + self.missing
    }
    fn total(&self) -> usize {
        self.read + self.missing
    }
}

/// The row a run name (`layout.scenario.workload.rN`) belongs to.
fn row_of(run: &str) -> Option<&str> {
    let (row, rep) = run.rsplit_once('.')?;
    let digits = rep.strip_prefix('r')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(row)
}

fn row_runs(r: &Report, name: &str) -> RowRuns {
    let group: Option<&Group> = r.groups.iter().find(|g| g.name() == name);
    let failed = group
        .map(|g| {
            g.failed_runs
                .iter()
                .map(|f| match r.runs.iter().find(|x| &x.name == f) {
                    Some(x) => (
                        x.outcome.stage.map_or("?", |s| s.as_str()),
                        run_cause(&x.outcome).0,
                    ),
                    None => ("?", "?".to_string()),
                })
                .collect()
        })
        .unwrap_or_default();
    let missing = r
        .missing_runs
        .iter()
        .map(String::as_str)
        .chain(
            r.skipped
                .iter()
                .filter_map(|s| s.file.strip_suffix(".json")),
        )
        .filter(|run| row_of(run) == Some(name))
        .count();
    RowRuns {
        read: group.map_or(0, |g| g.ok_runs.len() + g.failed_runs.len()),
        failed,
        missing,
    }
}

/// `boot: guest kernel panic during boot — timer check failed; measure: QEMU exited` (distinct
/// causes).
fn causes(failed: &[(&str, String)]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for (stage, cause) in failed {
        let c = format!("{stage}: {cause}");
        if !seen.contains(&c) {
            seen.push(c);
        }
    }
    seen.join("; ")
}

/// Why NEW lost row `name`, or `None` when it did not.
fn cause(name: &str, base: &Report, new: &Report) -> Option<String> {
    let (b, n) = (row_runs(base, name), row_runs(new, name));
    let in_new = new.groups.iter().any(|g| g.name() == name);
    let measured_new = new
        .groups
        .iter()
        .any(|g| g.name() == name && g.stats.samples > 0);
    let missing = |n: &RowRuns| {
        (n.missing > 0).then(|| {
            format!(
                "{} planned run(s) without a readable run file in NEW",
                n.missing
            )
        })
    };
    let failed = |n: &RowRuns| {
        (!n.failed.is_empty()).then(|| {
            format!(
                "{} of {} runs failed in NEW ({})",
                n.failed.len(),
                n.total(),
                causes(&n.failed)
            )
        })
    };
    let parts: Vec<String> = if !in_new && n.missing == 0 {
        vec![format!(
            "absent in NEW (BASE has {} run(s) of it)",
            b.total()
        )]
    } else if !measured_new {
        // Every run failed or is missing: the row is broken in NEW.
        [failed(&n), missing(&n)].into_iter().flatten().collect()
    } else if n.lost() > b.lost() {
        let mut p: Vec<String> = [failed(&n), missing(&n)].into_iter().flatten().collect();
        p.push(if b.lost() > 0 {
            format!("BASE lost {} of {}", b.lost(), b.total())
        } else {
            "none lost in BASE".to_string()
        });
        p
    } else {
        Vec::new()
    };
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Every row of BASE that NEW lost, in BASE's order, then rows of NEW that measured nothing and
/// are not in BASE.
pub fn lost_rows(base: &Report, new: &Report, allow_missing: bool) -> Vec<Lost> {
    let mut names: Vec<String> = base.groups.iter().map(Group::name).collect();
    for g in new.groups.iter().filter(|g| g.stats.samples == 0) {
        if !names.contains(&g.name()) {
            names.push(g.name());
        }
    }
    names
        .into_iter()
        .filter_map(|name| {
            cause(&name, base, new).map(|cause| Lost {
                name,
                cause,
                regression: !allow_missing,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_map_to_their_row() {
        assert_eq!(
            row_of("share.mgmt-poll.timer.r2"),
            Some("share.mgmt-poll.timer")
        );
        assert_eq!(
            row_of("share.mgmt-poll.timer.r12"),
            Some("share.mgmt-poll.timer")
        );
        assert_eq!(row_of("share.mgmt-poll.timer"), None);
        assert_eq!(row_of("x.r"), None);
    }

    #[test]
    fn repeated_causes_are_said_once() {
        let panic = "guest kernel panic during boot — timer check failed".to_string();
        let c = causes(&[
            ("boot", panic.clone()),
            ("boot", panic),
            ("measure", "QEMU exited".into()),
        ]);
        assert_eq!(
            c,
            "boot: guest kernel panic during boot — timer check failed; measure: QEMU exited"
        );
    }
}
