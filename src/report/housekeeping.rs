//! "Housekeeping I/O": the other side of the trade-off (issue #12). The RT tables show what a
//! layout does for the realtime vCPUs; this section shows what the housekeeping vCPUs' disk and
//! network I/O got under it — a layout that protects the RT vCPUs by starving the emulator
//! threads (the emulator beside a busy vCPU0, or floating under SCHED_FIFO vCPUs) shows up here
//! as slow, slower-than-asked or failing I/O.
//!
//! One [`HousekeepingRow`] per (layout, scenario, workload, load, operation), merged over the
//! runs that measured to the end, as the RT groups are: the operations' histograms merged, the
//! counts and windows summed, the rate their quotient. The section, and the report's
//! `housekeeping` field, exist only when a run carried load results, so a report without them
//! reads and renders as before.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::text::{Align, Cell, Table};
use super::{escape_xml as esc, us_opt, Group, Report};
use crate::config::WorkloadKind;
use crate::histo::{new_histogram, Summary};
use crate::result::RunRecord;
use crate::wire::{per_second, LoadKind, NetCounts, OpKind};

/// One operation of one load in one (layout, variant, scenario, workload), over its ok runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HousekeepingRow {
    /// Layout name.
    pub layout: String,
    /// The tuning variant, `None` when the config has no variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The scenario.
    pub scenario: String,
    /// The workload of the RT vCPUs beside it.
    pub workload: WorkloadKind,
    /// The load.
    pub load: LoadKind,
    /// The operation.
    pub op: OpKind,
    /// Load results merged (one per guest per ok run).
    pub results: usize,
    /// The loads' counting windows summed, ns.
    pub duration_ns: u64,
    /// Completed operations per second over those windows.
    pub rate_per_s: f64,
    /// The rate asked for, per second, summed over the guests of one run (net's `rate_pps`);
    /// `None` for a load that goes as fast as it can.
    pub target_per_s: Option<u64>,
    /// Bytes the operations moved.
    pub bytes: u64,
    /// Failed operations.
    pub errors: u64,
    /// The first failure's message, from the first result that had one.
    pub first_error: Option<String>,
    /// Latency of the completed operations, ns ([`Summary::samples`] is their count).
    pub stats: Summary,
    /// net: the frames, summed (on its `rtt` row).
    pub net: Option<NetCounts>,
}

impl HousekeepingRow {
    /// `layout.scenario.workload`, as [`Group::name`].
    pub fn group_name(&self) -> String {
        super::group_name(
            &self.layout,
            self.variant.as_deref(),
            &self.scenario,
            self.workload,
        )
    }

    /// Whether this row belongs to `g`.
    pub fn of(&self, g: &Group) -> bool {
        g.is_arm(&self.layout, self.variant.as_deref())
            && self.scenario == g.scenario
            && self.workload == g.workload
    }
}

type Key = (
    String,
    Option<String>,
    String,
    WorkloadKind,
    LoadKind,
    OpKind,
);

struct OpAcc {
    results: usize,
    runs: Vec<String>,
    duration_ns: u64,
    target_per_run: BTreeMap<String, u64>,
    bytes: u64,
    errors: u64,
    first_error: Option<String>,
    hist: Histogram<u64>,
    overflow: u64,
    min_ns: u64,
    max_ns: u64,
    net: Option<NetCounts>,
}

impl Default for OpAcc {
    fn default() -> Self {
        OpAcc {
            results: 0,
            runs: Vec::new(),
            duration_ns: 0,
            target_per_run: BTreeMap::new(),
            bytes: 0,
            errors: 0,
            first_error: None,
            hist: new_histogram(),
            overflow: 0,
            min_ns: u64::MAX,
            max_ns: 0,
            net: None,
        }
    }
}

/// Folds the load results of ok runs, one run at a time (memory bounded by the rows).
#[derive(Default)]
pub struct Acc {
    rows: BTreeMap<Key, OpAcc>,
}

