//! The names of things a config chooses among: accelerator, layout kind, scheduling policy,
//! scenario, workload and housekeeping load. Each prints and parses as the config, the CLI and
//! the results spell it (`vcpu0`, `mgmt-poll`, `busy-poll`).
//!
//! A module of its own, below both the experiment config (`config`, host side, TOML) and the
//! agent's run config (`agentcfg`, in the guest): both name workloads with these types, and
//! neither depends on the other. It needs nothing but serde, so the guest agent links it without
//! the host-side modules.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The accelerator a config or `--accel` asks for (`run.accel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AccelChoice {
    /// Try KVM with one short boot, fall back to TCG with a warning.
    #[default]
    Auto,
    /// `-accel kvm`: hardware virtualization, the numbers that matter.
    Kvm,
    /// `-accel tcg,thread=multi`: software emulation; latencies are not hardware latencies.
    Tcg,
}

impl AccelChoice {
    /// Every choice: its name on the command line, and what it does.
    pub const ALL: [(AccelChoice, &'static str, &'static str); 3] = [
        (
            AccelChoice::Auto,
            "auto",
            "probe KVM with one short guest boot; fall back to TCG with a warning",
        ),
        (AccelChoice::Kvm, "kvm", "hardware virtualization"),
        (
            AccelChoice::Tcg,
            "tcg",
            "software emulation (results are labelled as not hardware latency)",
        ),
    ];
}

impl std::str::FromStr for AccelChoice {
    type Err = UnknownKindError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .find(|(_, n, _)| *n == s)
            .map(|(a, _, _)| *a)
            .ok_or_else(|| UnknownKindError {
                kind: "accelerator",
                given: s.to_string(),
                allowed: "auto, kvm or tcg",
            })
    }
}

/// The accelerator guests actually ran with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Hardware virtualization (`-accel kvm`): the numbers pinlat is for.
    Kvm,
    /// QEMU's multi-threaded TCG (`-accel tcg,thread=multi`): one host thread per vCPU, but
    /// latencies are emulation latencies.
    Tcg,
}

impl Accel {
    /// The name records use (`kvm`, `tcg`).
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    /// QEMU's `-accel` argument.
    pub fn qemu_arg(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg,thread=multi",
        }
    }

    /// The suffix QEMU gives vCPU thread names (`CPU 0/KVM`, `CPU 0/TCG`).
    pub fn vcpu_thread_suffix(self) -> &'static str {
        match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG",
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How QEMU submits a disk's I/O to the host (`aio=`, as libvirt's `<driver io=...>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Aio {
    /// A pool of worker threads doing blocking syscalls: emulator threads.
    #[default]
    #[serde(rename = "threads")]
    Threads,
    /// Linux io_uring from the thread that owns the disk (main loop or iothread).
    #[serde(rename = "io_uring")]
    IoUring,
    /// Linux AIO (`io_submit`) from the thread that owns the disk; needs `O_DIRECT`.
    #[serde(rename = "native")]
    Native,
}

impl Aio {
    /// QEMU's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Aio::Threads => "threads",
            Aio::IoUring => "io_uring",
            Aio::Native => "native",
        }
    }
}

/// How threads QEMU starts after pinning are kept off the RT pCPUs (`run.thread_placement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ThreadPlacement {
    /// A cpuset cgroup per guest, as libvirt does (falls back to `scan` where there is none).
    #[default]
    Cpuset,
    /// Scan QEMU's threads every 10 ms and place new ones.
    Scan,
}

/// Who starts the guests and applies their placement (`run.launcher`, `pinlat run --launcher`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LauncherKind {
    /// pinlat starts QEMU itself and pins every thread.
    #[default]
    Qemu,
    /// libvirt starts a transient domain from the plan's `<cputune>` and pins; pinlat only reads
    /// the placement back and compares it with the plan.
    Libvirt,
}

