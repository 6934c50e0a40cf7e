//! `pinlat trend DIR...`: the same layout × scenario × workload followed across many results
//! directories (what CI on RT kernels makes: one directory per kernel build), ordered by the
//! time the runs started or by the guest's or host's kernel version ([`version`]).
//!
//! Per series (a layout × scenario × workload) and directory one point: its percentiles, or
//! "failed" when every run of it failed (never a zero), or "absent". Per series and plotted
//! metric the change points ([`changepoint`]: level shifts, not spikes), and the latest point
//! against the median of its history ([`latest`], by `pinlat compare`'s rule). Each directory
//! is read from its `report.json` (and its host facts), or aggregated from `runs/` as `pinlat
//! compare` does when it has none ([`load`]); only a few numbers per series are kept, so memory
//! grows with directories × series, not with runs.
//!
//! One [`TrendReport`], many views: `report.json` (this type), `report.md` ([`markdown`]),
//! `report.html` with a time-series plot per series ([`html`], drawn as the results report's
//! figures), `junit.xml` ([`junit`]).

pub mod changepoint;
pub mod html;
pub mod junit;
pub mod latest;
mod load;
pub mod markdown;
mod tables;
pub mod version;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use latest::Latest;
pub use load::{read_dir, DirInput};
pub use version::KernelRelease;

use super::compare::Options;
use super::{OutputFile, ReportError};
use crate::config::WorkloadKind;
use crate::histo::{Quantile, Summary};
use crate::kinds::{Accel, UnknownKindError};
use crate::wire::ClockSource;

/// Version of the trend's `report.json` schema.
pub const TREND_SCHEMA_VERSION: u32 = 1;

/// What orders the directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrendOrder {
    /// The start of the directory's first run.
    Time,
    /// The guests' kernel release, in version order.
    GuestKernel,
    /// The host's kernel release, in version order.
    HostKernel,
}

impl TrendOrder {
    /// Every order: its name on the command line, and what it does.
    pub const ALL: [(TrendOrder, &'static str, &'static str); 3] = [
        (
            TrendOrder::Time,
            "time",
            "the start of each directory's first run",
        ),
        (
            TrendOrder::GuestKernel,
            "guest-kernel",
            "the guest kernel release, in version order (6.1.0-9 < 6.1.0-10 < 6.1.10)",
        ),
        (
            TrendOrder::HostKernel,
            "host-kernel",
            "the host kernel release, in version order",
        ),
    ];

    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(o, _, _)| *o == self)
            .map_or("?", |(_, n, _)| n)
    }
}

impl std::str::FromStr for TrendOrder {
    type Err = UnknownKindError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .find(|(_, n, _)| *n == s)
            .map(|(o, _, _)| *o)
            .ok_or_else(|| UnknownKindError {
                kind: "trend order",
                given: s.to_string(),
                allowed: "time, guest-kernel or host-kernel",
            })
    }
}

/// A metric plotted and searched for change points, written as its label (`p50` … `max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Metric {
    /// The median.
    P50,
    /// The 99th percentile.
    P99,
    /// The 99.9th percentile.
    P999,
    /// The 99.99th percentile.
    P9999,
    /// The largest sample.
    Max,
}

impl From<Metric> for &'static str {
    fn from(m: Metric) -> &'static str {
        m.label()
    }
}

impl TryFrom<String> for Metric {
    type Error = UnknownKindError;
    fn try_from(s: String) -> Result<Metric, UnknownKindError> {
        Metric::ALL
            .into_iter()
            .find(|m| m.label() == s)
            .ok_or(UnknownKindError {
                kind: "trend metric",
                given: s,
                allowed: "p50, p99, p99.9, p99.99 or max",
            })
    }
}

impl Metric {
    /// Every plotted metric, lowest first.
    pub const ALL: [Metric; 5] = [
        Metric::P50,
        Metric::P99,
        Metric::P999,
        Metric::P9999,
        Metric::Max,
    ];

    /// `p50` … `max`.
    pub fn label(self) -> &'static str {
        self.quantile().map_or("max", Quantile::label)
    }

    /// The percentile it is (`None`: the max).
    pub fn quantile(self) -> Option<Quantile> {
        match self {
            Metric::P50 => Some(Quantile::P50),
            Metric::P99 => Some(Quantile::P99),
            Metric::P999 => Some(Quantile::P999),
            Metric::P9999 => Some(Quantile::P9999),
            Metric::Max => None,
        }
    }

    /// The metric of `s`, ns, when it is a value to plot or search: `None` in the overflow, and
    /// for a max-bound percentile (decided by a few samples, as the max is, so not a level).
    /// The max itself is always a value.
    pub fn value(self, s: &Summary) -> Option<u64> {
        match self.quantile() {
            None => Some(s.max_ns),
            Some(q) => {
                let p = s.at(q);
                p.value_ns.filter(|_| !p.max_bound)
            }
        }
    }
}

