//! A cyclictest-style histogram text per (layout, scenario, workload), for scripts that parse
//! `cyclictest -h` output: `# Histogram`, then one row per 1 µs bucket (`%06d` bucket, then one
//! `%06lu` count per RT vCPU, tab-separated), then `# Total:`, `# Min Latencies:`,
//! `# Avg Latencies:`, `# Max Latencies:` and `# Histogram Overflows:` lines in cyclictest's
//! formats (rt-tests `src/cyclictest/cyclictest.c`, `print_hist`).
//!
//! Columns are the RT vCPUs (guest/vCPU order), each merged over the group's ok repetitions.
//! Latencies are truncated to whole µs as cyclictest does; a sample lands in the bucket of its
//! HDR value (highest equivalent, 0.1 % precision, bounded by the exact smallest and largest
//! samples: [`super::ci::rt_tests::us_buckets`], as the rt-tests JSON's). Rows go from 0 to the
//! largest observed µs,
//! at most [`MAX_ROWS`]; samples beyond the last row count as histogram overflows, and `Max
//! Latencies` still gives the exact largest sample.

use super::{Exporter, Group, OutputFile, Report, ReportError};

/// Most bucket rows printed (cyclictest's `-h` limit of a 10 ms histogram).
pub const MAX_ROWS: u64 = 10_000;

/// Writes `<layout>.<scenario>.<workload>.histogram.txt` per group with samples.
pub struct CyclictestExporter;

impl Exporter for CyclictestExporter {
    fn report_files(&self, report: &Report) -> Result<Vec<OutputFile>, ReportError> {
        Ok(report
            .groups
            .iter()
            .filter(|g| g.stats.samples > 0)
            .map(|g| OutputFile {
                name: file_name(g),
                contents: render(report, g),
            })
            .collect())
    }
}

/// The file name of a group's histogram text.
pub fn file_name(g: &Group) -> String {
    format!("{}.histogram.txt", g.name())
}

/// The histogram text of one group.
pub fn render(report: &Report, g: &Group) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "# pinlat {}: {} latency of the RT vCPUs in 1 us buckets, {} repetition(s) merged\n",
        g.name(),
        g.workload,
        g.ok_runs.len()
    ));
    if let Some(d) = &report.disclaimer {
        out.push_str(&format!("# Note: {d}\n"));
    }
    if let Some(w) = report.guest_warning.as_ref() {
        out.push_str(&format!("# Warning: {w}\n"));
    }
    out.push_str(&format!(
        "# Columns: {}\n",
        g.per_vcpu
            .iter()
            .map(|v| v.vcpu.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let max_us = g
        .per_vcpu
        .iter()
        .map(|v| v.stats.max_ns.max(v.histogram.0.max()) / 1000)
        .max()
        .unwrap_or(0);
    let rows = (max_us + 1).min(MAX_ROWS);
    let mut counts = vec![vec![0u64; rows as usize]; g.per_vcpu.len()];
    let mut overflows = vec![0u64; g.per_vcpu.len()];
    for (j, v) in g.per_vcpu.iter().enumerate() {
        for (b, n) in super::ci::rt_tests::us_buckets(v, |ns| ns / 1000) {
            if b < rows {
                counts[j][b as usize] += n;
            } else {
                overflows[j] += n;
            }
        }
        overflows[j] += v.stats.overflow;
    }
    out.push_str("# Histogram\n");
    for i in 0..rows as usize {
        out.push_str(&format!("{i:06} "));
        let cols: Vec<String> = counts.iter().map(|c| format!("{:06}", c[i])).collect();
        out.push_str(&cols.join("\t"));
        out.push('\n');
    }
    let line = |label: &str, width: usize, f: &dyn Fn(usize) -> u64| {
        let mut s = format!("# {label}:");
        for j in 0..g.per_vcpu.len() {
            s.push_str(&format!(" {:0width$}", f(j)));
        }
        s.push('\n');
        s
    };
    out.push_str(&line("Total", 9, &|j| counts[j].iter().sum()));
    out.push_str(&line("Min Latencies", 5, &|j| {
        g.per_vcpu[j].stats.min_ns / 1000
    }));
    out.push_str(&line("Avg Latencies", 5, &|j| {
        g.per_vcpu[j].stats.mean_ns / 1000
    }));
    out.push_str(&line("Max Latencies", 5, &|j| {
        g.per_vcpu[j].stats.max_ns / 1000
    }));
    out.push_str(&line("Histogram Overflows", 5, &|j| overflows[j]));
    out
}
