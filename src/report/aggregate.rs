//! Aggregation of `runs/*.json` into a [`Report`].
//!
//! The run files are read one at a time, in name order, and folded into per-group
//! accumulators; a decoded run is dropped before the next is read, so memory grows with the
//! number of (layout, scenario, workload, RT vCPU) groups, not with the number of runs. A file
//! that cannot be read or parsed (a partial write, another schema) is skipped and listed, never
//! fatal.
//!
//! Histograms are merged by adding counts (HdrHistogram's `add`), which is exact at the
//! histogram's precision. Samples above the histogram range (overflow) are kept out of the
//! histogram but in the counts: a percentile whose rank falls into the overflow is reported as
//! `None` ("overflow"), never as a value below it.

use std::collections::BTreeMap;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::{
    verdict, EventRef, Group, GuestView, IntervalPoint, LayoutView, Range, Report, ReportError,
    RunOutcome, RunSummary, RunTimeline, SkippedFile, Spread, VcpuGroup, VcpuKey,
    REPORT_SCHEMA_VERSION,
};
use crate::config::{LayoutKind, ScenarioKind, WorkloadKind};
use crate::histo::{new_histogram, Hist};
use crate::result::{RunRecord, RunStatus, ThreadRole, TCG_DISCLAIMER};
use crate::schema::{read_versioned, HostFacts, PlanFile, SchemaError, HOST_FILE, PLAN_FILE};
use crate::wire::CpuResult;

/// An error and its causes, `: `-joined.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Largest events kept per group.
pub const TOP_EVENTS: usize = 10;

/// Largest run file read, bytes (a run with many RT vCPUs and intervals is a few MiB).
pub const MAX_RUN_FILE_BYTES: u64 = 256 << 20;

/// Latency statistics of a set of samples. Latencies in ns; percentiles at the histogram's
/// 3-digit precision (highest equivalent value of the bucket, as HdrHistogram reports them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Samples, overflow included.
    pub samples: u64,
    /// Samples above the histogram's range (~60 s): in `samples` and `max_ns`, not in the
    /// percentiles' histogram.
    pub overflow: u64,
    /// Measured time, ns: per RT vCPU the sum of its runs' recording phases; for several RT
    /// vCPUs, the sum over runs of the longest vCPU's recording phase.
    pub duration_ns: u64,
    /// Smallest sample, ns (exact, as the agent recorded it; 0 when there are none).
    pub min_ns: u64,
    /// Median, ns (`None`: no samples, or in the overflow). Percentiles are HDR values (the
    /// highest equivalent of the bucket) bounded by the exact `max_ns`.
    pub p50_ns: Option<u64>,
    /// 90th percentile, ns.
    pub p90_ns: Option<u64>,
    /// 99th percentile, ns.
    pub p99_ns: Option<u64>,
    /// 99.9th percentile, ns.
    pub p999_ns: Option<u64>,
    /// 99.99th percentile, ns.
    pub p9999_ns: Option<u64>,
    /// Largest sample, ns (exact, even if it overflowed the histogram).
    pub max_ns: u64,
    /// Mean of the histogram, ns, rounded to the nearest ns (overflow excluded).
    pub mean_ns: u64,
    /// Standard deviation of the histogram, ns, rounded to the nearest ns (overflow excluded).
    pub stddev_ns: u64,
}

/// The value at quantile `q` (0..=1) of `h` plus `overflow` samples above its range: `None`
/// when the rank lies in the overflow or there are no samples.
pub fn quantile(h: &Histogram<u64>, overflow: u64, q: f64) -> Option<u64> {
    let in_hist = h.len();
    let total = in_hist + overflow;
    if total == 0 {
        return None;
    }
    if overflow == 0 {
        return Some(h.value_at_quantile(q));
    }
    // Rank of the sample at q among all samples, 1-based (as HdrHistogram counts it).
    let rank = ((q * total as f64).ceil() as u64).max(1);
    if rank > in_hist {
        return None;
    }
    Some(h.value_at_quantile(rank as f64 / in_hist as f64))
}