/// One results directory of the trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendDir {
    /// The directory as given.
    pub path: String,
    /// Its run id.
    pub run_id: String,
    /// Start of its first run, ms since the Unix epoch (`None`: no run was read).
    pub started_unix_ms: Option<u64>,
    /// The host's kernel release (`host.json`).
    pub host_kernel: Option<KernelRelease>,
    /// The host kernel is PREEMPT_RT.
    pub host_preempt_rt: Option<bool>,
    /// The host's name (`host.json`, when it recorded one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The host's CPU model.
    pub cpu_model: Option<String>,
    /// The guests' kernel release: the agents' (the highest when they differ), else the file
    /// name of the guest kernel in `host.json` (`vmlinuz-<release>`).
    pub guest_kernel: Option<KernelRelease>,
    /// Accelerators its runs used.
    pub accels: Vec<Accel>,
    /// Runs read.
    pub runs: usize,
    /// Of which failed.
    pub failed_runs: usize,
    /// Aggregated from `runs/` (no usable `report.json`).
    pub aggregated: bool,
    /// What the reader should know about this directory.
    pub notes: Vec<String>,
}

impl TrendDir {
    /// What the outputs label its point with: the kernel release, or the start time
    /// (`2026-11-25 23:04`).
    pub fn label(&self, order: TrendOrder) -> String {
        let time = || {
            self.started_unix_ms.map_or("?".to_string(), |ms| {
                let iso = super::hlog::iso8601_ms(ms);
                format!("{} {}", &iso[..10], &iso[11..16])
            })
        };
        let kernel = |k: &Option<KernelRelease>| k.as_ref().map_or("?".into(), |k| k.0.clone());
        match order {
            TrendOrder::Time => time(),
            TrendOrder::GuestKernel => kernel(&self.guest_kernel),
            TrendOrder::HostKernel => kernel(&self.host_kernel),
        }
    }
}

/// Why a directory is not in the trend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipKind {
    /// Written by a pinlat of another schema version: named, not a failure.
    OtherSchema,
    /// Could not be read: damaged or not a results directory (exit 3).
    Unreadable,
    /// Read, but without the key it is ordered by (no host kernel, no guest kernel): exit 3,
    /// since it may be the build that broke.
    Unordered,
}

/// A directory left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedDir {
    /// The directory as given.
    pub path: String,
    /// Why.
    pub kind: SkipKind,
    /// The error, in words.
    pub reason: String,
}

/// What a series' point is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum PointStatus {
    /// Some runs measured: the numbers are theirs.
    Measured,
    /// Every run of it failed: no numbers, never zeros.
    Failed {
        /// The causes, as the results report words them.
        cause: String,
    },
    /// Not in this directory (another config), or without samples.
    Absent,
}

/// One series in one directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// Measured, failed or absent.
    #[serde(flatten)]
    pub status: PointStatus,
    /// Runs that measured.
    pub ok_runs: usize,
    /// Runs that failed.
    pub failed_runs: usize,
    /// The clock sources its runs measured with.
    pub clocks: Vec<ClockSource>,
    /// Every measured run merged (`None` unless measured).
    pub stats: Option<Summary>,
}

impl SeriesPoint {
    /// A series absent from a directory.
    pub fn absent() -> SeriesPoint {
        SeriesPoint {
            status: PointStatus::Absent,
            ok_runs: 0,
            failed_runs: 0,
            clocks: Vec::new(),
            stats: None,
        }
    }
}

/// A level shift of one metric of one series ([`changepoint`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangePoint {
    /// The metric.
    pub metric: Metric,
    /// Index of the first directory of the new level.
    pub at: usize,
    /// Median before, ns.
    pub before_ns: u64,
    /// Median from `at` on, ns.
    pub after_ns: u64,
    /// Change, percent of the level before (`None` when it was 0).
    pub change_pct: Option<f64>,
}