impl LauncherKind {
    /// Every launcher: its name in configs and on the command line, and what it does.
    pub const ALL: [(LauncherKind, &'static str, &'static str); 2] = [
        (
            LauncherKind::Qemu,
            "qemu",
            "pinlat starts QEMU and pins every thread",
        ),
        (
            LauncherKind::Libvirt,
            "libvirt",
            "a transient libvirt domain per guest: libvirt pins, pinlat reads it back",
        ),
    ];

    /// Whether this is the default, `qemu` (records and configs leave it out).
    pub fn is_qemu(&self) -> bool {
        *self == LauncherKind::Qemu
    }

    /// The config/CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            LauncherKind::Qemu => "qemu",
            LauncherKind::Libvirt => "libvirt",
        }
    }
}

impl std::fmt::Display for LauncherKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many measurements one guest boot serves (`run.boot_per`, `pinlat run --boot-per`;
/// README "One boot, many measurements").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BootPer {
    /// One boot per layout × variant × repetition (and set of devices the scenarios need): the
    /// runner drives the agent through every scenario × workload of it as phases, in an order
    /// shuffled per repetition. The default.
    Repetition,
    /// A fresh guest for every measurement, as before phases existed.
    Measurement,
}

impl BootPer {
    /// Every mode: its name in configs and on the command line, and what it does.
    pub const ALL: [(BootPer, &'static str, &'static str); 2] = [
        (
            BootPer::Repetition,
            "repetition",
            "one boot per layout × variant × repetition, its measurements as phases (default)",
        ),
        (
            BootPer::Measurement,
            "measurement",
            "a fresh guest for every measurement",
        ),
    ];

    /// The config/CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            BootPer::Repetition => "repetition",
            BootPer::Measurement => "measurement",
        }
    }

    /// What a results directory written before `run.boot_per` existed used: a boot per
    /// measurement (serde's default when reading one).
    pub fn before_phases() -> Self {
        BootPer::Measurement
    }
}

impl std::fmt::Display for BootPer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The pinning layouts (docs/architecture.md "The layouts").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutKind {
    /// Nothing pinned: an untuned host, the baseline.
    Float,
    /// One dedicated pCPU per vCPU; emulator threads float over the guest's pCPUs.
    Share,
    /// One dedicated pCPU per vCPU; emulator threads on the housekeeping vCPUs' pCPUs.
    Vcpu0,
    /// One dedicated pCPU per vCPU plus one extra dedicated pCPU per guest for its emulator.
    Isolate,
    /// One dedicated pCPU per vCPU; emulator threads on a host-wide set shared by RT guests.
    Pinset,
    /// Explicit CPU lists per vCPU and for the emulator.
    Custom,
}

impl LayoutKind {
    /// All kinds, in the order reports list them.
    pub const ALL: [LayoutKind; 6] = [
        LayoutKind::Float,
        LayoutKind::Share,
        LayoutKind::Vcpu0,
        LayoutKind::Isolate,
        LayoutKind::Pinset,
        LayoutKind::Custom,
    ];

    /// The config/CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            LayoutKind::Float => "float",
            LayoutKind::Share => "share",
            LayoutKind::Vcpu0 => "vcpu0",
            LayoutKind::Isolate => "isolate",
            LayoutKind::Pinset => "pinset",
            LayoutKind::Custom => "custom",
        }
    }
}

impl fmt::Display for LayoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Host scheduling policy for a QEMU thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// `SCHED_OTHER` (CFS/EEVDF), the default.
    Other,
    /// `SCHED_FIFO` at a priority 1..=99.
    Fifo,
}