/// Adds `h` into `dst`; returns the count of values `dst` cannot hold (a foreign range), which
/// the caller counts as overflow.
pub(crate) fn add_hist(dst: &mut Histogram<u64>, h: &Histogram<u64>) -> u64 {
    if dst.add(h).is_ok() {
        return 0;
    }
    let mut lost = 0;
    for v in h.iter_recorded() {
        if dst
            .record_n(v.value_iterated_to(), v.count_at_value())
            .is_err()
        {
            lost += v.count_at_value();
        }
    }
    lost
}

/// Accumulates samples of one or more `CpuResult`s.
#[derive(Debug, Clone)]
pub struct Acc {
    hist: Histogram<u64>,
    overflow: u64,
    samples: u64,
    duration_ns: u64,
    min_ns: Option<u64>,
    max_ns: u64,
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            hist: new_histogram(),
            overflow: 0,
            samples: 0,
            duration_ns: 0,
            min_ns: None,
            max_ns: 0,
        }
    }
}

impl Acc {
    /// Adds a histogram; values it cannot hold (a foreign range) count as overflow.
    fn add_hist(&mut self, h: &Histogram<u64>) {
        self.overflow += add_hist(&mut self.hist, h);
    }

    /// Adds one CPU's whole-run result; `duration_ns` is added to the measured time.
    pub fn add_result(&mut self, r: &CpuResult, duration_ns: u64) {
        self.add_hist(&r.histogram.0);
        self.overflow += r.overflow;
        self.samples += r.samples;
        self.duration_ns += duration_ns;
        if r.samples > 0 {
            self.min_ns = Some(self.min_ns.map_or(r.min_ns, |m| m.min(r.min_ns)));
            self.max_ns = self.max_ns.max(r.max_ns);
        }
    }

    /// Merges another accumulator.
    pub fn merge(&mut self, o: &Acc) {
        self.add_hist(&o.hist);
        self.overflow += o.overflow;
        self.samples += o.samples;
        self.duration_ns += o.duration_ns;
        if let Some(m) = o.min_ns {
            self.min_ns = Some(self.min_ns.map_or(m, |x| x.min(m)));
        }
        self.max_ns = self.max_ns.max(o.max_ns);
    }

    /// The statistics.
    pub fn stats(&self) -> Stats {
        let h = &self.hist;
        // HDR reports a bucket's highest equivalent value; the exact max bounds it from above.
        let q = |p| quantile(h, self.overflow, p).map(|v| v.min(self.max_ns));
        Stats {
            samples: self.samples,
            overflow: self.overflow,
            duration_ns: self.duration_ns,
            min_ns: self.min_ns.unwrap_or(0),
            p50_ns: q(0.5),
            p90_ns: q(0.9),
            p99_ns: q(0.99),
            p999_ns: q(0.999),
            p9999_ns: q(0.9999),
            max_ns: self.max_ns,
            mean_ns: if h.is_empty() {
                0
            } else {
                h.mean().round() as u64
            },
            stddev_ns: if h.is_empty() {
                0
            } else {
                h.stdev().round() as u64
            },
        }
    }

    /// The merged histogram.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }
}

type GroupKey = (String, ScenarioKind, WorkloadKind);

#[derive(Default)]
struct GroupAcc {
    layout_kind: Option<LayoutKind>,
    ok_runs: Vec<String>,
    failed_runs: Vec<String>,
    all: Acc,
    per_vcpu: BTreeMap<VcpuKey, Acc>,
    top: Vec<EventRef>,
    rep_stats: Vec<Stats>,
    timeline: Vec<RunTimeline>,
}

/// Where an ok run's RT vCPU results come from: every guest's final results.
fn rt_results(rec: &RunRecord) -> impl Iterator<Item = (VcpuKey, &CpuResult)> {
    rec.guests.iter().flat_map(|g| {
        g.results.iter().map(move |r| {
            (
                VcpuKey {
                    guest: g.guest.clone(),
                    vcpu: r.cpu,
                },
                r,
            )
        })
    })
}

