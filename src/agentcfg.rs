//! The guest agent's run configuration.
//!
//! The host runner writes one [`AgentConfig`] as JSON into the initramfs at [`GUEST_CONFIG_PATH`];
//! the agent's native mode builds the same struct from its command-line flags. One config is one
//! run: one workload on a set of RT CPUs, optional housekeeping loads on other CPUs.
//!
//! CPU numbers are the **guest's** logical CPU numbers (in native mode, the host's).
//!
//! Build one with [`AgentConfig::new`] and adjust fields, check it with
//! [`AgentConfig::validate`], serialise with [`AgentConfig::to_json`]. Unknown JSON fields are
//! refused so a typo in a hand-written config is an error, not a silent default.

use serde::{Deserialize, Serialize};

use crate::kinds::WorkloadKind;

#[path = "agentcfg_sysctl.rs"]
mod sysctl;
pub use sysctl::{
    sysctl_matches, sysctl_path, valid_sysctl_key, valid_sysctl_value, Sysctl,
    MAX_SYSCTL_VALUE_BYTES,
};

/// Where the agent, running as PID 1, reads its config inside the initramfs.
pub const GUEST_CONFIG_PATH: &str = "/pinlat/config.json";
/// Where the initramfs holds the kernel modules of [`AgentConfig::modules`], one
/// `<name>.ko` each.
pub const GUEST_MODULES_DIR: &str = "/lib/modules";
/// Default preheat before measuring, ms.
pub const DEFAULT_PREHEAT_MS: u64 = 1_000;
/// Default length of one interval histogram, ms.
pub const DEFAULT_REPORT_INTERVAL_MS: u64 = 1_000;
/// Default period of the timer workload, µs (cyclictest's default).
pub const DEFAULT_TIMER_INTERVAL_US: u64 = 1_000;
/// SCHED_FIFO priority of timer threads when [`AgentConfig::priority`] is unset.
pub const DEFAULT_TIMER_PRIORITY: u8 = 95;
/// Default period between two ring messages, ns.
pub const DEFAULT_RING_PERIOD_NS: u64 = 10_000;
/// Default number of largest events kept per CPU.
pub const DEFAULT_TOP_N: usize = 10;
/// Default buffer of the memory-streaming housekeeping load, MiB (counts into the agent's RSS).
pub const DEFAULT_MEMORY_LOAD_MIB: u32 = 8;
/// Largest accepted `top_n`.
pub const MAX_TOP_N: usize = 1_000;

/// Which clock the busy-poll and ring workloads read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClockChoice {
    /// The TSC, as oslat uses it, unless two back-to-back calibrations against
    /// `CLOCK_MONOTONIC` disagree (a TSC whose rate changes); then `CLOCK_MONOTONIC`. The result
    /// records which clock, the TSC frequency, and whether CPUID calls the TSC invariant.
    #[default]
    Auto,
    /// Always the TSC (`rdtsc`), with its frequency calibrated against `CLOCK_MONOTONIC`. Use
    /// under TCG, where `clock_gettime` costs ~2 µs.
    Tsc,
    /// Always `CLOCK_MONOTONIC` through the vDSO.
    Monotonic,
}

/// Housekeeping loads run on [`AgentConfig::housekeeping_cpus`], each switchable on its own.
///
/// `io` and `net` drive the guest's virtio devices, so QEMU's emulator threads (thread-pool
/// workers, iothreads, the main loop) do the work the layouts place; each measures its own
/// per-operation latency and reports it in a `load` message ([`crate::wire::LoadResult`]).
///
/// Configs written before `io` became a table (`"io": true`, `"io_path": "..."`, as run files
/// of earlier versions hold them) still read: `true` is an [`IoLoad`] with every default and
/// that path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawLoads")]
pub struct Loads {
    /// Kernel-lock-heavy syscalls: mmap/touch/munmap and fork/exit/wait in a loop, one thread
    /// per housekeeping CPU.
    pub syscall: bool,
    /// Memory streaming: copy through a [`Loads::memory_mib`] buffer in a loop, one thread per
    /// housekeeping CPU.
    pub memory: bool,
    /// Block I/O with `O_DIRECT` on a disk (or file), its latency measured; `None`: off.
    pub io: Option<IoLoad>,
    /// Raw Ethernet frames echoed by the host, their round trip measured; `None`: off.
    pub net: Option<NetLoad>,
    /// Buffer size of the memory load per thread, MiB; `None` = [`DEFAULT_MEMORY_LOAD_MIB`].
    pub memory_mib: Option<u32>,
}

