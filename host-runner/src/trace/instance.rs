//! A tracefs instance of pinlat's own (`instances/pinlat-<pid>-<name>`): its own ring buffers,
//! clock, CPU mask and events, so nothing global or used by another tool (trace-cmd, rtla,
//! perf, a second pinlat) is touched, as rtla's `osnoise` tools do with their `osnoise`
//! instance.
//!
//! The instance is configured before it records: tracing off (a new instance starts on),
//! `trace_clock` = `mono` (the runner's `CLOCK_MONOTONIC`, so trace times and the agent's
//! windows share one axis), `tracing_cpumask` = the RT pCPUs, a small buffer on every CPU and
//! the requested size on the traced ones, then the events that exist on this kernel (missing
//! ones, e.g. `kvm:*` without KVM or `ipi:ipi_entry` on x86, are skipped and reported).
//!
//! It is removed in `Drop` (tracing stopped, `rmdir` retried while a reader still holds
//! `trace_pipe`), and by [`Instance::remove`] when the caller wants the error. SIGINT and
//! SIGTERM only set a flag (`signals.rs`): the run loop stops and the instance is dropped on
//! that path too. The owner's pid is in the
//! name, so [`super::cleanup::remove_stale`] can tell an instance left by a crashed run from
//! one a live run is using.
//!
//! Without tracefs or without the privilege to create instances, [`Instance::create`] fails
//! with an error for which [`TraceError::is_unavailable`] holds: the caller warns and runs on.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pinlat::cpuset::CpuSet;

/// Prefix of every instance pinlat creates.
pub const INSTANCE_PREFIX: &str = "pinlat-";
/// Where tracefs is usually mounted, in the order tried when `/proc/mounts` names none.
pub const TRACEFS_PATHS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
/// Ring buffer per traced CPU unless configured, KiB (≈ 1 minute of a 1 kHz timer workload).
pub const DEFAULT_BUFFER_KB: u32 = 16 * 1024;
/// Ring buffer of the CPUs that are not traced, KiB (the kernel rounds up to a page or two).
pub const UNTRACED_BUFFER_KB: u32 = 4;
/// Attempts at `rmdir` while the instance is busy (a `trace_pipe` reader), 10 ms apart.
const RMDIR_ATTEMPTS: u32 = 20;

/// The events pinlat records, as `group/name` (a `*_entry`/`*_exit` name suffix selects every
/// matching event of the group): scheduling, hard and soft IRQs, IPIs (sent: `ipi:*`; taken:
/// the x86 `irq_vectors`), and KVM exits.
pub const DEFAULT_EVENTS: &[&str] = &[
    "sched/sched_switch",
    "sched/sched_wakeup",
    "sched/sched_wakeup_new",
    "sched/sched_migrate_task",
    "irq/irq_handler_entry",
    "irq/irq_handler_exit",
    "irq/softirq_entry",
    "irq/softirq_exit",
    "ipi/ipi_send_cpu",
    "ipi/ipi_send_cpumask",
    "ipi/ipi_entry",
    "ipi/ipi_exit",
    "irq_vectors/*_entry",
    "irq_vectors/*_exit",
    "kvm/kvm_exit",
    "kvm/kvm_entry",
];

/// Why tracing cannot be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// No tracefs mount was found.
    #[error("tracefs is not mounted: mount it with 'mount -t tracefs nodev /sys/kernel/tracing' to name the culprits of stolen time")]
    NotMounted,
    /// tracefs is there but this kernel has no instances directory.
    #[error("{path} does not exist: this kernel cannot give pinlat a tracefs instance of its own")]
    NoInstances {
        /// The missing directory.
        path: PathBuf,
    },
    /// Creating (or configuring) an instance was refused.
    #[error("No permission to create a tracefs instance under {path}: run pinlat as root (CAP_SYS_ADMIN) to name the culprits of stolen time")]
    PermissionDenied {
        /// The directory or file refused.
        path: PathBuf,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// The instance name is empty or holds characters other than `[A-Za-z0-9._-]`.
    #[error("Tracefs instance name {0:?} must be non-empty [A-Za-z0-9._-]")]
    BadName(String),
    /// An instance of that name exists already (another run of this pinlat process?).
    #[error("Tracefs instance {0} exists already")]
    Exists(PathBuf),
    /// The CPU set to trace is empty.
    #[error("No CPU to trace")]
    NoCpus,
    /// This kernel has no `mono` trace clock.
    #[error("Tracefs at {0} has no 'mono' trace clock")]
    NoMonoClock(PathBuf),
    /// None of the events asked for exists on this kernel.
    #[error("None of the trace events asked for exists on this kernel")]
    NoEvents,
    /// Writing a tracefs file failed.
    #[error("Cannot write {value:?} to {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// Reading a tracefs file failed.
    #[error("Cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// Removing the instance failed.
    #[error("Cannot remove tracefs instance {path}")]
    Remove {
        /// The instance directory.
        path: PathBuf,
        /// The errno (EBUSY: a reader still holds `trace_pipe`).
        #[source]
        source: io::Error,
    },
}

