//! Finishing a run's record once its guests are stopped: the disturbance's outcome, the
//! warnings each guest earned (refused messages, bad frames, dropped intervals), and the last
//! judgements that can fail a run that otherwise ended well (agent errors, missing results,
//! placement that changed during the run).

use pinlat::result::{MeasureWindow, RunRecord, RunStatus, Stage, Warning};

use pinlat::console::{Console, FailureCause, GuestFacts};

use super::live::{GuestEnd, LiveGuest};

/// A stretch without a placement read-back this long is warned about, ms (read-backs are every
/// 100 ms; a loaded machine delays them by tens of ms, a starved runner by whole seconds).
const UNOBSERVED_MS: u64 = 500;
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
        if let Some((gap_ms, from_ms)) = g.drift.longest_gap() {
            if gap_ms >= UNOBSERVED_MS {
                record.warnings.push(Warning::PlacementUnobserved {
                    guest: g.record.guest.clone(),
                    gap_ms,
                    from_ms,
                });
            }
        }
        g.record.drift = std::mem::take(&mut g.drift).finish();
        if let Some(p) = g.backend.pinner() {
            g.record.new_threads = p.new_threads().to_vec();
        }
        let mut drifted: Vec<String> = g.record.drift.iter().map(super::drift::describe).collect();
        drifted.extend(super::drift::migrated_while_pinned(
            &g.record.planned,
            &g.record.vcpu_stats,
        ));
        if record.status.is_ok() && !drifted.is_empty() {
            record.status = RunStatus::failed(
                Stage::Verify,
                format!(
                    "placement drifted during the run in guest {}: {}",
                    g.record.guest,
                    drifted.join("; ")
                ),
            );
        }
        if let (n @ 1.., Some(first)) = &g.read_errors {
            record.warnings.push(Warning::PlacementUnreadable {
                guest: g.record.guest.clone(),
                count: *n,
                first: first.clone(),
            });
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
    record.mgmt_storm = outcome.mgmt_storm;
    for (g, stats) in live.iter_mut().zip(outcome.per_guest_mgmt_storm) {
        g.record.mgmt_storm = stats;
    }
    record.migrate = outcome.migrate;
    for (g, stats) in live.iter_mut().zip(outcome.per_guest_migrate) {
        g.record.migrate = stats;
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

/// Uncertainty of mapping the guest's clock to the host's, ms: the hello is read at most one
/// monitor tick after it arrives, plus its transfer.
const WINDOW_UNCERTAINTY_MS: u64 = 25;

/// The guest's measurement window in the host's time: its results' recording window, in the
/// guest's `CLOCK_MONOTONIC`, moved by the offset between the guest's clock when it sent its
/// hello and the host's when the hello arrived.
fn host_window(g: &LiveGuest) -> Option<MeasureWindow> {
    let sent = g.record.hello.as_ref()?.sent_mono_ns?;
    let arrived = g.hello_mono_ns?;
    let start = g
        .record
        .results
        .iter()
        .filter_map(|r| r.start_mono_ns)
        .min()?;
    let end = g
        .record
        .results
        .iter()
        .filter_map(|r| r.end_mono_ns)
        .max()?;
    let to_host = |t: u64| (t as i128 - sent as i128 + arrived as i128).max(0) as u64;
    // The host's CLOCK_MONOTONIC to Unix time, read now.
    let unix_minus_mono_ns =
        crate::store::unix_ms() as i128 * 1_000_000 - pinlat::host::monotonic_ns() as i128;
    let unix_ms = |mono: u64| ((mono as i128 + unix_minus_mono_ns) / 1_000_000).max(0) as u64;
    Some(MeasureWindow {
        start_unix_ms: unix_ms(to_host(start)),
        end_unix_ms: unix_ms(to_host(end)),
        uncertainty_ms: WINDOW_UNCERTAINTY_MS,
    })
}

/// Moves each guest's record into the run record, with the warnings it earned. Returns the
/// guests themselves, in order (a shared boot's next phase measures in them).
pub fn collect_guests(
    live: Vec<LiveGuest>,
    record: &mut RunRecord,
) -> Vec<Box<dyn super::backend::GuestBackend>> {
    let mut backends = Vec::with_capacity(live.len());
    for (i, g) in live.into_iter().enumerate() {
        let window = host_window(&g);
        let net_echo = g.net_echo();
        let asked = [
            (pinlat::wire::LoadKind::Io, g.sent.loads.io.is_some()),
            (pinlat::wire::LoadKind::Net, g.sent.loads.net.is_some()),
        ];
        let mut gr = g.record;
        // The agent's final result holds every sample of its vCPU: the series' running
        // histogram is only kept where that result did not arrive (an interrupted run).
        for s in &mut gr.series {
            if gr.results.iter().any(|r| r.cpu == s.cpu) {
                s.merged = None;
            }
        }
        gr.net_echo = net_echo;
        gr.window = window;
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
        if record.status.is_ok() {
            for (load, on) in asked {
                if on && !gr.loads.iter().any(|l| l.load == load) {
                    record.warnings.push(Warning::LoadMissing {
                        guest: gr.guest.clone(),
                        load,
                    });
                }
            }
        }
        record.warnings.extend(
            gr.loads
                .iter()
                .filter_map(|l| pinlat::result::load_below_rate(&gr.guest, l)),
        );
        record.guests[i] = gr;
        backends.push(g.backend);
    }
    backends
}

/// Explains a failed run from the guests' consoles once every guest is gone (the console is
/// complete): the cause is classified ([`pinlat::console`]), kept in the record with the lines
/// that prove it, and sets the real stage (`boot` when no hello came). The stall, lockup and
/// oops reports of guests that lived are warnings on the run. A run that failed on the host's
/// own verdict (placement, scenario, collection) keeps its status.
pub fn explain(live: &[LiveGuest], record: &mut RunRecord) {
    let guest_stage = match &record.status {
        RunStatus::Failed { stage, .. } => {
            matches!(stage, Stage::Boot | Stage::Measure | Stage::Agent)
        }
        RunStatus::Ok => false,
    };
    let culprit = live
        .iter()
        .position(|g| g.end.is_some())
        .or_else(|| live.iter().position(|g| !g.record.agent_errors.is_empty()));
    for (i, g) in live.iter().enumerate() {
        let console = Console::scan(&g.console());
        if guest_stage && Some(i) == culprit {
            let facts = GuestFacts {
                hello: g.record.hello.is_some(),
                agent_errors: g
                    .record
                    .agent_errors
                    .iter()
                    .map(|e| e.message.clone())
                    .collect(),
                qemu_exit: match &g.end {
                    Some(GuestEnd::QemuExited(s)) => Some(s.clone()),
                    _ => None,
                },
                host_failure: None,
                deadline_s: match g.end {
                    Some(GuestEnd::BootDeadline(s) | GuestEnd::RunDeadline(s)) => Some(s),
                    _ => None,
                },
            };
            let cause = console.classify(&facts);
            if let RunStatus::Failed { stage, reason } = &mut record.status {
                if let Some(st) = cause.stage() {
                    *stage = st;
                }
                // What the console proves comes first; the host's own account stays.
                if matches!(
                    cause,
                    FailureCause::KernelPanic { .. }
                        | FailureCause::Oops { .. }
                        | FailureCause::Stall { .. }
                ) {
                    *reason = format!("guest {}: {cause}; {reason}", g.record.guest);
                }
            }
            let covered = matches!(
                cause,
                FailureCause::Oops { .. } | FailureCause::Stall { .. }
            );
            record.failure = Some(cause);
            if covered {
                continue;
            }
        }
        for report in console.warnings() {
            record.warnings.push(Warning::GuestKernel {
                guest: g.record.guest.clone(),
                report,
            });
        }
    }
}
