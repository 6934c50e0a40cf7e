//! `pinlat run`: the matrix layout × variant × scenario × workload × repetition, one run at a
//! time, in boots shared by a repetition's runs or one per run (`run.boot_per`).
//!
//! Order of work: check the config and plan (exit 2 on any problem), find QEMU, the guest
//! kernel and the static agent, create and prove writable the results directory (exit 3),
//! settle the accelerator (for `auto`, one short KVM boot probe per invocation), try every
//! variant's host knobs on this host (exit 2 for one it cannot set; `tuning/`), write
//! `plan.json` and `host.json`, then run, setting each variant's host knobs before its runs
//! and restoring them after. Each run's raw result is written atomically the
//! moment it ends; a failed run is recorded and the matrix goes on.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Duration;

use pinlat::config::Config;
use pinlat::kinds::{Accel, AccelChoice};
use pinlat::plan::Plan;
use pinlat::result::{SERIES_MAX_POINTS, TCG_DISCLAIMER};
use pinlat::schema::{PlanFile, HOST_FILE, HOST_SCHEMA_VERSION, PLAN_FILE, PLAN_SCHEMA_VERSION};
use serde::Serialize;

use crate::agent::find_agent;
use crate::doctor::{run_checks, Env, ExternalFacts, Found, KvmProbe, SysRoot, DOCTOR_FILE};
use crate::engine::checkpoint::{Checkpoints, DEFAULT_REPORT_EVERY};
use crate::engine::launch::QemuLauncher;
use crate::engine::{self, RunContext};
use crate::exit::{Exit, Failure, HostError, OptionError};
use crate::hostfacts::{self, HostFacts};
use crate::kernel::KernelSearch;
use crate::progress::{Progress, LINE_EVERY};
use crate::qemu::QemuBinary;
use crate::store::{new_run_id, ResultDir};
use pinlat::kinds::LauncherKind;

/// Options of `pinlat run` that override the config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The config file.
    pub config: PathBuf,
    /// Parent of `<run-id>/`; default `reports`.
    pub out: PathBuf,
    /// Overrides `run.duration_s`, seconds.
    pub duration_s: Option<u64>,
    /// `--soak`: keep only the bounded interval series, bound the host trace, and rebuild the
    /// report while running (every [`DEFAULT_REPORT_EVERY`] unless `report_every_s` says).
    /// A run of more than [`pinlat::result::FULL_INTERVALS_MAX`] intervals is a soak anyway.
    pub soak: bool,
    /// `--report-every`, seconds: checkpoint the running run and rebuild the report this often.
    pub report_every_s: Option<u64>,
    /// Only these layouts (by name).
    pub layouts: Option<Vec<String>>,
    /// Overrides `run.accel`.
    pub accel: Option<AccelChoice>,
    /// Guest kernel, overriding the search.
    pub kernel: Option<PathBuf>,
    /// Repetitions override.
    pub repetitions: Option<u32>,
    /// Fail runs whose RT vCPU threads cannot get SCHED_FIFO.
    pub strict: bool,
    /// `--no-trace`: do not trace the RT pCPUs.
    pub no_trace: bool,
    /// `--trace-threshold`, ns.
    pub trace_threshold_ns: Option<u64>,
    /// Overrides `run.launcher`.
    pub launcher: Option<LauncherKind>,
    /// Overrides `run.boot_per`.
    pub boot_per: Option<pinlat::kinds::BootPer>,
    /// Overrides `run.order_seed`.
    pub order_seed: Option<u64>,
}

/// How a matrix ended when not every run measured (exit 3).
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    /// SIGINT or SIGTERM.
    #[error("interrupted by {signal}: every QEMU was stopped; the finished runs and their report are in {}", dir.display())]
    Interrupted {
        /// The signal's name.
        signal: &'static str,
        /// The results directory.
        dir: PathBuf,
    },
    /// Some runs failed.
    #[error("{failed} of {total} runs failed (see runs/*.json status and console/ logs in {})", dir.display())]
    RunsFailed {
        /// Failed runs.
        failed: usize,
        /// All runs.
        total: usize,
        /// The results directory.
        dir: PathBuf,
    },
    /// Every run measured, but the report could not be built.
    #[error("every run measured but the report could not be built; retry with pinlat report {}", dir.display())]
    NoReport {
        /// The results directory.
        dir: PathBuf,
    },
}

impl From<MatrixError> for Failure {
    fn from(e: MatrixError) -> Self {
        Failure {
            exit: Exit::Infrastructure,
            error: e.into(),
        }
    }
}