impl TraceError {
    /// The machine cannot trace at all (no tracefs, no instances, no privilege): the caller
    /// warns and runs without the tracer instead of failing.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            TraceError::NotMounted
                | TraceError::NoInstances { .. }
                | TraceError::PermissionDenied { .. }
                | TraceError::NoMonoClock(_)
        )
    }
}

/// A tracefs mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracefs {
    root: PathBuf,
}

impl Tracefs {
    /// Finds the tracefs mount: the first `tracefs` line of `/proc/mounts`, else the first of
    /// [`TRACEFS_PATHS`] that has an `instances` directory. Mounts nothing.
    pub fn locate() -> Result<Tracefs, TraceError> {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let from_mounts = mounts.lines().find_map(|l| {
            let mut f = l.split_whitespace();
            let (_dev, dir, fs) = (f.next()?, f.next()?, f.next()?);
            (fs == "tracefs").then(|| PathBuf::from(dir))
        });
        let root = from_mounts
            .or_else(|| {
                TRACEFS_PATHS
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| p.join("instances").is_dir())
            })
            .ok_or(TraceError::NotMounted)?;
        let fs = Tracefs { root };
        if !fs.instances_dir().is_dir() {
            return Err(TraceError::NoInstances {
                path: fs.instances_dir(),
            });
        }
        Ok(fs)
    }

    /// A tracefs mounted at `root` (for tests and explicit configuration).
    pub fn at(root: impl Into<PathBuf>) -> Tracefs {
        Tracefs { root: root.into() }
    }

    /// The mount point.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Its `instances` directory.
    pub fn instances_dir(&self) -> PathBuf {
        self.root.join("instances")
    }
}

/// What to record and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    /// Name after the prefix and pid: the directory is `pinlat-<pid>-<name>` (`[A-Za-z0-9._-]`).
    pub name: String,
    /// CPUs to record (the RT pCPUs).
    pub cpus: CpuSet,
    /// Ring buffer per traced CPU, KiB.
    pub buffer_kb: u32,
    /// Events as `group/name`, a `*` prefix allowed in the name (see [`DEFAULT_EVENTS`]).
    pub events: Vec<String>,
    /// Overwrite the oldest events when a buffer is full (the kernel's default) instead of
    /// dropping the newest.
    pub overwrite: bool,
}

impl InstanceConfig {
    /// The default configuration for the RT pCPUs `cpus`.
    pub fn new(name: impl Into<String>, cpus: CpuSet) -> Self {
        InstanceConfig {
            name: name.into(),
            cpus,
            buffer_kb: DEFAULT_BUFFER_KB,
            events: DEFAULT_EVENTS.iter().map(|s| s.to_string()).collect(),
            overwrite: true,
        }
    }
}

/// Ring buffer statistics of one CPU (`per_cpu/cpuN/stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BufferStats {
    /// Events in the buffer.
    pub entries: u64,
    /// Events overwritten before anyone read them (overwrite mode).
    pub overrun: u64,
    /// Events dropped because the buffer was full (no-overwrite mode).
    pub dropped_events: u64,
    /// Events consumed by `trace_pipe` readers.
    pub read_events: u64,
}

impl BufferStats {
    /// Parses the `stats` file.
    pub fn parse(text: &str) -> Self {
        let mut s = BufferStats::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let Ok(v) = v.trim().parse::<u64>() else {
                continue;
            };
            match k.trim() {
                "entries" => s.entries = v,
                "overrun" => s.overrun = v,
                "dropped events" => s.dropped_events = v,
                "read events" => s.read_events = v,
                _ => {}
            }
        }
        s
    }

    /// Events the trace is missing (overwritten or dropped).
    pub fn lost(&self) -> u64 {
        self.overrun + self.dropped_events
    }
}

/// A live tracefs instance; removed when dropped.
#[derive(Debug)]
pub struct Instance {
    path: PathBuf,
    cpus: CpuSet,
    enabled: Vec<String>,
    missing: Vec<String>,
    removed: bool,
}

