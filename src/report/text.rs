//! How every output writes numbers and clocks: latencies in µs exact to the ns, percentiles
//! with their overflow and max-bound marks, clocks, and XML/HTML escaping.

use super::verdict;
use crate::histo::Percentile;
use crate::wire::{ClockInfo, ClockSource};

/// Formats ns as µs with three decimals, exactly (`12345` → `12.345`).
pub fn us(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

/// Formats an optional percentile: µs, or `overflow` when it lies above the histogram's range.
pub fn us_opt(ns: Option<u64>) -> String {
    match ns {
        Some(v) => us(v),
        None => "overflow".to_string(),
    }
}

/// The mark of a max-bound percentile in the Markdown and HTML tables.
pub const MAX_BOUND_MARK: &str = "†";

/// The legend of [`MAX_BOUND_MARK`].
pub fn max_bound_legend() -> String {
    format!(
        "{MAX_BOUND_MARK} max-bound: fewer than {} samples lie beyond this percentile, so the few largest samples decide it, as they decide the max; no verdict, comparison or regression rests on it alone",
        crate::histo::MAX_BOUND_BEYOND
    )
}

/// A percentile in µs as the tables show it: `overflow` above the histogram's range, and
/// [`MAX_BOUND_MARK`] after a max-bound one.
pub fn us_pct(p: &Percentile) -> String {
    let mark = if p.max_bound { MAX_BOUND_MARK } else { "" };
    format!("{}{mark}", us_opt(p.value_ns))
}

/// `tsc 2.000 GHz ±12 ppm`, `monotonic`: one clock as the run tables show it.
pub fn clock_text(c: &ClockInfo) -> String {
    let mut s = verdict::clock_name(c.source).to_string();
    if let (ClockSource::Tsc, Some(hz)) = (c.source, c.tsc_hz) {
        s.push_str(&format!(
            " {}.{:03} GHz",
            hz / 1_000_000_000,
            hz / 1_000_000 % 1000
        ));
    }
    if let Some(ppm) = c.calibration_spread_ppm {
        s.push_str(&format!(" ±{ppm} ppm"));
    }
    s
}

/// The clocks of a run, `, `-joined (`unknown` when none is known).
pub fn clocks_text(c: &[ClockInfo]) -> String {
    if c.is_empty() {
        return "unknown".to_string();
    }
    c.iter().map(clock_text).collect::<Vec<_>>().join(", ")
}

/// Escapes text for XML and HTML content and attribute values.
pub(crate) fn escape_xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}
