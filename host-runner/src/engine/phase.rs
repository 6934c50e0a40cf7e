//! One guest boot and the measurements it serves ([`super::boots`] plans them): each phase is
//! a run of its own — its record, placement read back at its start, disturbance, tracer,
//! window and deadlines — in guests that stay up between phases (README "One boot, many
//! measurements").
//!
//! The first phase launches the guests (paused, pinned, verified) and releases them; its agent
//! config is in the initramfs. Each later phase re-verifies every thread's placement, sends the
//! agents the phase's config ([`Command::Phase`]) and measures as the first did, from their
//! hello on. After the last phase the agents are told to quit and the guests are gone before
//! its record is final. A phase that fails ends its boot: the guests are stopped, its record
//! says why, and the phases the boot had left run in a new boot, never dropped.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use pinlat::agentcfg::AgentConfig;
use pinlat::config::variant::Variant;
use pinlat::config::Workload;
use pinlat::result::{
    BootPhase, GuestRun, RunRecord, RunStatus, Stage, Warning, RUN_SCHEMA_VERSION,
};
use pinlat::wire::Command;

use super::backend::GuestBackend;
use super::boots::{BootPlan, PhasePlan};
use super::live::LiveGuest;
use super::{
    channel, finish, housekeeping_cpus, live_guest, monitor, tracer, LaunchRequest, RunContext,
};
use crate::disturb::{self, Disturbance, Targets};
use crate::store::unix_ms;

/// Test-only: a run of this name gets an RT CPU its guest does not have, so its agent reports
/// an error and powers off: how the boot tests make one phase of a shared boot fail. Never set
/// it otherwise.
pub const TEST_PHASE_FAULT_ENV: &str = "PINLAT_TEST_PHASE_FAULT";

/// What a phase inherits from the boot: the guests, running and waiting for a command.
pub struct Booted {
    guests: Vec<BootGuest>,
    /// The launch's warnings (SCHED_FIFO refused), which hold for every phase.
    warnings: Vec<Warning>,
}

struct BootGuest {
    backend: Box<dyn GuestBackend>,
    /// The guest's record as launched: QEMU pid, console log, new-thread placement, libvirt.
    launched: GuestRun,
    /// The kernel modules its initramfs brought (every phase's config names them).
    modules: Vec<String>,
    released: Option<Instant>,
}

/// The agent config of guest `index` (of the config) for one phase, every phase of a boot alike: the variant's
/// sysctls too (the agent writes them once, at boot; later phases' configs and hellos say what
/// the boot runs under).
fn agent_for(
    ctx: &RunContext<'_>,
    run: &str,
    variant: Option<&Variant>,
    workload: &Workload,
    index: usize,
    disturbance: &dyn Disturbance,
    phase: Option<u32>,
) -> AgentConfig {
    let guest = &ctx.config.guests[index];
    let mut agent =
        crate::agent::agent_config(guest, workload, ctx.duration_ms, ctx.config.run.interval_ms);
    agent.sysctls = crate::agent::sysctls(variant);
    agent.wait_for_go = true;
    agent.phase = phase;
    disturbance.prepare_agent(index, &mut agent);
    if std::env::var_os(TEST_PHASE_FAULT_ENV).is_some_and(|v| v == run) {
        eprintln!(
            "pinlat: {TEST_PHASE_FAULT_ENV} is set (a test hook): run {run} asks guest {} to measure on CPU {}, which it does not have",
            guest.name, guest.vcpus
        );
        agent.rt_cpus.push(guest.vcpus);
    }
    agent
}

/// Measures every phase of `boot`, rebooting for the phases a failed one left. `on_start` is
/// told each run's name as it starts; `on_end` gets each record the moment it is final and
/// may stop the session (`Break`, e.g. the record could not be written). Stops after the run
/// in progress when the user asked to (SIGINT/SIGTERM).
pub fn execute_boot(
    ctx: &RunContext<'_>,
    boot: &BootPlan<'_>,
    on_start: &mut dyn FnMut(&str),
    on_end: &mut dyn FnMut(RunRecord) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let shared = boot.boot_per == pinlat::kinds::BootPer::Repetition;
    let mut next = 0;
    let mut reboot_after: Option<String> = None;
    while next < boot.phases.len() {
        let first = next;
        let boot_id = boot.run_name(first);
        let mut booted: Option<Booted> = None;
        let mut started = Instant::now();
        for i in first..boot.phases.len() {
            let name = boot.run_name(i);
            on_start(&name);
            let phase = (i - first) as u32;
            let last = i + 1 == boot.phases.len();
            let (mut record, kept, ended) = run_phase(
                ctx,
                boot,
                i,
                booted.take(),
                shared.then_some(phase),
                last,
                started,
            );
            record.boot = Some(BootPhase {
                boot_per: boot.boot_per,
                boot_id: boot_id.clone(),
                phase,
                phases: (boot.phases.len() - first) as u32,
                order_seed: boot.order_seed,
                reboot_after: reboot_after.clone(),
            });
            let failed = !record.status.is_ok();
            next = i + 1;
            let flow = on_end(record);
            if flow.is_break() || (ctx.interrupted)().is_some() {
                if let Some(b) = kept {
                    end_boot(b);
                }
                return ControlFlow::Break(());
            }
            if failed {
                if next < boot.phases.len() {
                    reboot_after = Some(name);
                }
                break;
            }
            booted = kept;
            started = ended;
        }
    }
    ControlFlow::Continue(())
}

