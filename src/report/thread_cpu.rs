//! "Where the emulator's CPU time went": per layout × scenario × workload, the CPU time of
//! QEMU's threads by kind during the measurement (from each guest's
//! [`crate::result::ThreadCpu`]), as ms and % of the measurement window, with the pCPUs each
//! kind was seen on, beside the rate the scenario's load achieved (`mgmt-storm` calls/s,
//! `migrate` MiB/s). It is the evidence that a disturbance loaded the threads a layout places
//! (issue 12), and where they ran.
//!
//! Time is per guest and run (the mean over the ok runs' guests); % is of the measurement
//! window, so one thread keeping one pCPU busy is 100 %. Runs recorded before this section
//! existed carry none of it, and every output is then as before.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::text::{Align, Cell, Table};
use super::{escape_xml as esc, Report};
use crate::config::WorkloadKind;
use crate::cpuset::CpuSet;
use crate::result::{MigrateStats, RunRecord, ThreadKind};

/// One thread kind of one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindTime {
    /// The kind.
    #[serde(flatten)]
    pub kind: ThreadKind,
    /// Most threads of this kind seen in one guest's run.
    pub threads: u32,
    /// CPU time per guest and run, ns (schedstat's exact run time; for exited threads the
    /// process total's, at clock-tick resolution).
    pub time_ns: u64,
    /// Share of the measurement window, parts per million (1 000 000: one pCPU all the time).
    pub window_ppm: u64,
    /// pCPUs a thread of this kind was seen running on, over every run.
    pub cpus_seen: CpuSet,
}

/// One layout × scenario × workload (× variant with variants).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadCpuGroup {
    /// Layout name.
    pub layout: String,
    /// The tuning variant, `None` when the config has no variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Scenario, by name.
    pub scenario: String,
    /// Workload.
    pub workload: WorkloadKind,
    /// Guest runs (ok runs × guests) whose thread CPU time was recorded.
    pub guest_runs: u64,
    /// Mean measurement window, ns.
    pub window_ns: u64,
    /// Per kind, vCPUs first.
    pub kinds: Vec<KindTime>,
    /// `mgmt-storm`: calls answered per second, mean over the ok runs (all guests together).
    pub storm_calls_per_s: Option<f64>,
    /// `migrate`: MiB/s the sinks received, mean over the ok runs (all guests together).
    pub migrate_mib_s: Option<f64>,
    /// `migrate`: the runs' `max-bandwidth` allowance, MiB/s (all guests together).
    pub migrate_max_bandwidth_mib_s: Option<u32>,
    /// Things to know: a rate far below the configured one, migrations that ended early.
    pub warnings: Vec<String>,
}

#[derive(Default)]
struct GroupAcc {
    guest_runs: u64,
    window_ns: u128,
    kinds: BTreeMap<ThreadKind, (u32, u128, CpuSet)>,
    storm: Vec<f64>,
    migrate: Vec<MigrateStats>,
}

/// Folds runs into the section, one at a time (as [`super::aggregate`] streams them).
#[derive(Default)]
pub struct Acc {
    /// By (layout, variant, scenario, workload).
    groups: BTreeMap<(String, Option<String>, String, WorkloadKind), GroupAcc>,
}

impl Acc {
    /// Adds one run (failed runs are not counted, as in the latency tables).
    pub fn add(&mut self, rec: &RunRecord) {
        if !rec.status.is_ok() {
            return;
        }
        let has_cpu = rec.guests.iter().any(|g| g.thread_cpu.is_some());
        if !has_cpu && rec.mgmt_storm.is_none() && rec.migrate.is_none() {
            return;
        }
        let g = self
            .groups
            .entry((
                rec.layout.clone(),
                rec.variant.clone(),
                rec.scenario.clone(),
                rec.workload,
            ))
            .or_default();
        for guest in &rec.guests {
            let Some(tc) = &guest.thread_cpu else {
                continue;
            };
            g.guest_runs += 1;
            g.window_ns += u128::from(tc.window_ns);
            for k in &tc.kinds {
                let e = g.kinds.entry(k.kind.clone()).or_default();
                e.0 = e.0.max(k.threads);
                e.1 += u128::from(k.time_ns());
                e.2 = e.2.union(&k.cpus_seen);
            }
        }
        if let Some(s) = &rec.mgmt_storm {
            g.storm.push(s.calls_per_s());
        }
        if let Some(m) = &rec.migrate {
            g.migrate.push(m.clone());
        }
    }