impl Loads {
    /// True when at least one load is switched on.
    pub fn any(&self) -> bool {
        self.syscall || self.memory || self.io.is_some() || self.net.is_some()
    }

    /// Checks the io and net loads' fields (names are `loads.io.<field>`, `loads.net.<field>`).
    pub fn validate(&self) -> Result<(), AgentConfigError> {
        if let Some(io) = &self.io {
            io.validate()?;
        }
        if let Some(net) = &self.net {
            net.validate()?;
        }
        Ok(())
    }
}

/// Default block of one io operation, bytes.
pub const DEFAULT_IO_BLOCK_BYTES: u32 = 4096;
/// Smallest io block, bytes: `O_DIRECT` needs offsets and lengths in whole logical blocks, and
/// 512 bytes is the smallest logical block a Linux disk has.
pub const MIN_IO_BLOCK_BYTES: u32 = 512;
/// Largest io block, bytes (each worker holds one such buffer, locked by `mlockall`).
pub const MAX_IO_BLOCK_BYTES: u32 = 1 << 20;
/// Default io queue depth: requests in flight at once.
pub const DEFAULT_IO_QUEUE_DEPTH: u32 = 1;
/// Largest io queue depth (one worker thread per request in flight).
pub const MAX_IO_QUEUE_DEPTH: u32 = 32;
/// Default share of io operations that are reads, percent.
pub const DEFAULT_IO_READ_PERCENT: u8 = 50;
/// Default number of writes between two `fdatasync`s.
pub const DEFAULT_IO_FDATASYNC_EVERY: u32 = 1;
/// Default net send rate, frames per second.
pub const DEFAULT_NET_RATE_PPS: u32 = 1_000;
/// Largest net send rate, frames per second.
pub const MAX_NET_RATE_PPS: u32 = 1_000_000;
/// Default net frame, bytes.
pub const DEFAULT_NET_FRAME_BYTES: u32 = 256;
/// Smallest net frame, bytes: Ethernet's minimum frame without its FCS.
pub const MIN_NET_FRAME_BYTES: u32 = 60;
/// Largest net frame, bytes: a 1500-byte MTU's frame without its FCS.
pub const MAX_NET_FRAME_BYTES: u32 = 1514;

/// The `io` load: `queue_depth` worker threads, each with one `O_DIRECT` request in flight at a
/// time, at random block-aligned offsets within `span_bytes` of the device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IoLoad {
    /// Disk or file to read and write (overwritten!). `None`: `/dev/vda` in a guest (its first
    /// virtio-blk disk), a temporary file in native mode.
    pub path: Option<String>,
    /// Bytes per read or write: a multiple of [`MIN_IO_BLOCK_BYTES`], at most
    /// [`MAX_IO_BLOCK_BYTES`].
    pub block_bytes: u32,
    /// Requests in flight: that many worker threads, each with one request at a time
    /// (1..=[`MAX_IO_QUEUE_DEPTH`]).
    pub queue_depth: u32,
    /// Share of operations that are reads, percent (0..=100); the others are writes.
    pub read_percent: u8,
    /// Writes between two `fdatasync`s, per worker; 0: never.
    pub fdatasync_every: u32,
    /// Bytes of the device or file used, from offset 0; `None`: all of it (natively, the
    /// temporary file's size, 64 MiB). At least one block.
    pub span_bytes: Option<u64>,
}

impl Default for IoLoad {
    fn default() -> Self {
        IoLoad {
            path: None,
            block_bytes: DEFAULT_IO_BLOCK_BYTES,
            queue_depth: DEFAULT_IO_QUEUE_DEPTH,
            read_percent: DEFAULT_IO_READ_PERCENT,
            fdatasync_every: DEFAULT_IO_FDATASYNC_EVERY,
            span_bytes: None,
        }
    }
}