/// Stops guests that wait for a command: quit, a short wait for the power-off, then kill.
fn end_boot(b: Booted) {
    for mut g in b.guests {
        stop_guest(g.backend.as_mut(), true, true);
    }
}

/// Stops one guest: `quit` tells a shared boot's agent to power off, `wait` gives a guest
/// that is done [`QUIT_GRACE`] to exit; then it is killed whatever it did.
fn stop_guest(backend: &mut dyn GuestBackend, quit: bool, wait: bool) {
    if quit {
        let _ = backend.send(&Command::Quit);
    }
    if wait {
        backend.wait_exit(Instant::now() + QUIT_GRACE);
    }
    backend.kill();
}

/// How long a guest that is done (or told to quit) has to power off before it is killed.
const QUIT_GRACE: Duration = Duration::from_secs(10);

/// The record of a run before it starts.
fn new_record(
    ctx: &RunContext<'_>,
    boot: &BootPlan<'_>,
    p: PhasePlan<'_>,
    name: String,
    started: Instant,
) -> RunRecord {
    RunRecord {
        schema_version: RUN_SCHEMA_VERSION,
        run_id: ctx.run_id.clone(),
        name,
        layout: boot.layout.name.clone(),
        layout_kind: boot.layout.kind,
        variant: boot.variant.map(|v| v.name.clone()),
        scenario: p.scenario.name.clone(),
        scenario_kinds: p.scenario.kinds.clone(),
        workload: p.workload.kind,
        repetition: boot.repetition,
        accel: ctx.accel,
        status: RunStatus::Ok,
        failure: None,
        started_unix_ms: unix_ms().saturating_sub(started.elapsed().as_millis() as u64),
        wall_ms: 0,
        duration_ms: ctx.duration_ms,
        guests: boot
            .layout
            .guests
            .iter()
            .cloned()
            .map(GuestRun::new)
            .collect(),
        mgmt_poll: None,
        warnings: Vec::new(),
        host_steal: None,
        runner_max_rss_kib: None,
        mgmt_storm: None,
        migrate: None,
        host_trace: None,
        host_knobs: ctx.host_knobs.borrow().clone(),
        boot: None,
    }
}

