//! Long runs in the report (README "Soak"): a soak (`pinlat run --soak 12h`) keeps each RT
//! vCPU's interval frames as a bounded series ([`crate::result::CpuSeries`]) rather than as
//! whole histograms, may be looked at while it measures (`checkpoint.json`,
//! [`crate::schema::Checkpoint`]), and may be stopped with SIGINT. This section shows, per such
//! run, how much it measured, its numbers so far and its interval maxima over the whole run.
//!
//! A run is in the section when its record keeps only the series (a soak, or a run of more
//! than [`crate::result::FULL_INTERVALS_MAX`] intervals), or when it was interrupted or is
//! still measuring and has a series. Its numbers come from the agent's final histograms, or,
//! for a run without them, from the interval histograms merged so far (exact at HDR precision,
//! min and max then at HDR precision too). An interrupted or in-progress run is never merged
//! into its group's numbers or verdicts: those compare whole runs.

use serde::{Deserialize, Serialize};

use plotters::prelude::*;

use super::html_svg::{colour, figure, log_range, us_label, Axes};
use super::{escape_xml as esc, us, us_pct, Report, ReportError, VcpuKey};
use crate::config::WorkloadKind;
use crate::duration::{format_ns, hms};
use crate::histo::Summary;
use crate::result::{RunRecord, RunStatus, SeriesPoint, Stage, SERIES_MAX_POINTS};
use crate::schema::Checkpoint;

/// The run a report built from a checkpoint shows as still measuring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InProgress {
    /// The run's name.
    pub run: String,
    /// When the checkpoint was written, ms since the Unix epoch.
    pub written_unix_ms: u64,
    /// The `pinlat run` process that wrote it.
    pub runner_pid: u32,
    /// Measured so far, ns.
    pub measured_ns: u64,
    /// Planned measurement, ns.
    pub planned_ns: u64,
    /// What every output says at its top.
    pub statement: String,
}

impl InProgress {
    /// The run of `cp`.
    pub fn of(cp: &Checkpoint) -> InProgress {
        let planned_ns = cp.run.duration_ms.saturating_mul(1_000_000);
        InProgress {
            run: cp.run.name.clone(),
            written_unix_ms: cp.written_unix_ms,
            runner_pid: cp.runner_pid,
            measured_ns: cp.measured_ns,
            planned_ns,
            statement: format!(
                "built from a checkpoint (checkpoint.json, written {} by pinlat pid {}): run {} is still measuring, {} of {} so far; its numbers are what it measured until then, and the report is rebuilt when it ends",
                super::hlog::iso8601_ms(cp.written_unix_ms),
                cp.runner_pid,
                cp.run.name,
                hms(cp.measured_ns / 1_000_000_000),
                hms(planned_ns / 1_000_000_000)
            ),
        }
    }
}

/// How a run of the section stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SoakState {
    /// Measured to the end.
    Measured,
    /// Still measuring: from the checkpoint.
    InProgress,
    /// Stopped by SIGINT or SIGTERM: what it measured until then.
    Interrupted,
    /// Failed: what it measured before.
    Failed,
}

impl SoakState {
    /// The words the tables use.
    pub fn as_str(self) -> &'static str {
        match self {
            SoakState::Measured => "measured",
            SoakState::InProgress => "in progress",
            SoakState::Interrupted => "interrupted",
            SoakState::Failed => "failed",
        }
    }

    /// The state of a run record (not a checkpoint's).
    pub fn of(rec: &RunRecord) -> SoakState {
        match &rec.status {
            RunStatus::Ok => SoakState::Measured,
            RunStatus::Failed {
                stage: Stage::Interrupted,
                ..
            } => SoakState::Interrupted,
            RunStatus::Failed { .. } => SoakState::Failed,
        }
    }
}

/// One RT vCPU's series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoakSeries {
    /// The vCPU.
    pub vcpu: VcpuKey,
    /// Interval frames per point.
    pub width: u32,
    /// The points, in time order.
    pub points: Vec<SeriesPoint>,
}

/// The point with the largest interval max of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoakPeak {
    /// The vCPU.
    pub vcpu: VcpuKey,
    /// The point's start, ns from the start of the measurement.
    pub start_offset_ns: u64,
    /// The point's end, ns.
    pub end_offset_ns: u64,
    /// Its max, ns (`None`: only overflow above the histogram's range).
    pub max_ns: Option<u64>,
    /// Its samples above the histogram's range.
    pub overflow: u64,
}