/// Applies CLI overrides to the config, as usage errors when they are invalid.
fn apply_overrides(cfg: &mut Config, opts: &RunOptions) -> Result<(), Failure> {
    if let Some(d) = opts.duration_s {
        if d == 0 {
            return Err(OptionError {
                option: "--duration",
                problem: "must be at least 1 s".into(),
            }
            .into());
        }
        cfg.run.duration_s = d;
    }
    if let Some(r) = opts.repetitions {
        if r == 0 {
            return Err(OptionError {
                option: "--repetitions",
                problem: "must be at least 1".into(),
            }
            .into());
        }
        cfg.run.repetitions = r;
    }
    if let Some(a) = opts.accel {
        cfg.run.accel = a;
    }
    if let Some(l) = opts.launcher {
        cfg.run.launcher = l;
    }
    if let Some(b) = opts.boot_per {
        cfg.run.boot_per = b;
    }
    if let Some(s) = opts.order_seed {
        cfg.run.order_seed = Some(s);
    }
    if let Some(names) = &opts.layouts {
        for n in names {
            if !cfg.layouts.iter().any(|l| &l.name == n) {
                let known: Vec<&str> = cfg.layouts.iter().map(|l| l.name.as_str()).collect();
                return Err(OptionError {
                    option: "--layouts",
                    problem: format!(
                        "no layout named '{n}' in the config (it has: {})",
                        known.join(", ")
                    ),
                }
                .into());
            }
        }
        cfg.layouts.retain(|l| names.contains(&l.name));
    }
    Ok(())
}