/// Host-side disturbance while the guest measures (docs/architecture.md "Disturbances").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScenarioKind {
    /// Nothing runs: the baseline.
    Idle,
    /// The runner polls QMP stats queries at `rate_hz`, as libvirt/nova monitoring does.
    MgmtPoll,
    /// The housekeeping vCPUs drive O_DIRECT reads, writes and `fdatasync`s on a virtio-blk
    /// disk: QEMU's thread-pool workers (or the iothread) and main loop work.
    GuestIo,
    /// The housekeeping vCPUs send frames through virtio-net that the runner echoes back: the
    /// main loop (or the netdev's thread) works.
    GuestNet,
    /// QMP at full speed with expensive queries: the main loop works.
    MgmtStorm,
    /// Live migration to a local sink, repeated for the whole window: the migration thread
    /// and dirty-page tracking work.
    Migrate,
    /// CPU/memory stress on the host housekeeping pCPUs.
    HostStress,
}

impl ScenarioKind {
    /// Every kind, in config order.
    pub const ALL: [ScenarioKind; 7] = [
        ScenarioKind::Idle,
        ScenarioKind::MgmtPoll,
        ScenarioKind::GuestIo,
        ScenarioKind::GuestNet,
        ScenarioKind::MgmtStorm,
        ScenarioKind::Migrate,
        ScenarioKind::HostStress,
    ];

    /// The names a config may use, for error messages.
    pub const NAMES: &'static str =
        "idle|mgmt-poll|guest-io|guest-net|mgmt-storm|migrate|host-stress";

    /// The config/CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScenarioKind::Idle => "idle",
            ScenarioKind::MgmtPoll => "mgmt-poll",
            ScenarioKind::GuestIo => "guest-io",
            ScenarioKind::GuestNet => "guest-net",
            ScenarioKind::MgmtStorm => "mgmt-storm",
            ScenarioKind::Migrate => "migrate",
            ScenarioKind::HostStress => "host-stress",
        }
    }
}

impl fmt::Display for ScenarioKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Measurement in the guest (docs/architecture.md "Workloads").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// oslat-like busy loop; every gap between clock reads is recorded.
    BusyPoll,
    /// cyclictest-like absolute-deadline sleeps; wake-up latency is recorded.
    Timer,
    /// Producer/consumer across two RT vCPUs through a lock-free ring; one-way latency.
    Ring,
}

impl WorkloadKind {
    /// The config/CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::BusyPoll => "busy-poll",
            WorkloadKind::Timer => "timer",
            WorkloadKind::Ring => "ring",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of a kind's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unknown {kind} '{given}': use {allowed}")]
pub struct UnknownKindError {
    /// What was being named, e.g. `workload`.
    pub kind: &'static str,
    /// The name given.
    pub given: String,
    /// The names allowed, as a phrase (`busy-poll, timer or ring`).
    pub allowed: &'static str,
}

impl std::str::FromStr for WorkloadKind {
    type Err = UnknownKindError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "busy-poll" => Ok(WorkloadKind::BusyPoll),
            "timer" => Ok(WorkloadKind::Timer),
            "ring" => Ok(WorkloadKind::Ring),
            _ => Err(UnknownKindError {
                kind: "workload",
                given: s.to_string(),
                allowed: "busy-poll, timer or ring",
            }),
        }
    }
}

/// Housekeeping loads the agent runs on the guest's non-RT vCPUs that need no device. The I/O
/// loads (`io`, `net`) need a virtio disk or NIC, so the scenarios that give the guest one
/// (`guest-io`, `guest-net`) switch them on ([`crate::agentcfg::Loads`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HousekeepingLoad {
    /// Kernel-lock-heavy syscalls: mmap/munmap, fork/exit.
    Syscall,
    /// Memory streaming.
    Memory,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_names_round_trip_and_unknown_names_say_what_is_allowed() {
        for w in [
            WorkloadKind::BusyPoll,
            WorkloadKind::Timer,
            WorkloadKind::Ring,
        ] {
            assert_eq!(w.as_str().parse::<WorkloadKind>(), Ok(w));
        }
        let e = "rings".parse::<WorkloadKind>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "Unknown workload 'rings': use busy-poll, timer or ring"
        );
    }
}
