//! `pinlat run`: the matrix layout × scenario × workload × repetition, one run at a time.
//!
//! Order of work: check the config and plan (exit 2 on any problem), find QEMU, the guest
//! kernel and the static agent, create and prove writable the results directory (exit 3),
//! settle the accelerator (for `auto`, one short KVM boot probe per invocation), write
//! `plan.json` and `host.json`, then run. Each run's raw result is written atomically the
//! moment it ends; a failed run is recorded and the matrix goes on.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use pinlat::config::{Accel, Config};
use pinlat::plan::Plan;
use pinlat::result::{AccelUsed, RunRecord, TCG_DISCLAIMER};
use serde::Serialize;

use crate::agent::find_agent;
use crate::doctor::{run_checks, Env, ExternalFacts, SysRoot, DOCTOR_FILE};
use crate::exit::{Exit, Failure};
use crate::guest_run::{self, RunContext};
use crate::hostfacts::{self, HostFacts};
use crate::kernel::KernelSearch;
use crate::qemu::QemuBinary;
use crate::store::{new_run_id, ResultDir};

/// Options of `pinlat run` that override the config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The config file.
    pub config: PathBuf,
    /// Parent of `<run-id>/`; default `reports`.
    pub out: PathBuf,
    /// Overrides `run.duration_s`, seconds.
    pub duration_s: Option<u64>,
    /// Only these layouts (by name).
    pub layouts: Option<Vec<String>>,
    /// Overrides `run.accel`.
    pub accel: Option<Accel>,
    /// Guest kernel, overriding the search.
    pub kernel: Option<PathBuf>,
    /// Repetitions override.
    pub repetitions: Option<u32>,
    /// Fail runs whose RT vCPU threads cannot get SCHED_FIFO.
    pub strict: bool,
}

/// `plan.json`: the resolved placement and the runs, as executed.
#[derive(Debug, Serialize)]
struct PlanFile<'a> {
    run_id: &'a str,
    config_path: String,
    config: &'a Config,
    plan: &'a Plan,
    runs: Vec<String>,
}

/// Applies CLI overrides to the config, as usage errors when they are invalid.
fn apply_overrides(cfg: &mut Config, opts: &RunOptions) -> Result<(), Failure> {
    if let Some(d) = opts.duration_s {
        if d == 0 {
            return Err(Failure::usage(anyhow::anyhow!(
                "--duration: must be at least 1 s"
            )));
        }
        cfg.run.duration_s = d;
    }
    if let Some(r) = opts.repetitions {
        if r == 0 {
            return Err(Failure::usage(anyhow::anyhow!(
                "--repetitions: must be at least 1"
            )));
        }
        cfg.run.repetitions = r;
    }
    if let Some(a) = opts.accel {
        cfg.run.accel = a;
    }
    if let Some(names) = &opts.layouts {
        for n in names {
            if !cfg.layouts.iter().any(|l| &l.name == n) {
                let known: Vec<&str> = cfg.layouts.iter().map(|l| l.name.as_str()).collect();
                return Err(Failure::usage(anyhow::anyhow!(
                    "--layouts: no layout named '{n}' in the config (it has: {})",
                    known.join(", ")
                )));
            }
        }
        cfg.layouts.retain(|l| names.contains(&l.name));
    }
    Ok(())
}

struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
}