impl IoLoad {
    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<(), AgentConfigError> {
        let bad = |field, problem: String| Err(AgentConfigError::Load { field, problem });
        if self.block_bytes < MIN_IO_BLOCK_BYTES
            || self.block_bytes > MAX_IO_BLOCK_BYTES
            || self.block_bytes % MIN_IO_BLOCK_BYTES != 0
        {
            return bad(
                "loads.io.block_bytes",
                format!(
                    "{} is not a multiple of {MIN_IO_BLOCK_BYTES} between {MIN_IO_BLOCK_BYTES} and {MAX_IO_BLOCK_BYTES} (O_DIRECT needs whole logical blocks)",
                    self.block_bytes
                ),
            );
        }
        if !(1..=MAX_IO_QUEUE_DEPTH).contains(&self.queue_depth) {
            return bad(
                "loads.io.queue_depth",
                format!("{} is outside 1-{MAX_IO_QUEUE_DEPTH}", self.queue_depth),
            );
        }
        if self.read_percent > 100 {
            return bad(
                "loads.io.read_percent",
                format!("{} is above 100", self.read_percent),
            );
        }
        if let Some(span) = self.span_bytes {
            if span < u64::from(self.block_bytes) {
                return bad(
                    "loads.io.span_bytes",
                    format!(
                        "{span} is less than one block of {} bytes",
                        self.block_bytes
                    ),
                );
            }
        }
        if self.path.as_deref() == Some("") {
            return bad("loads.io.path", "is empty".into());
        }
        Ok(())
    }
}

/// The `net` load: Ethernet frames to the interface's own MAC at a paced rate, sent back by
/// the host's backend, their round trip measured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetLoad {
    /// Network interface to send on. `None`: in a guest the first interface in
    /// `/sys/class/net` whose driver is `virtio_net`; natively the net load is skipped.
    pub interface: Option<String>,
    /// Frames sent per second, paced against the clock (1..=[`MAX_NET_RATE_PPS`]).
    pub rate_pps: u32,
    /// Bytes per frame, Ethernet header included, FCS not
    /// ([`MIN_NET_FRAME_BYTES`]..=[`MAX_NET_FRAME_BYTES`]).
    pub frame_bytes: u32,
}

impl Default for NetLoad {
    fn default() -> Self {
        NetLoad {
            interface: None,
            rate_pps: DEFAULT_NET_RATE_PPS,
            frame_bytes: DEFAULT_NET_FRAME_BYTES,
        }
    }
}

impl NetLoad {
    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<(), AgentConfigError> {
        let bad = |field, problem: String| Err(AgentConfigError::Load { field, problem });
        if !(1..=MAX_NET_RATE_PPS).contains(&self.rate_pps) {
            return bad(
                "loads.net.rate_pps",
                format!("{} is outside 1-{MAX_NET_RATE_PPS}", self.rate_pps),
            );
        }
        if !(MIN_NET_FRAME_BYTES..=MAX_NET_FRAME_BYTES).contains(&self.frame_bytes) {
            return bad(
                "loads.net.frame_bytes",
                format!(
                    "{} is outside {MIN_NET_FRAME_BYTES}-{MAX_NET_FRAME_BYTES} (an Ethernet frame without FCS)",
                    self.frame_bytes
                ),
            );
        }
        if let Some(name) = &self.interface {
            // IFNAMSIZ is 16 with the terminating NUL; '/' would escape /sys/class/net.
            let bad_name = name.is_empty()
                || name.len() > 15
                || name.contains(['/', '\0'])
                || name == "."
                || name == "..";
            if bad_name {
                return bad(
                    "loads.net.interface",
                    format!("{name:?} is not a network interface name"),
                );
            }
        }
        Ok(())
    }
}

/// [`Loads`] as JSON may spell it: today's form, and the one before `io` became a table.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawLoads {
    syscall: bool,
    memory: bool,
    io: RawIo,
    net: Option<NetLoad>,
    memory_mib: Option<u32>,
    /// Before `io.path`: the file or device of the io load.
    io_path: Option<String>,
}

