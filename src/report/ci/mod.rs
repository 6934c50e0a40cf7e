//! The formats RT CI already parses, each derived from the one [`Report`] (no second reader of
//! the results directory):
//!
//! - [`rt_tests`]: the JSON `oslat --json` and `cyclictest --json` write, one file per
//!   layout × scenario × workload, so parsers of rt-tests results (Linaro test-definitions'
//!   `parse_rt_tests_results.py`, KernelCI's rt-tests jobs) read pinlat unchanged;
//! - [`kcidb`]: KCIDB v5 test rows, for KernelCI;
//! - [`prometheus`]: a node_exporter textfile, for labs that graph hosts with Prometheus;
//! - [`lava`]: one `lava-test-case` per line, which `deploy/lava/pinlat.yaml` turns into LAVA
//!   results.
//!
//! The verdict of a layout × scenario × workload is made once, here ([`GroupCase`]): every
//! format says the same pass or fail, and the number it shows is the one the budget judged.
//!
//! # Which number a case carries
//!
//! The value the workload's budget was checked at: its percentile (`[budgets.<workload>]
//! percentile`) when it sets one, else its `max_us`; without a budget, p99.99. So a case that
//! fails shows the number that failed it. A value above the histogram's range (overflow) or a
//! group that measured nothing has no number: formats leave it out rather than invent one.

pub mod kcidb;
pub mod lava;
pub mod prometheus;
pub mod rt_tests;

use super::{failures, BudgetStatus, Exporter, Group, Report, RunSummary};
use crate::histo::Quantile;
use crate::kinds::UnknownKindError;

/// The formats `pinlat report --format` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiFormat {
    /// rt-tests JSON (`oslat --json` for busy-poll, `cyclictest --json` for timer).
    RtTests,
    /// KCIDB v5 (KernelCI) test rows.
    Kcidb,
    /// Prometheus node_exporter textfile.
    Prometheus,
    /// `lava-test-case` lines for `deploy/lava/pinlat.yaml`.
    Lava,
}

impl CiFormat {
    /// Every format: its name on the command line, and what it gives.
    pub const ALL: [(CiFormat, &'static str, &'static str); 4] = [
        (
            CiFormat::RtTests,
            "rt-tests",
            "one group as oslat --json (busy-poll) or cyclictest --json (timer) writes it, in µs",
        ),
        (
            CiFormat::Kcidb,
            "kcidb",
            "KCIDB v5 test rows for KernelCI (every group, its statistics and failed runs)",
        ),
        (
            CiFormat::Prometheus,
            "prometheus",
            "a node_exporter textfile: pinlat_latency_ns{quantile,...} and friends",
        ),
        (
            CiFormat::Lava,
            "lava",
            "one 'NAME pass|fail [VALUE us]' line per case, for deploy/lava/pinlat.yaml",
        ),
    ];

    /// The format's name on the command line.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(f, _, _)| *f == self)
            .map(|(_, n, _)| *n)
            .expect("every format is listed")
    }
}

impl std::str::FromStr for CiFormat {
    type Err = UnknownKindError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .find(|(_, n, _)| *n == s)
            .map(|(f, _, _)| *f)
            .ok_or_else(|| UnknownKindError {
                kind: "report format",
                given: s.to_string(),
                allowed: "rt-tests, kcidb, prometheus or lava",
            })
    }
}

/// What `pinlat report --format` could not print.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CiError {
    /// rt-tests JSON is one group per file and the report has several.
    #[error("rt-tests JSON is one group per file: choose one with --group ({})", .0.join(", "))]
    GroupNeeded(Vec<String>),
    /// `--group` names no group with an rt-tests shape.
    #[error("no busy-poll or timer group '{given}' in this report: use one of {}", .available.join(", "))]
    UnknownGroup {
        /// The name given.
        given: String,
        /// The groups that have an rt-tests file (never empty: [`CiError::NoRtTestsGroup`]).
        available: Vec<String>,
    },
    /// The report has no busy-poll or timer group.
    #[error(
        "this report has no busy-poll or timer group: rt-tests has no tool that measures a ring"
    )]
    NoRtTestsGroup,
    /// `--group` was given for a format that prints every group.
    #[error("--group only applies to --format rt-tests ({0} prints every group)")]
    GroupNotApplicable(&'static str),
}

/// Options of the CI formats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// The KCIDB origin and build the rows belong to.
    pub kcidb: kcidb::KcidbIds,
}

/// The exporters of the CI formats written beside the report (`pinlat report DIR`, `pinlat
/// run`): rt-tests JSON, KCIDB and Prometheus. The LAVA lines are only printed
/// (`--format lava`): `deploy/lava/pinlat.yaml` reads them from stdout.
pub fn exporters(options: &Options) -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(rt_tests::RtTestsExporter),
        Box::new(kcidb::KcidbExporter(options.kcidb.clone())),
        Box::new(prometheus::PrometheusExporter),
    ]
}

