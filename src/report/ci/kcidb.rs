//! KCIDB v5 test rows (`kcidb.json`), so KernelCI can ingest a run: the schema of kcidb-io's
//! `kcidb_io/schema/v05_00.py` (every v5 receiver reads minor 0). Each test row has the
//! required `build_id`, `id` and `origin`, a dot-separated `path`, a `status`, and where there
//! is one a `number {value, unit}`; `environment.misc` names the host, layout, scenario,
//! workload and accelerator.
//!
//! Rows, under the path `pinlat`:
//!
//! - `pinlat.<layout>.<scenario>.<workload>` (`pinlat.<layout>.<variant>.<scenario>.<workload>`
//!   with variants, and `environment.misc.variant`): the group's verdict, `PASS` (budget held),
//!   `FAIL` (over budget, or a run failed on the guest's side: the layout's result), `ERROR`
//!   (a run failed on the host's side only, or nothing was measured), `DONE` (measured, no
//!   budget set); its number is the value the budget judged, else p99.99 ([`super`], "Which
//!   number a case carries"), in ns;
//! - `….p50`, `….p90`, `….p99`, `….p99_9`, `….p99_99`, `….max`: each statistic of a group that
//!   measured, `DONE`, in ns (a percentile above the histogram's range has no number and says
//!   so in its comment);
//! - `pinlat.<layout>.<scenario>.<workload>.r<N>`: each run without a result, `FAIL` (the
//!   guest failed), `ERROR` (the host side failed, or the run file is unreadable) or `MISS`
//!   (planned, never written), its cause in `comment`.
//!
//! `origin` is the submitting CI system as KernelCI registered it (`--kcidb-origin`, default
//! `pinlat`), `build_id` the tested kernel build's KCIDB id (`--kcidb-build-id`, default
//! `<origin>:<run-id>`, a placeholder until the lab gives the real one), and each `id`
//! `<origin>:<host>:<run-id>:<path without pinlat.>`, unique per host and run.

use serde::{Deserialize, Serialize};

use super::{
    case_name, cases, group_case_name, group_runs, guest_kernel_labels, host_name, lost_runs,
    notes, segment, CaseStatus, GroupCase, Lost, LostRun,
};
use crate::histo::Quantile;
use crate::report::{hlog::iso8601_ms, Exporter, OutputFile, Report, ReportError};

/// The schema's major version.
pub const MAJOR: u32 = 5;
/// The minor version written (every v5 receiver accepts 0).
pub const MINOR: u32 = 0;
/// The file written beside the report.
pub const FILE: &str = "kcidb.json";
/// The first segment of every path.
pub const ROOT: &str = "pinlat";
/// The default origin.
pub const DEFAULT_ORIGIN: &str = "pinlat";

/// An origin or build id KCIDB v5 refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KcidbIdError {
    /// Not `[a-z0-9_]+`.
    #[error(
        "--kcidb-origin '{0}': KCIDB origins are lowercase letters, digits and '_' (e.g. my_lab)"
    )]
    Origin(String),
    /// Not `<origin>:<anything>`.
    #[error("--kcidb-build-id '{0}': a KCIDB id is the origin, ':' and the build's own id (e.g. my_lab:build-1234)")]
    BuildId(String),
}

/// Who submits the rows and which build they test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KcidbIds {
    /// The CI system's origin name.
    pub origin: String,
    /// The tested build's id (`None`: `<origin>:<run-id>`).
    pub build_id: Option<String>,
}

impl Default for KcidbIds {
    fn default() -> Self {
        KcidbIds {
            origin: DEFAULT_ORIGIN.to_string(),
            build_id: None,
        }
    }
}

fn is_origin(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl KcidbIds {
    /// Checked ids: the origin (default `pinlat`) and the build id against the schema's
    /// patterns.
    pub fn new(origin: Option<String>, build_id: Option<String>) -> Result<Self, KcidbIdError> {
        let origin = origin.unwrap_or_else(|| DEFAULT_ORIGIN.to_string());
        if !is_origin(&origin) {
            return Err(KcidbIdError::Origin(origin));
        }
        if let Some(b) = &build_id {
            if !b.split_once(':').is_some_and(|(o, _)| is_origin(o)) {
                return Err(KcidbIdError::BuildId(b.clone()));
            }
        }
        Ok(KcidbIds { origin, build_id })
    }
}

/// `kcidb.json`: a KCIDB v5 report with test rows only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KcidbDoc {
    /// The schema version.
    pub version: KcidbVersion,
    /// The rows.
    pub tests: Vec<KcidbTest>,
}

/// `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KcidbVersion {
    /// [`MAJOR`].
    pub major: u32,
    /// [`MINOR`].
    pub minor: u32,
}

/// A test status (the schema's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum KcidbStatus {
    /// The tested code is faulty.
    Fail,
    /// The test did not complete.
    Error,
    /// The test did not run: the harness failed.
    Miss,
    /// The tested code is correct.
    Pass,
    /// A measurement without a verdict.
    Done,
}

