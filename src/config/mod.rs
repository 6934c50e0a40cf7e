//! The experiment config (TOML): what to measure, on which host CPUs, with which layouts.
//!
//! Two stages, as ripgrep separates low-level from high-level arguments: [`RawConfig`] is what
//! the user wrote (serde, unknown keys refused), [`Config::from_toml_str`] checks it without any
//! syscall and produces typed values. Every error carries the key path (`layouts[2].emulator_set`)
//! and says what is allowed. Every key is documented in `configs/README.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cpuset::CpuSet;

mod check;
mod raw;
pub mod variant;
pub use crate::kinds::*;
use raw::RawConfig;

/// A config the user has to fix: the key path, and what is wrong with it and allowed instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// Key path in the config, e.g. `layouts[2].emulator_set`; `(file)` for syntax errors.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl ConfigError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Run-wide settings (`[run]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// Measured time per run, seconds (after preheat). `run.duration_s`, default 10.
    pub duration_s: u64,
    /// Repetitions of every layout × scenario × workload. `run.repetitions`, default 1.
    pub repetitions: u32,
    /// QEMU accelerator. `run.accel`, default `auto`.
    pub accel: AccelChoice,
    /// Interval histogram length, milliseconds. `run.interval_ms`, default 1000.
    pub interval_ms: u64,
    /// Deadline from QEMU start to the agent's hello, seconds. `run.boot_timeout_s`, default 60.
    pub boot_timeout_s: u64,
    /// How threads QEMU starts after pinning are kept off the RT pCPUs.
    /// `run.thread_placement`, default `cpuset`.
    #[serde(default)]
    pub thread_placement: ThreadPlacement,
    /// Who starts the guests and applies their placement. `run.launcher`, default `qemu`.
    #[serde(default, skip_serializing_if = "crate::kinds::LauncherKind::is_qemu")]
    pub launcher: crate::kinds::LauncherKind,
    /// How many measurements one guest boot serves. `run.boot_per`, default `repetition`
    /// (a `plan.json` written before it existed reads as `measurement`, what it ran).
    #[serde(default = "crate::kinds::BootPer::before_phases")]
    pub boot_per: crate::kinds::BootPer,
    /// Seed of the phase orders in shared boots. `run.order_seed`; `None`: a new seed per
    /// `pinlat run`, recorded in every run record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_seed: Option<u64>,
}

/// Host CPUs pinlat may use (`[host]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostSpec {
    /// pCPUs pinlat may use; `None` = every online CPU.
    pub cpus: Option<CpuSet>,
    /// Host housekeeping pCPUs: never dedicated to a vCPU; host-stress runs here.
    pub housekeeping_cpus: CpuSet,
    /// `pinset`'s host-wide emulator set (the thread's `rt_emulator_vcpu_pin_set`).
    pub emulator_pin_set: Option<CpuSet>,
    /// At most this many guests' emulator threads per pCPU of the pin set (the thread's
    /// `rt_emulator_overcommit_ratio`). Default 1.
    pub overcommit_ratio: u32,
}

/// A guest (`[[guests]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Guest {
    /// Unique name, used in run names and exports.
    pub name: String,
    /// vCPU count.
    pub vcpus: u32,
    /// Guest RAM, MiB. Default 256.
    pub memory_mib: u32,
    /// The RT vCPUs (nova `hw:cpu_realtime_mask` semantics). Default `^0`.
    pub realtime: CpuSet,
    /// The mask as written, for nova exports.
    pub realtime_mask: String,
    /// Guest kernel; `None` = the runner's search order.
    pub kernel: Option<PathBuf>,
    /// Appended to the guest kernel command line.
    pub cmdline_extra: String,
    /// Number of QEMU iothreads (`-object iothread`). Default 0.
    pub iothreads: u32,
}

impl Guest {
    /// The non-RT (housekeeping) vCPUs.
    pub fn housekeeping(&self) -> CpuSet {
        CpuSet::first_n(self.vcpus).difference(&self.realtime)
    }
}

