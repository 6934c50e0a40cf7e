//! One `<run>.hlog` per run, in the HdrHistogram interval log format (version 1.3) that
//! HistogramLogAnalyzer and `HistogramLogProcessor` read: `#[StartTime: ...]` and
//! `#[BaseTime: ...]` header lines, the CSV legend line, then one line per interval histogram:
//! start (s, relative to BaseTime), length (s), interval max (ms, the Java writer's default
//! max-value unit ratio of 10^6 for ns) and the V2 deflate base64 histogram.
//!
//! Times are real: BaseTime is the start of the measurement in the host's time (the earliest
//! guest's `GuestRun::window`, which the runner maps from the agent's clock), and each line
//! starts at its own interval's offset from its guest's window. There is one line per (RT vCPU,
//! interval), never a merge of interval N across vCPUs: a late hand-off stretches one vCPU's
//! interval, and index N then covers different time on different vCPUs. A run record without a
//! window (written before the runner recorded one) falls back to the run's start before QEMU
//! launched, early by boot and preheat, and the header says so.
//!
//! Untagged lines are every RT vCPU's, in time order; with more than one RT vCPU each vCPU's
//! lines follow again as tagged lines (`Tag=rt/vcpu1,...`) for tools that select one. Values
//! are ns. A run with no interval reports (failed early) gets its final histograms as one
//! interval spanning the measurement. Source of the format: HdrHistogram
//! `HistogramLogWriter.java`.

use std::collections::BTreeSet;

use hdrhistogram::Histogram;

