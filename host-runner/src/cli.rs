//! Command-line interface of `pinlat`: argument definitions and the `check`/`plan` commands.
//! `main.rs` only parses, calls [`run`] and maps its outcome to an exit code.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use pinlat::config::Config;
use pinlat::cpuset::CpuSet;
use pinlat::duration::{self, DurationError, Unit};
use pinlat::export::{self, PlanFormat};
use pinlat::kinds::{AccelChoice, BootPer, LauncherKind};
use pinlat::plan::Plan;
use pinlat::report::ci::CiFormat;
use pinlat::report::trend::TrendOrder;

use crate::exit::{Exit, Failure, HostError, OptionError};

/// pinlat: measure what QEMU emulator-thread placement does to realtime vCPUs.
///
/// pinlat launches KVM (or, without hardware virtualization, TCG) guests with each pinning
/// layout of a config, pins every QEMU thread as the layout says, runs busy-poll (oslat-like) and
/// timer (cyclictest-like) workloads on the realtime vCPUs, and reports HDR latency histograms
/// and a verdict per layout.
///
/// Exit codes: 0 ok / every budget held, 1 a latency budget was exceeded,
/// 2 bad usage or config, 3 infrastructure failure.
#[derive(Debug, Parser)]
#[command(name = "pinlat", version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A value parser offering `all`'s names, each with its help in `--help`, and giving back the
/// value named: one for every option that picks among a type's `ALL` table (`--format`,
/// `--accel`, `--by`, `--launcher`, `--boot-per`).
fn named<T: Copy + Send + Sync + 'static>(
    all: &'static [(T, &'static str, &'static str)],
) -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(
        all.iter()
            .map(|(_, name, help)| clap::builder::PossibleValue::new(name).help(help)),
    )
    .map(move |s| {
        all.iter()
            .find(|(_, name, _)| *name == s)
            .map(|(v, _, _)| *v)
            .expect("clap only passes the names it offers")
    })
}

/// Parses `--duration` into whole seconds: `10`, `10s`, `2m`, `1h`, or any unit of
/// [`pinlat::duration`] that makes whole seconds (`5000ms`). Zero and fractions of a second are
/// refused with what to write instead.
pub fn parse_duration_s(s: &str) -> Result<u64, DurationError> {
    duration::parse_positive_in(s, Unit::S)
}

/// Parses `--trace-threshold`: a positive duration with a unit (`500us`, `2ms`), in ns.
pub fn parse_threshold_ns(s: &str) -> Result<u64, DurationError> {
    duration::parse_positive_in(s, Unit::Ns)
}

/// How `compare` and `trend` judge a regression: [`pinlat::report::compare::Options`].
#[derive(Debug, Clone, clap::Args)]
pub struct JudgeArgs {
    /// Regression threshold, percent growth of a percentile.
    #[arg(long, value_name = "PCT", default_value_t = 10.0)]
    pub threshold: f64,
    /// Smallest growth of a percentile that can be a regression, with a unit: 500ns, 2us.
    #[arg(long, value_name = "DURATION", default_value = "500ns", value_parser = crate::report_cmd::parse_min_delta_ns)]
    pub min_delta: u64,
    /// Report rows absent, failed or missing in NEW (trend: in the latest directory) without
    /// failing on them.
    #[arg(long)]
    pub allow_missing: bool,
}

impl JudgeArgs {
    /// The options of the rule.
    pub fn options(&self) -> pinlat::report::compare::Options {
        pinlat::report::compare::Options {
            threshold_pct: self.threshold,
            min_delta_ns: self.min_delta,
            allow_missing: self.allow_missing,
        }
    }
}