/// Explicit placement of one guest under a `custom` layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomGuest {
    /// One CPU list per vCPU, in vCPU order.
    pub vcpus: Vec<CpuSet>,
    /// Emulator threads.
    pub emulator: CpuSet,
    /// Iothreads; default the emulator set.
    pub iothreads: CpuSet,
}

/// A layout to compare (`[[layouts]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// Unique name; default the kind.
    pub name: String,
    /// The rule.
    pub kind: LayoutKind,
    /// Host policy of RT vCPU threads: `fifo` except for `float`, whose default is `other`.
    pub rt_policy: Policy,
    /// SCHED_FIFO priority of RT vCPU threads, 1..=99. Default 1 (nova's default).
    pub rt_priority: u8,
    /// `pinset` only: overrides `host.emulator_pin_set`.
    pub emulator_set: Option<CpuSet>,
    /// `pinset` only: overrides `host.overcommit_ratio`.
    pub overcommit_ratio: Option<u32>,
    /// `custom` only: allow RT vCPUs to share pCPUs with each other or the emulator.
    pub allow_overlap: bool,
    /// `custom` only: per guest name.
    pub custom: BTreeMap<String, CustomGuest>,
}

/// What runs while the guests measure (`[[scenarios]]`): one disturbance, or several at once
/// (`kinds`, e.g. a "busy day" of guest I/O, guest network and management polling).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Name in run names and reports: `name`, else the kind, else the kinds joined by `+`.
    pub name: String,
    /// The disturbances it runs together (`kind = ...` or `kinds = [...]`), at least one;
    /// `idle` only alone.
    pub kinds: Vec<ScenarioKind>,
    /// `mgmt-poll`: QMP stats queries per second and guest. Default 10.
    pub rate_hz: u32,
    /// `host-stress`: stress workers per housekeeping pCPU. Default 1.
    pub workers: u32,
    /// `guest-io`: the disk and the I/O the housekeeping vCPUs drive on it.
    pub io: IoScenario,
    /// `guest-net`: the packets the housekeeping vCPUs send through virtio-net.
    pub net: NetScenario,
    /// `mgmt-storm`: the QMP commands sent round-robin at full speed; `None`: the default mix.
    pub queries: Option<Vec<String>>,
    /// `migrate`: migration bandwidth cap (`max-bandwidth`), MiB/s. Default 128.
    pub bandwidth_mib_s: u32,
}

impl Scenario {
    /// Whether the scenario runs `kind`.
    pub fn has(&self, kind: ScenarioKind) -> bool {
        self.kinds.contains(&kind)
    }
}

/// `guest-io` settings: a virtio-blk disk and the I/O driven on it, as fio names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoScenario {
    /// Bytes per request, KiB. `block_kib`, default 4.
    pub block_kib: u32,
    /// Requests in flight (fio's `iodepth`). `queue_depth`, default 1.
    pub queue_depth: u32,
    /// Share of reads, percent (fio's `rwmixread`). `read_percent`, default 50.
    pub read_percent: u8,
    /// Writes between two `fdatasync`s; 0 never syncs. `fdatasync_every`, default 1.
    pub fdatasync_every: u32,
    /// Disk size, MiB (a sparse file in the run's private directory). `disk_mib`, default 256.
    pub disk_mib: u64,
    /// How QEMU submits the disk's I/O. `aio`, default `threads`.
    pub aio: Aio,
}

impl Default for IoScenario {
    fn default() -> Self {
        IoScenario {
            block_kib: 4,
            queue_depth: 1,
            read_percent: 50,
            fdatasync_every: 1,
            disk_mib: 256,
            aio: Aio::Threads,
        }
    }
}

/// `guest-net` settings: frames sent through virtio-net and echoed back by the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetScenario {
    /// Frames per second per guest. `rate_pps`, default 1000.
    pub rate_pps: u32,
    /// Ethernet frame size, bytes (60..=1514). `frame_bytes`, default 256.
    pub frame_bytes: u32,
}

impl Default for NetScenario {
    fn default() -> Self {
        NetScenario {
            rate_pps: 1000,
            frame_bytes: 256,
        }
    }
}