/// One run of the section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakRun {
    /// Run name.
    pub run: String,
    /// Layout name.
    pub layout: String,
    /// The tuning variant, `None` when the config has no variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Scenario name.
    pub scenario: String,
    /// Workload.
    pub workload: WorkloadKind,
    /// How it stands.
    pub state: SoakState,
    /// Planned measurement, ns.
    pub planned_ns: u64,
    /// Measured, ns: the end of its latest interval frame.
    pub measured_ns: u64,
    /// Every RT vCPU merged, so far.
    pub stats: Summary,
    /// Nominal length of one point, ns (interval × width).
    pub point_ns: u64,
    /// The point with the largest max.
    pub peak: Option<SoakPeak>,
    /// Per RT vCPU.
    pub series: Vec<SoakSeries>,
}

/// Whether `rec` belongs in the section (`checkpoint`: it is a checkpoint's run).
pub(crate) fn belongs(rec: &RunRecord, checkpoint: bool) -> bool {
    let series = rec.guests.iter().any(|g| !g.series.is_empty());
    let whole = rec.guests.iter().any(|g| !g.intervals.is_empty());
    series && (!whole || checkpoint || SoakState::of(rec) == SoakState::Interrupted)
}

/// The section's row of `rec`, whose RT vCPUs merged are `stats`.
pub(crate) fn row(rec: &RunRecord, state: SoakState, stats: Summary) -> SoakRun {
    let interval_ns = rec
        .guests
        .iter()
        .find_map(|g| g.hello.as_ref())
        .map(|h| h.config.report_interval_ms.saturating_mul(1_000_000))
        .unwrap_or(0);
    let series: Vec<SoakSeries> = rec
        .guests
        .iter()
        .flat_map(|g| {
            g.series.iter().map(|s| SoakSeries {
                vcpu: VcpuKey {
                    guest: g.guest.clone(),
                    vcpu: s.cpu,
                },
                width: s.width,
                points: s.points.clone(),
            })
        })
        .collect();
    // Overflow ranks above every in-range max.
    let peak = series
        .iter()
        .flat_map(|s| s.points.iter().map(move |p| (s, p)))
        .max_by_key(|(_, p)| (p.overflow > 0, p.max_ns))
        .map(|(s, p)| SoakPeak {
            vcpu: s.vcpu.clone(),
            start_offset_ns: p.start_offset_ns,
            end_offset_ns: p.end_offset_ns,
            max_ns: p.max_ns,
            overflow: p.overflow,
        });
    SoakRun {
        run: rec.name.clone(),
        layout: rec.layout.clone(),
        variant: rec.variant.clone(),
        scenario: rec.scenario.clone(),
        workload: rec.workload,
        state,
        planned_ns: rec.duration_ms.saturating_mul(1_000_000),
        measured_ns: series
            .iter()
            .filter_map(|s| s.points.last())
            .map(|p| p.end_offset_ns)
            .max()
            .unwrap_or(0),
        stats,
        point_ns: interval_ns * u64::from(series.iter().map(|s| s.width).max().unwrap_or(1)),
        peak,
        series,
    }
}

fn secs(ns: u64) -> String {
    hms(ns / 1_000_000_000)
}

fn peak_text(p: &Option<SoakPeak>) -> String {
    match p {
        None => "–".into(),
        Some(p) => format!(
            "{} {} at {}–{}",
            if p.overflow > 0 {
                "overflow".to_string()
            } else {
                p.max_ns.map_or("–".into(), us)
            },
            p.vcpu,
            secs(p.start_offset_ns),
            secs(p.end_offset_ns)
        ),
    }
}

/// `(measured, samples, p99, p99.99, max)` cells of a row.
fn cells(r: &SoakRun) -> [String; 5] {
    let s = &r.stats;
    let (p99, p9999, max) = if s.samples == 0 {
        ("–".into(), "–".into(), "–".into())
    } else {
        (us_pct(&s.p99_ns), us_pct(&s.p9999_ns), us(s.max_ns))
    };
    [
        format!("{} of {}", secs(r.measured_ns), secs(r.planned_ns)),
        s.samples.to_string(),
        p99,
        p9999,
        max,
    ]
}

fn explained() -> String {
    format!("Each RT vCPU's interval frames are kept as a series of at most {SERIES_MAX_POINTS} points over the whole run; when it would grow beyond, neighbouring points are merged, keeping the largest max and the largest interval p99 of what they merge, so the maximum is never lost, only its place within a point. The run's numbers come from the exact HDR histogram of every sample. An interrupted or in-progress run shows what it measured so far and is not merged into its layout's numbers or verdicts.")
}