/// One test row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KcidbTest {
    /// The tested build's id.
    pub build_id: String,
    /// `<origin>:<host>:<run-id>:<path without pinlat.>`.
    pub id: String,
    /// The submitting CI system.
    pub origin: String,
    /// Where it ran.
    pub environment: KcidbEnvironment,
    /// `pinlat.<layout>.<scenario>.<workload>[.<stat>|.r<N>]`.
    pub path: String,
    /// The verdict or the cause, in words.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub comment: Option<String>,
    /// The status.
    pub status: KcidbStatus,
    /// The measurement, when there is one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub number: Option<KcidbNumber>,
    /// Start of the first run, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub start_time: Option<String>,
    /// Measured time, s.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub duration: Option<f64>,
    /// The budget and runs behind a group's verdict.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub misc: Option<TestMisc>,
}

/// `number`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KcidbNumber {
    /// The value, ns.
    pub value: u64,
    /// `ns`.
    pub unit: String,
}

/// `environment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KcidbEnvironment {
    /// That the report was built from a checkpoint, the TCG disclaimer when a run used TCG,
    /// and the warning when a guest kernel was not PREEMPT_RT.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub comment: Option<String>,
    /// Host, layout, accelerator.
    pub misc: EnvironmentMisc,
}

/// `environment.misc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentMisc {
    /// The host's name.
    pub host: String,
    /// The results directory's run id.
    pub run_id: String,
    /// Layout name (unknown for an unreadable or missing run).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub layout: Option<String>,
    /// The tuning variant (none without variants, or for an unreadable or missing run).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub variant: Option<String>,
    /// Scenario.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scenario: Option<String>,
    /// Workload.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub workload: Option<String>,
    /// Accelerators (`kvm`, `tcg`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub accel: Option<String>,
    /// The host kernel's `uname -r`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host_kernel: Option<String>,
    /// Whether the host kernel is PREEMPT_RT.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host_preempt_rt: Option<bool>,
    /// The guests' kernels (`guest: release`, ` PREEMPT_RT` when it was).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub guest_kernels: Vec<String>,
}

/// A group row's `misc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestMisc {
    /// What `number` is (`p99.99`, `max`).
    pub measured: String,
    /// Each budget check, described.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub budget: Vec<String>,
    /// The runs merged.
    pub runs: Vec<String>,
    /// The runs that failed.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub failed_runs: Vec<String>,
}

/// Writes `kcidb.json`.
pub struct KcidbExporter(pub KcidbIds);

impl Exporter for KcidbExporter {
    fn report_files(&self, report: &Report) -> Result<Vec<OutputFile>, ReportError> {
        Ok(vec![OutputFile {
            name: FILE.to_string(),
            contents: render(report, &self.0),
        }])
    }
}

/// The JSON text of [`document`], with a final newline.
pub fn render(report: &Report, ids: &KcidbIds) -> String {
    let mut s = serde_json::to_string_pretty(&document(report, ids))
        .expect("a KCIDB document always serializes");
    s.push('\n');
    s
}

/// The rows of a report.
pub fn document(report: &Report, ids: &KcidbIds) -> KcidbDoc {
    let rows = Rows { report, ids };
    let mut tests = Vec::new();
    for c in cases(report) {
        tests.push(rows.group(&c));
        tests.extend(rows.stats(&c));
    }
    tests.extend(lost_runs(report).iter().map(|l| rows.lost(l)));
    KcidbDoc {
        version: KcidbVersion {
            major: MAJOR,
            minor: MINOR,
        },
        tests,
    }
}

struct Rows<'a> {
    report: &'a Report,
    ids: &'a KcidbIds,
}

