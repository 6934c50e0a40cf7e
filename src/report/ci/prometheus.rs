//! A Prometheus node_exporter textfile (`pinlat.prom`), for labs that graph their hosts with
//! Prometheus: copy or link it into the textfile collector's directory
//! (`--collector.textfile.directory`) after each run. The text exposition format, version
//! 0.0.4: `# HELP` and `# TYPE` once per metric, then one sample per line, label values escaped
//! (`\` as `\\`, `"` as `\"`, a newline as `\n`; in HELP text `\` and newline only).
//!
//! Every sample is labelled `layout` (and `variant` when the matrix has variants, so that
//! variants never merge into one series), `scenario`, `workload`, `host` and `accel` (`kvm`, `tcg`:
//! TCG numbers are not hardware latency, and the file says so in a comment at its top, as it
//! says when the report was built from a checkpoint while a run measures):
//!
//! - `pinlat_latency_ns{quantile="0.5"|"0.9"|"0.99"|"0.999"|"0.9999",…}`, a summary: the
//!   percentiles of the RT vCPUs' latency, merged over the group's measured runs (`+Inf`: above
//!   the histogram's 60 s range), and `pinlat_latency_ns_count`, the samples behind them (no
//!   `_sum`: the HDR histograms keep no exact sum, and a summary may leave it out);
//! - `pinlat_latency_max_ns`: the largest sample;
//! - `pinlat_runs{outcome="measured"|"failed"}`: the group's runs;
//! - `pinlat_budget_status{status="held"|"exceeded"|"no-budget"|"no-data"}`: 1 for the group's
//!   budget verdict, 0 for the others (a failed run is over any budget);
//!
//! and, per host, `pinlat_runs_without_result{reason="unreadable"|"missing"}` (run files that
//! could not be read, planned runs never written) and `pinlat_last_run_start_timestamp_seconds`.
//! Groups that measured nothing have no latency samples, only runs and budget.

use super::{cases, host_name, notes, GroupCase};
use crate::histo::Quantile;
use crate::report::{BudgetStatus, Exporter, OutputFile, Report, ReportError};

/// The file written beside the report (node_exporter reads `*.prom`).
pub const FILE: &str = "pinlat.prom";

/// A metric's `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// A value that can go up and down (a snapshot of the last report).
    Gauge,
    /// Quantiles (`quantile` label) and `_count` of a set of samples.
    Summary,
}

impl MetricType {
    fn as_str(self) -> &'static str {
        match self {
            MetricType::Gauge => "gauge",
            MetricType::Summary => "summary",
        }
    }
}

/// A sample's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// A count or ns.
    Int(u64),
    /// Above the histogram's range.
    PosInf,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Appended to the metric's name: `""`, or a summary's `_count`.
    pub suffix: &'static str,
    /// Label names and values, in order.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: Value,
}

/// One metric: its HELP, TYPE and samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    /// Metric name.
    pub name: &'static str,
    /// `# HELP` text.
    pub help: &'static str,
    /// `# TYPE`.
    pub kind: MetricType,
    /// Samples, in order.
    pub samples: Vec<Sample>,
}

/// A whole textfile: leading comments, then the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposition {
    /// `# ` comment lines at the top (the TCG disclaimer, the guest warning).
    pub comments: Vec<String>,
    /// The metrics (a metric without samples is left out of the text).
    pub families: Vec<Family>,
}

/// Escapes a label value.
pub fn escape_label(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

/// Escapes HELP text (and comments: a newline would end them).
pub fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

impl Exposition {
    /// The exposition text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.comments {
            out.push_str(&format!("# {}\n", escape_help(c)));
        }
        for f in self.families.iter().filter(|f| !f.samples.is_empty()) {
            out.push_str(&format!("# HELP {} {}\n", f.name, escape_help(f.help)));
            out.push_str(&format!("# TYPE {} {}\n", f.name, f.kind.as_str()));
            for s in &f.samples {
                out.push_str(f.name);
                out.push_str(s.suffix);
                if !s.labels.is_empty() {
                    let labels: Vec<String> = s
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                        .collect();
                    out.push_str(&format!("{{{}}}", labels.join(",")));
                }
                match s.value {
                    Value::Int(v) => out.push_str(&format!(" {v}\n")),
                    Value::PosInf => out.push_str(" +Inf\n"),
                }
            }
        }
        out
    }
}

/// Writes `pinlat.prom`.
pub struct PrometheusExporter;

impl Exporter for PrometheusExporter {
    fn report_files(&self, report: &Report) -> Result<Vec<OutputFile>, ReportError> {
        Ok(vec![OutputFile {
            name: FILE.to_string(),
            contents: render(report),
        }])
    }
}

/// The textfile of a report.
pub fn render(report: &Report) -> String {
    exposition(report).to_text()
}

fn family(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        help,
        kind: MetricType::Gauge,
        samples: Vec::new(),
    }
}