/// A layout × scenario × workload (× variant) across the directories: different variants are
/// different series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// `layout.scenario.workload` (`layout.variant.scenario.workload` with variants,
    /// [`crate::report::group_name`]).
    pub name: String,
    /// Layout name.
    pub layout: String,
    /// The tuning variant, `None` when the config has no variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Scenario.
    pub scenario: String,
    /// Workload.
    pub workload: WorkloadKind,
    /// One point per directory, in trend order.
    pub points: Vec<SeriesPoint>,
    /// Level shifts, by metric then directory.
    pub change_points: Vec<ChangePoint>,
    /// The latest point against its history.
    pub latest: Option<Latest>,
}

impl Series {
    /// Whether the latest point regressed (or lost the series) and counts for the exit code.
    pub fn regressed(&self) -> bool {
        self.latest.as_ref().is_some_and(|l| l.regression)
    }
}

/// The whole trend: what every output renders, and `report.json` under `--out`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendReport {
    /// [`TREND_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// What orders the directories.
    pub order: TrendOrder,
    /// Threshold of a regression and of a change point, percent.
    pub threshold_pct: f64,
    /// Floor of a regression and of a change point, ns.
    pub min_delta_ns: u64,
    /// Lost series (failed or absent in the latest) are shown, not counted.
    pub allow_missing: bool,
    /// The directories read, in trend order; the last is the latest.
    pub dirs: Vec<TrendDir>,
    /// The directories left out.
    pub skipped: Vec<SkippedDir>,
    /// Every series, in order of first appearance.
    pub series: Vec<Series>,
    /// What the reader should know (TCG, mixed accelerators or hosts).
    pub notes: Vec<String>,
}

impl crate::schema::Versioned for TrendReport {
    const NAME: &'static str = "trend report.json";
    const VERSION: u32 = TREND_SCHEMA_VERSION;
}

impl TrendReport {
    /// Whether a series' latest point regressed or lost the series (unless allowed).
    pub fn has_regression(&self) -> bool {
        self.series.iter().any(Series::regressed)
    }

    /// Whether a directory could not be read or ordered (not: of another schema).
    pub fn has_unreadable(&self) -> bool {
        self.skipped.iter().any(|s| s.kind != SkipKind::OtherSchema)
    }

    /// Every output file: `report.json`, `report.md`, `report.html`, `junit.xml`.
    pub fn files(&self) -> Result<Vec<OutputFile>, ReportError> {
        let mut json = serde_json::to_string_pretty(self)
            .map_err(|e| ReportError::Plot("report.json".into(), e.to_string()))?;
        json.push('\n');
        Ok(vec![
            OutputFile {
                name: "report.json".into(),
                contents: json,
            },
            OutputFile {
                name: "report.md".into(),
                contents: markdown::render(self, true),
            },
            OutputFile {
                name: "report.html".into(),
                contents: html::render(self)?,
            },
            OutputFile {
                name: "junit.xml".into(),
                contents: junit::render(self),
            },
        ])
    }

    /// Writes every output file into `out` (created when missing), atomically.
    pub fn write_all(&self, out: &Path) -> Result<(), ReportError> {
        std::fs::create_dir_all(out).map_err(|e| ReportError::Write(out.to_path_buf(), e))?;
        for f in self.files()? {
            super::write_file(out, &f)?;
        }
        Ok(())
    }
}

/// The key a directory is ordered by (`None`: it has none).
fn order_key(d: &TrendDir, order: TrendOrder) -> Option<Option<&KernelRelease>> {
    match order {
        TrendOrder::Time => d.started_unix_ms.map(|_| None),
        TrendOrder::GuestKernel => d.guest_kernel.as_ref().map(Some),
        TrendOrder::HostKernel => d.host_kernel.as_ref().map(Some),
    }
}

