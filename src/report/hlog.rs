//! One `<run>.hlog` per run, in the HdrHistogram interval log format (version 1.3) that
//! HistogramLogAnalyzer and `HistogramLogProcessor` read: `#[StartTime: ...]` and
//! `#[BaseTime: ...]` header lines, the CSV legend line, then one line per interval histogram:
//! start (s, relative to BaseTime), length (s), interval max (ms, the Java writer's default
//! max-value unit ratio of 10^6 for ns) and the V2 deflate base64 histogram.
//!
//! Untagged lines merge every RT vCPU of the run per interval; with more than one RT vCPU, each
//! vCPU's intervals follow as tagged lines (`Tag=rt/vcpu1,...`). Values are ns. A run with no
//! interval reports (failed early) gets its final histograms as one interval spanning the
//! measurement. Source of the format: HdrHistogram `HistogramLogWriter.java`.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::{Exporter, OutputFile, Report, ReportError};
use crate::histo::{encode_base64, new_histogram};
use crate::kinds::Accel;
use crate::result::{RunRecord, TCG_DISCLAIMER};

/// Writes `<run>.hlog` for every run.
pub struct HlogExporter;

impl Exporter for HlogExporter {
    fn report_files(&self, _report: &Report) -> Result<Vec<OutputFile>, ReportError> {
        Ok(Vec::new())
    }

    fn run_files(&self, run: &RunRecord) -> Result<Vec<OutputFile>, ReportError> {
        Ok(vec![OutputFile {
            name: format!("{}.hlog", run.name),
            contents: render(run)?,
        }])
    }
}

/// `secs.millis` of a millisecond count.
fn secs_ms(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// `secs.millis` of a nanosecond count, truncated to ms (the format's precision).
fn secs_ns(ns: u64) -> String {
    secs_ms(ns / 1_000_000)
}

/// ms with 3 decimals of a ns value (the Java writer's `Interval_Max` with ratio 10^6).
fn max_ms(ns: u64) -> String {
    format!("{}.{:03}", ns / 1_000_000, (ns / 1_000) % 1_000)
}

/// Civil date of days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2026-11-25T23:04:20.066Z` for ms since the epoch.
pub fn iso8601_ms(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

struct Line {
    start_ns: u64,
    end_ns: u64,
    hist: Histogram<u64>,
}

fn line(tag: Option<&str>, l: &Line, name: &str) -> Result<String, ReportError> {
    let b64 = encode_base64(&l.hist).map_err(|e| ReportError::Encode(name.to_string(), e))?;
    let max = if l.hist.is_empty() { 0 } else { l.hist.max() };
    Ok(format!(
        "{}{},{},{},{b64}\n",
        tag.map(|t| format!("Tag={t},")).unwrap_or_default(),
        secs_ns(l.start_ns),
        secs_ns(l.end_ns.saturating_sub(l.start_ns)),
        max_ms(max)
    ))
}

/// The `.hlog` text of one run.
pub fn render(run: &RunRecord) -> Result<String, ReportError> {
    let mut out = String::new();
    out.push_str("#[Histogram log format version 1.3]\n");
    out.push_str(&format!(
        "#[pinlat run {} ({}), values in ns; untagged lines merge every RT vCPU, Tag= lines are one vCPU]\n",
        run.name, run.run_id
    ));
    let clocks = super::runs::clocks(run);
    out.push_str(&format!("#[Clock: {}]\n", super::clocks_text(&clocks)));
    let mut guests = super::guest::GuestKernels::default();
    guests.add(run);
    out.push_str(&format!("#[{}]\n", guests.sentence()));
    if let Some(w) = guests.warning() {
        out.push_str(&format!("#[Warning: {w}]\n"));
    }
    if run.accel == Accel::Tcg {
        out.push_str(&format!("#[Note: {TCG_DISCLAIMER}]\n"));
    }
    out.push_str(&format!(
        "#[StartTime: {} (seconds since epoch), {}]\n",
        secs_ms(run.started_unix_ms),
        iso8601_ms(run.started_unix_ms)
    ));
    out.push_str(&format!(
        "#[BaseTime: {} (seconds since epoch)]\n",
        secs_ms(run.started_unix_ms)
    ));
    out.push_str(
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
    );

    // (tag, index) -> line; tag None = merged.
    let mut lines: BTreeMap<(Option<String>, u64), Line> = BTreeMap::new();
    let rt_count: usize = run.guests.iter().map(|g| g.results.len()).sum();
    let has_intervals = run.guests.iter().any(|g| !g.intervals.is_empty());
    for g in &run.guests {
        let items: Vec<(u32, u64, u64, u64, &Histogram<u64>)> = if has_intervals {
            g.intervals
                .iter()
                .map(|i| {
                    (
                        i.cpu,
                        i.index,
                        i.start_offset_ns,
                        i.end_offset_ns,
                        &i.histogram.0,
                    )
                })
                .collect()
        } else {
            g.results
                .iter()
                .map(|r| (r.cpu, 0, 0, r.duration_ns, &r.histogram.0))
                .collect()
        };
        for (cpu, index, start, end, h) in items {
            let mut keys = vec![None];
            if rt_count > 1 {
                keys.push(Some(format!("{}/vcpu{cpu}", g.guest)));
            }
            for tag in keys {
                let l = lines.entry((tag, index)).or_insert_with(|| Line {
                    start_ns: start,
                    end_ns: end,
                    hist: new_histogram(),
                });
                l.start_ns = l.start_ns.min(start);
                l.end_ns = l.end_ns.max(end);
                // Values beyond pinlat's range cannot be in an .hlog line; the run's JSON and
                // the report keep them as overflow.
                let _ = super::accumulate::add_hist(&mut l.hist, h);
            }
        }
    }
    // Untagged lines first in time order, then each tag's.
    for ((tag, _), l) in &lines {
        out.push_str(&line(tag.as_deref(), l, &run.name)?);
    }
    Ok(out)
}

/// One interval line read back: (tag, start s·1000, histogram).
pub type ParsedLine = (Option<String>, String, Histogram<u64>);

/// Parses the interval lines of an `.hlog` (for tests and tools): comment and legend lines are
/// skipped.
pub fn parse(text: &str) -> Result<Vec<ParsedLine>, crate::histo::HistoError> {
    let mut out = Vec::new();
    for l in text.lines() {
        if l.starts_with('#') || l.starts_with('"') || l.trim().is_empty() {
            continue;
        }
        let (tag, rest) = match l.strip_prefix("Tag=") {
            Some(r) => {
                let (t, rest) = r.split_once(',').unwrap_or((r, ""));
                (Some(t.to_string()), rest)
            }
            None => (None, l),
        };
        let mut f = rest.splitn(4, ',');
        let start = f.next().unwrap_or_default().to_string();
        let b64 = f.nth(2).unwrap_or_default();
        out.push((tag, start, crate::histo::decode_base64(b64)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(iso8601_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_ms(1_795_647_860_066), "2026-11-25T23:04:20.066Z");
        assert_eq!(iso8601_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(max_ms(53_928_871), "53.928");
        assert_eq!(secs_ns(1_000_000_014), "1.000");
    }
}
