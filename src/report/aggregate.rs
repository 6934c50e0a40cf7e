//! Aggregation of `runs/*.json` into a [`Report`].
//!
//! The run files are read one at a time, in name order, and folded into per-group
//! accumulators ([`super::accumulate`]); a decoded run is dropped before the next is read, so
//! memory grows with the number of (layout, scenario, workload, RT vCPU) groups, not with the
//! number of runs. A file that cannot be read or parsed (a partial write, another schema) is
//! skipped and listed, never fatal.

use std::collections::BTreeMap;
use std::path::Path;

use super::accumulate::{rt_results, run_stats, timeline, Acc};
use super::guest::GuestKernels;
use super::runs::{layout_view, summary};
use super::soak::{InProgress, SoakState};
use super::stability::Stability;
use super::{
    budget, verdict, EventRef, Group, LayoutView, Range, Report, ReportError, RunSummary,
    RunTimeline, SkippedFile, Spread, VcpuGroup, VcpuKey, REPORT_SCHEMA_VERSION,
};
use crate::config::{LayoutKind, WorkloadKind};
use crate::histo::{Hist, Summary};
use crate::result::{RunRecord, TCG_DISCLAIMER};
use crate::schema::{
    read_versioned, Checkpoint, HostFacts, PlanFile, SchemaError, CHECKPOINT_FILE, HOST_FILE,
    PLAN_FILE,
};
use crate::wire::ClockSource;

/// An error and its causes, `: `-joined.
pub fn error_chain(e: &dyn std::error::Error) -> String {
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

/// (layout, variant, scenario, workload).
type GroupKey = (String, Option<String>, String, WorkloadKind);

#[derive(Default)]
struct GroupAcc {
    layout_kind: Option<LayoutKind>,
    ok_runs: Vec<String>,
    failed_runs: Vec<String>,
    failures: Vec<super::failures::CauseCount>,
    all: Acc,
    per_vcpu: BTreeMap<VcpuKey, Acc>,
    top: Vec<EventRef>,
    rep_stats: Vec<Summary>,
    clocks: Vec<ClockSource>,
    timeline: Vec<RunTimeline>,
}

/// Why a run file was skipped: its `Display` is the reason the report gives, cause included.
#[derive(Debug, thiserror::Error)]
enum RunFileError {
    /// Its metadata cannot be read.
    #[error("cannot stat: {0}")]
    Stat(std::io::Error),
    /// Larger than [`MAX_RUN_FILE_BYTES`].
    #[error("{0} bytes, more than the {MAX_RUN_FILE_BYTES} a run file may have")]
    TooLarge(u64),
    /// It cannot be read.
    #[error("cannot read: {0}")]
    Read(std::io::Error),
    /// Another schema version, or none.
    #[error("{} (this pinlat reads {expected})", match found {
        Some(v) => format!("schema version {v}"),
        None => "no schema_version".to_string(),
    })]
    Version {
        /// The version it has.
        found: Option<u32>,
        /// The version this pinlat reads.
        expected: u32,
    },
    /// Not JSON of a run record.
    #[error("not a run record: {0}")]
    Parse(serde_json::Error),
}

