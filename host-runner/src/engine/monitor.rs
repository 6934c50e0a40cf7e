//! The loop that watches every guest of a run until it ends: reads the agent channels, keeps
//! the deadlines (boot, then the host's own run deadline), places threads QEMU starts late,
//! reads the placement back while the agent measures, stops the disturbance when the results
//! are in, and notices a guest that exits early, floods its output or is interrupted.

use std::time::{Duration, Instant};

use pinlat::result::{HostSteal, NewThreadPlacement, RunRecord, RunStatus, Stage};
use pinlat::wire::Command;

use super::launch::SCAN_PERIOD_MS;
use super::live::{GuestEnd, LiveGuest, READ_CHUNK};
use super::tracer::RunTracer;
use super::RunContext;
use crate::disturb::{Disturbance, Outcome};
use crate::steal::StealSnapshot;

/// Loop period, ms.
const TICK: Duration = Duration::from_millis(20);
/// How often threads QEMU started since the last look are placed when a cpuset cgroup already
/// keeps them off the RT pCPUs (else every [`SCAN_PERIOD_MS`]).
const REPIN_EVERY: Duration = Duration::from_millis(100);
/// How often the vCPU threads are sampled and the placement is read back while measuring.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// How often the progress display is told how far the run has measured.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Runs the loop until every guest is done or the run fails (recorded in `record.status`).
/// Returns what the disturbance achieved. `started`: when the run began (a checkpoint's wall
/// time).
pub fn monitor(
    ctx: &RunContext<'_>,
    disturbance: &mut dyn Disturbance,
    live: &mut [LiveGuest],
    record: &mut RunRecord,
    mut tracer: Option<&mut RunTracer>,
    started: Instant,
) -> Outcome {
    let boot_deadline = Instant::now() + Duration::from_secs(ctx.config.run.boot_timeout_s);
    let mut stopped: Option<Outcome> = None;
    let mut run_deadline: Option<Instant> = None;
    // Every guest measures from the same moment: told to go once all have said hello.
    let mut go_at: Option<Instant> = None;
    // Host steal time from the first hello until every guest has sent its results.
    let mut steal_from: Option<(Instant, Option<StealSnapshot>)> = None;
    let mut steal_to: Option<(Instant, Option<StealSnapshot>)> = None;
    let mut last_repin = Instant::now();
    let mut last_sample = Instant::now();
    let mut last_progress = Instant::now();
    let mut buf = Vec::with_capacity(READ_CHUNK);
    // Without a cpuset cgroup holding QEMU's threads, new ones are looked for every 10 ms.
    let scanning = live.iter().any(|g| {
        matches!(
            g.record.new_thread_placement,
            Some(NewThreadPlacement::Scan { .. })
        )
    });
    let repin_every = if scanning {
        Duration::from_millis(SCAN_PERIOD_MS)
    } else {
        REPIN_EVERY
    };
    let tick = TICK.min(repin_every);
    'outer: loop {
        if let Some(sig) = (ctx.interrupted)() {
            // Everything the agents wrote until now is kept: read it before stopping.
            for g in live.iter_mut() {
                let _ = g.pump(&mut buf);
            }
            let measured = super::checkpoint::measured_ns(live);
            record.status = RunStatus::failed(
                Stage::Interrupted,
                if measured > 0 {
                    format!(
                        "{sig} received: the run was stopped after {} s of measurement; what it measured is kept",
                        measured / 1_000_000_000
                    )
                } else {
                    format!("{sig} received: the run was stopped")
                },
            );
            break;
        }
        for g in live.iter_mut() {
            if let Err(e) = g.pump(&mut buf) {
                record.status =
                    RunStatus::failed(Stage::Collect, format!("reading the agent channel: {e}"));
                break 'outer;
            }
        }
        match tracer.as_deref_mut() {
            Some(t) => t.tick(live),
            None => live.iter_mut().for_each(|g| g.arrived.clear()),
        }
        if go_at.is_none() && live.iter().all(|g| g.hello_at.is_some()) {
            for g in live.iter_mut() {
                if let Err(e) = g.backend.send(&Command::Go) {
                    record.status = RunStatus::failed(
                        Stage::Collect,
                        format!("telling guest {} to go: {e}", g.record.guest),
                    );
                    break 'outer;
                }
            }
            disturbance.measuring();
            if let Some(cp) = ctx.checkpoints {
                cp.measuring();
            }
            let now = Instant::now();
            go_at = Some(now);
            steal_from = Some((now, StealSnapshot::now()));
            // The run deadline counts from the go and is the host's own: twice the configured
            // preheat + duration plus the slack (30 s), never what a guest claims.
            let planned = live.iter().map(|g| g.expect.planned_ns).max().unwrap_or(0);
            run_deadline =
                Some(now + Duration::from_nanos(planned.saturating_mul(2)) + ctx.deadline_slack);
        }
        for g in live.iter() {
            if let Some(why) = g.output_too_large() {
                record.status = RunStatus::failed(Stage::Collect, why);
                break 'outer;
            }
        }

        // The run so far, for a soak's report and progress.
        if go_at.is_some() {
            let measuring = !live.iter().all(LiveGuest::finished);
            if let Some(cp) = ctx.checkpoints.filter(|c| measuring && c.due()) {
                cp.write(record, live, started);
            }
            if last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                (ctx.progress)(super::checkpoint::measured_ns(live));
            }
        }

        // Periodic host-side work.
        if last_repin.elapsed() >= repin_every {
            last_repin = Instant::now();
            for g in live.iter_mut().filter(|g| !g.done) {
                if let Some(p) = g.backend.pinner() {
                    if let Err(e) = p.pin_new_threads() {
                        record.status = RunStatus::failed(
                            Stage::Pin,
                            format!("placing new QEMU threads: {:#}", anyhow::Error::new(e)),
                        );
                        break 'outer;
                    }
                }
            }
        }
        if last_sample.elapsed() >= SAMPLE_EVERY {
            last_sample = Instant::now();
            // Until its results are in, every guest's placement is read back and judged (drift
            // anywhere fails the run); while the agent measures, its vCPU threads are sampled.
            for g in live.iter_mut() {
                if !g.finished() {
                    g.check_placement();
                    if g.record.hello.is_some() {
                        g.sample_vcpus();
                    }
                }
            }
        }

        // The disturbance is for the measurement: once every guest has sent its results, it
        // stops, so it never competes with the guests' power-off. (Seen in CI: QMP polling
        // through the shutdown kept a guest from exiting for the full 10 s wait.)
        if live.iter().all(LiveGuest::finished) {
            if stopped.is_none() {
                stopped = Some(disturbance.stop());
            }
            if steal_to.is_none() {
                steal_to = Some((Instant::now(), StealSnapshot::now()));
            }
        }

        // Ends: success, agent errors, QEMU gone, deadlines.
        if live.iter().all(|g| g.done) {
            break;
        }
        for g in live.iter_mut() {
            if g.done {
                continue;
            }
            if let Some(status) = g.backend.exited() {
                // What the agent wrote before QEMU exited is on disk: read all of it before
                // deciding, so a result written just before a power-off is not lost.
                let _ = g.pump(&mut buf);
                if g.done {
                    continue;
                }
                // An agent that reported an error powers off without `done`: its error is the
                // cause, not the exit that follows it.
                if !g.record.agent_errors.is_empty() {
                    break 'outer;
                }
                record.status = RunStatus::failed(
                    Stage::Measure,
                    format!(
                        "QEMU for guest {} exited ({status}) before the agent finished; console last showed: {}",
                        g.record.guest,
                        g.backend.console_tail()
                    ),
                );
                g.end = Some(GuestEnd::QemuExited(status));
                break 'outer;
            }
        }
        let now = Instant::now();
        if let Some(g) = live.iter_mut().find(|g| g.record.hello.is_none()) {
            if now >= boot_deadline {
                g.end = Some(GuestEnd::BootDeadline(ctx.config.run.boot_timeout_s));
                record.status = RunStatus::failed(
                    Stage::Boot,
                    format!(
                        "boot deadline: no agent hello from guest {} within {} s (run.boot_timeout_s); console last showed: {}",
                        g.record.guest,
                        ctx.config.run.boot_timeout_s,
                        g.backend.console_tail()
                    ),
                );
                break;
            }
        }
        if let Some(d) = run_deadline {
            if now >= d {
                let secs = go_at.map_or(0, |g| d.saturating_duration_since(g).as_secs());
                let tail = match live.iter_mut().find(|g| !g.done) {
                    Some(g) => {
                        g.end = Some(GuestEnd::RunDeadline(secs));
                        g.backend.console_tail()
                    }
                    None => String::new(),
                };
                record.status = RunStatus::failed(
                    Stage::Measure,
                    format!(
                        "run deadline: the agent did not finish within twice its preheat + duration + {} s; console last showed: {tail}",
                        ctx.deadline_slack.as_secs()
                    ),
                );
                break;
            }
        }
        std::thread::sleep(tick);
    }

    let steal_to = steal_to.unwrap_or_else(|| (Instant::now(), StealSnapshot::now()));
    if let (Some((t0, Some(a))), (t1, Some(b))) = (&steal_from, &steal_to) {
        record.host_steal = Some(HostSteal {
            window_ms: t1.saturating_duration_since(*t0).as_millis() as u64,
            per_cpu_ns: b.all_since(a),
        });
    }
    stopped.unwrap_or_else(|| disturbance.stop())
}
