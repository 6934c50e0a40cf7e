//! Command line of `pinlat-agent`, and its translation into an [`AgentConfig`].

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use pinlat::agentcfg::{AgentConfig, ClockChoice, IoLoad, Loads, NetLoad};
use pinlat::cpuset::CpuSet;
use pinlat::duration::{self, DurationError, Unit};
use pinlat::kinds::WorkloadKind;

/// pinlat's measuring instrument: busy-poll (oslat-like), timer (cyclictest-like) and ring
/// (one-way SPSC) latency workloads, recorded at ns resolution into HDR histograms.
///
/// As `/init` of a guest (PID 1, or `--init`) it reads /pinlat/config.json, streams framed
/// results on /dev/ttyS1 and powers off. With `--native` it measures on this machine and writes
/// the result JSON.
#[derive(Debug, Parser)]
#[command(name = "pinlat-agent", version)]
pub struct Args {
    /// Measure on this machine and write the result JSON (host baselines).
    #[arg(long, conflicts_with = "init")]
    pub native: bool,

    /// Guest mode even when not PID 1 (mounts and power-off happen only as PID 1).
    #[arg(long)]
    pub init: bool,

    /// Run config JSON (the guest's /pinlat/config.json); replaces the workload flags.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Guest mode: where to stream frames.
    #[arg(long, value_name = "PATH", default_value = "/dev/ttyS1")]
    pub wire: PathBuf,

    /// WorkloadKind to run.
    #[arg(long, value_enum)]
    pub workload: Option<WorkloadArg>,

    /// RT CPUs to measure on, as a CPU list (`1`, `2-3`, `0-7,^4`).
    #[arg(long, value_name = "LIST")]
    pub cpus: Option<String>,

    /// Housekeeping CPUs (loads, reporter); default: the online CPUs not measuring.
    #[arg(long, value_name = "LIST")]
    pub housekeeping_cpus: Option<String>,

    /// Measured duration after the preheat, whole ms (`10s`, `500ms`, `2m`; a bare number is
    /// seconds).
    #[arg(long, default_value = "10s", value_parser = parse_positive_ms)]
    pub duration: u64,

    /// Preheat before measuring (same syntax as --duration; 0 = none).
    #[arg(long, default_value = "1s", value_parser = parse_ms)]
    pub preheat: u64,

    /// Length of one interval histogram (same syntax as --duration).
    #[arg(long, default_value = "1s", value_parser = parse_positive_ms)]
    pub report_interval: u64,

    /// Timer period, µs.
    #[arg(long, default_value_t = pinlat::agentcfg::DEFAULT_TIMER_INTERVAL_US)]
    pub interval_us: u64,

    /// SCHED_FIFO priority 1-99 of the measuring threads (timer default: 95; others: SCHED_OTHER).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=99))]
    pub priority: Option<u8>,

    /// Ring: producer CPU (default: first of --cpus).
    #[arg(long)]
    pub producer_cpu: Option<u32>,

    /// Ring: consumer CPU (default: second of --cpus).
    #[arg(long)]
    pub consumer_cpu: Option<u32>,

    /// Ring: time between two messages, ns.
    #[arg(long, default_value_t = pinlat::agentcfg::DEFAULT_RING_PERIOD_NS)]
    pub ring_period_ns: u64,

    /// Housekeeping loads to run (repeat or comma-separate).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub load: Vec<LoadArg>,

    /// File or device for the io load (default: a temporary file). Overwritten!
    #[arg(long, value_name = "PATH")]
    pub io_path: Option<String>,

    /// Network interface for the net load (natively the net load is skipped without one).
    #[arg(long, value_name = "NAME")]
    pub net_interface: Option<String>,

    /// Number of largest events kept per CPU.
    #[arg(long, default_value_t = pinlat::agentcfg::DEFAULT_TOP_N)]
    pub top: usize,

    /// Clock of busy-poll and ring.
    #[arg(long, value_enum, default_value = "auto")]
    pub clock: ClockArg,

    /// Native mode: where to write the result JSON (`-` = stdout).
    #[arg(long, short, value_name = "FILE|-", default_value = "-")]
    pub output: String,

    /// Native mode: also write the wire frames (hello, interval, final, done) to this file.
    #[arg(long, value_name = "FILE")]
    pub frames: Option<PathBuf>,

    /// Native mode: no summary lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--workload` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum WorkloadArg {
    /// oslat-like tight loop.
    BusyPoll,
    /// cyclictest-like absolute-deadline sleeps.
    Timer,
    /// Producer → consumer through a lock-free ring.
    Ring,
}

/// `--load` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LoadArg {
    /// mmap/munmap and fork/exit.
    Syscall,
    /// Memory streaming.
    Memory,
    /// O_DIRECT reads and writes with fdatasync, latency measured (--io-path).
    Io,
    /// Raw Ethernet frames to the interface's own MAC, round trip measured (--net-interface).
    Net,
}

/// `--clock` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ClockArg {
    /// TSC if invariant or trusted by the kernel, else CLOCK_MONOTONIC.
    Auto,
    /// Always the TSC.
    Tsc,
    /// Always CLOCK_MONOTONIC.
    Monotonic,
}