impl Progress {
    fn new(total: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs, ETA {eta}  {msg}",
                )
                .expect("valid template"),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress { bar, total }
    }

    fn start(&self, i: usize, name: &str) {
        match &self.bar {
            Some(b) => b.set_message(name.to_string()),
            None => eprintln!("[{}/{}] {name} ...", i + 1, self.total),
        }
    }

    fn done(&self, i: usize, r: &RunRecord) {
        let line = format!(
            "[{}/{}] {}: {}",
            i + 1,
            self.total,
            r.name,
            guest_run::summary_line(r)
        );
        match &self.bar {
            Some(b) => {
                b.println(line);
                b.inc(1);
            }
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Runs the matrix, then builds the report from `runs/`. Returns the exit code: 0 all runs
/// measured and every budget held, 1 a budget was exceeded, 3 any run failed or the
/// infrastructure is missing, 2 bad usage/config.
pub fn run(opts: &RunOptions) -> Result<Exit, Failure> {
    let mut config = Config::from_file(&opts.config).map_err(|e| {
        Failure::usage(anyhow::Error::new(e).context(format!("config {}", opts.config.display())))
    })?;
    apply_overrides(&mut config, opts)?;
    let online = pinlat::host::online_cpus()
        .map_err(|e| Failure::infra(anyhow::anyhow!("reading online CPUs: {e}")))?;
    let plan = Plan::new(&config, &online).map_err(|e| {
        Failure::usage(anyhow::Error::new(e).context(format!(
            "config {} cannot be placed on this host (online CPUs {online})",
            opts.config.display()
        )))
    })?;

    let qemu_bin = QemuBinary::detect()
        .map_err(|e| Failure::infra(anyhow::Error::new(e).context("finding QEMU")))?;
    let kernel = KernelSearch::from_env(opts.kernel.clone())
        .find()
        .map_err(|e| Failure::infra(anyhow::Error::new(e).context("finding a guest kernel")))?;
    let (agent_path, agent) = find_agent().map_err(Failure::infra)?;

    let run_id = new_run_id();
    let dir = ResultDir::create(&opts.out, &run_id).map_err(|e| {
        Failure::infra(anyhow::Error::new(e).context(format!(
            "the results directory {} is not writable (nothing was started)",
            opts.out.display()
        )))
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
        Accel::Kvm => (AccelUsed::Kvm, None),
        Accel::Tcg => (
            AccelUsed::Tcg,
            Some("requested in the config or with --accel".to_string()),
        ),
        Accel::Auto => {
            eprintln!("pinlat: probing KVM (one guest boot, at most 15 s) ...");
            let probe = crate::accel::probe_kvm(&qemu_bin, &kernel, &agent, &config);
            kvm_probe = Some(probe.clone());
            match probe {
                Ok(()) => (AccelUsed::Kvm, Some("auto: KVM probe booted".to_string())),
                Err(why) => {
                    eprintln!("pinlat: warning: KVM is not usable ({why}); falling back to TCG");
                    (
                        AccelUsed::Tcg,
                        Some(format!("auto: KVM not usable, fell back to TCG: {why}")),
                    )
                }
            }
        }
    };
    if accel == AccelUsed::Tcg {
        eprintln!("pinlat: note: {TCG_DISCLAIMER}");
    }

    let facts = HostFacts {
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

    // The matrix.
    let mut matrix = Vec::new();
    for layout in &plan.layouts {
        for scenario in &config.scenarios {
            for workload in &config.workloads {
                for rep in 1..=config.run.repetitions {
                    matrix.push((layout, scenario, workload, rep));
                }
            }
        }
    }
    let names: Vec<String> = matrix
        .iter()
        .map(|(l, s, w, r)| pinlat::result::run_name(&l.name, s.kind, w.kind, *r))
        .collect();
    write(
        &dir,
        "plan.json",
        &PlanFile {
            run_id: &run_id,
            config_path: opts.config.display().to_string(),
            config: &config,
            plan: &plan,
            runs: names.clone(),
        },
    )?;
    write(&dir, "host.json", &facts)?;
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
            qemu: Some(Ok(facts.qemu_version.clone())),
            guest_kernel: Some(Ok(format!(
                "{} ({})",
                facts.guest_kernel, facts.guest_kernel_source
            ))),
            calibration: Some(crate::doctor::instrument::last_calibration()),
        };
        write(&dir, DOCTOR_FILE, &run_checks(&env))?;
    }

    crate::signals::install()
        .map_err(|e| Failure::infra(anyhow::anyhow!("installing signal handlers: {e}")))?;
    let interrupted = || crate::signals::received();
    let ctx = RunContext {
        config: &config,
        plan: &plan,
        run_id: run_id.clone(),
        result_dir: dir.root().to_path_buf(),
        qemu: qemu_bin,
        kernel,
        agent,
        accel,
        duration_ms: config.run.duration_s * 1000,
        strict: opts.strict,
        interrupted: &interrupted,
    };

    let progress = Progress::new(matrix.len());
    let mut failed = 0usize;
    let mut interrupted_by = None;
    for (i, (layout, scenario, workload, rep)) in matrix.iter().enumerate() {
        if let Some(sig) = crate::signals::received() {
            interrupted_by = Some(sig);
            break;
        }
        progress.start(i, &names[i]);
        let record = guest_run::execute(&ctx, layout, scenario, workload, *rep);
        if !record.status.is_ok() {
            failed += 1;
        }
        let rel = format!("runs/{}", record.file_name());
        write(&dir, &rel, &record)?;
        progress.done(i, &record);
        if crate::signals::received().is_some() {
            interrupted_by = crate::signals::received();
            break;
        }
    }
    progress.finish();

    eprintln!(
        "pinlat: run {run_id} done: {} results in {}",
        failed_summary(matrix.len(), failed),
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
    if let Some(sig) = interrupted_by {
        return Err(Failure::infra(anyhow::anyhow!(
            "interrupted by {sig}: every QEMU was stopped; the finished runs and their report are in {}",
            dir.root().display()
        )));
    }
    if failed > 0 {
        return Err(Failure::infra(anyhow::anyhow!(
            "{failed} of {} runs failed (see runs/*.json status and console/ logs in {})",
            matrix.len(),
            dir.root().display()
        )));
    }
    match report {
        Some(r) => Ok(crate::report_cmd::exit_of(&r)),
        None => Err(Failure::infra(anyhow::anyhow!(
            "every run measured but the report could not be built; retry with pinlat report {}",
            dir.root().display()
        ))),
    }
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
        .map_err(|e| Failure::infra(anyhow::Error::new(e).context(format!("writing {rel}"))))
}