/// Per-run statistics: all RT vCPUs merged, and each one.
fn run_stats(rec: &RunRecord) -> (Acc, BTreeMap<VcpuKey, Acc>) {
    let mut per: BTreeMap<VcpuKey, Acc> = BTreeMap::new();
    let mut all = Acc::default();
    let longest = rt_results(rec)
        .map(|(_, r)| r.duration_ns)
        .max()
        .unwrap_or(0);
    for (k, r) in rt_results(rec) {
        per.entry(k).or_default().add_result(r, r.duration_ns);
        all.add_result(r, 0);
    }
    all.duration_ns = longest;
    (all, per)
}

/// The interval series of a run, RT vCPUs merged per interval of time. Intervals are bucketed
/// by when they started, not by their index: a late hand-off stretches one CPU's interval, and
/// index N then covers different time on different CPUs.
fn timeline(rec: &RunRecord) -> RunTimeline {
    let interval_ns = rec
        .guests
        .iter()
        .find_map(|g| g.hello.as_ref())
        .map(|h| h.config.report_interval_ms.saturating_mul(1_000_000))
        .filter(|&n| n > 0)
        .unwrap_or(1_000_000_000);
    let mut by_index: BTreeMap<u64, (u64, u64, u64, u64, Histogram<u64>)> = BTreeMap::new();
    for g in &rec.guests {
        for iv in &g.intervals {
            let slot = iv.start_offset_ns.saturating_add(interval_ns / 2) / interval_ns;
            let e = by_index
                .entry(slot)
                .or_insert_with(|| (u64::MAX, 0, 0, 0, new_histogram()));
            e.0 = e.0.min(iv.start_offset_ns);
            e.1 = e.1.max(iv.end_offset_ns);
            e.2 += iv.samples;
            e.3 += iv.overflow + add_hist(&mut e.4, &iv.histogram.0);
        }
    }
    RunTimeline {
        run: rec.name.clone(),
        repetition: rec.repetition,
        points: by_index
            .into_iter()
            .map(
                |(index, (start, end, samples, overflow, h))| IntervalPoint {
                    index,
                    start_offset_ns: start,
                    end_offset_ns: end,
                    samples,
                    p99_ns: quantile(&h, overflow, 0.99),
                    max_ns: (!h.is_empty()).then(|| h.max()),
                },
            )
            .collect(),
    }
}

fn summary(rec: &RunRecord, file: &str, all: &Acc, per: &BTreeMap<VcpuKey, Acc>) -> RunSummary {
    let rt_stats = rec
        .guests
        .iter()
        .flat_map(|g| g.vcpu_stats.iter())
        .filter(|s| s.realtime);
    let migrations = rt_stats.clone().map(|s| s.migrations).sum::<Option<u64>>();
    RunSummary {
        name: rec.name.clone(),
        file: file.to_string(),
        layout: rec.layout.clone(),
        scenario: rec.scenario,
        workload: rec.workload,
        repetition: rec.repetition,
        accel: rec.accel,
        outcome: match &rec.status {
            RunStatus::Ok => RunOutcome {
                ok: true,
                stage: None,
                reason: None,
            },
            RunStatus::Failed { stage, reason } => RunOutcome {
                ok: false,
                stage: Some(*stage),
                reason: Some(reason.clone()),
            },
        },
        started_unix_ms: rec.started_unix_ms,
        duration_ms: rec.duration_ms,
        stats: all.stats(),
        per_vcpu: per.iter().map(|(k, a)| (k.clone(), a.stats())).collect(),
        placement_mismatches: rec.placement_mismatches().len(),
        rt_vcpu_nonvoluntary_switches: rt_stats.map(|s| s.nonvoluntary_ctxt_switches).sum(),
        rt_vcpu_migrations: migrations,
        mgmt_poll_rounds: rec.mgmt_poll.as_ref().map(|m| m.rounds),
        bad_frames: rec.guests.iter().map(|g| g.frames.rejected()).sum(),
        warnings: rec.warnings.clone(),
    }
}