/// `--duration`, `--report-interval`: a positive whole number of ms, the unit of the agent's
/// config (`10s`, `500ms`, `2000us`; a bare number is seconds). A value that is not whole ms
/// (`999us`) is refused with the nearest ones that are, never truncated.
pub fn parse_positive_ms(s: &str) -> Result<u64, DurationError> {
    duration::parse_positive_in(s, Unit::Ms)
}

/// `--preheat`: as [`parse_positive_ms`], and 0 (no preheat) is allowed.
pub fn parse_ms(s: &str) -> Result<u64, DurationError> {
    duration::parse_in(s, Unit::Ms)
}

fn cpu_list(flag: &str, s: &str) -> Result<Vec<u32>> {
    let set = CpuSet::parse(s).with_context(|| format!("--{flag} {s}"))?;
    Ok(set.iter().collect())
}

impl Args {
    /// The run config: from `--config`, else from the flags.
    pub fn agent_config(&self) -> Result<AgentConfig> {
        if let Some(path) = &self.config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("Cannot read config {}", path.display()))?;
            return AgentConfig::from_json(&text)
                .with_context(|| format!("Config {}", path.display()));
        }
        let Some(workload) = self.workload else {
            bail!("--workload is required (busy-poll, timer or ring) unless --config is given");
        };
        let Some(cpus) = &self.cpus else {
            bail!("--cpus is required unless --config is given");
        };
        let workload = match workload {
            WorkloadArg::BusyPoll => WorkloadKind::BusyPoll,
            WorkloadArg::Timer => WorkloadKind::Timer,
            WorkloadArg::Ring => WorkloadKind::Ring,
        };
        let mut cfg = AgentConfig::new(workload, cpu_list("cpus", cpus)?, self.duration);
        if let Some(hk) = &self.housekeeping_cpus {
            cfg.housekeeping_cpus = cpu_list("housekeeping-cpus", hk)?;
        }
        cfg.preheat_ms = self.preheat;
        cfg.report_interval_ms = self.report_interval;
        cfg.timer_interval_us = self.interval_us;
        cfg.priority = self.priority;
        cfg.ring_producer_cpu = self.producer_cpu;
        cfg.ring_consumer_cpu = self.consumer_cpu;
        cfg.ring_period_ns = self.ring_period_ns;
        cfg.loads = Loads {
            syscall: self.load.contains(&LoadArg::Syscall),
            memory: self.load.contains(&LoadArg::Memory),
            io: self.load.contains(&LoadArg::Io).then(|| IoLoad {
                path: self.io_path.clone(),
                ..IoLoad::default()
            }),
            net: self.load.contains(&LoadArg::Net).then(|| NetLoad {
                interface: self.net_interface.clone(),
                ..NetLoad::default()
            }),
            memory_mib: None,
        };
        cfg.top_n = self.top;
        cfg.clock = match self.clock {
            ClockArg::Auto => ClockChoice::Auto,
            ClockArg::Tsc => ClockChoice::Tsc,
            ClockArg::Monotonic => ClockChoice::Monotonic,
        };
        cfg.validate().context("Invalid options")?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_positive_ms("10s"), Ok(10_000));
        assert_eq!(parse_positive_ms("3"), Ok(3_000));
        assert_eq!(parse_positive_ms("500ms"), Ok(500));
        assert_eq!(parse_positive_ms("2m"), Ok(120_000));
        assert!(parse_positive_ms("10x").is_err());
        assert!(parse_positive_ms("s").is_err());
        assert_eq!(parse_ms("0s"), Ok(0));
        assert!(parse_positive_ms("0s").is_err());
    }

    /// `999us` used to become 0 ms (integer division); now it is exact or refused.
    #[test]
    fn sub_millisecond_durations_are_exact_or_refused() {
        let parse = |d: &str| Args::try_parse_from(["pinlat-agent", "--native", "--duration", d]);
        assert_eq!(parse("2000us").unwrap().duration, 2);
        let err = parse("999us").unwrap_err().to_string();
        assert!(
            err.contains("\"999us\" is not a whole number of milliseconds: use 1ms"),
            "{err}"
        );
        let err = parse("1500us").unwrap_err().to_string();
        assert!(err.contains("use 1ms or 2ms"), "{err}");
        let preheat = Args::try_parse_from(["pinlat-agent", "--preheat", "999us"]);
        assert!(preheat.is_err());
    }

    #[test]
    fn flags_become_a_config() {
        let a = Args::parse_from([
            "pinlat-agent",
            "--native",
            "--workload",
            "timer",
            "--cpus",
            "0-3,^2",
            "--duration",
            "2s",
            "--interval-us",
            "200",
            "--priority",
            "80",
            "--load",
            "syscall,io",
        ]);
        let c = a.agent_config().unwrap();
        assert_eq!(c.rt_cpus, vec![0, 1, 3]);
        assert_eq!(c.duration_ms, 2_000);
        assert_eq!(c.timer_interval_us, 200);
        assert_eq!(c.priority, Some(80));
        assert!(c.loads.syscall && c.loads.io.is_some() && !c.loads.memory);
        assert!(c.loads.net.is_none());
    }
}
