//! LAVA test cases, one per line, for `deploy/lava/pinlat.yaml`: the definition's POSIX `sh`
//! loop turns each line into `lava-test-case NAME --result RESULT [--measurement VALUE --units
//! us]`, so the logic stays here, tested, and the YAML stays a loop.
//!
//! ```text
//! # comment (the loop echoes it into the job log)
//! NAME RESULT [VALUE us]
//! ```
//!
//! - one case per layout × scenario × workload, `<layout>.<scenario>.<workload>`
//!   (`<layout>.<variant>.<scenario>.<workload>` with variants): `pass` when
//!   every run measured and the budget held (or none is set), `fail` when it was exceeded, a run
//!   failed or nothing was measured; VALUE is the number the budget judged, else p99.99, in µs
//!   with three decimals (exact to the ns), left out when there is none ([`super`], "Which
//!   number a case carries"); a comment before it says which statistic it is and why it passed
//!   or failed;
//! - one `fail` case per run without a result, named after the run
//!   (`<layout>.<scenario>.<workload>.r<N>`): failed, unreadable or missing, its cause in the
//!   comment before it.
//!
//! Names keep ASCII letters, digits, `-`, `_` and `.` (LAVA refuses whitespace), so the loop's
//! `read` splits every line into at most four fields.

use super::{case_name, cases, group_case_name, host_name, lost_runs, notes, GroupCase, LostRun};
use crate::report::{us, Report};

/// A case's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LavaResult {
    /// `pass`.
    Pass,
    /// `fail`.
    Fail,
}

impl LavaResult {
    /// `pass` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            LavaResult::Pass => "pass",
            LavaResult::Fail => "fail",
        }
    }
}

/// One `lava-test-case`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LavaCase {
    /// Why, in a comment line before the case.
    pub comment: String,
    /// The case name.
    pub name: String,
    /// pass or fail.
    pub result: LavaResult,
    /// The measurement, ns (printed in µs).
    pub measurement_ns: Option<u64>,
}

impl LavaCase {
    /// `NAME RESULT [VALUE us]`.
    pub fn line(&self) -> String {
        match self.measurement_ns {
            Some(v) => format!("{} {} {} us", self.name, self.result.as_str(), us(v)),
            None => format!("{} {}", self.name, self.result.as_str()),
        }
    }
}

/// Every case of a report: the groups in report order, then the runs without a result.
pub fn lava_cases(report: &Report) -> Vec<LavaCase> {
    let groups = cases(report).into_iter().map(|c| group_case(&c));
    let lost = lost_runs(report).into_iter().map(|l| lost_case(&l));
    groups.chain(lost).collect()
}

fn group_case(c: &GroupCase<'_>) -> LavaCase {
    let g = c.group;
    let m = &c.measurement;
    let value = match m.value_ns {
        Some(v) => format!("{} {} µs", m.what, us(v)),
        None if g.stats.samples > 0 => format!("{} above the histogram's range", m.what),
        None => "nothing measured".to_string(),
    };
    let mut why = vec![value, c.status.describe().to_string()];
    why.extend(g.budget.describe());
    LavaCase {
        comment: format!("{}: {}", g.name(), why.join("; ")),
        name: group_case_name(g),
        result: if c.status.passed() {
            LavaResult::Pass
        } else {
            LavaResult::Fail
        },
        measurement_ns: m.value_ns,
    }
}

fn lost_case(l: &LostRun) -> LavaCase {
    let parts: Vec<&str> = l.name.split('.').collect();
    LavaCase {
        comment: format!("{}: {}", l.name, l.cause),
        name: case_name(&parts),
        result: LavaResult::Fail,
        measurement_ns: None,
    }
}

/// The lines `pinlat report DIR --format lava` prints.
pub fn render(report: &Report) -> String {
    let mut out = format!(
        "# pinlat {} on {}: NAME pass|fail [VALUE us], VALUE the budget's statistic, else p99.99\n",
        report.run_id,
        host_name(report)
    );
    for (_, note) in notes(report) {
        out.push_str(&format!("# NOTE: {}\n", one_line(note)));
    }
    for c in lava_cases(report) {
        out.push_str(&format!("# {}\n{}\n", one_line(&c.comment), c.line()));
    }
    out
}

/// A comment on one line.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_line_has_two_or_four_fields() {
        let mut c = LavaCase {
            comment: String::new(),
            name: "share.idle.timer".into(),
            result: LavaResult::Pass,
            measurement_ns: Some(12_345),
        };
        assert_eq!(c.line(), "share.idle.timer pass 12.345 us");
        c.measurement_ns = None;
        c.result = LavaResult::Fail;
        assert_eq!(c.line(), "share.idle.timer fail");
    }
}