/// Runs phase `i` of `boot`: in `booted`'s guests, or in guests it launches. `phase`: its index
/// in a shared boot (`None`: a boot per measurement). Returns its record, the guests when the
/// boot goes on (not after the last phase, a failure or an interruption), and when its wall
/// time ended (the next phase's starts there, so the harness's time between phases is
/// counted).
fn run_phase(
    ctx: &RunContext<'_>,
    boot: &BootPlan<'_>,
    i: usize,
    booted: Option<Booted>,
    phase: Option<u32>,
    last: bool,
    started: Instant,
) -> (RunRecord, Option<Booted>, Instant) {
    let layout = boot.layout;
    let p = boot.phases[i];
    let (scenario, workload) = (p.scenario, p.workload);
    let name = boot.run_name(i);
    let mut record = new_record(ctx, boot, p, name.clone(), started);
    let mut disturbance = disturb::for_scenario(scenario, ctx.config.run.launcher);
    let fresh = booted.is_none();

    let mut live: Vec<LiveGuest> = Vec::new();
    let launch_warnings;
    let mut launched: Vec<GuestRun> = Vec::new();
    match booted {
        None => {
            // Launch every guest paused and pinned; stop at the first failure.
            for (gi, placement) in layout.guests.iter().enumerate() {
                let guest = &ctx.config.guests[gi];
                let agent = agent_for(
                    ctx,
                    &name,
                    boot.variant,
                    workload,
                    gi,
                    disturbance.as_ref(),
                    phase,
                );
                let req = LaunchRequest {
                    run: &name,
                    scenario: &scenario.name,
                    index: gi,
                    layout,
                    variant: boot.variant,
                    guest,
                    placement,
                    agent,
                    result_dir: &ctx.result_dir,
                    disturbance: disturbance.as_ref(),
                    agent_log_bytes: if ctx.soak {
                        channel::SOAK_LOG_BYTES
                    } else {
                        u64::MAX
                    },
                };
                let mut gr = record.guests[gi].clone();
                let l = ctx.launcher.launch(req, &mut gr, &mut record.warnings);
                record.guests[gi] = gr.clone();
                match l {
                    Ok(l) => {
                        launched.push(gr.clone());
                        live.push(live_guest(ctx, l.backend, gr, workload, guest, l.agent));
                    }
                    Err(status) => {
                        record.status = status;
                        break;
                    }
                }
            }
            launch_warnings = record.warnings.clone();
        }
        Some(b) => {
            launch_warnings = b.warnings;
            record.warnings.extend(launch_warnings.iter().cloned());
            let when = format!("at the start of phase {}", phase.unwrap_or_default());
            for (gi, mut bg) in b.guests.into_iter().enumerate() {
                let guest = &ctx.config.guests[gi];
                let mut agent = agent_for(
                    ctx,
                    &name,
                    boot.variant,
                    workload,
                    gi,
                    disturbance.as_ref(),
                    phase,
                );
                agent.modules = bg.modules.clone();
                let mut gr = bg.launched.clone();
                // Placement proven again before this phase measures.
                if record.status.is_ok() {
                    if let Some(pinner) = bg.backend.pinner() {
                        match super::launch::verified(pinner, &when) {
                            Ok(t) => gr.observed_start = t,
                            Err(status) => record.status = status,
                        }
                    }
                }
                launched.push(bg.launched);
                let mut g = live_guest(ctx, bg.backend, gr, workload, guest, agent);
                g.released = bg.released;
                g.from = super::live::PhaseStart::of(g.backend.as_ref());
                live.push(g);
            }
        }
    }

    // The RT pCPUs are traced from before the guests are released (or told to go on).
    let mut tracer = record.status.is_ok().then(|| {
        tracer::RunTracer::start(
            ctx.trace,
            layout,
            &name,
            ctx.config.budgets.get(&workload.kind),
            ctx.accel,
            &mut record.warnings,
        )
    });

    if record.status.is_ok() {
        for g in live.iter_mut() {
            if fresh {
                // Release every guest together.
                if let Err(e) = g.backend.resume() {
                    record.status =
                        RunStatus::failed(Stage::Qmp, format!("{:#}", anyhow::Error::new(e)));
                    break;
                }
                g.released = Some(Instant::now());
                if let Some(p) = g.backend.pinner() {
                    p.released();
                }
            } else if let Err(e) = g.backend.send(&Command::Phase {
                config: g.sent.clone(),
            }) {
                record.status = RunStatus::failed(
                    Stage::Collect,
                    format!("sending guest {} its phase: {e}", g.record.guest),
                );
                break;
            }
        }
    }
    if record.status.is_ok() {
        let targets = Targets {
            mgmt_sockets: live.iter().map(|g| g.backend.mgmt_socket()).collect(),
            libvirt: live.iter().map(|g| g.backend.libvirt_domain()).collect(),
            housekeeping_cpus: housekeeping_cpus(ctx.plan, layout),
            names: live.iter().map(|g| g.record.guest.clone()).collect(),
        };
        match disturbance.start(&targets) {
            Ok(()) => {
                let outcome = monitor::monitor(
                    ctx,
                    disturbance.as_mut(),
                    &mut live,
                    &mut record,
                    tracer.as_mut(),
                    started,
                );
                finish::apply_outcome(outcome, &mut live, &mut record);
            }
            Err(e) => {
                record.status =
                    RunStatus::failed(Stage::Scenario, format!("{:#}", anyhow::Error::new(e)));
            }
        }
    }
    if let Some(t) = tracer.as_mut() {
        t.stop(&mut record.warnings);
    }
    finish::judge_guests(&mut live, &mut record);

    // The boot goes on only after a phase that measured, when phases are left.
    let keep = !last
        && phase.is_some()
        && record.status.is_ok()
        && live.len() == layout.guests.len()
        && (ctx.interrupted)().is_none();
    if !keep {
        // Every guest must be gone before the record is final.
        for g in &mut live {
            stop_guest(g.backend.as_mut(), g.done && phase.is_some(), g.done);
            g.record.boot_to_exit_ms = Some(g.backend.started().elapsed().as_millis() as u64);
        }
    }
    finish::explain(&live, &mut record);
    let carried: Vec<(Vec<String>, Option<Instant>)> = live
        .iter()
        .map(|g| (g.sent.modules.clone(), g.released))
        .collect();
    let backends = finish::collect_guests(live, &mut record);
    record.wall_ms = started.elapsed().as_millis() as u64;
    let ended = Instant::now();
    // The trace is read after the guests are gone or waiting (not part of the run's wall
    // time, but of the next phase's), and before the runner's peak memory is taken.
    if let Some(t) = tracer {
        t.finish(&mut record, &ctx.result_dir);
    }
    record.runner_max_rss_kib = pinlat::host::peak_rss_kib();
    let kept = keep.then(|| Booted {
        guests: backends
            .into_iter()
            .zip(launched)
            .zip(carried)
            .map(|((backend, launched), (modules, released))| BootGuest {
                backend,
                launched,
                modules,
                released,
            })
            .collect(),
        warnings: launch_warnings,
    });
    (record, kept, ended)
}