/// A guest measurement (`[[workloads]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// The workload, as `[[workloads]] kind` names it.
    pub kind: WorkloadKind,
    /// Warm-up before recording, milliseconds. Default 1000.
    pub preheat_ms: u64,
    /// `timer`: wake-up period, microseconds. Default 1000 (cyclictest's default).
    pub interval_us: u64,
    /// Guest SCHED_FIFO priority of the measuring threads, 1..=99. Default 95 for `timer`
    /// (cyclictest's usual `-p95`); `busy-poll` and `ring` run SCHED_OTHER unless set, as oslat
    /// does without `-f`.
    pub priority: Option<u8>,
    /// Loads on the guest's housekeeping vCPUs during the measurement. Default none.
    pub housekeeping: BTreeSet<HousekeepingLoad>,
}

/// A latency budget for one workload (`[budgets.<workload>]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// The largest latency allowed, nanoseconds.
    pub max_ns: Option<u64>,
    /// A percentile (e.g. 99.99) and the latency it must stay under, nanoseconds.
    pub percentile: Option<(f64, u64)>,
}

/// A checked config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// `[run]`.
    pub run: RunSettings,
    /// `[host]`.
    pub host: HostSpec,
    /// `[[guests]]`, at least one.
    pub guests: Vec<Guest>,
    /// `[[layouts]]`, at least one.
    pub layouts: Vec<Layout>,
    /// `[[scenarios]]`; default `idle`.
    pub scenarios: Vec<Scenario>,
    /// `[[workloads]]`; default `busy-poll`.
    pub workloads: Vec<Workload>,
    /// `[budgets.<workload>]`.
    pub budgets: BTreeMap<WorkloadKind, Budget>,
    /// `[[variants]]`: tuning as a test variable ([`variant`]); empty runs the untuned matrix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<variant::Variant>,
}

impl Config {
    /// The variant axis of the matrix: each variant, or one `None` (untuned) when the config
    /// has none.
    pub fn variant_axis(&self) -> Vec<Option<&variant::Variant>> {
        if self.variants.is_empty() {
            vec![None]
        } else {
            self.variants.iter().map(Some).collect()
        }
    }
}