impl Instance {
    /// Creates and configures `instances/pinlat-<pid>-<name>`, not yet recording.
    pub fn create(fs: &Tracefs, cfg: &InstanceConfig) -> Result<Instance, TraceError> {
        if !valid_name(&cfg.name) {
            return Err(TraceError::BadName(cfg.name.clone()));
        }
        if cfg.cpus.is_empty() {
            return Err(TraceError::NoCpus);
        }
        let dir = fs.instances_dir();
        if !fs.root().is_dir() {
            return Err(TraceError::NotMounted);
        }
        if !dir.is_dir() {
            return Err(TraceError::NoInstances { path: dir });
        }
        let path = dir.join(instance_dir_name(std::process::id(), &cfg.name));
        if let Err(e) = std::fs::create_dir(&path) {
            return Err(mkdir_error(path, e));
        }
        // From here on, Drop removes the directory whatever fails next.
        let mut inst = Instance {
            path,
            cpus: cfg.cpus.clone(),
            enabled: Vec::new(),
            missing: Vec::new(),
            removed: false,
        };
        inst.configure(cfg)?;
        Ok(inst)
    }

    fn configure(&mut self, cfg: &InstanceConfig) -> Result<(), TraceError> {
        self.write("tracing_on", "0")?;
        let clocks = self.read("trace_clock")?;
        if !clocks
            .split_whitespace()
            .any(|c| c.trim_matches(|ch| ch == '[' || ch == ']') == "mono")
        {
            return Err(TraceError::NoMonoClock(self.path.clone()));
        }
        self.write("trace_clock", "mono")?;
        self.write("tracing_cpumask", &cpumask_hex(&cfg.cpus))?;
        self.write("options/overwrite", if cfg.overwrite { "1" } else { "0" })?;
        self.write("buffer_size_kb", &UNTRACED_BUFFER_KB.to_string())?;
        for cpu in cfg.cpus.iter() {
            let f = format!("per_cpu/cpu{cpu}/buffer_size_kb");
            self.write(&f, &cfg.buffer_kb.to_string())?;
        }
        for spec in &cfg.events {
            let found = self.expand(spec);
            if found.is_empty() {
                self.missing.push(spec.clone());
            }
            for ev in found {
                self.write(&format!("events/{ev}/enable"), "1")?;
                self.enabled.push(ev);
            }
        }
        if self.enabled.is_empty() {
            return Err(TraceError::NoEvents);
        }
        Ok(())
    }

    /// `group/name` → itself if it exists; `group/*_suffix` → every event of the group with
    /// that suffix.
    fn expand(&self, spec: &str) -> Vec<String> {
        let Some((group, name)) = spec.split_once('/') else {
            return Vec::new();
        };
        let gdir = self.path.join("events").join(group);
        match name.strip_prefix('*') {
            None => {
                if gdir.join(name).join("enable").is_file() {
                    vec![spec.to_string()]
                } else {
                    Vec::new()
                }
            }
            Some(suffix) => {
                let mut v: Vec<String> = std::fs::read_dir(&gdir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|d| d.file_name().into_string().ok())
                    .filter(|n| n.ends_with(suffix) && gdir.join(n).join("enable").is_file())
                    .map(|n| format!("{group}/{n}"))
                    .collect();
                v.sort();
                v
            }
        }
    }

    /// The instance directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The CPUs it records.
    pub fn cpus(&self) -> &CpuSet {
        &self.cpus
    }

    /// Events enabled, as `group/name`.
    pub fn enabled_events(&self) -> &[String] {
        &self.enabled
    }

    /// Event specs that matched nothing on this kernel (to report, not an error).
    pub fn missing_events(&self) -> &[String] {
        &self.missing
    }

    /// Starts recording.
    pub fn start(&self) -> Result<(), TraceError> {
        self.write("tracing_on", "1")
    }

    /// Stops recording; the buffers keep what they hold.
    pub fn stop(&self) -> Result<(), TraceError> {
        self.write("tracing_on", "0")
    }

    /// Writes `text` into the trace as a `tracing_mark_write` event. The kernel records it
    /// only from a traced CPU: written from another CPU the write fails (EIO on 6.18).
    pub fn marker(&self, text: &str) -> Result<(), TraceError> {
        self.write("trace_marker", text)
    }

    /// The whole buffer as text (`trace`: non-consuming, all CPUs merged in time order).
    pub fn read_trace(&self) -> Result<String, TraceError> {
        self.read("trace")
    }