/// Runs the matrix, then builds the report from `runs/`. Returns the exit code: 0 all runs
/// measured and every budget held, 1 a budget was exceeded, 3 any run failed or the
/// infrastructure is missing, 2 bad usage/config.
pub fn run(opts: &RunOptions) -> Result<Exit, Failure> {
    let mut config = Config::from_file(&opts.config)
        .map_err(|e| Failure::from(e).context(format!("config {}", opts.config.display())))?;
    apply_overrides(&mut config, opts)?;
    let online = pinlat::host::online_cpus().map_err(|source| HostError::Read {
        path: pinlat::host::ONLINE_PATH,
        source,
    })?;
    let plan = Plan::new(&config, &online).map_err(|e| {
        Failure::from(e).context(format!(
            "config {} cannot be placed on this host (online CPUs {online})",
            opts.config.display()
        ))
    })?;

    // A host-knobs journal left by a crashed pinlat (or held by a running one): refuse before
    // anything starts (tuning/).
    crate::tuning::refuse_leftover(&SysRoot::live())?;

    let qemu_bin = QemuBinary::detect().map_err(|e| Failure::from(e).context("finding QEMU"))?;
    let kernel = KernelSearch::from_env(opts.kernel.clone())
        .find()
        .map_err(|e| Failure::from(e).context("finding a guest kernel"))?;
    let (agent_path, agent) = find_agent()?;
    // The variants' QEMU knobs must apply here, or nothing starts (exit 2).
    let refuse = |e| Failure::from(e).context(format!("config {}", opts.config.display()));
    crate::prereq::before_run(&config, &qemu_bin.version).map_err(refuse)?;
    if config.run.accel == AccelChoice::Tcg {
        crate::prereq::refuse_kvm_only(&config.variants, "run.accel = \"tcg\" or --accel tcg")
            .map_err(refuse)?;
    }

    let run_id = new_run_id();
    let dir = ResultDir::create(&opts.out, &run_id).map_err(|e| {
        Failure::from(e).context(format!(
            "the results directory {} is not writable (nothing was started)",
            opts.out.display()
        ))
    })?;
    eprintln!("pinlat: run {run_id} -> {}", dir.root().display());

    // Keep the runner off the pCPUs it measures: on the housekeeping CPUs when the host has
    // them, else anywhere but the RT vCPUs' pCPUs, where a SCHED_FIFO vCPU thread would starve
    // it (and it would disturb what it measures).
    let runner_cpus = if plan.housekeeping_cpus.is_empty() {
        plan.usable_cpus.difference(&plan.rt_pcpus())
    } else {
        plan.housekeeping_cpus.clone()
    };
    if !runner_cpus.is_empty() {
        let cpus: Vec<u32> = runner_cpus.iter().collect();
        if let Err(e) = pinlat::sched::set_affinity(0, &cpus) {
            eprintln!("pinlat: warning: could not keep the runner on CPUs {runner_cpus}: {e}");
        }
    }

    let mut kvm_probe = None;
    let (accel, accel_note) = match config.run.accel {
        AccelChoice::Kvm => (Accel::Kvm, None),
        AccelChoice::Tcg => (
            Accel::Tcg,
            Some("requested in the config or with --accel".to_string()),
        ),
        AccelChoice::Auto => {
            eprintln!("pinlat: probing KVM (one guest boot, at most 15 s) ...");
            let fact = crate::doctor::probe::kvm_probe_fact(crate::accel::probe_kvm(
                &qemu_bin, &kernel, &agent, &config,
            ));
            kvm_probe = Some(fact.clone());
            match fact {
                KvmProbe::Booted => (Accel::Kvm, Some("auto: KVM probe booted".to_string())),
                KvmProbe::DoesNotBoot { reason: why } | KvmProbe::CannotProbe { reason: why } => {
                    eprintln!("pinlat: warning: KVM is not usable ({why}); falling back to TCG");
                    (
                        Accel::Tcg,
                        Some(format!("auto: KVM not usable, fell back to TCG: {why}")),
                    )
                }
            }
        }
    };
    if accel == Accel::Tcg {
        eprintln!("pinlat: note: {TCG_DISCLAIMER}");
        let why = accel_note.as_deref().unwrap_or("TCG");
        crate::prereq::refuse_kvm_only(&config.variants, why)
            .map_err(refuse)
            .map_err(|e| unused(&dir, e))?;
    }

    // Host knobs (`variants[i].host`): once the accelerator is settled (KVM-only knobs are
    // refused under TCG first), each is tried on this host before any run guest starts; then
    // set per variant in the loop and restored at its end, on a signal and on every error
    // (tuning/). The handlers go in first so that no signal finds a knob changed.
    crate::signals::install().map_err(HostError::Signals)?;
    crate::tuning::preflight(&SysRoot::live(), &config.variants).map_err(|e| unused(&dir, e))?;
    let mut tuner = crate::tuning::HostTuner::new(SysRoot::live());

    let facts = HostFacts {
        schema_version: HOST_SCHEMA_VERSION,
        pinlat_version: env!("CARGO_PKG_VERSION").to_string(),
        local: hostfacts::local(),
        accel,
        accel_note,
        qemu_path: qemu_bin.path.display().to_string(),
        qemu_version: qemu_bin.version_line.clone(),
        guest_kernel: kernel.path.display().to_string(),
        guest_kernel_source: kernel.source.to_string(),
        can_set_realtime: hostfacts::can_set_realtime(),
        agent_path: agent_path.display().to_string(),
    };

    // The matrix, as boots: one per layout × variant × repetition (and device set) whose
    // phases run in a seeded random order, or one per measurement (`run.boot_per`). The seed
    // used is in plan.json's config, so the orders can be drawn again.
    if config.run.boot_per == pinlat::kinds::BootPer::Repetition {
        config.run.order_seed.get_or_insert_with(fresh_seed);
    }
    let boots = engine::boots::plan_boots(&config, &plan, config.run.order_seed.unwrap_or(0));
    let names: Vec<String> = boots
        .iter()
        .flat_map(|b| (0..b.phases.len()).map(|i| b.run_name(i)))
        .collect();
    write(
        &dir,
        PLAN_FILE,
        &PlanFile {
            schema_version: PLAN_SCHEMA_VERSION,
            run_id: run_id.clone(),
            config_path: opts.config.display().to_string(),
            config: config.clone(),
            plan: plan.clone(),
            runs: names.clone(),
        },
    )?;
    write(&dir, HOST_FILE, &facts)?;
    if !facts.can_set_realtime {
        eprintln!(
            "pinlat: warning: no CAP_SYS_NICE: RT vCPU threads will run SCHED_OTHER (each run records it){}",
            if opts.strict { "; --strict fails those runs" } else { "; run as root for SCHED_FIFO, or --strict to fail instead" }
        );
    }
    // The doctor's view of this host, beside the results it qualifies (no extra probe: the
    // accelerator was settled above).
    if let Ok(mut env) = Env::new(SysRoot::live(), Some(&config)) {
        env.external = ExternalFacts {
            kvm_probe,
            qemu: Some(Found::Yes {
                what: facts.qemu_version.clone(),
            }),
            guest_kernel: Some(Found::Yes {
                what: format!("{} ({})", facts.guest_kernel, facts.guest_kernel_source),
            }),
            calibration: Some(crate::doctor::instrument::last_calibration()),
            libvirt: (config.run.launcher == LauncherKind::Libvirt)
                .then(|| crate::doctor::probe::libvirt_fact(&crate::libvirt::Virsh::from_env())),
        };
        write(&dir, DOCTOR_FILE, &run_checks(&env))?;
    }

    // A soak: asked for, or long enough to need its bounds (README "Soak"). Decided here only:
    // the engine (`RunContext::soak`) and the tracer's bound follow it.
    let soak = opts.soak
        || pinlat::result::is_long_run(config.run.duration_s * 1000, config.run.interval_ms);
    let trace = engine::tracer::TraceSettings {
        enabled: !opts.no_trace,
        threshold_ns: opts.trace_threshold_ns,
        max_raw_bytes: if soak {
            engine::tracer::SOAK_MAX_RAW_BYTES
        } else {
            engine::tracer::MAX_RAW_BYTES
        },
        ..engine::tracer::TraceSettings::on()
    };
    if trace.enabled {
        // Instances a killed pinlat left behind (its pid is gone) would trace on for nothing.
        if let Ok(fs) = crate::trace::Tracefs::locate() {
            if let Ok(r) = crate::trace::cleanup::remove_stale(&fs) {
                for name in &r.removed {
                    eprintln!("pinlat: removed the tracefs instance {name} a killed pinlat left");
                }
            }
        }
    }

    let interrupted = || crate::signals::received();
    let report_every = opts
        .report_every_s
        .map(Duration::from_secs)
        .or(soak.then_some(DEFAULT_REPORT_EVERY));
    let checkpoints = report_every.map(|every| Checkpoints::new(dir.root(), every));
    if let Some(every) = report_every {
        eprintln!(
            "pinlat: the report is rebuilt every {} while a run measures (from checkpoint.json)",
            pinlat::duration::hms(every.as_secs())
        );
    }
    let progress = Progress::new(
        names.len(),
        config.run.duration_s,
        report_every.unwrap_or(LINE_EVERY),
    );
    let on_progress = |ns| progress.measured(ns);
    let (qemu_launcher, libvirt_launcher);
    let launcher: &dyn engine::Launcher = match config.run.launcher {
        LauncherKind::Qemu => {
            qemu_launcher = QemuLauncher {
                qemu: qemu_bin,
                kernel,
                agent,
                accel,
                strict: opts.strict,
                thread_placement: config.run.thread_placement,
            };
            &qemu_launcher
        }
        LauncherKind::Libvirt => {
            let virsh = crate::libvirt::Virsh::from_env();
            libvirt_launcher =
                crate::libvirt::launch::LibvirtLauncher::connect(virsh, kernel, agent, accel)?;
            eprintln!(
                "pinlat: launching through libvirt {} at {} ({}): libvirt pins, pinlat verifies",
                libvirt_launcher.versions.libvirt,
                libvirt_launcher.virsh.uri(),
                libvirt_launcher.versions.hypervisor
            );
            &libvirt_launcher
        }
    };
    let host_knobs = std::cell::RefCell::new(Vec::new());
    let ctx = RunContext {
        config: &config,
        plan: &plan,
        run_id: run_id.clone(),
        result_dir: dir.root().to_path_buf(),
        launcher,
        accel,
        duration_ms: config.run.duration_s * 1000,
        deadline_slack: engine::RUN_DEADLINE_SLACK,
        interrupted: &interrupted,
        trace: &trace,
        soak,
        series_points: SERIES_MAX_POINTS,
        checkpoints: checkpoints.as_ref(),
        progress: &on_progress,
        host_knobs: &host_knobs,
    };

    let mut failed = 0usize;
    let mut interrupted_by = None;
    let mut knob_error = None;
    let at = std::cell::Cell::new(0usize);
    let mut write_failed = None;
    for boot in &boots {
        if let Some(sig) = crate::signals::received() {
            interrupted_by = Some(sig);
            break;
        }
        *host_knobs.borrow_mut() = match tuner.enter(boot.variant) {
            Ok(applied) => applied.to_vec(),
            Err(e) => {
                knob_error = Some(Failure::infra(e).context(format!(
                    "setting the host knobs of variant '{}' (the matrix stopped before {})",
                    boot.variant.map(|v| v.name.as_str()).unwrap_or_default(),
                    boot.run_name(0)
                )));
                break;
            }
        };
        let flow = engine::phase::execute_boot(
            &ctx,
            boot,
            &mut |name| progress.start(at.get(), name),
            &mut |record| {
                if !record.status.is_ok() {
                    failed += 1;
                }
                // Each record hits the disk the moment its run ends.
                let rel = format!("runs/{}", record.file_name());
                if let Err(e) = write(&dir, &rel, &record) {
                    write_failed = Some(e);
                    return ControlFlow::Break(());
                }
                if let Some(cp) = &checkpoints {
                    cp.run_ended();
                }
                progress.done(at.get(), &record);
                at.set(at.get() + 1);
                ControlFlow::Continue(())
            },
        );
        if let Some(e) = write_failed {
            return Err(e);
        }
        if flow.is_break() || crate::signals::received().is_some() {
            interrupted_by = crate::signals::received();
            break;
        }
    }
    progress.finish();
    if let Some(cp) = &checkpoints {
        cp.finish();
    }
    let knobs_restored = crate::tuning::restore_reported(&mut tuner);

    eprintln!(
        "pinlat: run {run_id} done: {} results in {}",
        failed_summary(names.len(), failed),
        dir.root().join("runs").display()
    );
    // The report is rebuilt from runs/ whatever happened, interrupted or not.
    let report = match pinlat::report::write_all(dir.root()) {
        Ok(r) => {
            eprint!("{}", crate::report_cmd::summary(&r, dir.root()));
            Some(r)
        }
        Err(e) => {
            eprintln!("pinlat: warning: building the report failed: {e}");
            None
        }
    };
    let dir = dir.root().to_path_buf();
    if let Some(e) = knob_error {
        return Err(e);
    }
    knobs_restored?;
    if let Some(signal) = interrupted_by {
        return Err(MatrixError::Interrupted { signal, dir }.into());
    }
    if failed > 0 {
        return Err(MatrixError::RunsFailed {
            failed,
            total: names.len(),
            dir,
        }
        .into());
    }
    match report {
        Some(r) => Ok(crate::report_cmd::exit_of(&r)),
        None => Err(MatrixError::NoReport { dir }.into()),
    }
}