fn layout_view(rec: &RunRecord) -> LayoutView {
    LayoutView {
        name: rec.layout.clone(),
        kind: rec.layout_kind,
        from_run: rec.name.clone(),
        guests: rec
            .guests
            .iter()
            .map(|g| {
                let mut threads = if g.observed_end.is_empty() {
                    g.observed_start.clone()
                } else {
                    g.observed_end.clone()
                };
                threads.sort_by_key(|t| role_order(&t.role));
                GuestView {
                    guest: g.guest.clone(),
                    planned: g.planned.clone(),
                    threads,
                    vcpu_cpus_seen: g
                        .vcpu_stats
                        .iter()
                        .map(|s| (s.vcpu, s.cpus_seen.clone()))
                        .collect(),
                }
            })
            .collect(),
        mismatches: 0,
        budget: super::BudgetStatus::NoBudget,
    }
}

/// vCPUs first in index order, then iothreads, then the emulator threads.
fn role_order(r: &ThreadRole) -> (u8, u32, String) {
    match r {
        ThreadRole::Vcpu { vcpu } => (0, *vcpu, String::new()),
        ThreadRole::Iothread { id } => (1, 0, id.clone()),
        ThreadRole::Emulator => (2, 0, String::new()),
    }
}

/// Reads and parses one run file.
fn read_run(path: &Path) -> Result<RunRecord, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot stat: {e}"))?;
    if meta.len() > MAX_RUN_FILE_BYTES {
        return Err(format!(
            "{} bytes, more than the {MAX_RUN_FILE_BYTES} a run file may have",
            meta.len()
        ));
    }
    let text = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    crate::schema::parse_versioned::<RunRecord>(path, &text).map_err(|e| match e {
        SchemaError::Version {
            found, expected, ..
        } => match found {
            Some(v) => format!("schema version {v} (this pinlat reads {expected})"),
            None => format!("no schema_version (this pinlat reads {expected})"),
        },
        SchemaError::Parse { source, .. } => format!("not a run record: {source}"),
        SchemaError::Read { source, .. } => format!("cannot read: {source}"),
    })
}