/// What `pinlat` does: one subcommand per task.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the config's matrix (layout x variant x scenario x workload x repetition) on this host.
    ///
    /// Boots one QEMU guest set per run with the layout's pinning, verifies every thread's
    /// placement from /proc, collects the agent's histograms and writes
    /// reports/<run-id>/{plan.json,host.json,runs/*.json} as each run ends, then the reports
    /// (as `pinlat report`). Exit 0 when every run measured and every budget held, 1 when a
    /// budget was exceeded, 2 for a bad config or option, 3 when a run failed or
    /// QEMU/the kernel/the agent is missing.
    Run {
        /// The experiment config.
        config: PathBuf,
        /// Where to create <run-id>/.
        #[arg(long, value_name = "DIR", default_value = "reports")]
        out: PathBuf,
        /// Measured time per run (overrides run.duration_s): 5s, 2m, 1h.
        #[arg(long, value_name = "D", value_parser = parse_duration_s)]
        duration: Option<u64>,
        /// A long lab run of D per run (12h, 24h): as --duration D, keeping each RT vCPU's
        /// interval maxima as a bounded series over the whole run instead of every interval
        /// histogram, and rebuilding the report while it runs (--report-every, default 10m).
        ///
        /// Memory and disk stay bounded whatever D (README, "Soak"). SIGINT keeps what the
        /// interrupted run measured and builds the report.
        #[arg(long, value_name = "D", value_parser = parse_duration_s, conflicts_with = "duration")]
        soak: Option<u64>,
        /// While a run measures, write its record so far as checkpoint.json and rebuild the
        /// report every D (default 10m with --soak, else never); the report then says it was
        /// built from a checkpoint.
        #[arg(long, value_name = "D", value_parser = parse_duration_s)]
        report_every: Option<u64>,
        /// Only these layouts, by name (comma-separated).
        #[arg(long, value_name = "A,B", value_delimiter = ',')]
        layouts: Option<Vec<String>>,
        /// Accelerator (overrides run.accel).
        #[arg(long, value_parser = named(&AccelChoice::ALL))]
        accel: Option<AccelChoice>,
        /// Guest kernel (overrides the config's and $PINLAT_KERNEL).
        #[arg(long, value_name = "PATH")]
        kernel: Option<PathBuf>,
        /// Repetitions (overrides run.repetitions).
        #[arg(long, value_name = "N")]
        repetitions: Option<u32>,
        /// Fail a run when an RT vCPU thread cannot get SCHED_FIFO (no root/CAP_SYS_NICE)
        /// instead of recording the degradation as a warning.
        #[arg(long)]
        strict: bool,
        /// Do not trace the RT pCPUs.
        ///
        /// By default each run records scheduling, IRQ, IPI and KVM-exit events on its RT
        /// pCPUs in a tracefs instance of pinlat's own (removed at the end of the run, even on
        /// SIGINT) and names what took the pCPUs from the vCPUs (the report's "Who took the RT
        /// pCPUs"). Measured cost on the traced CPU: busy-poll samples/s and p99 x1.00-1.02,
        /// ~286 ns per recorded event (README, "Host tracing"). Without tracefs or root the runs
        /// go on with a warning.
        #[arg(long)]
        no_trace: bool,
        /// Keep the host trace of any interval whose largest latency exceeds DURATION
        /// (e.g. 500us, 2ms) as trace/<run>.txt.
        ///
        /// Default: the workload's budget max_us, when the config sets one; else nothing is
        /// captured. At most 3 intervals per run, 64 MiB per file, 512 MiB per results
        /// directory.
        #[arg(long, value_name = "DURATION", value_parser = parse_threshold_ns)]
        trace_threshold: Option<u64>,
        /// Who starts the guests and applies their placement (overrides run.launcher):
        /// `qemu` (pinlat pins) or `libvirt` (a transient domain per guest on
        /// $LIBVIRT_DEFAULT_URI; libvirt pins, pinlat reads it back and fails a run whose
        /// placement differs from the plan).
        #[arg(long, value_parser = named(&LauncherKind::ALL))]
        launcher: Option<LauncherKind>,
        /// How many measurements one guest boot serves (overrides run.boot_per):
        /// `repetition` (one boot per layout × variant × repetition and device set, its
        /// scenario × workload measured as phases in a seeded random order) or `measurement`
        /// (a fresh guest for every measurement).
        #[arg(long, value_parser = named(&BootPer::ALL))]
        boot_per: Option<BootPer>,
        /// The seed of the shared boots' phase orders (overrides run.order_seed): a run's
        /// seed is in its plan.json and every record's `boot`, so an earlier session's orders
        /// can be drawn again. Default: a new seed per run.
        #[arg(long, value_name = "N")]
        order_seed: Option<u64>,
    },
    /// Validate a config and print the resolved placement of every layout as a table.
    ///
    /// Exit 0 when every layout fits the host, 2 with the reason (the config key to fix) when
    /// not.
    Check {
        /// The experiment config (TOML; keys in configs/README.md).
        config: PathBuf,
        /// Plan for a host whose online CPUs are this CPU list (libvirt syntax, e.g. 0-15)
        /// instead of this host's.
        #[arg(long, value_name = "LIST")]
        host_cpus: Option<String>,
    },
    /// Rebuild every report of a results directory from its runs/ alone.
    ///
    /// Writes report.json, report.md, report.html, junit.xml, one <run>.hlog per run and one
    /// <layout>.<scenario>.<workload>.histogram.txt (cyclictest -h style) per group into DIR,
    /// and the formats RT CI already parses: <group>.oslat.json (busy-poll) and
    /// <group>.cyclictest.json (timer) as rt-tests --json writes them, kcidb.json (KCIDB v5 test
    /// rows) and pinlat.prom (a Prometheus node_exporter textfile). With --format, prints one
    /// of those (or the LAVA case lines) to stdout instead and writes nothing. Exit 0 when every
    /// budget held, 1 when one was exceeded, 3 when a run failed, is unreadable or missing, 2
    /// when DIR is not a results directory or an option is wrong.
    Report {
        /// A results directory, reports/<run-id>.
        dir: PathBuf,
        /// Print this format to stdout instead of writing the files.
        #[arg(long, value_parser = named(&CiFormat::ALL))]
        format: Option<CiFormat>,
        /// With --format rt-tests: the group to print, layout.scenario.workload (needed when
        /// the report has more than one busy-poll or timer group).
        #[arg(long, value_name = "LAYOUT.SCENARIO.WORKLOAD", requires = "format")]
        group: Option<String>,
        /// KCIDB origin of the rows: the CI system's name as KernelCI registered it
        /// (lowercase letters, digits, '_').
        #[arg(long, value_name = "NAME", default_value = pinlat::report::ci::kcidb::DEFAULT_ORIGIN)]
        kcidb_origin: String,
        /// KCIDB id of the tested kernel build, <origin>:<id> (default: <origin>:<run-id>, a
        /// placeholder).
        #[arg(long, value_name = "ID")]
        kcidb_build_id: Option<String>,
    },
    /// Compare two reports: per layout x scenario x workload, the change of p50..p99.99.
    ///
    /// BASE and NEW are results directories (aggregated from runs/) or report.json files.
    /// A percentile regresses when it grew by more than --threshold percent and by at least
    /// --min-delta; max-bound percentiles (fewer than 10 samples beyond them) and rows measured
    /// with different clocks are not judged. A row of BASE absent from NEW, whose runs all
    /// failed or are missing in NEW, or with more failed runs in NEW than in BASE, is a
    /// regression unless --allow-missing. Exit 1 on a regression, 0 otherwise, 2 for a bad
    /// path or option.
    Compare {
        /// The reference report.
        base: PathBuf,
        /// The report to judge.
        new: PathBuf,
        /// The rule a regression is judged by.
        #[command(flatten)]
        judge: JudgeArgs,
    },
    /// Follow each layout x scenario x workload across many results directories (one per kernel
    /// build, say), ordered by time or by kernel version.
    ///
    /// Per series: its percentiles per directory (a directory whose runs of it all failed shows
    /// as failed), level shifts (change points), and the latest directory against the median of
    /// the earlier ones by compare's rule (--threshold, --min-delta; max-bound percentiles and
    /// rows with different clocks not judged; a series failed or absent in the latest is a
    /// regression unless --allow-missing). Each directory is read from its report.json, or
    /// aggregated from runs/ without one. Prints a Markdown summary; --out DIR also writes
    /// report.md, report.html (a time-series plot per series), report.json and junit.xml there.
    /// Exit 1 when the latest regressed, 0 otherwise, 3 when a directory could not be read or
    /// ordered (named; the others are still trended), 2 for a bad option or path.
    Trend {
        /// Results directories (reports/<run-id>), in any order.
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// What orders the directories.
        #[arg(long, default_value = "time", value_parser = named(&TrendOrder::ALL))]
        by: TrendOrder,
        /// The rule a regression is judged by (compare's).
        #[command(flatten)]
        judge: JudgeArgs,
        /// Also write report.md, report.html, report.json and junit.xml into this directory
        /// (created when missing; not a results directory).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Merge many hosts' results directories into one fleet report.
    ///
    /// Each DIR is a results directory of `pinlat run` (its report.json when it is of this
    /// pinlat's schema, else aggregated from its runs/); LABEL=DIR names the host, otherwise
    /// host.json's hostname does (hosts that share one are told apart by their directory).
    /// Writes report.json, report.md, report.html and junit.xml into --out: a hosts x layouts
    /// matrix of verdicts, p99.9 and max per scenario x workload, the hosts' facts side by
    /// side, outlier hosts, each layout judged across hosts, and what is not comparable. A
    /// directory that is missing or not a results directory, and every --failed-host, is a
    /// failed host in every output and never stops the others. Exit 0 when every host merged
    /// and every budget held, 1 when a budget was exceeded on some host, 3 when a host failed
    /// or a run failed, 2 for bad usage (no DIR, an unusable --out, a malformed LABEL=).
    Merge {
        /// Results directories, each optionally LABEL=DIR.
        #[arg(value_name = "[LABEL=]DIR", required = true)]
        dirs: Vec<String>,
        /// Where to write the fleet report (created if missing; not a results directory).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// A host that produced no results (e.g. Ansible found it unreachable), with why;
        /// repeatable. A NAME equal to a merged host's label marks that host failed and keeps
        /// its results.
        #[arg(long = "failed-host", value_name = "NAME[:REASON]")]
        failed_hosts: Vec<String>,
    },
    /// Check whether this host is fit for realtime measurements, each check with its fix.
    ///
    /// PREEMPT_RT, isolcpus/nohz_full/rcu_nocbs over the config's RT pCPUs, device IRQs on
    /// them, RT throttling, cpufreq governor, C-states and /dev/cpu_dma_latency, SMT siblings,
    /// THP and KSM, kvm module parameters (tuned realtime-virtual-host), a KVM boot probe, QEMU
    /// and the guest kernel. Exit 0 when no check fails (warnings allowed), 1 when one fails,
    /// 2 for a bad config, 3 when the host cannot be read.
    Doctor {
        /// The experiment config whose RT pCPUs to check (default: every online CPU but the
        /// first).
        config: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Skip the KVM boot probe (it boots one guest with a 15 s deadline).
        #[arg(long)]
        no_kvm_probe: bool,
        /// Also write doctor.json into this results directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Read /proc and /sys under this directory (a snapshot) instead of /; no probes.
        #[arg(long, value_name = "DIR", hide = true)]
        root: Option<PathBuf>,
        /// Also check what the launcher needs: `libvirt` checks the daemon
        /// ($LIBVIRT_DEFAULT_URI), RT group scheduling, /dev/kvm access and the QEMU
        /// capabilities cache (default: the config's run.launcher).
        #[arg(long, value_parser = named(&LauncherKind::ALL))]
        launcher: Option<LauncherKind>,
        /// Instead of checking: put back the host knobs a crashed `pinlat run` left changed
        /// (from /run/pinlat/host-knobs.journal.json), say what was done, and remove the
        /// journal. Exit 0 when restored or nothing to restore, 2 while the pinlat that wrote
        /// it still runs, 3 when a knob cannot be written back or the journal is unreadable.
        #[arg(long, conflicts_with_all = ["config", "json", "no_kvm_probe", "out", "launcher"])]
        restore: bool,
    },
    /// Check the instrument: inject stalls of known length on a CPU while the agent busy-polls
    /// there, and (with rt-tests installed) compare with oslat and cyclictest.
    ///
    /// Each injection run is a trial, recorded with the host's steal time. A trial the host
    /// disturbed beyond what it can judge (steal time or stray gaps that explain a stall
    /// measured too long, stalls outside the agent's window) is voided and repeated. Exit 0 when
    /// the instrument is trusted, 1 when it missed or mis-sized a stall in an undisturbed trial,
    /// 4 when the host was too noisy to judge (the figures are printed), 3 when calibration
    /// could not run (no agent, no SCHED_FIFO). The report is also kept as this host's last
    /// calibration, which `pinlat doctor` shows.
    Calibrate {
        /// CPU to measure and inject on (default: the last online CPU).
        #[arg(long, value_name = "N")]
        cpu: Option<u32>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Trials that must be judged (each injects every stall length twice); voided trials
        /// are repeated, up to three attempts per trial.
        #[arg(long, value_name = "N", default_value_t = 2)]
        trials: u32,
        /// Skip the oslat/cyclictest comparison.
        #[arg(long)]
        no_rt_tests: bool,
        /// The pinlat-agent binary (default: the static build, else target/release).
        #[arg(long, value_name = "PATH")]
        agent: Option<PathBuf>,
        /// Also write calibrate.json into this results directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Export the resolved placement for deployment: JSON, libvirt <cputune> or nova.
    Plan {
        /// The experiment config.
        config: PathBuf,
        /// Output format.
        #[arg(long, default_value = "json", value_parser = named(&PlanFormat::ALL))]
        format: PlanFormat,
        /// Plan for a host whose online CPUs are this CPU list instead of this host's.
        #[arg(long, value_name = "LIST")]
        host_cpus: Option<String>,
        /// Export with the QEMU knobs of this [[variants]] entry (libvirt, libvirt-domain and
        /// nova formats); default: none, the placement alone.
        #[arg(long, value_name = "NAME")]
        variant: Option<String>,
    },
}

/// The `--variant` of `pinlat plan`: a variant of `cfg` that `format` can say.
fn plan_variant<'a>(
    cfg: &'a Config,
    name: Option<&str>,
    format: PlanFormat,
) -> Result<Option<&'a pinlat::config::variant::Variant>, OptionError> {
    let Some(name) = name else {
        return Ok(None);
    };
    if !format.follows_variant() {
        return Err(OptionError {
            option: "--variant",
            problem: "the json and table formats show the placement alone, which no variant changes: use --format libvirt, libvirt-domain or nova".into(),
        });
    }
    cfg.variants
        .iter()
        .find(|v| v.name == name)
        .map(Some)
        .ok_or_else(|| {
            let known: Vec<&str> = cfg.variants.iter().map(|v| v.name.as_str()).collect();
            OptionError {
                option: "--variant",
                problem: if known.is_empty() {
                    format!("no variant named '{name}': the config has no [[variants]]")
                } else {
                    format!(
                        "no variant named '{name}' in the config (it has: {})",
                        known.join(", ")
                    )
                },
            }
        })
}