    /// The section's groups, in `layout_order`, then variant name, scenario and workload
    /// order.
    pub fn finish(self, layout_order: &[String]) -> Vec<ThreadCpuGroup> {
        let mut out = Vec::new();
        for layout in layout_order {
            for ((l, variant, scenario, workload), g) in
                self.groups.iter().filter(|((l, ..), _)| l == layout)
            {
                let mut group = finish_group(l, scenario, *workload, g);
                group.variant = variant.clone();
                out.push(group);
            }
        }
        out
    }
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn finish_group(
    layout: &str,
    scenario: &str,
    workload: WorkloadKind,
    g: &GroupAcc,
) -> ThreadCpuGroup {
    let n = u128::from(g.guest_runs.max(1));
    let kinds = g
        .kinds
        .iter()
        .map(|(kind, (threads, time, cpus))| KindTime {
            kind: kind.clone(),
            threads: *threads,
            time_ns: (time / n) as u64,
            window_ppm: (time * 1_000_000)
                .checked_div(g.window_ns)
                .map_or(0, |ppm| ppm as u64),
            cpus_seen: cpus.clone(),
        })
        .collect();
    let mut warnings = Vec::new();
    let migrate_mib_s = mean(
        &g.migrate
            .iter()
            .map(|m| m.achieved_mib_s())
            .collect::<Vec<_>>(),
    );
    let allowance = g.migrate.first().map(|m| m.max_bandwidth_mib_s);
    if let (Some(rate), Some(max)) = (migrate_mib_s, allowance) {
        if max > 0 && rate < MigrateStats::BELOW_BANDWIDTH_FRACTION * f64::from(max) {
            warnings.push(format!(
                "migrate moved {rate:.1} MiB/s, {:.0} % of its max-bandwidth {max} MiB/s: the emulator carried less load than configured",
                rate * 100.0 / f64::from(max)
            ));
        }
    }
    let ended = g.migrate.iter().filter(|m| m.failure.is_some()).count();
    if ended > 0 {
        warnings.push(format!(
            "migrations ended before the measurement in {ended} of {} run(s): {}",
            g.migrate.len(),
            g.migrate
                .iter()
                .find_map(|m| m.failure.clone())
                .unwrap_or_default()
        ));
    }
    ThreadCpuGroup {
        layout: layout.to_string(),
        variant: None,
        scenario: scenario.to_string(),
        workload,
        guest_runs: g.guest_runs,
        window_ns: (g.window_ns / n) as u64,
        kinds,
        storm_calls_per_s: mean(&g.storm),
        migrate_mib_s,
        migrate_max_bandwidth_mib_s: allowance,
        warnings,
    }
}

/// Every kind any group has, in kind order: the table's columns.
fn columns(groups: &[ThreadCpuGroup]) -> Vec<ThreadKind> {
    let mut all: Vec<ThreadKind> = groups
        .iter()
        .flat_map(|g| g.kinds.iter().map(|k| k.kind.clone()))
        .collect();
    all.sort();
    all.dedup();
    all
}

fn cell(g: &ThreadCpuGroup, kind: &ThreadKind) -> String {
    match g.kinds.iter().find(|k| &k.kind == kind) {
        None => "–".into(),
        Some(k) => {
            let mut s = format!(
                "{:.0} ms · {:.1} %",
                k.time_ns as f64 / 1e6,
                k.window_ppm as f64 / 1e4
            );
            if !k.cpus_seen.is_empty() {
                s.push_str(&format!(" · pCPU {}", k.cpus_seen));
            }
            s
        }
    }
}

fn load(g: &ThreadCpuGroup) -> String {
    let mut parts = Vec::new();
    if let Some(c) = g.storm_calls_per_s {
        parts.push(format!("{c:.0} calls/s"));
    }
    if let Some(m) = g.migrate_mib_s {
        match g.migrate_max_bandwidth_mib_s {
            Some(max) if max > 0 => parts.push(format!(
                "{m:.1} MiB/s of {max} ({:.0} %)",
                m * 100.0 / f64::from(max)
            )),
            _ => parts.push(format!("{m:.1} MiB/s")),
        }
    }
    if !g.warnings.is_empty() {
        parts.push("⚠️".into());
    }
    if parts.is_empty() {
        "–".into()
    } else {
        parts.join(" ")
    }
}

const INTRO: &str = "QEMU's threads by kind during the measurement (from the agent's first interval to its first result), per guest and run: CPU time (schedstat; threads that exited, from the process total at clock-tick resolution), % of the measurement window (one pCPU all the time is 100 %), and the pCPUs each kind was seen running on. The load column is what the scenario achieved.";

/// The table both views show: a row per layout × scenario × workload, a column per thread kind.
fn table(groups: &[ThreadCpuGroup]) -> Table {
    let cols = columns(groups);
    let mut t = Table::new(
        ["layout", "scenario", "workload", "load"]
            .map(|c| (c.to_string(), Align::Left))
            .into_iter()
            .chain(cols.iter().map(|k| (k.label(), Align::Figures))),
    );
    for g in groups {
        t.row(
            [
                Cell::from(super::arm_name(&g.layout, g.variant.as_deref())),
                Cell::from(&g.scenario),
                Cell::from(g.workload),
                Cell::from(load(g)),
            ]
            .into_iter()
            .chain(cols.iter().map(|k| Cell::from(cell(g, k)))),
        );
    }
    t
}

/// Each group's warnings, `layout.scenario.workload: warning`.
fn warnings(groups: &[ThreadCpuGroup]) -> Vec<String> {
    groups
        .iter()
        .flat_map(|g| {
            g.warnings.iter().map(move |w| {
                let name =
                    super::group_name(&g.layout, g.variant.as_deref(), &g.scenario, g.workload);
                format!("{name}: {w}")
            })
        })
        .collect()
}

/// The Markdown section, or nothing when no run recorded thread CPU time.
pub fn markdown(r: &Report) -> String {
    if r.thread_cpu.is_empty() {
        return String::new();
    }
    let mut o = format!("## Where the emulator's CPU time went\n\n{INTRO}\n\n");
    o.push_str(&table(&r.thread_cpu).markdown());
    o.push('\n');
    let warnings = warnings(&r.thread_cpu);
    for w in &warnings {
        o.push_str(&format!("- ⚠️ {w}\n"));
    }
    if !warnings.is_empty() {
        o.push('\n');
    }
    o
}

/// The HTML section, or nothing when no run recorded thread CPU time.
pub fn html(r: &Report) -> String {
    if r.thread_cpu.is_empty() {
        return String::new();
    }
    let mut o = format!(
        "<h2 id=\"thread-cpu\">Where the emulator's CPU time went</h2>\n<p>{}</p>\n",
        esc(INTRO)
    );
    o.push_str(&table(&r.thread_cpu).html());
    let warnings = warnings(&r.thread_cpu);
    if !warnings.is_empty() {
        o.push_str("<ul>\n");
        for w in warnings {
            o.push_str(&format!("<li class=\"bad\">{}</li>\n", esc(&w)));
        }
        o.push_str("</ul>\n");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{MgmtStormStats, ThreadCpu, ThreadKindCpu};

    fn kind(kind: ThreadKind, run_ms: u64, cpus: &str) -> ThreadKindCpu {
        ThreadKindCpu {
            kind,
            threads: 1,
            run_ns: run_ms * 1_000_000,
            cpu_ns: run_ms * 1_000_000,
            cpus_seen: CpuSet::parse(cpus).unwrap(),
            ..Default::default()
        }
    }

    /// One run: main loop ms, migration ms, and the migration's (MiB, elapsed ms).
    type Run = (u64, u64, Option<(u64, u64)>);

    /// The group of `runs`, each a 1 s window.
    fn group(runs: &[Run]) -> ThreadCpuGroup {
        let mut acc = Acc::default();
        for (i, (main, mig, migrate)) in runs.iter().enumerate() {
            let mut rec = crate::result::test_record();
            rec.name = format!("vcpu0.migrate.busy-poll.r{i}");
            rec.guests[0].thread_cpu = Some(ThreadCpu {
                window_ns: 1_000_000_000,
                samples: 10,
                process_cpu_ns: 0,
                kinds: vec![
                    kind(ThreadKind::Vcpu { vcpu: 1 }, 990, "1"),
                    kind(ThreadKind::MainLoop, *main, "0"),
                    kind(ThreadKind::Migration, *mig, "0"),
                ],
            });
            rec.migrate = migrate.map(|(mib, ms)| MigrateStats {
                max_bandwidth_mib_s: 32,
                bytes: mib << 20,
                elapsed_ms: ms,
                ..Default::default()
            });
            acc.add(&rec);
        }
        let mut g = acc.finish(&["vcpu0".into()]);
        assert_eq!(g.len(), 1);
        g.remove(0)
    }

    #[test]
    fn kinds_are_means_per_guest_run_and_shares_of_the_window() {
        let g = group(&[(100, 40, Some((32, 1_000))), (300, 60, Some((16, 1_000)))]);
        assert_eq!(g.guest_runs, 2);
        assert_eq!(g.window_ns, 1_000_000_000);
        let main = g
            .kinds
            .iter()
            .find(|k| k.kind == ThreadKind::MainLoop)
            .unwrap();
        assert_eq!((main.time_ns, main.window_ppm), (200_000_000, 200_000));
        let labels: Vec<String> = g.kinds.iter().map(|k| k.kind.label()).collect();
        assert_eq!(labels, ["vCPU 1", "main loop", "migration"]);
        assert_eq!(g.migrate_mib_s, Some(24.0));
        assert!(g.warnings.is_empty(), "{:?}", g.warnings);
        assert_eq!(cell(&g, &ThreadKind::MainLoop), "200 ms · 20.0 % · pCPU 0");
        assert_eq!(cell(&g, &ThreadKind::Worker), "–");
        assert_eq!(load(&g), "24.0 MiB/s of 32 (75 %)");
    }

    #[test]
    fn a_rate_far_below_max_bandwidth_is_warned_about() {
        let g = group(&[(100, 40, Some((10, 1_000)))]);
        assert_eq!(g.warnings.len(), 1);
        assert!(
            g.warnings[0].contains("10.0 MiB/s, 31 % of its max-bandwidth 32 MiB/s"),
            "{:?}",
            g.warnings
        );
        assert!(load(&g).ends_with("⚠️"));
    }

    #[test]
    fn failed_runs_and_runs_without_the_evidence_are_left_out() {
        let mut acc = Acc::default();
        let mut rec = crate::result::test_record();
        acc.add(&rec);
        assert!(
            acc.finish(&["vcpu0".into()]).is_empty(),
            "nothing recorded: no section"
        );
        let mut acc = Acc::default();
        rec.mgmt_storm = Some(MgmtStormStats {
            calls: 300,
            elapsed_ms: 1_000,
            ..Default::default()
        });
        rec.status = crate::result::RunStatus::failed(crate::result::Stage::Boot, "x");
        acc.add(&rec);
        assert!(acc.finish(&["vcpu0".into()]).is_empty());
        let mut acc = Acc::default();
        rec.status = crate::result::RunStatus::Ok;
        acc.add(&rec);
        let g = acc.finish(&["vcpu0".into()]);
        assert_eq!(g[0].storm_calls_per_s, Some(300.0));
        assert_eq!(g[0].guest_runs, 0);
        assert!(g[0].kinds.is_empty());
    }
}