    /// Copies the buffer text to `out` without holding it in memory; returns the bytes copied.
    pub fn copy_trace(&self, out: &mut impl Write) -> Result<u64, TraceError> {
        let p = self.path.join("trace");
        let mut f = File::open(&p).map_err(|e| read_error(p.clone(), e))?;
        io::copy(&mut f, out).map_err(|e| read_error(p, e))
    }

    /// Empties the buffers.
    pub fn clear(&self) -> Result<(), TraceError> {
        self.write("trace", "")
    }

    /// Opens `trace_pipe` (consuming, reports lost events) non-blocking, for a reader thread.
    /// Close it before the instance is removed: the kernel refuses `rmdir` while it is open.
    pub fn open_pipe(&self) -> Result<File, TraceError> {
        let p = self.path.join("trace_pipe");
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&p)
            .map_err(|e| read_error(p, e))
    }

    /// Ring buffer statistics of `cpu`.
    pub fn buffer_stats(&self, cpu: u32) -> Result<BufferStats, TraceError> {
        self.read(&format!("per_cpu/cpu{cpu}/stats"))
            .map(|t| BufferStats::parse(&t))
    }

    /// Removes the instance now, reporting failure (Drop does the same silently).
    pub fn remove(mut self) -> Result<(), TraceError> {
        self.remove_inner()
    }

    fn remove_inner(&mut self) -> Result<(), TraceError> {
        if self.removed {
            return Ok(());
        }
        if !self.path.exists() {
            // Already gone (removed by hand, or by `remove_stale` of another pinlat).
            self.removed = true;
            return Ok(());
        }
        let _ = self.write("tracing_on", "0");
        let mut attempt = 0;
        loop {
            match std::fs::remove_dir(&self.path) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt + 1 < RMDIR_ATTEMPTS => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(source) => {
                    return Err(TraceError::Remove {
                        path: self.path.clone(),
                        source,
                    })
                }
            }
        }
        self.removed = true;
        Ok(())
    }

    fn write(&self, file: &str, value: &str) -> Result<(), TraceError> {
        let p = self.path.join(file);
        // tracefs files take one write(2) per value, truncating (`echo x > file`).
        let res = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
            .and_then(|mut f| f.write_all(value.as_bytes()));
        res.map_err(|source| {
            if is_permission(&source) {
                TraceError::PermissionDenied { path: p, source }
            } else {
                TraceError::Write {
                    path: p,
                    value: value.to_string(),
                    source,
                }
            }
        })
    }

    fn read(&self, file: &str) -> Result<String, TraceError> {
        let p = self.path.join(file);
        let mut s = String::new();
        File::open(&p)
            .and_then(|mut f| f.read_to_string(&mut s))
            .map_err(|e| read_error(p, e))?;
        Ok(s)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.remove_inner();
    }
}

/// `pinlat-<pid>-<name>`.
pub fn instance_dir_name(pid: u32, name: &str) -> String {
    format!("{INSTANCE_PREFIX}{pid}-{name}")
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && name != "."
        && name != ".."
}

/// A CPU set as `tracing_cpumask` takes it: hex, 32-bit groups separated by commas, most
/// significant first (`0,33` → `2,00000001`).
pub fn cpumask_hex(cpus: &CpuSet) -> String {
    let Some(max) = cpus.iter().next_back() else {
        return "0".into();
    };
    let words = (max / 32 + 1) as usize;
    let mut w = vec![0u32; words];
    for c in cpus.iter() {
        w[(c / 32) as usize] |= 1 << (c % 32);
    }
    let mut out = format!("{:x}", w[words - 1]);
    for word in w.iter().rev().skip(1) {
        out.push_str(&format!(",{word:08x}"));
    }
    out
}

fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM))
}

fn mkdir_error(path: PathBuf, e: io::Error) -> TraceError {
    if is_permission(&e) || e.raw_os_error() == Some(libc::EROFS) {
        TraceError::PermissionDenied { path, source: e }
    } else if e.kind() == io::ErrorKind::AlreadyExists {
        TraceError::Exists(path)
    } else if e.kind() == io::ErrorKind::NotFound {
        TraceError::NoInstances {
            path: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        }
    } else {
        TraceError::Write {
            path,
            value: "(mkdir)".into(),
            source: e,
        }
    }
}

fn read_error(path: PathBuf, source: io::Error) -> TraceError {
    if is_permission(&source) {
        TraceError::PermissionDenied { path, source }
    } else {
        TraceError::Read { path, source }
    }
}

#[cfg(test)]
#[path = "instance_tests.rs"]
mod tests;