/// The group's labels, after `first` (the metric's own).
fn labels(
    report: &Report,
    c: &GroupCase<'_>,
    first: Option<(&'static str, String)>,
) -> Vec<(&'static str, String)> {
    let g = c.group;
    first
        .into_iter()
        .chain([("layout", g.layout.clone())])
        .chain(g.variant.clone().map(|v| ("variant", v)))
        .chain([
            ("scenario", g.scenario.clone()),
            ("workload", g.workload.as_str().to_string()),
            ("host", host_name(report).to_string()),
            ("accel", c.accel.clone()),
        ])
        .collect()
}

/// The metrics of a report.
pub fn exposition(report: &Report) -> Exposition {
    let mut latency = Family {
        kind: MetricType::Summary,
        ..family(
            "pinlat_latency_ns",
            "Latency of the RT vCPUs at a quantile, ns, merged over the measured runs of a layout x scenario x workload (+Inf: above the histogram's 60 s range); _count: the samples.",
        )
    };
    let mut max = family(
        "pinlat_latency_max_ns",
        "Largest latency sample of the RT vCPUs, ns, over the measured runs of a layout x scenario x workload.",
    );
    let mut runs = family(
        "pinlat_runs",
        "Runs of a layout x scenario x workload by outcome: measured, or failed (a failed run is not in the latencies).",
    );
    let mut budget = family(
        "pinlat_budget_status",
        "1 for the budget verdict of a layout x scenario x workload (held, exceeded, no-budget, no-data), 0 for the others; a failed run is over any budget.",
    );
    for c in cases(report) {
        let g = c.group;
        let s = &g.stats;
        if s.samples > 0 {
            for q in Quantile::ALL {
                latency.samples.push(Sample {
                    suffix: "",
                    labels: labels(report, &c, Some(("quantile", quantile_label(q)))),
                    value: s.at(q).value_ns.map_or(Value::PosInf, Value::Int),
                });
            }
            latency.samples.push(Sample {
                suffix: "_count",
                labels: labels(report, &c, None),
                value: Value::Int(s.samples),
            });
            max.samples.push(Sample {
                suffix: "",
                labels: labels(report, &c, None),
                value: Value::Int(s.max_ns),
            });
        }
        for (outcome, n) in [
            ("measured", g.ok_runs.len()),
            ("failed", g.failed_runs.len()),
        ] {
            runs.samples.push(Sample {
                suffix: "",
                labels: labels(report, &c, Some(("outcome", outcome.to_string()))),
                value: Value::Int(n as u64),
            });
        }
        for status in [
            BudgetStatus::Held,
            BudgetStatus::Exceeded,
            BudgetStatus::NoBudget,
            BudgetStatus::NoData,
        ] {
            budget.samples.push(Sample {
                suffix: "",
                labels: labels(
                    report,
                    &c,
                    Some(("status", budget_label(status).to_string())),
                ),
                value: Value::Int(u64::from(g.budget.status == status)),
            });
        }
    }
    let host = || vec![("host", host_name(report).to_string())];
    let mut lost = family(
        "pinlat_runs_without_result",
        "Runs of the report without a result: run files that could not be read (unreadable), planned runs never written (missing).",
    );
    for (reason, n) in [
        ("unreadable", report.skipped.len()),
        ("missing", report.missing_runs.len()),
    ] {
        let mut labels = host();
        labels.push(("reason", reason.to_string()));
        lost.samples.push(Sample {
            suffix: "",
            labels,
            value: Value::Int(n as u64),
        });
    }
    let mut last = family(
        "pinlat_last_run_start_timestamp_seconds",
        "When the newest run of the report started, seconds since the epoch.",
    );
    if let Some(ms) = report.runs.iter().map(|r| r.started_unix_ms).max() {
        last.samples.push(Sample {
            suffix: "",
            labels: host(),
            value: Value::Int(ms / 1000),
        });
    }
    Exposition {
        comments: std::iter::once(format!("pinlat {} on {}", report.run_id, host_name(report)))
            .chain(notes(report).map(|(label, text)| format!("{label}: {text}")))
            .collect(),
        families: vec![latency, max, runs, budget, lost, last],
    }
}

/// `held`, `exceeded`, `no-budget`, `no-data` (the report.json spelling).
fn budget_label(s: BudgetStatus) -> &'static str {
    match s {
        BudgetStatus::Held => "held",
        BudgetStatus::Exceeded => "exceeded",
        BudgetStatus::NoBudget => "no-budget",
        BudgetStatus::NoData => "no-data",
    }
}

/// The quantile label of a shown percentile (`0.999` for p99.9).
pub fn quantile_label(q: Quantile) -> String {
    format!("{}", q.ppm() as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(escape_help("a\\b\n\"c\""), "a\\\\b\\n\"c\"");
        let e = Exposition {
            comments: vec!["two\nlines".into()],
            families: vec![
                Family {
                    name: "m",
                    help: "h",
                    kind: MetricType::Gauge,
                    samples: vec![Sample {
                        suffix: "",
                        labels: vec![("l", "v\"".into())],
                        value: Value::PosInf,
                    }],
                },
                family("empty", "left out"),
            ],
        };
        assert_eq!(
            e.to_text(),
            "# two\\nlines\n# HELP m h\n# TYPE m gauge\nm{l=\"v\\\"\"} +Inf\n"
        );
    }

    #[test]
    fn quantile_labels_are_decimal_fractions() {
        let got: Vec<String> = Quantile::ALL.into_iter().map(quantile_label).collect();
        assert_eq!(got, ["0.5", "0.9", "0.99", "0.999", "0.9999"]);
    }
}