/// The text `pinlat report DIR --format FORMAT [--group NAME]` prints.
pub fn render(
    format: CiFormat,
    report: &Report,
    options: &Options,
    group: Option<&str>,
) -> Result<String, CiError> {
    if group.is_some() && format != CiFormat::RtTests {
        return Err(CiError::GroupNotApplicable(format.name()));
    }
    Ok(match format {
        CiFormat::RtTests => rt_tests::render_one(report, group)?,
        CiFormat::Kcidb => kcidb::render(report, &options.kcidb),
        CiFormat::Prometheus => prometheus::render(report),
        CiFormat::Lava => lava::render(report),
    })
}

/// How a layout × scenario × workload came out, for formats that say pass or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseStatus {
    /// Every run measured and the budget held.
    Held,
    /// Every run measured; no budget is set for the workload.
    Measured,
    /// Every run measured and the budget was exceeded.
    Exceeded,
    /// A run failed. `guest`: at least one failed on the guest's side (the layout's result,
    /// [`failures::CauseCount::guest`]), else only on the host's (infrastructure).
    RunsFailed {
        /// A guest-side failure among them.
        guest: bool,
    },
    /// No run measured anything and none failed.
    NoData,
}

impl CaseStatus {
    /// Whether CI should count the case as passed.
    pub fn passed(self) -> bool {
        matches!(self, CaseStatus::Held | CaseStatus::Measured)
    }

    /// pinlat's exit code for a report of this group alone: 0 held or no budget, 1 over
    /// budget, 3 a run failed or nothing was measured.
    pub fn exit_code(self) -> i32 {
        match self {
            CaseStatus::Held | CaseStatus::Measured => 0,
            CaseStatus::Exceeded => 1,
            CaseStatus::RunsFailed { .. } | CaseStatus::NoData => 3,
        }
    }

    /// A few words for comments and logs.
    pub fn describe(self) -> &'static str {
        match self {
            CaseStatus::Held => "budget held",
            CaseStatus::Measured => "measured, no budget set",
            CaseStatus::Exceeded => "budget exceeded",
            CaseStatus::RunsFailed { guest: true } => "a run failed (guest)",
            CaseStatus::RunsFailed { guest: false } => "a run failed (host)",
            CaseStatus::NoData => "no run measured",
        }
    }
}

/// The number a case carries (module doc, "Which number a case carries").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measurement {
    /// `p99.99`, `p99.9`, `max`: what the value is.
    pub what: String,
    /// The value, ns (`None`: above the histogram's range, or nothing measured).
    pub value_ns: Option<u64>,
}

/// One layout × scenario × workload as the CI formats see it.
#[derive(Debug, Clone)]
pub struct GroupCase<'a> {
    /// The group.
    pub group: &'a Group,
    /// How it came out.
    pub status: CaseStatus,
    /// The number it carries.
    pub measurement: Measurement,
    /// The accelerators its runs used (`kvm`, `tcg`, `kvm+tcg`; `unknown` without runs).
    pub accel: String,
}

/// Every group of the report as a case, in the report's order.
pub fn cases(report: &Report) -> Vec<GroupCase<'_>> {
    report.groups.iter().map(|g| case(report, g)).collect()
}

fn case<'a>(report: &Report, g: &'a Group) -> GroupCase<'a> {
    let status = if !g.failed_runs.is_empty() {
        CaseStatus::RunsFailed {
            guest: g.failures.iter().any(|c| c.guest),
        }
    } else {
        match g.budget.status {
            BudgetStatus::Held => CaseStatus::Held,
            BudgetStatus::Exceeded => CaseStatus::Exceeded,
            BudgetStatus::NoData => CaseStatus::NoData,
            BudgetStatus::NoBudget if g.stats.samples == 0 => CaseStatus::NoData,
            BudgetStatus::NoBudget => CaseStatus::Measured,
        }
    };
    // The budget's first check is its percentile when it sets one (budget::budget_verdict).
    let measurement = match g.budget.checks.first() {
        Some(c) => Measurement {
            what: c.what.clone(),
            value_ns: c.observed_ns,
        },
        None => Measurement {
            what: Quantile::P9999.label().to_string(),
            value_ns: g.stats.p9999_ns.value_ns.filter(|_| g.stats.samples > 0),
        },
    };
    GroupCase {
        group: g,
        status,
        measurement,
        accel: group_accel(report, g),
    }
}

/// Every run of a group that was read, measured or failed, in name order.
pub fn group_runs<'a>(report: &'a Report, g: &'a Group) -> impl Iterator<Item = &'a RunSummary> {
    report.runs.iter().filter(|r| {
        g.is_arm(&r.layout, r.variant.as_deref())
            && r.scenario == g.scenario
            && r.workload == g.workload
    })
}