/// Loads, checks and plans a config. Errors are usage errors (exit 2).
pub fn load_and_plan(config: &Path, host_cpus: Option<&str>) -> Result<(Config, Plan), Failure> {
    let cfg = Config::from_file(config)
        .map_err(|e| Failure::from(e).context(format!("config {}", config.display())))?;
    let online = match host_cpus {
        Some(s) => CpuSet::parse_any(s).map_err(|e| OptionError {
            option: "--host-cpus",
            problem: e.to_string(),
        })?,
        None => pinlat::host::online_cpus().map_err(|source| HostError::Read {
            path: pinlat::host::ONLINE_PATH,
            source,
        })?,
    };
    let plan = Plan::new(&cfg, &online).map_err(|e| {
        Failure::from(e).context(format!(
            "config {} cannot be placed on a host with online CPUs {online}",
            config.display()
        ))
    })?;
    Ok((cfg, plan))
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<Exit, Failure> {
    match cli.command {
        Command::Run {
            config,
            out,
            duration,
            soak,
            report_every,
            layouts,
            accel,
            kernel,
            repetitions,
            strict,
            no_trace,
            trace_threshold,
            launcher,
            boot_per,
            order_seed,
        } => crate::run::run(&crate::run::RunOptions {
            config,
            out,
            duration_s: duration.or(soak),
            soak: soak.is_some(),
            report_every_s: report_every,
            layouts,
            accel,
            kernel,
            repetitions,
            strict,
            no_trace,
            trace_threshold_ns: trace_threshold,
            launcher,
            boot_per,
            order_seed,
        }),
        Command::Report {
            dir,
            format,
            group,
            kcidb_origin,
            kcidb_build_id,
        } => {
            let ci = pinlat::report::ci::Options {
                kcidb: pinlat::report::ci::kcidb::KcidbIds::new(
                    Some(kcidb_origin),
                    kcidb_build_id,
                )?,
            };
            match format {
                None => crate::report_cmd::report(&dir, &ci),
                Some(format) => {
                    let (exit, text) =
                        crate::report_cmd::print_format(&dir, format, &ci, group.as_deref())?;
                    print_out(&text)?;
                    Ok(exit)
                }
            }
        }
        Command::Compare { base, new, judge } => {
            let (exit, text) = crate::report_cmd::compare(&base, &new, &judge.options())?;
            print_out(&text)?;
            Ok(exit)
        }
        Command::Trend {
            dirs,
            by,
            judge,
            out,
        } => {
            let (exit, text) = crate::trend_cmd::trend(&crate::trend_cmd::TrendCommand {
                dirs,
                order: by,
                options: judge.options(),
                out,
            })?;
            print_out(&text)?;
            Ok(exit)
        }
        Command::Merge {
            dirs,
            out,
            failed_hosts,
        } => crate::merge_cmd::merge(&dirs, &out, &failed_hosts),
        Command::Doctor {
            root,
            restore: true,
            ..
        } => {
            let root = root
                .map(crate::doctor::SysRoot::at)
                .unwrap_or_else(crate::doctor::SysRoot::live);
            let done = crate::tuning::recover::restore_command(&root)?;
            println!("{done}");
            Ok(Exit::Ok)
        }
        Command::Doctor {
            config,
            json,
            no_kvm_probe,
            out,
            root,
            launcher,
            restore: false,
        } => crate::doctor::command(&crate::doctor::DoctorOptions {
            config,
            json,
            no_kvm_probe,
            root,
            out,
            launcher,
        })
        .map(|report| Exit::from(&report))
        .map_err(Failure::from),
        Command::Calibrate {
            cpu,
            json,
            trials,
            no_rt_tests,
            agent,
            out,
        } => crate::calibrate::command(&crate::calibrate::CalibrateCommand {
            options: crate::calibrate::CalibrateOptions {
                cpu: cpu.unwrap_or_else(crate::calibrate::default_cpu),
                agent,
                trials,
                rt_tests: !no_rt_tests,
                ..Default::default()
            },
            json,
            out,
        })
        .map(|verdict| Exit::from(&verdict))
        .map_err(Failure::from),
        Command::Check { config, host_cpus } => {
            let (cfg, plan) = load_and_plan(&config, host_cpus.as_deref())?;
            if cfg.run.accel == AccelChoice::Tcg {
                crate::prereq::refuse_kvm_only(&cfg.variants, "run.accel = \"tcg\"").map_err(
                    |e| Failure::from(e).context(format!("config {}", config.display())),
                )?;
            }
            print_out(&export::render(PlanFormat::Table, &plan, &cfg))?;
            Ok(Exit::Ok)
        }
        Command::Plan {
            config,
            format,
            host_cpus,
            variant,
        } => {
            let (cfg, plan) = load_and_plan(&config, host_cpus.as_deref())?;
            let variant = plan_variant(&cfg, variant.as_deref(), format)?;
            print_out(&export::render_variant(format, &plan, &cfg, variant))?;
            Ok(Exit::Ok)
        }
    }
}

fn print_out(s: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // `pinlat plan ... | head` is fine.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(HostError::Stdout(e).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_by_their_table_names_and_refuse_others() {
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        let run = |extra: &[&str]| {
            let mut a = vec!["pinlat", "run", "c.toml"];
            a.extend_from_slice(extra);
            match parse(&a).map(|c| c.command) {
                Ok(Command::Run {
                    accel,
                    launcher,
                    boot_per,
                    ..
                }) => Ok((accel, launcher, boot_per)),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e.kind()),
            }
        };
        assert_eq!(
            run(&[
                "--accel",
                "tcg",
                "--launcher",
                "libvirt",
                "--boot-per",
                "measurement"
            ]),
            Ok((
                Some(AccelChoice::Tcg),
                Some(LauncherKind::Libvirt),
                Some(BootPer::Measurement)
            ))
        );
        assert_eq!(run(&[]), Ok((None, None, None)));
        assert_eq!(
            run(&["--boot-per", "phase"]),
            Err(clap::error::ErrorKind::InvalidValue)
        );
        assert_eq!(
            run(&["--launcher", "virsh"]),
            Err(clap::error::ErrorKind::InvalidValue)
        );
    }

    #[test]
    fn trace_threshold_takes_a_unit_and_must_be_positive() {
        assert_eq!(parse_threshold_ns("500us"), Ok(500_000));
        assert_eq!(parse_threshold_ns("2ms"), Ok(2_000_000));
        assert!(parse_threshold_ns("0ms").is_err());
        let cli = Cli::try_parse_from([
            "pinlat",
            "run",
            "c.toml",
            "--no-trace",
            "--trace-threshold",
            "1ms",
        ])
        .unwrap();
        match cli.command {
            Command::Run {
                no_trace,
                trace_threshold,
                ..
            } => assert_eq!((no_trace, trace_threshold), (true, Some(1_000_000))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn duration_is_whole_positive_seconds() {
        assert_eq!(parse_duration_s("10"), Ok(10));
        assert_eq!(parse_duration_s("5s"), Ok(5));
        assert_eq!(parse_duration_s("2m"), Ok(120));
        assert_eq!(parse_duration_s("1h"), Ok(3_600));
        assert_eq!(parse_duration_s("5000ms"), Ok(5));
        for (bad, says) in [
            ("0", "must be greater than 0"),
            ("1500ms", "not a whole number of seconds: use 1s or 2s"),
            ("1.5s", "1500ms"),
            ("5d", "unknown unit 'd'"),
        ] {
            let e = parse_duration_s(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