/// `io` as a table (or `null`), or the old switch.
#[derive(Default)]
enum RawIo {
    /// Off.
    #[default]
    Off,
    /// The old `io: true/false`.
    Switch(bool),
    /// Today's table.
    Load(IoLoad),
}

impl<'de> Deserialize<'de> for RawIo {
    /// By the JSON type, so that a table's own errors (an unknown field) are reported as such.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Null => Ok(RawIo::Off),
            serde_json::Value::Bool(b) => Ok(RawIo::Switch(b)),
            v @ serde_json::Value::Object(_) => IoLoad::deserialize(v)
                .map(RawIo::Load)
                .map_err(|e| D::Error::custom(format!("loads.io: {e}"))),
            other => Err(D::Error::custom(format!(
                "loads.io: expected a table or null, found {other}"
            ))),
        }
    }
}

/// A `loads` table that cannot be read as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadsError {
    /// `io_path` beside an `io` table.
    #[error("loads.io_path: give the path as loads.io.path")]
    IoPathBesideTable,
}

impl TryFrom<RawLoads> for Loads {
    type Error = LoadsError;
    fn try_from(r: RawLoads) -> Result<Self, LoadsError> {
        let io = match (r.io, r.io_path) {
            (RawIo::Off | RawIo::Switch(false), _) => None,
            (RawIo::Switch(true), path) => Some(IoLoad {
                path,
                ..IoLoad::default()
            }),
            (RawIo::Load(io), None) => Some(io),
            (RawIo::Load(_), Some(_)) => return Err(LoadsError::IoPathBesideTable),
        };
        Ok(Loads {
            syscall: r.syscall,
            memory: r.memory,
            io,
            net: r.net,
            memory_mib: r.memory_mib,
        })
    }
}

/// One run of the agent: the JSON at [`GUEST_CONFIG_PATH`] in the guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The workload of this run.
    pub workload: WorkloadKind,
    /// CPUs that measure (busy-poll, timer: one thread each; ring: the default producer and
    /// consumer are the first two).
    pub rt_cpus: Vec<u32>,
    /// CPUs for the housekeeping loads and the agent's reporter thread; empty = any CPU not in
    /// `rt_cpus` (the reporter then floats).
    #[serde(default)]
    pub housekeeping_cpus: Vec<u32>,
    /// Measured time after the preheat, ms.
    pub duration_ms: u64,
    /// Time the measurement loop runs before recording starts (warms caches, lets frequency
    /// settle), ms.
    #[serde(default = "default_preheat_ms")]
    pub preheat_ms: u64,
    /// Length of each interval histogram, ms.
    #[serde(default = "default_report_interval_ms")]
    pub report_interval_ms: u64,
    /// Period of the timer workload, µs.
    #[serde(default = "default_timer_interval_us")]
    pub timer_interval_us: u64,
    /// SCHED_FIFO priority (1–99) of the measurement threads. `None`: busy-poll and ring run
    /// SCHED_OTHER; timer runs SCHED_FIFO at [`DEFAULT_TIMER_PRIORITY`].
    #[serde(default)]
    pub priority: Option<u8>,
    /// Ring producer CPU; `None` = `rt_cpus[0]`.
    #[serde(default)]
    pub ring_producer_cpu: Option<u32>,
    /// Ring consumer CPU (the one whose result is reported); `None` = `rt_cpus[1]`.
    #[serde(default)]
    pub ring_consumer_cpu: Option<u32>,
    /// Time between two ring messages, ns (the producer spins until the next send time).
    #[serde(default = "default_ring_period_ns")]
    pub ring_period_ns: u64,
    /// Housekeeping loads switched on for this run.
    #[serde(default)]
    pub loads: Loads,
    /// Number of largest samples kept per CPU with their time offsets.
    #[serde(default = "default_top_n")]
    pub top_n: usize,
    /// Clock of the busy-poll and ring workloads (timer always uses `CLOCK_MONOTONIC`).
    #[serde(default)]
    pub clock: ClockChoice,
    /// After its hello, wait for the runner's [`crate::wire::Command::Go`] on the agent port
    /// before measuring, so every guest of a run measures over the same window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wait_for_go: bool,
    /// This config is phase N (from 0) of a shared boot: after its `done` the agent waits for
    /// the runner's next [`crate::wire::Command`] (another phase, or quit) instead of powering
    /// off. `None`: one measurement per boot, as before phases existed (left out of the JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<u32>,
    /// Kernel modules to load, in this order, before measuring (PID-1 mode only), each from
    /// `GUEST_MODULES_DIR/<name>.ko`: the drivers of the guest's devices that its kernel has as
    /// modules, dependencies first. Left out of the JSON when empty, so a config without
    /// modules reads as it did before the field existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<String>,
    /// Sysctls the agent writes under `/proc/sys`, in this order, before it says hello (PID-1
    /// mode only), each read back into the hello's facts; one that cannot be written or does
    /// not read back fails the run, naming the key and the errno. Left out of the JSON when
    /// empty, so a config without sysctls reads as it did before the field existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sysctls: Vec<Sysctl>,
}