/// Notes on the whole trend: TCG, several accelerators, several CPU models.
fn notes(dirs: &[TrendDir]) -> Vec<String> {
    let mut notes = Vec::new();
    let mut accels: Vec<Accel> = dirs.iter().flat_map(|d| d.accels.clone()).collect();
    accels.sort_by_key(|a| a.as_str());
    accels.dedup();
    if accels.contains(&Accel::Tcg) {
        notes.push(format!("Note: {}", crate::result::TCG_DISCLAIMER));
    }
    if accels.len() > 1 {
        notes.push(format!(
            "The directories used different accelerators ({}): their numbers are not comparable",
            accels
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for (what, mut v) in [
        (
            "host names",
            dirs.iter()
                .filter_map(|d| d.hostname.as_deref())
                .collect::<Vec<_>>(),
        ),
        (
            "CPUs",
            dirs.iter()
                .filter_map(|d| d.cpu_model.as_deref())
                .collect::<Vec<_>>(),
        ),
    ] {
        v.sort_unstable();
        v.dedup();
        if v.len() > 1 {
            notes.push(format!(
                "The directories come from hosts with different {what} ({}): a trend is meant for one host",
                v.join("; ")
            ));
        }
    }
    notes
}

/// The change points of every plotted metric of `points`.
fn change_points(points: &[SeriesPoint], o: &Options) -> Vec<ChangePoint> {
    let mut out = Vec::new();
    for m in Metric::ALL {
        let (at, values): (Vec<usize>, Vec<u64>) = points
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((i, m.value(p.stats.as_ref()?)?)))
            .unzip();
        for s in changepoint::change_points(&values, o) {
            out.push(ChangePoint {
                metric: m,
                at: at[s.at],
                before_ns: s.before_ns,
                after_ns: s.after_ns,
                change_pct: (s.before_ns > 0)
                    .then(|| (s.after_ns as f64 - s.before_ns as f64) * 100.0 / s.before_ns as f64),
            });
        }
    }
    out
}

/// The trend of directories already read: orders them (those without the key are skipped),
/// lines their series up, finds change points and judges the latest.
pub fn build(
    inputs: Vec<DirInput>,
    mut skipped: Vec<SkippedDir>,
    order: TrendOrder,
    o: &Options,
) -> TrendReport {
    let (mut inputs, unordered): (Vec<DirInput>, Vec<DirInput>) = inputs
        .into_iter()
        .partition(|i| order_key(&i.dir, order).is_some());
    for u in unordered {
        skipped.push(SkippedDir {
            path: u.dir.path,
            kind: SkipKind::Unordered,
            reason: format!(
                "no {} is known for it: it cannot be placed in the trend",
                match order {
                    TrendOrder::Time => "run start",
                    TrendOrder::GuestKernel => "guest kernel release",
                    TrendOrder::HostKernel => "host kernel release",
                }
            ),
        });
    }
    inputs.sort_by(|a, b| {
        order_key(&a.dir, order)
            .cmp(&order_key(&b.dir, order))
            .then(a.dir.started_unix_ms.cmp(&b.dir.started_unix_ms))
            .then_with(|| a.dir.path.cmp(&b.dir.path))
    });
    let mut series: Vec<Series> = Vec::new();
    let n = inputs.len();
    for (i, input) in inputs.iter_mut().enumerate() {
        for (key, point) in input.points.drain(..) {
            let name = crate::report::group_name(
                &key.layout,
                key.variant.as_deref(),
                &key.scenario,
                key.workload,
            );
            let idx = match series.iter().position(|s| s.name == name) {
                Some(idx) => idx,
                None => {
                    series.push(Series {
                        name,
                        layout: key.layout,
                        variant: key.variant,
                        scenario: key.scenario,
                        workload: key.workload,
                        points: vec![SeriesPoint::absent(); n],
                        change_points: Vec::new(),
                        latest: None,
                    });
                    series.len() - 1
                }
            };
            series[idx].points[i] = point;
        }
    }
    for s in &mut series {
        s.change_points = change_points(&s.points, o);
        s.latest = latest::judge(&s.points, o);
    }
    let dirs: Vec<TrendDir> = inputs.into_iter().map(|i| i.dir).collect();
    TrendReport {
        schema_version: TREND_SCHEMA_VERSION,
        order,
        threshold_pct: o.threshold_pct,
        min_delta_ns: o.min_delta_ns,
        allow_missing: o.allow_missing,
        notes: notes(&dirs),
        dirs,
        skipped,
        series,
    }
}

/// Reads every directory of `paths` (one at a time, keeping a few numbers per series; `each`
/// sees each path before it is read) and builds their trend. A directory that cannot be read
/// is skipped and named in [`TrendReport::skipped`].
pub fn trend(
    paths: &[PathBuf],
    order: TrendOrder,
    o: &Options,
    each: &mut dyn FnMut(&Path),
) -> TrendReport {
    let mut inputs = Vec::new();
    let mut skipped = Vec::new();
    for p in paths {
        each(p);
        match read_dir(p) {
            Ok(i) => inputs.push(i),
            Err(s) => skipped.push(s),
        }
    }
    build(inputs, skipped, order, o)
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