impl Rows<'_> {
    /// A row at `pinlat.<sub>` with its ids.
    fn row(&self, sub: &str, env: EnvironmentMisc, status: KcidbStatus) -> KcidbTest {
        let r = self.report;
        let origin = &self.ids.origin;
        KcidbTest {
            build_id: self
                .ids
                .build_id
                .clone()
                .unwrap_or_else(|| format!("{origin}:{}", r.run_id)),
            id: format!("{origin}:{}:{}:{sub}", host_name(r), r.run_id),
            origin: origin.clone(),
            environment: KcidbEnvironment {
                comment: environment_comment(r),
                misc: env,
            },
            path: format!("{ROOT}.{sub}"),
            comment: None,
            status,
            number: None,
            start_time: None,
            duration: None,
            misc: None,
        }
    }

    fn env(
        &self,
        (layout, variant): (Option<&str>, Option<&str>),
        scenario: Option<&str>,
        workload: Option<&str>,
        accel: Option<&str>,
    ) -> EnvironmentMisc {
        let r = self.report;
        let host = r.host.as_ref();
        EnvironmentMisc {
            host: host_name(r).to_string(),
            run_id: r.run_id.clone(),
            layout: layout.map(str::to_string),
            variant: variant.map(str::to_string),
            scenario: scenario.map(str::to_string),
            workload: workload.map(str::to_string),
            accel: accel.map(str::to_string),
            host_kernel: host.map(|h| h.local.kernel_release.clone()),
            host_preempt_rt: host.map(|h| h.local.preempt_rt),
            guest_kernels: guest_kernel_labels(r),
        }
    }

    fn group_env(&self, c: &GroupCase<'_>) -> EnvironmentMisc {
        let g = c.group;
        self.env(
            (Some(&g.layout), g.variant.as_deref()),
            Some(&g.scenario),
            Some(g.workload.as_str()),
            Some(&c.accel),
        )
    }

    fn group(&self, c: &GroupCase<'_>) -> KcidbTest {
        let g = c.group;
        let status = match c.status {
            CaseStatus::Held => KcidbStatus::Pass,
            CaseStatus::Measured => KcidbStatus::Done,
            CaseStatus::Exceeded | CaseStatus::RunsFailed { guest: true } => KcidbStatus::Fail,
            CaseStatus::RunsFailed { guest: false } | CaseStatus::NoData => KcidbStatus::Error,
        };
        let mut row = self.row(&group_sub(c), self.group_env(c), status);
        let mut words = vec![c.status.describe().to_string()];
        words.extend(g.budget.describe());
        row.comment = Some(words.join("; "));
        row.number = c.measurement.value_ns.map(ns);
        row.start_time = self.start(c).map(iso8601_ms);
        row.duration = (g.stats.samples > 0).then(|| g.stats.duration_ns as f64 / 1e9);
        row.misc = Some(TestMisc {
            measured: c.measurement.what.clone(),
            budget: g.budget.describe(),
            runs: g.ok_runs.clone(),
            failed_runs: g.failed_runs.clone(),
        });
        row
    }

    /// The start of the group's first run, ms since the epoch.
    fn start(&self, c: &GroupCase<'_>) -> Option<u64> {
        group_runs(self.report, c.group)
            .map(|r| r.started_unix_ms)
            .min()
    }

    /// One `DONE` row per statistic of a group that measured.
    fn stats(&self, c: &GroupCase<'_>) -> Vec<KcidbTest> {
        let s = &c.group.stats;
        if s.samples == 0 {
            return Vec::new();
        }
        Quantile::ALL
            .into_iter()
            .map(|q| (segment(q.label()), s.at(q).value_ns))
            .chain([("max".to_string(), Some(s.max_ns))])
            .map(|(stat, value)| {
                let sub = format!("{}.{stat}", group_sub(c));
                let mut row = self.row(&sub, self.group_env(c), KcidbStatus::Done);
                row.number = value.map(ns);
                if value.is_none() {
                    row.comment = Some(
                        "above the histogram's range (overflow): no value to give".to_string(),
                    );
                }
                row
            })
            .collect()
    }

    fn lost(&self, l: &LostRun) -> KcidbTest {
        let run = self.report.runs.iter().find(|r| r.name == l.name);
        let env = self.env(
            (
                run.map(|r| r.layout.as_str()),
                run.and_then(|r| r.variant.as_deref()),
            ),
            run.map(|r| r.scenario.as_str()),
            run.map(|r| r.workload.as_str()),
            run.map(|r| r.accel.as_str()),
        );
        let status = match l.lost {
            Lost::Failed { guest: true } => KcidbStatus::Fail,
            Lost::Failed { guest: false } | Lost::Unreadable => KcidbStatus::Error,
            Lost::Missing => KcidbStatus::Miss,
        };
        let parts: Vec<&str> = l.name.split('.').collect();
        let mut row = self.row(&case_name(&parts), env, status);
        row.comment = Some(l.cause.clone());
        row.start_time = run.map(|r| iso8601_ms(r.started_unix_ms));
        row
    }
}

/// The report's [`notes`] (in progress, TCG, guest kernel), when it has any.
fn environment_comment(r: &Report) -> Option<String> {
    let notes: Vec<&str> = notes(r).map(|(_, text)| text).collect();
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// `<layout>[.<variant>].<scenario>.<workload>`, each a path segment.
fn group_sub(c: &GroupCase<'_>) -> String {
    group_case_name(c.group)
}

fn ns(value: u64) -> KcidbNumber {
    KcidbNumber {
        value,
        unit: "ns".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_schema_patterns() {
        assert_eq!(KcidbIds::new(None, None).unwrap(), KcidbIds::default());
        let ok = KcidbIds::new(Some("my_lab".into()), Some("my_lab:build 7".into())).unwrap();
        assert_eq!(ok.origin, "my_lab");
        for bad in ["My-Lab", "", "lab.1"] {
            let e = KcidbIds::new(Some(bad.into()), None).unwrap_err();
            assert!(e.to_string().contains("lowercase letters"), "{e}");
        }
        for bad in ["build-7", ":x", "Lab:x"] {
            let e = KcidbIds::new(None, Some(bad.into())).unwrap_err();
            assert!(e.to_string().contains("the origin, ':'"), "{e}");
        }
    }
}
