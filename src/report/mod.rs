//! Reports and verdicts: raw runs (`runs/*.json`, [`crate::result::RunRecord`]) become the
//! answer — which layout keeps the realtime vCPUs' latency within budget, by how much, and with
//! what confidence.
//!
//! [`aggregate`] streams the run files one at a time (memory stays bounded by the number of
//! groups, not runs), merges HDR histograms per (layout, scenario, workload, RT vCPU) and across
//! RT vCPUs ([`accumulate`]), and keeps per-run summaries ([`runs`]) for the spread between
//! repetitions. Every set of samples is described by the one [`Summary`](crate::histo::Summary) (percentiles by rank,
//! overflow ranked above the range). [`verdict`] ranks layouts, [`stability`] judges whether a
//! layout's maxima are reproducible across repetitions, [`budget`] checks budgets. Each output format is one [`Exporter`] in its own file, all derived
//! from the one [`Report`] (one schema, many views, as hyperfine's `src/export/`); the formats
//! RT CI already parses (rt-tests JSON, KCIDB, Prometheus, LAVA) are in [`ci`].

pub mod accumulate;
pub mod aggregate;
pub mod boots;
pub mod budget;
pub mod ci;
pub mod compare;
pub mod culprits;
pub mod cyclictest;
pub mod failures;
pub mod fleet;
pub mod guest;
pub mod hlog;
pub mod hostchecks;
pub mod housekeeping;
pub mod html;
mod html_svg;
pub mod json;
pub mod junit;
pub mod markdown;
mod model;
pub mod readiness;
mod runs;
pub mod soak;
pub mod source;
pub mod stability;
pub mod text;
pub mod thread_cpu;
pub mod trend;
pub mod verdict;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::WorkloadKind;
use crate::kinds::Accel;
use crate::result::RunRecord;

pub use aggregate::build;
pub use budget::{BudgetCheck, BudgetStatus, BudgetVerdict};
pub use model::{
    arm_name, group_name, EventRef, Group, GuestView, IntervalPoint, LayoutView, Range, RunSummary,
    RunTimeline, Spread, VcpuGroup, VcpuKey,
};
pub(crate) use text::escape_xml;
pub use text::{clock_text, clocks_text, max_bound_legend, us, us_opt, us_pct, MAX_BOUND_MARK};
pub use verdict::Verdict;

/// Version of the `report.json` schema; bumped on any incompatible change (2: percentiles as
/// [`crate::histo::Percentile`]s, by rank, with the samples beyond them; stability, clocks and
/// guest kernels).
pub const REPORT_SCHEMA_VERSION: u32 = 2;