/// Builds the report of a results directory from its `runs/` (plus `plan.json` for budgets
/// and the list of planned runs, and `host.json` for host facts, both optional). `per_run` sees
/// every readable run once, in name order, before it is dropped.
pub fn build(dir: &Path, per_run: &mut dyn FnMut(&RunRecord)) -> Result<Report, ReportError> {
    let runs_dir = dir.join("runs");
    let mut files: Vec<_> = std::fs::read_dir(&runs_dir)
        .map_err(|e| ReportError::NotAResultDir(dir.to_path_buf(), e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
        .collect();
    files.sort();

    let mut notes = Vec::new();
    let plan: Option<PlanFile> = match read_versioned(&dir.join(PLAN_FILE)) {
        Ok(p) => Some(p),
        Err(SchemaError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            notes.push("no plan.json: no budgets were checked".to_string());
            None
        }
        Err(e) => {
            notes.push(format!(
                "plan.json is unreadable ({}): no budgets were checked",
                error_chain(&e)
            ));
            None
        }
    };
    let host: Option<HostFacts> = match read_versioned(&dir.join(HOST_FILE)) {
        Ok(h) => Some(h),
        Err(SchemaError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            None
        }
        Err(e) => {
            notes.push(format!("host.json is unreadable ({})", error_chain(&e)));
            None
        }
    };
    let host_checks = super::hostchecks::load(dir);

    let mut groups: BTreeMap<GroupKey, GroupAcc> = BTreeMap::new();
    let mut layout_order: Vec<String> = Vec::new();
    let mut layouts: BTreeMap<String, (LayoutView, bool)> = BTreeMap::new();
    let mut mismatches: BTreeMap<String, usize> = BTreeMap::new();
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    let mut accels = Vec::new();
    let mut run_id = None;
    let mut steal_notes = Vec::new();

    for file in &files {
        let rec = match read_run(&runs_dir.join(file)) {
            Ok(r) => r,
            Err(reason) => {
                skipped.push(SkippedFile {
                    file: file.clone(),
                    reason,
                });
                continue;
            }
        };
        per_run(&rec);
        run_id.get_or_insert_with(|| rec.run_id.clone());
        if let Some(st) = &rec.host_steal {
            for (cpu, ns, frac) in st.significant(&rec.planned_cpus()) {
                steal_notes.push(format!(
                    "{}: the hypervisor took {:.0} ms ({:.1} %) of pCPU {cpu} during the measurement (steal time): on a VM host the latencies include the hypervisor's; measure on a dedicated or bare-metal host to judge the layout",
                    rec.name,
                    ns as f64 / 1e6,
                    frac * 100.0
                ));
            }
        }
        if !accels.contains(&rec.accel) {
            accels.push(rec.accel);
        }
        if !layout_order.contains(&rec.layout) {
            layout_order.push(rec.layout.clone());
        }
        let ok = rec.status.is_ok();
        match layouts.get(&rec.layout) {
            Some((_, true)) => {}
            Some((_, false)) if !ok => {}
            _ => {
                layouts.insert(rec.layout.clone(), (layout_view(&rec), ok));
            }
        }
        *mismatches.entry(rec.layout.clone()).or_default() += rec.placement_mismatches().len();

        let (all, per) = run_stats(&rec);
        let s = summary(&rec, file, &all, &per);
        let g = groups
            .entry((rec.layout.clone(), rec.scenario, rec.workload))
            .or_default();
        g.layout_kind = Some(rec.layout_kind);
        if ok {
            g.ok_runs.push(rec.name.clone());
            g.all.merge(&all);
            for (k, a) in &per {
                g.per_vcpu.entry(k.clone()).or_default().merge(a);
            }
            if s.stats.samples > 0 {
                g.rep_stats.push(s.stats);
            }
            for (k, r) in rt_results(&rec) {
                g.top.extend(r.top.iter().map(|t| EventRef {
                    run: rec.name.clone(),
                    vcpu: k.clone(),
                    offset_ns: t.offset_ns,
                    latency_ns: t.latency_ns,
                }));
            }
            g.top.sort_by(|a, b| {
                b.latency_ns
                    .cmp(&a.latency_ns)
                    .then_with(|| a.run.cmp(&b.run))
                    .then_with(|| a.offset_ns.cmp(&b.offset_ns))
            });
            g.top.truncate(TOP_EVENTS);
            g.timeline.push(timeline(&rec));
        } else {
            g.failed_runs.push(rec.name.clone());
        }
        runs.push(s);
    }

    if runs.is_empty() {
        return Err(ReportError::NoRuns(dir.to_path_buf(), skipped.len()));
    }

    let budgets = plan
        .as_ref()
        .map(|p| p.config.budgets.clone())
        .unwrap_or_default();
    let missing_runs: Vec<String> = plan
        .as_ref()
        .map(|p| {
            p.runs
                .iter()
                .filter(|n| !runs.iter().any(|r: &RunSummary| &r.name == *n))
                .filter(|n| !skipped.iter().any(|s| s.file == format!("{n}.json")))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let run_id = run_id
        .or_else(|| plan.as_ref().map(|p| p.run_id.clone()))
        .unwrap_or_else(|| {
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });

    let mut out_groups = Vec::new();
    for layout in &layout_order {
        for ((l, scenario, workload), g) in groups.iter().filter(|((l, _, _), _)| l == layout) {
            out_groups.push(finish_group(l, *scenario, *workload, g)?);
        }
    }
    for g in &mut out_groups {
        g.budget = verdict::budget_verdict(g, budgets.get(&g.workload));
    }

    let mut out_layouts = Vec::new();
    for name in &layout_order {
        if let Some((mut v, _)) = layouts.remove(name) {
            v.mismatches = mismatches.get(name).copied().unwrap_or(0);
            v.budget = verdict::layout_status(out_groups.iter().filter(|g| &g.layout == name));
            if v.mismatches > 0 {
                notes.push(format!(
                    "layout {name}: {} observed thread placement(s) differ from the plan (see runs/*.json observed_start/observed_end)",
                    v.mismatches
                ));
            }
            out_layouts.push(v);
        }
    }
    for r in &runs {
        for w in &r.warnings {
            notes.push(format!("{}: {w}", r.name));
        }
    }
    notes.extend(steal_notes);
    let verdicts = verdict::verdicts(&out_groups);
    accels.sort_by_key(|a| a.as_str());
    let disclaimer = accels
        .contains(&crate::kinds::Accel::Tcg)
        .then(|| TCG_DISCLAIMER.to_string());
    Ok(Report {
        schema_version: REPORT_SCHEMA_VERSION,
        run_id,
        accels,
        disclaimer,
        host,
        host_checks,
        budgets,
        missing_runs,
        skipped,
        runs,
        groups: out_groups,
        layouts: out_layouts,
        verdicts,
        notes,
    })
}

fn range(v: &[Stats], f: impl Fn(&Stats) -> Option<u64>) -> Option<Range> {
    if v.len() < 2 {
        return None;
    }
    let vals: Option<Vec<u64>> = v.iter().map(f).collect();
    let vals = vals?;
    Some(Range {
        min_ns: *vals.iter().min()?,
        max_ns: *vals.iter().max()?,
    })
}

fn finish_group(
    layout: &str,
    scenario: ScenarioKind,
    workload: WorkloadKind,
    g: &GroupAcc,
) -> Result<Group, ReportError> {
    let mut timeline = g.timeline.clone();
    timeline.sort_by_key(|t| t.repetition);
    Ok(Group {
        layout: layout.to_string(),
        layout_kind: g.layout_kind.unwrap_or(LayoutKind::Custom),
        scenario,
        workload,
        ok_runs: g.ok_runs.clone(),
        failed_runs: g.failed_runs.clone(),
        stats: g.all.stats(),
        per_vcpu: g
            .per_vcpu
            .iter()
            .map(|(k, a)| VcpuGroup {
                vcpu: k.clone(),
                stats: a.stats(),
                histogram: Hist(a.hist.clone()),
            })
            .collect(),
        top: g.top.clone(),
        spread: Spread {
            repetitions: g.rep_stats.len(),
            p99: range(&g.rep_stats, |s| s.p99_ns),
            p999: range(&g.rep_stats, |s| s.p999_ns),
            p9999: range(&g.rep_stats, |s| s.p9999_ns),
            max: range(&g.rep_stats, |s| Some(s.max_ns)),
        },
        timeline,
        histogram: Hist(g.all.hist.clone()),
        budget: super::BudgetVerdict::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_with_overflow_is_none_in_the_overflow() {
        let mut h = new_histogram();
        for v in 1..=99u64 {
            h.record(v).unwrap();
        }
        assert_eq!(quantile(&h, 0, 0.5), Some(50));
        // 99 samples in range + 1 overflow: p99 is the 99th sample, p99.9 the overflowed one.
        assert_eq!(quantile(&h, 1, 0.99), Some(99));
        assert_eq!(quantile(&h, 1, 0.999), None);
        assert_eq!(quantile(&new_histogram(), 0, 0.5), None);
    }

    #[test]
    fn merge_keeps_exact_min_max_and_counts() {
        let mut a = Acc::default();
        let mut b = Acc::default();
        a.hist.record_n(100, 10).unwrap();
        a.samples = 10;
        a.min_ns = Some(100);
        a.max_ns = 100;
        b.hist.record(5_000).unwrap();
        b.samples = 2;
        b.overflow = 1;
        b.min_ns = Some(5_000);
        b.max_ns = 70_000_000_000;
        a.merge(&b);
        let s = a.stats();
        assert_eq!(s.samples, 12);
        assert_eq!(s.overflow, 1);
        assert_eq!(s.min_ns, 100);
        assert_eq!(s.max_ns, 70_000_000_000);
        assert_eq!(s.p50_ns, Some(100));
        assert_eq!(s.p9999_ns, None);
    }
}
