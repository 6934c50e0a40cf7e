//! What the report keeps of one run file once it has been folded in: its summary row
//! ([`RunSummary`]) and, for the placement diagram, its observed placement ([`LayoutView`]).

use std::collections::BTreeMap;

use super::accumulate::Acc;
use super::{GuestView, LayoutView, RunOutcome, RunSummary, VcpuKey};
use crate::result::{RunRecord, RunStatus, ThreadRole};
use crate::wire::ClockInfo;

/// The summary row of one run.
pub(crate) fn summary(
    rec: &RunRecord,
    file: &str,
    all: &Acc,
    per: &BTreeMap<VcpuKey, Acc>,
) -> RunSummary {
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
        variant: rec.variant.clone(),
        scenario: rec.scenario.clone(),
        workload: rec.workload,
        repetition: rec.repetition,
        accel: rec.accel,
        outcome: match &rec.status {
            RunStatus::Ok => RunOutcome {
                ok: true,
                stage: None,
                reason: None,
                failure: None,
            },
            RunStatus::Failed { stage, reason } => RunOutcome {
                ok: false,
                stage: Some(*stage),
                reason: Some(reason.clone()),
                failure: rec.failure.clone(),
            },
        },
        started_unix_ms: rec.started_unix_ms,
        duration_ms: rec.duration_ms,
        clocks: clocks(rec),
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

/// The distinct clocks of a run's final results, else of its agents' hellos.
pub(crate) fn clocks(rec: &RunRecord) -> Vec<ClockInfo> {
    let mut out: Vec<ClockInfo> = Vec::new();
    let results: Vec<ClockInfo> = rec
        .guests
        .iter()
        .flat_map(|g| g.results.iter().map(|r| r.clock))
        .collect();
    let from = if results.is_empty() {
        rec.guests
            .iter()
            .filter_map(|g| g.hello.as_ref().map(|h| h.facts.clock))
            .collect()
    } else {
        results
    };
    for c in from {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// The observed placement of a run's guests.
pub(crate) fn layout_view(rec: &RunRecord) -> LayoutView {
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