fn default_preheat_ms() -> u64 {
    DEFAULT_PREHEAT_MS
}
fn default_report_interval_ms() -> u64 {
    DEFAULT_REPORT_INTERVAL_MS
}
fn default_timer_interval_us() -> u64 {
    DEFAULT_TIMER_INTERVAL_US
}
fn default_ring_period_ns() -> u64 {
    DEFAULT_RING_PERIOD_NS
}
fn default_top_n() -> usize {
    DEFAULT_TOP_N
}

/// A config that cannot run. Messages name the field to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentConfigError {
    /// `rt_cpus` is empty.
    #[error("rt_cpus is empty: give at least one CPU to measure on")]
    NoRtCpus,
    /// A CPU appears twice in `rt_cpus` or `housekeeping_cpus`.
    #[error("{field}: CPU {cpu} is listed twice")]
    DuplicateCpu {
        /// The field path.
        field: &'static str,
        /// The repeated CPU.
        cpu: u32,
    },
    /// A CPU is both RT and housekeeping.
    #[error("housekeeping_cpus: CPU {0} is also in rt_cpus")]
    Overlap(u32),
    /// A field that must be positive is zero.
    #[error("{0} must be greater than 0")]
    Zero(&'static str),
    /// Priority outside 1–99.
    #[error("priority {0} is outside SCHED_FIFO's 1-99")]
    Priority(u8),
    /// `top_n` too large.
    #[error("top_n {0} is above {MAX_TOP_N}")]
    TopN(usize),
    /// The ring needs two distinct CPUs.
    #[error("ring needs two different CPUs: set ring_producer_cpu and ring_consumer_cpu, or give two rt_cpus")]
    RingCpus,
    /// A module name that is not a plain kernel module name.
    #[error("modules[{index}]: {name:?} is not a kernel module name (letters, digits, '_' and '-' only)")]
    ModuleName {
        /// Its position in `modules`.
        index: usize,
        /// The name given.
        name: String,
    },
    /// A sysctl whose key or value the agent may not write.
    #[error("sysctls[{index}]: {problem}")]
    Sysctl {
        /// Its position in `sysctls`.
        index: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// A field of a housekeeping load outside its range.
    #[error("{field}: {problem}")]
    Load {
        /// The field path (`loads.io.block_bytes`).
        field: &'static str,
        /// What is wrong with it, with the value.
        problem: String,
    },
    /// The JSON does not parse as a config.
    #[error("Agent config is not valid JSON: {0}")]
    Json(String),
}

impl AgentConfig {
    /// A config with every optional field at its default.
    pub fn new(workload: WorkloadKind, rt_cpus: Vec<u32>, duration_ms: u64) -> Self {
        AgentConfig {
            workload,
            rt_cpus,
            housekeeping_cpus: Vec::new(),
            duration_ms,
            preheat_ms: DEFAULT_PREHEAT_MS,
            report_interval_ms: DEFAULT_REPORT_INTERVAL_MS,
            timer_interval_us: DEFAULT_TIMER_INTERVAL_US,
            priority: None,
            ring_producer_cpu: None,
            ring_consumer_cpu: None,
            ring_period_ns: DEFAULT_RING_PERIOD_NS,
            loads: Loads::default(),
            top_n: DEFAULT_TOP_N,
            clock: ClockChoice::Auto,
            modules: Vec::new(),
            wait_for_go: false,
            sysctls: Vec::new(),
            phase: None,
        }
    }

    /// Parse and validate the JSON config.
    pub fn from_json(text: &str) -> Result<Self, AgentConfigError> {
        let cfg: AgentConfig =
            serde_json::from_str(text).map_err(|e| AgentConfigError::Json(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Pretty JSON, as written to [`GUEST_CONFIG_PATH`].
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("AgentConfig always serialises")
    }

    /// Check the config without touching the system (CPU existence is checked by the agent).
    pub fn validate(&self) -> Result<(), AgentConfigError> {
        if self.rt_cpus.is_empty() {
            return Err(AgentConfigError::NoRtCpus);
        }
        check_unique("rt_cpus", &self.rt_cpus)?;
        check_unique("housekeeping_cpus", &self.housekeeping_cpus)?;
        if let Some(&c) = self
            .housekeeping_cpus
            .iter()
            .find(|c| self.rt_cpus.contains(c))
        {
            return Err(AgentConfigError::Overlap(c));
        }
        for (name, v) in [
            ("duration_ms", self.duration_ms),
            ("report_interval_ms", self.report_interval_ms),
            ("timer_interval_us", self.timer_interval_us),
            ("ring_period_ns", self.ring_period_ns),
        ] {
            if v == 0 {
                return Err(AgentConfigError::Zero(name));
            }
        }
        if let Some(p) = self.priority {
            if !(1..=99).contains(&p) {
                return Err(AgentConfigError::Priority(p));
            }
        }
        self.loads.validate()?;
        if self.top_n > MAX_TOP_N {
            return Err(AgentConfigError::TopN(self.top_n));
        }
        for (index, name) in self.modules.iter().enumerate() {
            if !is_module_name(name) {
                return Err(AgentConfigError::ModuleName {
                    index,
                    name: name.clone(),
                });
            }
        }
        for (index, s) in self.sysctls.iter().enumerate() {
            let problem = if !valid_sysctl_key(&s.key) {
                format!(
                    "{:?} is not a sysctl name (dotted lower-case names under /proc/sys)",
                    s.key
                )
            } else if !valid_sysctl_value(&s.value) {
                format!(
                    "{}: {:?} is not a value of 1-{MAX_SYSCTL_VALUE_BYTES} bytes on one line",
                    s.key, s.value
                )
            } else {
                continue;
            };
            return Err(AgentConfigError::Sysctl { index, problem });
        }
        if self.workload == WorkloadKind::Ring {
            let (p, c) = self.ring_cpus().ok_or(AgentConfigError::RingCpus)?;
            if p == c {
                return Err(AgentConfigError::RingCpus);
            }
        }
        Ok(())
    }

    /// The ring's (producer, consumer) CPUs after defaults, if there are enough CPUs.
    pub fn ring_cpus(&self) -> Option<(u32, u32)> {
        let p = self
            .ring_producer_cpu
            .or_else(|| self.rt_cpus.first().copied())?;
        let c = self
            .ring_consumer_cpu
            .or_else(|| self.rt_cpus.get(1).copied())?;
        Some((p, c))
    }

    /// SCHED_FIFO priority the measurement threads use after defaults (`None` = SCHED_OTHER).
    pub fn effective_priority(&self) -> Option<u8> {
        match (self.workload, self.priority) {
            (_, Some(p)) => Some(p),
            (WorkloadKind::Timer, None) => Some(DEFAULT_TIMER_PRIORITY),
            (_, None) => None,
        }
    }
}

/// A kernel module name as `modules.builtin` and `.modinfo` spell them: non-empty, at most 55
/// bytes (`MODULE_NAME_LEN` - 1), letters, digits, `_` and `-`. Such a name is also a safe file
/// name under [`GUEST_MODULES_DIR`].
pub fn is_module_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 55
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_unique(field: &'static str, cpus: &[u32]) -> Result<(), AgentConfigError> {
    for (i, c) in cpus.iter().enumerate() {
        if cpus[..i].contains(c) {
            return Err(AgentConfigError::DuplicateCpu { field, cpu: *c });
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "agentcfg_tests.rs"]
mod tests;