use super::{Exporter, OutputFile, Report, ReportError};
use crate::histo::{encode_base64, new_histogram};
use crate::kinds::Accel;
use crate::result::{MeasureWindow, RunRecord, TCG_DISCLAIMER};

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
pub(crate) fn civil(days: i64) -> (i64, u32, u32) {
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

/// One interval line: one RT vCPU's histogram over one interval, at its own time.
struct Line {
    /// Start, ns after BaseTime.
    start_ns: u64,
    /// Length, ns.
    length_ns: u64,
    /// `guest/vcpuN`.
    tag: String,
    hist: Histogram<u64>,
}

fn line(tag: Option<&str>, l: &Line, name: &str) -> Result<String, ReportError> {
    let b64 = encode_base64(&l.hist).map_err(|e| ReportError::Encode(name.to_string(), e))?;
    let max = if l.hist.is_empty() { 0 } else { l.hist.max() };
    Ok(format!(
        "{}{},{},{},{b64}\n",
        tag.map(|t| format!("Tag={t},")).unwrap_or_default(),
        secs_ns(l.start_ns),
        secs_ns(l.length_ns),
        max_ms(max)
    ))
}

/// Where a run's interval times start, ms since the epoch: each guest's measurement window,
/// else the run's start (before QEMU launched), with the header line that says which.
fn time_origin(run: &RunRecord) -> (u64, String) {
    let windows: Vec<&MeasureWindow> = run
        .guests
        .iter()
        .filter_map(|g| g.window.as_ref())
        .collect();
    match windows.iter().map(|w| w.start_unix_ms).min() {
        Some(base) if windows.len() == run.guests.len() => {
            let unc = windows.iter().map(|w| w.uncertainty_ms).max().unwrap_or(0);
            (
                base,
                format!("#[Times: each guest's measurement window in the host's time (runs/{}.json guests[].window, ±{unc} ms); an interval line starts at its own offset in it]\n", run.name),
            )
        }
        Some(base) => (
            base,
            "#[Times: the measurement window where the run record has one; for a guest without one, from the run's start before QEMU launched, early by its boot and preheat]\n".to_string(),
        ),
        None => (
            run.started_unix_ms,
            "#[Times: the run record has no measurement window: times count from the run's start before QEMU launched, so every interval is early by the guest's boot and preheat]\n".to_string(),
        ),
    }
}

/// The `.hlog` text of one run.
pub fn render(run: &RunRecord) -> Result<String, ReportError> {
    let mut out = String::new();
    out.push_str("#[Histogram log format version 1.3]\n");
    out.push_str(&format!(
        "#[pinlat run {} ({}), values in ns; one line per RT vCPU and interval at its own start time: untagged lines are every RT vCPU, Tag= lines one vCPU]\n",
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
    let (base_ms, times) = time_origin(run);
    out.push_str(&times);
    out.push_str(&format!(
        "#[StartTime: {} (seconds since epoch), {}]\n",
        secs_ms(base_ms),
        iso8601_ms(base_ms)
    ));
    out.push_str(&format!(
        "#[BaseTime: {} (seconds since epoch)]\n",
        secs_ms(base_ms)
    ));
    out.push_str(
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
    );

    let has_intervals = run.guests.iter().any(|g| !g.intervals.is_empty());
    let mut lines: Vec<Line> = Vec::new();
    for g in &run.guests {
        // This guest's measurement start, ns after BaseTime.
        let origin_ns = g
            .window
            .map_or(run.started_unix_ms, |w| w.start_unix_ms)
            .saturating_sub(base_ms)
            .saturating_mul(1_000_000);
        let items: Vec<(u32, u64, u64, &Histogram<u64>)> = if has_intervals {
            g.intervals
                .iter()
                .map(|i| (i.cpu, i.start_offset_ns, i.end_offset_ns, &i.histogram.0))
                .collect()
        } else {
            g.results
                .iter()
                .map(|r| (r.cpu, 0, r.duration_ns, &r.histogram.0))
                .collect()
        };
        for (cpu, start, end, h) in items {
            let mut hist = new_histogram();
            // Values beyond pinlat's range cannot be in an .hlog line; the run's JSON and the
            // report keep them as overflow.
            let _ = super::accumulate::add_hist(&mut hist, h);
            lines.push(Line {
                start_ns: origin_ns + start,
                length_ns: end.saturating_sub(start),
                tag: format!("{}/vcpu{cpu}", g.guest),
                hist,
            });
        }
    }
    lines.sort_by(|a, b| a.start_ns.cmp(&b.start_ns).then_with(|| a.tag.cmp(&b.tag)));
    // Every line untagged, in time order; then, with more than one RT vCPU, each vCPU's lines.
    for l in &lines {
        out.push_str(&line(None, l, &run.name)?);
    }
    let tags: BTreeSet<&str> = lines.iter().map(|l| l.tag.as_str()).collect();
    if tags.len() > 1 {
        for t in tags {
            for l in lines.iter().filter(|l| l.tag == t) {
                out.push_str(&line(Some(t), l, &run.name)?);
            }
        }
    }
    Ok(out)
}

/// One interval line read back.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLine {
    /// `Tag=` of the line.
    pub tag: Option<String>,
    /// Start, ms after BaseTime.
    pub start_ms: u64,
    /// Length, ms.
    pub length_ms: u64,
    /// The histogram.
    pub histogram: Histogram<u64>,
}

/// An `.hlog` read back.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLog {
    /// `#[BaseTime: …]`, ms since the epoch.
    pub base_time_ms: Option<u64>,
    /// `#[StartTime: …]`, ms since the epoch.
    pub start_time_ms: Option<u64>,
    /// The interval lines in file order.
    pub lines: Vec<ParsedLine>,
}

/// `12.345` (seconds with ms) as ms.
fn parse_secs_ms(s: &str) -> Option<u64> {
    let (secs, ms) = s.trim().split_once('.').unwrap_or((s.trim(), "0"));
    let ms: u64 = format!("{ms:0<3}").get(..3)?.parse().ok()?;
    secs.parse::<u64>().ok()?.checked_mul(1000)?.checked_add(ms)
}

/// Parses an `.hlog` (for tests and tools): the StartTime and BaseTime headers and the interval
/// lines; other comment lines and the legend are skipped.
pub fn parse(text: &str) -> Result<ParsedLog, crate::histo::HistoError> {
    let mut out = ParsedLog {
        base_time_ms: None,
        start_time_ms: None,
        lines: Vec::new(),
    };
    for l in text.lines() {
        if let Some(v) = l.strip_prefix("#[BaseTime: ") {
            out.base_time_ms = v.split_whitespace().next().and_then(parse_secs_ms);
        }
        if let Some(v) = l.strip_prefix("#[StartTime: ") {
            out.start_time_ms = v.split_whitespace().next().and_then(parse_secs_ms);
        }
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
        let start_ms = f.next().and_then(parse_secs_ms).unwrap_or(0);
        let length_ms = f.next().and_then(parse_secs_ms).unwrap_or(0);
        let b64 = f.nth(1).unwrap_or_default();
        out.lines.push(ParsedLine {
            tag,
            start_ms,
            length_ms,
            histogram: crate::histo::decode_base64(b64)?,
        });
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
        assert_eq!(parse_secs_ms("1795000062.000"), Some(1_795_000_062_000));
        assert_eq!(parse_secs_ms("2.5"), Some(2_500));
        assert_eq!(parse_secs_ms("0.025"), Some(25));
    }
}