/// A phase-order seed for a session that did not set `run.order_seed`: the clock's
/// nanoseconds and the process id, mixed.
fn fresh_seed() -> u64 {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    pinlat::prng::SplitMix64::new(ns ^ u64::from(std::process::id()).rotate_left(32)).next_u64()
}

/// A results directory that nothing was written to yet, removed when the run is refused
/// before its first file (a variant the accelerator or the host cannot take): a refusal leaves
/// no empty run behind. `remove_dir` removes only empty directories: a file written there
/// keeps both.
fn unused<E>(dir: &ResultDir, e: E) -> E {
    if std::fs::remove_dir(dir.root().join("runs")).is_ok() {
        let _ = std::fs::remove_dir(dir.root());
    }
    e
}

fn failed_summary(total: usize, failed: usize) -> String {
    if failed == 0 {
        format!("{total} runs measured")
    } else {
        format!(
            "{} of {total} runs measured, {failed} failed",
            total - failed
        )
    }
}

/// Writes one JSON file of the results directory atomically; failing to is an infrastructure
/// failure (a full or read-only disk), never a silent loss.
fn write<T: Serialize>(dir: &ResultDir, rel: &str, value: &T) -> Result<(), Failure> {
    dir.write_json(rel, value)
        .map(|_| ())
        .map_err(|e| Failure::from(e).context(format!("writing {rel}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_mode_and_order_seed_options_override_the_config() {
        let mut cfg = Config::from_toml_str(
            "[run]\norder_seed = 5\n[[guests]]\nname = \"g\"\nvcpus = 2\n[[layouts]]\nkind = \"vcpu0\"\n",
        )
        .unwrap();
        assert_eq!(cfg.run.boot_per, pinlat::kinds::BootPer::Repetition);
        apply_overrides(&mut cfg, &RunOptions::default()).unwrap();
        assert_eq!(cfg.run.order_seed, Some(5), "no option: the config's seed");
        let opts = RunOptions {
            boot_per: Some(pinlat::kinds::BootPer::Measurement),
            order_seed: Some(42),
            ..RunOptions::default()
        };
        apply_overrides(&mut cfg, &opts).unwrap();
        assert_eq!(cfg.run.boot_per, pinlat::kinds::BootPer::Measurement);
        assert_eq!(cfg.run.order_seed, Some(42));
    }
}