/// The Markdown section; empty without such runs.
pub fn markdown(report: &Report) -> String {
    if report.soak.is_empty() {
        return String::new();
    }
    let mut o = String::from("## Soak: interval maxima over the whole run\n\n| run | state | measured | samples | p99 | p99.99 | max | largest interval max | point |\n|---|---|---|---:|---:|---:|---:|---|---:|\n");
    for r in &report.soak {
        let [m, n, p99, p9999, max] = cells(r);
        o.push_str(&format!(
            "| {} | {} | {m} | {n} | {p99} | {p9999} | {max} | {} | {} |\n",
            r.run,
            r.state.as_str(),
            peak_text(&r.peak),
            format_ns(r.point_ns)
        ));
    }
    o.push_str(&format!("\n{}\n\n", explained()));
    o
}

/// The HTML section, a table and a figure per run; empty without such runs.
pub fn html(report: &Report) -> Result<String, ReportError> {
    if report.soak.is_empty() {
        return Ok(String::new());
    }
    let mut o = String::from("<h2 id=\"soak\">Soak: interval maxima over the whole run</h2>\n<table><tr><th>run</th><th>state</th><th>measured</th><th>samples</th><th>p99</th><th>p99.99</th><th>max</th><th>largest interval max</th><th>point</th></tr>\n");
    for r in &report.soak {
        let [m, n, p99, p9999, max] = cells(r);
        o.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{m}</td><td class=n>{n}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{max}</td><td>{}</td><td class=n>{}</td></tr>\n",
            esc(&r.run),
            r.state.as_str(),
            esc(&p99),
            esc(&p9999),
            esc(&peak_text(&r.peak)),
            format_ns(r.point_ns)
        ));
    }
    o.push_str(&format!(
        "</table>\n<p>{}</p>\n<div class=\"figs\">\n",
        esc(&explained())
    ));
    for r in &report.soak {
        o.push_str(&series_svg(
            &format!("Interval maxima, {} ({})", r.run, r.state.as_str()),
            r,
        )?);
    }
    o.push_str("</div>\n");
    Ok(o)
}

/// A run's interval maxima over the whole run: per RT vCPU the max of each point (thick) and
/// its largest interval p99 (thin), on a log scale; time in hours, minutes or seconds as the
/// run's length suits. An overflowed point is drawn at the histogram's top.
fn series_svg(title: &str, r: &SoakRun) -> Result<String, ReportError> {
    let span_s = r.measured_ns.max(r.planned_ns) as f64 / 1e9;
    let (unit_s, unit) = if span_s >= 7_200.0 {
        (3_600.0, "h")
    } else if span_s >= 120.0 {
        (60.0, "min")
    } else {
        (1.0, "s")
    };
    let top = crate::histo::HIGHEST_TRACKABLE_NS;
    type Line = Vec<(f64, f64)>;
    let lines: Vec<(usize, String, Line, Line)> = r
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let x = |p: &SeriesPoint| p.end_offset_ns as f64 / 1e9 / unit_s;
            let y = |ns: u64| ns.max(1) as f64 / 1000.0;
            let max = s
                .points
                .iter()
                .filter_map(|p| {
                    let v = if p.overflow > 0 { Some(top) } else { p.max_ns };
                    v.map(|v| (x(p), y(v)))
                })
                .collect();
            let p99 = s
                .points
                .iter()
                .filter_map(|p| p.p99_ns.map(|v| (x(p), y(v))))
                .collect();
            (i, s.vcpu.to_string(), max, p99)
        })
        .collect();
    let all = || lines.iter().flat_map(|l| l.2.iter().chain(l.3.iter()));
    let ylo = all().map(|p| p.1).fold(f64::MAX, f64::min);
    let yhi = all().map(|p| p.1).fold(0.0, f64::max);
    let x_desc = format!("end of point ({unit} into the measurement)");
    figure(
        title,
        0f64..(span_s / unit_s).max(1e-3) * 1.02,
        log_range(ylo, yhi).log_scale(),
        Axes {
            x_desc: &x_desc,
            y_desc: "latency (µs): max thick, worst interval p99 thin",
            x_labels: None,
            x_format: None,
            y_format: &us_label,
        },
        SeriesLabelPosition::UpperRight,
        |chart, e| {
            for (i, name, max, p99) in lines {
                let c = colour(i);
                chart
                    .draw_series(LineSeries::new(max, c.stroke_width(2)))
                    .map_err(|x| e(x.to_string()))?
                    .label(name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                    });
                chart
                    .draw_series(LineSeries::new(p99, c.mix(0.6).stroke_width(1)))
                    .map_err(|x| e(x.to_string()))?;
            }
            Ok(())
        },
    )
}

#[cfg(test)]
#[path = "soak_tests.rs"]
mod tests;
