//! Finishing a run's record once its guests are stopped: the disturbance's outcome, the
//! warnings each guest earned (refused messages, bad frames, dropped intervals), and the last
//! judgements that can fail a run that otherwise ended well (agent errors, missing results,
//! placement that changed during the run).

use pinlat::result::{RunRecord, RunStatus, Stage, Warning};

use super::live::LiveGuest;
use crate::disturb::Outcome;

/// Judges what the guests left behind while their processes still exist (the placement can
/// still be read): fails the run for agent errors, missing results or a changed placement.
pub fn judge_guests(live: &mut [LiveGuest], record: &mut RunRecord) {
    for g in live.iter_mut() {
        if g.record.observed_end.is_empty() {
            if let Some(Ok(t)) = g.backend.pinner().map(|p| p.observe()) {
                g.record.observed_end = t;
            }
        }
        if !g.record.agent_errors.is_empty() && record.status.is_ok() {
            record.status = RunStatus::failed(
                Stage::Agent,
                format!(
                    "the agent in guest {} reported: {}",
                    g.record.guest,
                    g.record
                        .agent_errors
                        .iter()
                        .map(|e| e.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            );
        }
        if record.status.is_ok() && g.record.results.len() < g.finals_expected {
            record.status = RunStatus::failed(
                Stage::Collect,
                format!(
                    "guest {} sent {} final results, expected {}{}",
                    g.record.guest,
                    g.record.results.len(),
                    g.finals_expected,
                    if g.refused > 0 {
                        format!(
                            " ({} implausible messages refused: {})",
                            g.refused,
                            g.refused_reasons.join("; ")
                        )
                    } else {
                        String::new()
                    }
                ),
            );
        }
    }
    if record.status.is_ok() {
        let mismatches: Vec<String> = live
            .iter_mut()
            .flat_map(|g| {
                let observed = g.record.observed_end.clone();
                let pinner = g.backend.pinner();
                observed
                    .into_iter()
                    .filter(|t| {
                        !t.matches() && !pinner.as_ref().is_some_and(|p| p.is_degraded_only(t))
                    })
                    .collect::<Vec<_>>()
            })
            .map(|t| {
                format!(
                    "thread {} ({}) on CPUs {} {}:{}, planned {} {}",
                    t.tid, t.comm, t.cpus, t.policy, t.priority, t.planned_cpus, t.planned_sched
                )
            })
            .collect();
        if !mismatches.is_empty() {
            record.status = RunStatus::failed(
                Stage::Verify,
                format!(
                    "placement changed during the run: {}",
                    mismatches.join("; ")
                ),
            );
        }
    }
}

/// Records what the disturbance did: its counters, its warnings, and its problem, which fails
/// a run that was otherwise fine and is a warning on one that already failed.
pub fn apply_outcome(outcome: Outcome, live: &mut [LiveGuest], record: &mut RunRecord) {
    record.mgmt_poll = outcome.mgmt_poll;
    for (g, stats) in live.iter_mut().zip(outcome.per_guest_mgmt_poll) {
        g.record.mgmt_poll = stats;
    }
    record.warnings.extend(outcome.warnings);
    if let Some(p) = outcome.problem {
        if record.status.is_ok() {
            record.status = RunStatus::failed(Stage::Scenario, p);
        } else {
            record.warnings.push(Warning::Disturbance { problem: p });
        }
    }
}

/// Moves each guest's record into the run record, with the warnings it earned.
pub fn collect_guests(live: Vec<LiveGuest>, record: &mut RunRecord) {
    for (i, g) in live.into_iter().enumerate() {
        let mut gr = g.record;
        gr.frames = *g.decoder.stats();
        if g.dropped_intervals > 0 {
            record.warnings.push(Warning::IntervalsDropped {
                guest: gr.guest.clone(),
                dropped: g.dropped_intervals,
                expected: g.max_intervals,
            });
        }
        if g.refused > 0 {
            record.warnings.push(Warning::MessagesRefused {
                guest: gr.guest.clone(),
                count: g.refused,
                reasons: g.refused_reasons.clone(),
            });
        }
        if gr
            .results
            .iter()
            .any(|r| r.cpu_dma_latency_held == Some(false))
        {
            record.warnings.push(Warning::CpuDmaLatencyNotHeld {
                guest: gr.guest.clone(),
            });
        }
        if gr.frames.rejected() > 0 {
            record.warnings.push(Warning::FramesRejected {
                guest: gr.guest.clone(),
                stats: gr.frames,
            });
        }
        record.guests[i] = gr;
    }
}