impl Acc {
    /// Adds the load results of `rec` if it measured to the end.
    pub fn add(&mut self, rec: &RunRecord) {
        if !rec.status.is_ok() {
            return;
        }
        for g in &rec.guests {
            for l in &g.loads {
                for (&op, s) in &l.ops {
                    let key = (
                        rec.layout.clone(),
                        rec.variant.clone(),
                        rec.scenario.clone(),
                        rec.workload,
                        l.load,
                        op,
                    );
                    let a = self.rows.entry(key).or_default();
                    a.results += 1;
                    if !a.runs.contains(&rec.name) {
                        a.runs.push(rec.name.clone());
                    }
                    a.duration_ns = a.duration_ns.saturating_add(l.duration_ns);
                    if let Some(t) = l.target_per_s {
                        *a.target_per_run.entry(rec.name.clone()).or_default() += t;
                    }
                    a.bytes = a.bytes.saturating_add(s.bytes);
                    a.errors = a.errors.saturating_add(s.errors);
                    if a.first_error.is_none() {
                        a.first_error.clone_from(&s.first_error);
                    }
                    // Histograms of one range always merge; a foreign one is left out rather
                    // than failing the report.
                    let _ = a.hist.add(&s.histogram.0);
                    a.overflow = a.overflow.saturating_add(s.overflow);
                    if s.count > 0 {
                        a.min_ns = a.min_ns.min(s.min_ns);
                        a.max_ns = a.max_ns.max(s.max_ns);
                    }
                    if let Some(n) = &l.net {
                        let t = a.net.get_or_insert_with(NetCounts::default);
                        t.sent = t.sent.saturating_add(n.sent);
                        t.received = t.received.saturating_add(n.received);
                        t.lost = t.lost.saturating_add(n.lost);
                        t.late = t.late.saturating_add(n.late);
                        t.unmatched = t.unmatched.saturating_add(n.unmatched);
                        t.skipped_slots = t.skipped_slots.saturating_add(n.skipped_slots);
                    }
                }
            }
        }
    }

    /// The rows, layouts in `layout_order`, then by variant name, scenario, workload, load and
    /// operation.
    pub fn finish(self, layout_order: &[String]) -> Vec<HousekeepingRow> {
        let mut rows: Vec<HousekeepingRow> = self
            .rows
            .into_iter()
            .map(|((layout, variant, scenario, workload, load, op), a)| {
                let count = a.hist.len() + a.overflow;
                let stats = Summary::new(
                    &a.hist,
                    a.overflow,
                    if count == 0 { 0 } else { a.min_ns },
                    a.max_ns,
                    a.duration_ns,
                );
                // Per run, the guests' targets add up; over runs, the rate is per window.
                let target_per_s = (!a.target_per_run.is_empty()).then(|| {
                    a.target_per_run.values().sum::<u64>() / a.target_per_run.len() as u64
                });
                HousekeepingRow {
                    layout,
                    variant,
                    scenario,
                    workload,
                    load,
                    op,
                    results: a.results,
                    duration_ns: a.duration_ns,
                    rate_per_s: per_second(count, a.duration_ns),
                    target_per_s,
                    bytes: a.bytes,
                    errors: a.errors,
                    first_error: a.first_error,
                    stats,
                    net: a.net,
                }
            })
            .collect();
        rows.sort_by_key(|r| layout_order.iter().position(|l| *l == r.layout));
        rows
    }
}

/// A rate as the tables show it: one decimal.
fn rate(r: f64) -> String {
    format!("{r:.1}")
}

/// `3 of 600 (0.5 %)`, or `–` for a load without frames.
fn lost(r: &HousekeepingRow) -> String {
    match &r.net {
        Some(n) if n.sent > 0 => format!(
            "{} of {} ({:.2} %)",
            n.lost,
            n.sent,
            n.lost as f64 * 100.0 / n.sent as f64
        ),
        Some(n) => format!("{} of 0", n.lost),
        None => "–".to_string(),
    }
}

/// A latency cell: µs ([`us_opt`]: `overflow` above the histogram's range), or `–` without
/// operations.
fn lat(r: &HousekeepingRow, ns: Option<u64>) -> String {
    if r.stats.samples == 0 {
        "–".to_string()
    } else {
        us_opt(ns)
    }
}

/// The rate cell: achieved, and the target when there is one.
fn rate_cell(r: &HousekeepingRow) -> String {
    match r.target_per_s {
        Some(t) => format!("{} (of {t})", rate(r.rate_per_s)),
        None => rate(r.rate_per_s),
    }
}