/// The guests' kernels as the formats list them: `guest: release`, ` PREEMPT_RT` when it was.
pub fn guest_kernel_labels(report: &Report) -> Vec<String> {
    report
        .guest_kernels
        .kernels
        .iter()
        .map(|k| {
            let rt = if k.preempt_rt { " PREEMPT_RT" } else { "" };
            format!("{}: {}{rt}", k.guest, k.kernel_release)
        })
        .collect()
}

/// The accelerators of a group's runs, `+`-joined in name order.
fn group_accel(report: &Report, g: &Group) -> String {
    let mut accels: Vec<&str> = group_runs(report, g).map(|r| r.accel.as_str()).collect();
    accels.sort_unstable();
    accels.dedup();
    if accels.is_empty() {
        "unknown".to_string()
    } else {
        accels.join("+")
    }
}

/// Why a run has no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// The run failed; `guest`: on the guest's side.
    Failed {
        /// The guest failed, not the host.
        guest: bool,
    },
    /// Its run file could not be read.
    Unreadable,
    /// `plan.json` lists it and there is no run file.
    Missing,
}

/// A run without a result: failed, unreadable or missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostRun {
    /// The run's name (`layout.scenario.workload.rN`; an unreadable file's name without
    /// `.json`).
    pub name: String,
    /// Why.
    pub lost: Lost,
    /// The cause in a few words.
    pub cause: String,
}

/// Every run without a result: failed runs in name order, then unreadable files, then missing
/// runs.
pub fn lost_runs(report: &Report) -> Vec<LostRun> {
    let failed = report.runs.iter().filter(|r| !r.outcome.ok).map(|r| {
        let (cause, guest) = failures::run_cause(&r.outcome);
        LostRun {
            name: r.name.clone(),
            lost: Lost::Failed { guest },
            cause,
        }
    });
    let unreadable = report.skipped.iter().map(|s| LostRun {
        name: s.file.strip_suffix(".json").unwrap_or(&s.file).to_string(),
        lost: Lost::Unreadable,
        cause: format!("run file unreadable: {}", s.reason),
    });
    let missing = report.missing_runs.iter().map(|n| LostRun {
        name: n.clone(),
        lost: Lost::Missing,
        cause: "planned in plan.json, no run file".to_string(),
    });
    failed.chain(unreadable).chain(missing).collect()
}

/// What a format says before its cases, each with its label: `IN PROGRESS` when the report
/// was built from a checkpoint (a run still measuring: not a final report), `NOTE` the TCG
/// disclaimer, `WARNING` a guest kernel that was not PREEMPT_RT.
pub fn notes(report: &Report) -> impl Iterator<Item = (&'static str, &str)> {
    [
        (
            "IN PROGRESS",
            report.in_progress.as_ref().map(|p| p.statement.as_str()),
        ),
        ("NOTE", report.disclaimer.as_deref()),
        ("WARNING", report.guest_warning.as_deref()),
    ]
    .into_iter()
    .filter_map(|(label, text)| Some((label, text?)))
}

/// The host's name from `host.json` (`unknown` when it has none).
pub fn host_name(report: &Report) -> &str {
    report
        .host
        .as_ref()
        .and_then(|h| h.local.hostname.as_deref())
        .unwrap_or("unknown")
}

/// `s` as one segment of a CI case name or KCIDB path: ASCII letters, digits, `-` and `_`
/// kept, anything else `_` (config names are already made of those).
pub fn segment(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A group's case name: `<layout>.<scenario>.<workload>`, or
/// `<layout>.<variant>.<scenario>.<workload>` with variants (as [`Group::name`], each part a
/// [`segment`]).
pub fn group_case_name(g: &Group) -> String {
    let mut parts = vec![g.layout.as_str()];
    parts.extend(g.variant.as_deref());
    parts.extend([g.scenario.as_str(), g.workload.as_str()]);
    case_name(&parts)
}

/// A dotted case name of segments (`share.idle.busy-poll`, `share.idle.busy-poll.r2`).
pub fn case_name(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| segment(p))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_by_name() {
        for (f, name, _) in CiFormat::ALL {
            assert_eq!(name.parse::<CiFormat>(), Ok(f));
            assert_eq!(f.name(), name);
        }
        let e = "junit".parse::<CiFormat>().unwrap_err().to_string();
        assert!(e.contains("rt-tests, kcidb, prometheus or lava"), "{e}");
    }

    #[test]
    fn names_keep_only_safe_characters() {
        assert_eq!(segment("busy-poll"), "busy-poll");
        assert_eq!(segment("a b.c/d"), "a_b_c_d");
        assert_eq!(case_name(&["share", "idle", "r 1"]), "share.idle.r_1");
    }

    #[test]
    fn exit_codes_follow_pinlat_report() {
        assert_eq!(CaseStatus::Held.exit_code(), 0);
        assert_eq!(CaseStatus::Measured.exit_code(), 0);
        assert_eq!(CaseStatus::Exceeded.exit_code(), 1);
        assert_eq!(CaseStatus::RunsFailed { guest: true }.exit_code(), 3);
        assert!(!CaseStatus::NoData.passed());
    }
}