/// Reads and parses one run file.
fn read_run(path: &Path) -> Result<RunRecord, RunFileError> {
    let meta = std::fs::metadata(path).map_err(RunFileError::Stat)?;
    if meta.len() > MAX_RUN_FILE_BYTES {
        return Err(RunFileError::TooLarge(meta.len()));
    }
    let text = std::fs::read(path).map_err(RunFileError::Read)?;
    crate::schema::parse_versioned::<RunRecord>(path, &text).map_err(|e| match e {
        SchemaError::Version {
            found, expected, ..
        } => RunFileError::Version { found, expected },
        SchemaError::Parse { source, .. } => RunFileError::Parse(source),
        SchemaError::Read { source, .. } => RunFileError::Read(source),
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
    let checkpoint: Option<Checkpoint> = match read_versioned(&dir.join(CHECKPOINT_FILE)) {
        Ok(c) => Some(c),
        Err(SchemaError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            None
        }
        Err(e) => {
            notes.push(format!(
                "checkpoint.json is unreadable ({}): the run it was written for is not shown",
                error_chain(&e)
            ));
            None
        }
    };
    let mut soak = Vec::new();

    let mut groups: BTreeMap<GroupKey, GroupAcc> = BTreeMap::new();
    let mut layout_order: Vec<String> = Vec::new();
    let mut variants: Vec<String> = Vec::new();
    let mut layouts: BTreeMap<String, (LayoutView, bool)> = BTreeMap::new();
    let mut mismatches: BTreeMap<String, usize> = BTreeMap::new();
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    let mut accels = Vec::new();
    let mut libvirt: Vec<String> = Vec::new();
    let mut run_id = None;
    let mut steal_notes = Vec::new();
    let mut guest_kernels = GuestKernels::default();
    let mut readiness = super::readiness::Acc::default();
    let mut culprits = super::culprits::Acc::default();
    let mut housekeeping = super::housekeeping::Acc::default();
    let mut thread_cpu = super::thread_cpu::Acc::default();
    let mut boots = super::boots::Acc::default();

    for file in &files {
        let rec = match read_run(&runs_dir.join(file)) {
            Ok(r) => r,
            Err(e) => {
                skipped.push(SkippedFile {
                    file: file.clone(),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        per_run(&rec);
        guest_kernels.add(&rec);
        readiness.add(&rec);
        culprits.add(&rec);
        housekeeping.add(&rec);
        thread_cpu.add(&rec);
        boots.add(&rec);
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
        for lv in rec.guests.iter().filter_map(|g| g.libvirt.as_ref()) {
            let line = format!(
                "libvirt {} at {} ({})",
                lv.libvirt_version, lv.uri, lv.hypervisor
            );
            if !libvirt.contains(&line) {
                libvirt.push(line);
            }
        }
        if !layout_order.contains(&rec.layout) {
            layout_order.push(rec.layout.clone());
        }
        if let Some(v) = rec.variant.as_ref().filter(|v| !variants.contains(v)) {
            variants.push(v.clone());
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
        if super::soak::belongs(&rec, false) {
            soak.push(super::soak::row(&rec, SoakState::of(&rec), s.stats));
        }
        let g = groups
            .entry((
                rec.layout.clone(),
                rec.variant.clone(),
                rec.scenario.clone(),
                rec.workload,
            ))
            .or_default();
        g.layout_kind = Some(rec.layout_kind);
        if ok {
            g.ok_runs.push(rec.name.clone());
            for (_, r) in rt_results(&rec) {
                if !g.clocks.contains(&r.clock.source) {
                    g.clocks.push(r.clock.source);
                }
            }
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
            super::failures::add(&mut g.failures, &s);
        }
        runs.push(s);
    }

    // The run still measuring, unless its final record is already in runs/ (the runner
    // stopped between writing it and removing the checkpoint).
    let in_progress = checkpoint
        .filter(|c| {
            let file = c.run.file_name();
            !runs.iter().any(|r| r.name == c.run.name) && !skipped.iter().any(|s| s.file == file)
        })
        .map(|c| {
            if super::soak::belongs(&c.run, true) {
                let (all, _) = run_stats(&c.run);
                soak.push(super::soak::row(&c.run, SoakState::InProgress, all.stats()));
            }
            if !accels.contains(&c.run.accel) {
                accels.push(c.run.accel);
            }
            guest_kernels.add(&c.run);
            readiness.add(&c.run);
            run_id.get_or_insert_with(|| c.run.run_id.clone());
            InProgress::of(&c)
        });
    if runs.is_empty() && in_progress.is_none() {
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
                .filter(|n| in_progress.as_ref().map_or(true, |p| &p.run != *n))
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

    let variants = variant_order(plan.as_ref(), variants);
    let mut out_groups = Vec::new();
    for layout in &layout_order {
        let of_layout = groups.iter().filter(|((l, ..), _)| l == layout);
        let mut of_layout: Vec<_> = of_layout.collect();
        // Variants in the config's order (the baseline first), the untuned arm alone without.
        of_layout.sort_by_key(|((_, v, s, w), _)| {
            let at = v
                .as_ref()
                .and_then(|v| variants.iter().position(|x| x == v));
            (at, s.clone(), *w)
        });
        for (key, g) in of_layout {
            out_groups.push(finish_group(key, g)?);
        }
    }
    for g in &mut out_groups {
        g.budget = budget::budget_verdict(g, budgets.get(&g.workload));
    }

    let mut out_layouts = Vec::new();
    for name in &layout_order {
        if let Some((mut v, _)) = layouts.remove(name) {
            v.mismatches = mismatches.get(name).copied().unwrap_or(0);
            v.budget = budget::layout_status(out_groups.iter().filter(|g| &g.layout == name));
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
    let verdicts = verdict::verdicts(&out_groups, &variants);
    accels.sort_by_key(|a| a.as_str());
    let disclaimer = accels
        .contains(&crate::kinds::Accel::Tcg)
        .then(|| TCG_DISCLAIMER.to_string());
    let readiness = readiness.finish(&host_checks, disclaimer.is_some());
    Ok(Report {
        schema_version: REPORT_SCHEMA_VERSION,
        run_id,
        accels,
        libvirt,
        disclaimer,
        boots: boots.finish(),
        guest_warning: guest_kernels.warning(),
        guest_kernels,
        host,
        host_checks,
        variants,
        readiness,
        budgets,
        missing_runs,
        skipped,
        runs,
        groups: out_groups,
        layouts: out_layouts,
        verdicts,
        housekeeping: housekeeping.finish(&layout_order),
        notes,
        culprits: culprits.finish(),
        thread_cpu: thread_cpu.finish(&layout_order),
        in_progress,
        soak,
    })
}

fn range(v: &[Summary], f: impl Fn(&Summary) -> Option<u64>) -> Option<Range> {
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

/// The variant axis, the baseline first: the config's `[[variants]]` in order from
/// `plan.json`, then any variant a run names that the plan does not; without `plan.json`, the
/// runs' variants in name order (the first is then the baseline).
fn variant_order(plan: Option<&PlanFile>, mut seen: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = plan
        .map(|p| p.config.variants.iter().map(|v| v.name.clone()).collect())
        .unwrap_or_default();
    seen.sort();
    for v in seen {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn finish_group(key: &GroupKey, g: &GroupAcc) -> Result<Group, ReportError> {
    let (layout, variant, scenario, workload) = key;
    let mut timeline = g.timeline.clone();
    timeline.sort_by_key(|t| t.repetition);
    Ok(Group {
        layout: layout.clone(),
        layout_kind: g.layout_kind.unwrap_or(LayoutKind::Custom),
        variant: variant.clone(),
        scenario: scenario.clone(),
        workload: *workload,
        ok_runs: g.ok_runs.clone(),
        failed_runs: g.failed_runs.clone(),
        failures: g.failures.clone(),
        clocks: {
            let mut c = g.clocks.clone();
            c.sort_by_key(|s| verdict::clock_name(*s));
            c
        },
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
            p50: range(&g.rep_stats, |s| s.p50_ns.value_ns),
            p90: range(&g.rep_stats, |s| s.p90_ns.value_ns),
            p99: range(&g.rep_stats, |s| s.p99_ns.value_ns),
            p999: range(&g.rep_stats, |s| s.p999_ns.value_ns),
            p9999: range(&g.rep_stats, |s| s.p9999_ns.value_ns),
            max: range(&g.rep_stats, |s| Some(s.max_ns)),
        },
        stability: Stability::of(&g.rep_stats.iter().map(|s| s.max_ns).collect::<Vec<_>>()),
        timeline,
        histogram: Hist(g.all.hist.clone()),
        budget: budget::BudgetVerdict::default(),
    })
}