impl Config {
    /// Parses and checks a TOML config. Pure: no syscalls.
    pub fn from_toml_str(s: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::new(s);
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let msg = inner.message().to_string();
            let loc = inner
                .span()
                .map(|sp| {
                    let line = s[..sp.start.min(s.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            let path = if path == "." || path.is_empty() {
                "(file)".to_string()
            } else {
                path
            };
            ConfigError::new(path, format!("{msg}{loc}"))
        })?;
        Self::check(raw)
    }

    /// Reads and checks a config file.
    pub fn from_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new("(file)", format!("cannot read {}: {e}", path.display()))
        })?;
        Self::from_toml_str(&text)
    }

    fn check(raw: RawConfig) -> Result<Config, ConfigError> {
        check::config(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "[[guests]]\nname = \"rt\"\nvcpus = 2\n[[layouts]]\nkind = \"vcpu0\"\n";

    fn err(s: &str) -> ConfigError {
        Config::from_toml_str(s).unwrap_err()
    }

    #[test]
    fn a_scenario_combines_kinds_under_one_name_with_their_settings() {
        let c = Config::from_toml_str(&format!(
            "{MIN}[[scenarios]]\nkinds = [\"guest-io\", \"mgmt-poll\"]\nrate_hz = 50\nblock_kib = 16\n\
             queue_depth = 4\naio = \"io_uring\"\n[[scenarios]]\nname = \"disk\"\nkind = \"guest-io\"\n"
        ))
        .unwrap();
        let s = &c.scenarios[0];
        assert_eq!(s.name, "guest-io+mgmt-poll");
        assert_eq!(s.kinds, [ScenarioKind::GuestIo, ScenarioKind::MgmtPoll]);
        assert!(s.has(ScenarioKind::MgmtPoll) && !s.has(ScenarioKind::Idle));
        assert_eq!(s.rate_hz, 50);
        assert_eq!(
            (s.io.block_kib, s.io.queue_depth, s.io.aio),
            (16, 4, Aio::IoUring)
        );
        assert_eq!(s.io.read_percent, 50, "unset keys keep their defaults");
        assert_eq!(c.scenarios[1].name, "disk");
        assert_eq!(c.scenarios[1].io, IoScenario::default());
    }

    #[test]
    fn run_duration_is_written_as_a_duration_or_in_seconds() {
        for (run, s) in [
            ("duration = \"12h\"", 43_200),
            ("duration = \"90m\"", 5_400),
            ("duration = \"30s\"", 30),
            ("duration = \"45\"", 45),
            ("duration_s = 60", 60),
        ] {
            let c = Config::from_toml_str(&format!("[run]\n{run}\n{MIN}")).unwrap();
            assert_eq!(c.run.duration_s, s, "{run}");
        }
        let e = err(&format!("[run]\nduration = \"0s\"\n{MIN}"));
        assert_eq!(
            e.to_string(),
            "run.duration: \"0s\": must be greater than 0"
        );
        let e = err(&format!("[run]\nduration = \"12 hours\"\n{MIN}"));
        assert!(
            e.to_string()
                .starts_with("run.duration: \"12 hours\": unknown unit"),
            "{e}"
        );
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::from_toml_str(MIN).unwrap();
        assert_eq!(c.run.duration_s, 10);
        assert_eq!(c.guests[0].realtime.to_string(), "1");
        assert_eq!(c.guests[0].housekeeping().to_string(), "0");
        assert_eq!(c.layouts[0].name, "vcpu0");
        assert_eq!(c.layouts[0].rt_policy, Policy::Fifo);
        assert_eq!(c.layouts[0].rt_priority, 1);
        assert_eq!(c.scenarios[0].kinds, [ScenarioKind::Idle]);
        assert_eq!(c.scenarios[0].name, "idle");
        let s = &c.scenarios[0];
        assert_eq!((s.rate_hz, s.workers, s.bandwidth_mib_s), (10, 1, 128));
        assert_eq!(
            (s.io, s.net),
            (IoScenario::default(), NetScenario::default())
        );
        assert_eq!(s.queries, None);
        assert_eq!(c.workloads[0].kind, WorkloadKind::BusyPoll);
    }

    #[test]
    fn unknown_key_names_its_path() {
        let e = err(&format!("{MIN}emulator_set = \"1\"\nbogus = 1\n"));
        assert_eq!(e.path, "layouts[0].bogus");
        assert!(e.message.contains("unknown field"), "{e}");
    }

    #[test]
    fn bad_cpu_list_names_field_and_token() {
        let e = err(&format!("{MIN}[host]\ncpus = \"3-1\"\n"));
        assert_eq!(e.to_string(), "host.cpus: \"3-1\": range end before start");
    }

    #[test]
    fn wrong_type_names_path() {
        let e = err("[[guests]]\nname = \"a\"\nvcpus = \"two\"\n");
        assert_eq!(e.path, "guests[0].vcpus");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = err("[[guests]\nname=");
        assert!(e.message.contains("line 1"), "{e}");
    }

    #[test]
    fn options_for_other_kinds_are_refused() {
        let e = err(&format!("{MIN}overcommit_ratio = 2\n"));
        assert_eq!(e.path, "layouts[0].overcommit_ratio");
        assert!(e.message.contains("pinset"));
    }

    #[test]
    fn budgets_in_ns() {
        let c = Config::from_toml_str(&format!(
            "{MIN}[budgets.busy-poll]\nmax_us = 50\npercentile = 99.9\npercentile_us = 20\n"
        ))
        .unwrap();
        let b = &c.budgets[&WorkloadKind::BusyPoll];
        assert_eq!(b.max_ns, Some(50_000));
        assert_eq!(b.percentile, Some((99.9, 20_000)));
        let e = err(&format!(
            "{MIN}[budgets.busy-poll]\npercentile = 100\npercentile_us = 1\n"
        ));
        assert_eq!(e.path, "budgets.busy-poll.percentile");
    }
}