/// Errors of building or writing a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The directory has no `runs/` directory, or it cannot be listed.
    #[error("{} is not a pinlat results directory (no readable runs/)", .0.display())]
    NotAResultDir(PathBuf, #[source] std::io::Error),
    /// `runs/` holds no readable run.
    #[error("{} holds no readable run ({n} file(s) skipped)", .0.display(), n = .1)]
    NoRuns(PathBuf, usize),
    /// An output could not be written.
    #[error("Cannot write {}", .0.display())]
    Write(PathBuf, #[source] std::io::Error),
    /// A histogram could not be encoded.
    #[error("Cannot encode a histogram for {0}")]
    Encode(String, #[source] crate::histo::HistoError),
    /// `report.json` could not be read back as this pinlat's report.
    #[error("Cannot read the report")]
    ReadReport(#[from] crate::schema::SchemaError),
    /// A plot could not be drawn.
    #[error("Cannot draw plot {0}: {1}")]
    Plot(String, String),
}

/// One run file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    /// File name under `runs/`.
    pub file: String,
    /// Why it was skipped.
    pub reason: String,
}

/// How a run ended, flattened for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// Whether the run measured to the end.
    pub ok: bool,
    /// Failed runs: the stage.
    pub stage: Option<crate::result::Stage>,
    /// Failed runs: the reason.
    pub reason: Option<String>,
    /// Failed runs: the typed cause with its evidence, when the run record has one (records
    /// written before causes were typed, and runs failed on the host's own verdict, have none:
    /// reports then quote the reason, [`failures::run_cause`]).
    #[serde(default)]
    pub failure: Option<crate::console::FailureCause>,
}

/// The whole report: what every exporter renders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The run id (from the runs, or the directory name).
    pub run_id: String,
    /// Accelerators the runs used.
    pub accels: Vec<Accel>,
    /// The libvirt launches of the runs, one line each distinct `libvirt <version> at <uri>
    /// (<hypervisor>)`; empty when pinlat launched QEMU itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub libvirt: Vec<String>,
    /// [`crate::result::TCG_DISCLAIMER`] when any run used TCG.
    pub disclaimer: Option<String>,
    /// How the runs shared guest boots (`run.boot_per`); absent for runs recorded before
    /// boots were shared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boots: Option<boots::BootsView>,
    /// [`guest::NOT_RT_WARNING`], naming the guests, when a guest kernel was not PREEMPT_RT.
    pub guest_warning: Option<String>,
    /// The guests' kernels as their agents reported them, PREEMPT_RT or not.
    pub guest_kernels: guest::GuestKernels,
    /// `host.json` as written by the runner (absent when the file is missing or unreadable).
    pub host: Option<crate::schema::HostFacts>,
    /// The doctor's and calibration's verdicts on the host, when they ran for it.
    #[serde(default)]
    pub host_checks: hostchecks::HostChecks,
    /// The variants of the matrix, the baseline (the config's first `[[variants]]`) first;
    /// empty without variants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
    /// The guests' readiness judged beside the host's, and the one verdict ("full-stack RT",
    /// "host-only", "not ready"); absent when no agent reported the guest's tuning facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<readiness::Readiness>,
    /// Budgets from `plan.json`, by workload.
    pub budgets: BTreeMap<WorkloadKind, crate::config::Budget>,
    /// Runs listed in `plan.json` with no run file.
    pub missing_runs: Vec<String>,
    /// Run files that could not be read, with the reason.
    pub skipped: Vec<SkippedFile>,
    /// Every readable run, by name.
    pub runs: Vec<RunSummary>,
    /// Per (layout, variant, scenario, workload), in layout, variant, scenario, workload order.
    pub groups: Vec<Group>,
    /// Observed placement per layout.
    pub layouts: Vec<LayoutView>,
    /// Rankings and statements per (scenario, workload).
    pub verdicts: Vec<Verdict>,
    /// What the housekeeping loads that measure themselves (io, net) achieved, per (layout,
    /// scenario, workload, load, operation); absent when no run carried load results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub housekeeping: Vec<housekeeping::HousekeepingRow>,
    /// Things the reader should know (missing files, placement mismatches, run warnings).
    pub notes: Vec<String>,
    /// Who took the RT pCPUs, per layout × scenario, from the runs' host traces (absent when
    /// no run was traced).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub culprits: Vec<culprits::CulpritGroup>,
    /// Where the emulator's CPU time went, per layout × scenario × workload (runs that
    /// recorded it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thread_cpu: Vec<thread_cpu::ThreadCpuGroup>,
    /// The run still measuring, when the report was built from its checkpoint
    /// (`checkpoint.json`): not a final report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<soak::InProgress>,
    /// Soaks, and interrupted or in-progress runs: their interval maxima over the whole run
    /// ([`soak`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub soak: Vec<soak::SoakRun>,
}

/// What a report says for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every budget held (or none was set) and every run measured.
    Held,
    /// A budget was exceeded; every run measured.
    BudgetExceeded,
    /// A run failed, a run file was unreadable or a planned run is missing.
    RunFailed,
}

impl Report {
    /// The exit-code outcome: a failed, unreadable, missing or still measuring run wins over a
    /// budget.
    pub fn outcome(&self) -> Outcome {
        let failed = self.runs.iter().any(|r| !r.outcome.ok)
            || !self.skipped.is_empty()
            || !self.missing_runs.is_empty()
            || self.in_progress.is_some();
        if failed {
            Outcome::RunFailed
        } else if self
            .groups
            .iter()
            .any(|g| g.budget.status == BudgetStatus::Exceeded)
        {
            Outcome::BudgetExceeded
        } else {
            Outcome::Held
        }
    }

    /// Whether any run was under TCG.
    pub fn is_tcg(&self) -> bool {
        self.accels.contains(&Accel::Tcg)
    }

    /// Groups of one (scenario, workload), in layout, then variant order.
    pub fn groups_of(&self, scenario: &str, workload: WorkloadKind) -> Vec<&Group> {
        self.groups
            .iter()
            .filter(|g| g.scenario == scenario && g.workload == workload)
            .collect()
    }