/// What every view says under the section's title.
const INTRO: &str = "The housekeeping vCPUs' own I/O, per operation, over the measurement windows of the runs that measured to the end: io is O_DIRECT reads, writes and fdatasync on the virtio disk (rate = IOPS), net is raw frames through virtio-net echoed by the host (rate = round trips per second, the target in brackets). A layout that protects the RT vCPUs by starving the emulator threads shows here as slow, slower-than-asked or failing I/O. Latencies in µs.";

/// The table both views show: a row per layout × scenario × workload × load × operation.
fn table(rows: &[HousekeepingRow]) -> Table {
    use Align::{Left, Right};
    let mut t = Table::new([
        ("layout", Left),
        ("scenario", Left),
        ("workload", Left),
        ("load", Left),
        ("op", Left),
        ("results", Right),
        ("ops", Right),
        ("rate /s", Right),
        ("p50", Right),
        ("p99", Right),
        ("max", Right),
        ("errors", Right),
        ("lost", Left),
    ]);
    for r in rows {
        // HTML shows the first error on hovering the count; Markdown lists it under the table.
        let errors = match &r.first_error {
            Some(e) => Cell::with_html(
                r.errors,
                format!(
                    "<span class=\"bad\" title=\"first: {}\">{}</span>",
                    esc(e),
                    r.errors
                ),
            ),
            None => Cell::from(r.errors),
        };
        t.row([
            Cell::from(super::arm_name(&r.layout, r.variant.as_deref())),
            Cell::from(&r.scenario),
            Cell::from(r.workload),
            Cell::from(r.load),
            Cell::from(r.op),
            Cell::from(r.results),
            Cell::from(r.stats.samples),
            Cell::from(rate_cell(r)),
            Cell::from(lat(r, r.stats.p50_ns.value_ns)),
            Cell::from(lat(r, r.stats.p99_ns.value_ns)),
            Cell::from(lat(r, Some(r.stats.max_ns))),
            errors,
            Cell::from(lost(r)),
        ]);
    }
    t
}

/// The Markdown section (empty when no run carried load results).
pub fn markdown(report: &Report) -> String {
    let rows = &report.housekeeping;
    if rows.is_empty() {
        return String::new();
    }
    let mut o = format!("## Housekeeping I/O\n\n{INTRO}\n\n");
    o.push_str(&table(rows).markdown());
    o.push('\n');
    let errors: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            r.first_error.as_ref().map(|e| {
                format!(
                    "- {} {} {}: {} error(s), first: {}\n",
                    r.group_name(),
                    r.load,
                    r.op,
                    r.errors,
                    e.replace('|', "\\|")
                )
            })
        })
        .collect();
    if !errors.is_empty() {
        o.push_str("First errors:\n\n");
        o.push_str(&errors.concat());
        o.push('\n');
    }
    o
}

/// The HTML section (empty when no run carried load results).
pub fn html(report: &Report) -> String {
    let rows = &report.housekeeping;
    if rows.is_empty() {
        return String::new();
    }
    format!(
        "<h2 id=\"housekeeping\">Housekeeping I/O</h2>\n<p>{}</p>\n{}",
        esc(INTRO),
        table(rows).html()
    )
}

/// The JUnit properties of group `g`: per load and operation its rate, p50, p99, max and
/// errors (`housekeeping.io.read.per_s`, …), and net's frames lost and sent.
pub fn junit_properties(report: &Report, g: &Group) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in report.housekeeping.iter().filter(|r| r.of(g)) {
        let p = format!("housekeeping.{}.{}", r.load, r.op);
        out.push((format!("{p}.ops"), r.stats.samples.to_string()));
        out.push((format!("{p}.per_s"), rate(r.rate_per_s)));
        out.push((format!("{p}.p50_us"), lat(r, r.stats.p50_ns.value_ns)));
        out.push((format!("{p}.p99_us"), lat(r, r.stats.p99_ns.value_ns)));
        out.push((format!("{p}.max_us"), lat(r, Some(r.stats.max_ns))));
        out.push((format!("{p}.errors"), r.errors.to_string()));
        if let Some(n) = &r.net {
            out.push((format!("housekeeping.{}.sent", r.load), n.sent.to_string()));
            out.push((format!("housekeeping.{}.lost", r.load), n.lost.to_string()));
        }
    }
    out
}