    /// The groups of a verdict's (scenario, workload) as its tables list them: ranked arms
    /// in rank order with their rank, then the other measured or empty ones (not ranked), then
    /// the arms none of whose runs measured, last, with their rank ([`Verdict::failed`]).
    pub fn table_rows(&self, v: &Verdict) -> Vec<(Option<usize>, &Group)> {
        let gs = self.groups_of(&v.scenario, v.workload);
        let find = |layout: &str, variant: Option<&str>| {
            gs.iter().find(|g| g.is_arm(layout, variant)).copied()
        };
        let mut rows: Vec<(Option<usize>, &Group)> = v
            .ranking
            .iter()
            .filter_map(|r| find(&r.layout, r.variant.as_deref()).map(|g| (Some(r.rank), g)))
            .collect();
        rows.extend(
            gs.iter()
                .filter(|g| {
                    !v.ranking
                        .iter()
                        .any(|r| g.is_arm(&r.layout, r.variant.as_deref()))
                })
                .filter(|g| {
                    !v.failed
                        .iter()
                        .any(|f| g.is_arm(&f.layout, f.variant.as_deref()))
                })
                .map(|g| (None, *g)),
        );
        rows.extend(
            v.failed
                .iter()
                .filter_map(|f| find(&f.layout, f.variant.as_deref()).map(|g| (f.rank, g))),
        );
        rows
    }

    /// `Variants: base (baseline), mlock. …` when the matrix has variants: how arms are named
    /// and what each is compared against ([`verdict`]); `None` without variants.
    pub fn variants_sentence(&self) -> Option<String> {
        let (first, rest) = self.variants.split_first()?;
        let others: String = rest.iter().map(|v| format!(", {v}")).collect();
        Some(format!(
            "Variants: {first} (baseline){others}. Each arm is a layout × variant, named layout/variant and ranked like layouts; each is compared against the base layout of its variant and against its layout's baseline variant."
        ))
    }

    /// The header of the column that names an arm: `layout`, or `layout/variant` when the
    /// matrix has variants.
    pub fn arm_column(&self) -> &'static str {
        if self.variants.is_empty() {
            "layout"
        } else {
            "layout/variant"
        }
    }

    /// Reads a `report.json` back.
    pub fn read_json(path: &Path) -> Result<Report, ReportError> {
        Ok(crate::schema::read_versioned(path)?)
    }
}

/// One output file: a name relative to the results directory and its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// File name, relative to the results directory.
    pub name: String,
    /// The file's whole text.
    pub contents: String,
}

/// One output format (hyperfine's `Exporter`): report-wide files and, for per-run formats,
/// files made from each run as it streams by.
pub trait Exporter {
    /// Files made from the whole report.
    fn report_files(&self, report: &Report) -> Result<Vec<OutputFile>, ReportError>;

    /// Files made from one run (default: none). Called once per readable run file.
    fn run_files(&self, _run: &RunRecord) -> Result<Vec<OutputFile>, ReportError> {
        Ok(Vec::new())
    }
}

/// Every exporter, in the order the files are written, the CI formats' ([`ci`]) with
/// `ci_options`.
pub fn exporters(ci_options: &ci::Options) -> Vec<Box<dyn Exporter>> {
    let mut v: Vec<Box<dyn Exporter>> = vec![
        Box::new(json::JsonExporter),
        Box::new(markdown::MarkdownExporter),
        Box::new(html::HtmlExporter),
        Box::new(junit::JunitExporter),
        Box::new(cyclictest::CyclictestExporter),
        Box::new(hlog::HlogExporter),
    ];
    v.extend(ci::exporters(ci_options));
    v
}

/// Builds the report of `dir` from `runs/` alone and writes every output into `dir`
/// (per-run files as the runs stream by, so memory does not grow with the number of runs).
pub fn write_all(dir: &Path) -> Result<Report, ReportError> {
    write_all_with(dir, &ci::Options::default())
}

/// [`write_all`] with the CI formats' options.
pub fn write_all_with(dir: &Path, ci_options: &ci::Options) -> Result<Report, ReportError> {
    let exps = exporters(ci_options);
    let mut write_err = None;
    let report = build(dir, &mut |run| {
        if write_err.is_some() {
            return;
        }
        for e in &exps {
            match e.run_files(run) {
                Ok(files) => {
                    for f in files {
                        if let Err(e) = write_file(dir, &f) {
                            write_err = Some(e);
                            return;
                        }
                    }
                }
                Err(e) => {
                    write_err = Some(e);
                    return;
                }
            }
        }
    })?;
    if let Some(e) = write_err {
        return Err(e);
    }
    for e in &exps {
        for f in e.report_files(&report)? {
            write_file(dir, &f)?;
        }
    }
    Ok(report)
}

/// Writes `f` under `dir` atomically.
pub(crate) fn write_file(dir: &Path, f: &OutputFile) -> Result<(), ReportError> {
    crate::atomic_write::write_atomic(&dir.join(&f.name), f.contents.as_bytes())
        .map_err(|e| ReportError::Write(e.path, e.source))
}
