//! Tuning variants (`[[variants]]`): how QEMU is started, what the guest kernel is told and
//! which host knobs are set, as a test variable beside the layout. The matrix becomes layout ×
//! variant × scenario × workload × repetition; a config without variants runs as before (one
//! implicit, untuned arm). Every knob, its effect and its source is in `configs/README.md`
//! ("`[[variants]]`").
//!
//! Knobs that only mean something under KVM ([`Variant::kvm_only`]) are refused under TCG before
//! any guest starts, naming the knob: pinlat never runs a variant whose knob silently did not
//! apply.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One tuning variant: a name and its knobs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Variant {
    /// Unique name, used in run names and reports.
    pub name: String,
    /// How QEMU is started (`variants[i].qemu`).
    #[serde(default)]
    pub qemu: QemuKnobs,
    /// What the guest kernel is told and the agent sets (`variants[i].guest`).
    #[serde(default)]
    pub guest: GuestKnobs,
    /// Host knobs pinlat sets for the variant's runs and restores afterwards
    /// (`variants[i].host`).
    #[serde(default)]
    pub host: HostKnobs,
}

/// `-overcommit mem-lock=`: lock the guest's memory (QEMU's `mlockall`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemLock {
    /// `mem-lock=on`: every page locked at start (`MCL_CURRENT|MCL_FUTURE`).
    On,
    /// `mem-lock=on-fault`: pages locked as they are first touched (`MCL_ONFAULT`).
    OnFault,
    /// `mem-lock=off`: QEMU's default, written out.
    Off,
}

impl MemLock {
    /// As QEMU spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            MemLock::On => "on",
            MemLock::OnFault => "on-fault",
            MemLock::Off => "off",
        }
    }
}

/// Huge page size backing the guest's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HugePageSize {
    /// 2 MiB pages.
    #[serde(rename = "2M")]
    M2,
    /// 1 GiB pages.
    #[serde(rename = "1G")]
    G1,
}

impl HugePageSize {
    /// Page size, KiB (as `/sys/kernel/mm/hugepages/hugepages-<N>kB` names it).
    pub fn kib(self) -> u64 {
        match self {
            HugePageSize::M2 => 2048,
            HugePageSize::G1 => 1024 * 1024,
        }
    }

    /// As QEMU and the config spell it (`2M`, `1G`).
    pub fn as_str(self) -> &'static str {
        match self {
            HugePageSize::M2 => "2M",
            HugePageSize::G1 => "1G",
        }
    }
}

/// QEMU knobs (`variants[i].qemu`). Unset keys leave QEMU as pinlat starts it without variants.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QemuKnobs {
    /// `mem_lock`: `-overcommit mem-lock=on|on-fault|off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_lock: Option<MemLock>,
    /// `hugepages`: guest memory from a preallocated hugetlbfs backend of this page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hugepages: Option<HugePageSize>,
    /// `cpu_host`: `-cpu host,migratable=off` (host CPU model passed through). KVM only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cpu_host: bool,
    /// `invtsc`: `+invtsc` (invariant TSC advertised to the guest). KVM only; needs `cpu_host`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invtsc: bool,
    /// `tsc_deadline`: `+tsc-deadline` (the LAPIC TSC-deadline timer mode). KVM only; needs
    /// `cpu_host`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tsc_deadline: bool,
    /// `pmu`: `pmu=on|off` (virtual PMU; off removes its MSR exits). KVM only; needs `cpu_host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pmu: Option<bool>,
    /// `kvm_hint_dedicated`: `kvm-hint-dedicated=on` (KVM_HINTS_REALTIME: the guest turns off
    /// PV spinlocks and PV TLB flush). KVM only; needs `cpu_host`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kvm_hint_dedicated: bool,
    /// `cpu_pm`: `-overcommit cpu-pm=on` (HLT, MWAIT and PAUSE no longer exit to the host).
    /// KVM only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cpu_pm: bool,
}

/// The guest kernel command line pinlat starts from (`guest.preset`). Every preset keeps
/// pinlat's functional parameters (console, `panic=-1`, `noirqdebug`; `tsc=reliable` unless
/// `guest.tsc_reliable = false`). `<rt>` is the guest's RT vCPUs, `<hk>` its housekeeping vCPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CmdlinePreset {
    /// pinlat's default, what guests got before variants: `isolcpus=<rt> nohz_full=<rt>
    /// rcu_nocbs=<rt> irqaffinity=<hk>`.
    #[default]
    Pinlat,
    /// tuned's `realtime-virtual-guest` profile as far as it applies to a guest. The profile
    /// (tuned `profiles/realtime-virtual-guest/tuned.conf`) includes `realtime`, which includes
    /// `network-latency`; their `[bootloader]` lines give `nohz=on nohz_full=<rt>
    /// rcu_nocbs=<rt>` (realtime-virtual-guest), `isolcpus=managed_irq,domain,<rt>
    /// nosoftlockup` (realtime, with its default `isolate_managed_irq=Y`) and `skew_tick=1
    /// tsc=reliable rcupdate.rcu_normal_after_boot=1` (network-latency; `tsc=reliable` is
    /// pinlat's own knob). Their `[sysctl]` sections that bear on latency go on the command
    /// line as `sysctl.*` (applied by the kernel before `/init`):
    /// `kernel.sched_rt_runtime_us=-1` (realtime), `kernel.timer_migration=0`,
    /// `kernel.nmi_watchdog=0`, `vm.stat_interval=10` (network-latency). tuned keeps device
    /// IRQs off the isolated cores through irqbalance's `banned_cpus`; a pinlat guest runs no
    /// irqbalance, so the preset says `irqaffinity=<hk>` instead. Left out: `intel_pstate=
    /// disable` (a KVM guest has no P-state driver), `kernel.hung_task_timeout_secs`,
    /// `kernel.numa_balancing` (one NUMA node), the `net.*` sysctls (no sockets measured),
    /// and what the tuned daemon does at run time (workqueue cpumasks, which `nohz_full`
    /// already confines; kernel-thread priorities; `ktimer_lockless_check`).
    RealtimeVirtualGuest,
    /// No isolation parameters at all: an untuned guest (console, panic and pinlat's functional
    /// parameters only).
    None,
}

/// How the guest idles (`guest.idle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GuestIdle {
    /// `idle=poll`: the guest spins instead of halting (the vCPU never leaves guest mode).
    Poll,
    /// `cpuidle_haltpoll.force=1`: the haltpoll cpuidle driver and governor (poll a while
    /// before halting).
    Haltpoll,
}

impl GuestIdle {
    /// The kernel parameter(s) it adds.
    pub fn params(self) -> &'static [&'static str] {
        match self {
            GuestIdle::Poll => &["idle=poll"],
            GuestIdle::Haltpoll => &["cpuidle_haltpoll.force=1", "cpuidle.governor=haltpoll"],
        }
    }
}

/// Guest knobs (`variants[i].guest`): kernel command line and sysctls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestKnobs {
    /// `preset`: the command line pinlat starts from. Default `pinlat`.
    #[serde(default)]
    pub preset: CmdlinePreset,
    /// `idle`: `poll` or `haltpoll`; unset leaves the kernel's choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<GuestIdle>,
    /// `tsc_reliable`: `tsc=reliable` (default true: pinlat always passes it, see
    /// `GUEST_PARAMS`; false drops it).
    #[serde(default = "yes")]
    pub tsc_reliable: bool,
    /// `mce_off`: `mce=off` (no machine-check polling timer).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mce_off: bool,
    /// `timer_migration`: `sysctl.kernel.timer_migration=0|1` on the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer_migration: Option<bool>,
    /// `cmdline_extra`: more parameters, appended verbatim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmdline_extra: Vec<String>,
    /// `sysctls`: written by the agent under `/proc/sys` before it measures, in key order,
    /// and read back into the run record.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

impl Default for GuestKnobs {
    fn default() -> Self {
        GuestKnobs {
            preset: CmdlinePreset::Pinlat,
            idle: None,
            tsc_reliable: true,
            mce_off: false,
            timer_migration: None,
            cmdline_extra: Vec::new(),
            sysctls: BTreeMap::new(),
        }
    }
}

/// A host knob pinlat sets for a variant and restores afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKnob {
    /// KVM's `halt_poll_ns` module parameter, ns (how long a halted vCPU polls before it
    /// sleeps).
    HaltPollNs,
    /// KVM's `lapic_timer_advance_ns`, ns; −1 is adaptive.
    LapicTimerAdvanceNs,
    /// `kernel.sched_rt_runtime_us`, µs of every `sched_rt_period_us`; −1 lets RT tasks run
    /// unthrottled.
    SchedRtRuntimeUs,
}

impl HostKnob {
    /// Every knob, in the order they are applied.
    pub const ALL: [HostKnob; 3] = [
        HostKnob::HaltPollNs,
        HostKnob::LapicTimerAdvanceNs,
        HostKnob::SchedRtRuntimeUs,
    ];

    /// The file, relative to the filesystem root (`/` on a live host, a fake root in tests).
    pub fn path(self) -> &'static str {
        match self {
            HostKnob::HaltPollNs => "sys/module/kvm/parameters/halt_poll_ns",
            HostKnob::LapicTimerAdvanceNs => "sys/module/kvm/parameters/lapic_timer_advance_ns",
            HostKnob::SchedRtRuntimeUs => "proc/sys/kernel/sched_rt_runtime_us",
        }
    }

    /// The config key (`host.<key>`).
    pub fn key(self) -> &'static str {
        match self {
            HostKnob::HaltPollNs => "halt_poll_ns",
            HostKnob::LapicTimerAdvanceNs => "lapic_timer_advance_ns",
            HostKnob::SchedRtRuntimeUs => "sched_rt_runtime_us",
        }
    }

    /// Whether it only affects KVM guests.
    pub fn kvm_only(self) -> bool {
        matches!(self, HostKnob::HaltPollNs | HostKnob::LapicTimerAdvanceNs)
    }
}

/// Host knobs (`variants[i].host`): value per knob, as written to its file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostKnobs {
    /// `halt_poll_ns`, ns (0 turns halt polling off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halt_poll_ns: Option<u64>,
    /// `lapic_timer_advance_ns`, ns; −1 is adaptive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lapic_timer_advance_ns: Option<i64>,
    /// `sched_rt_runtime_us`, µs; −1 turns RT throttling off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sched_rt_runtime_us: Option<i64>,
}

impl HostKnobs {
    /// The knobs set, with the value to write, in [`HostKnob::ALL`] order.
    pub fn set(&self) -> Vec<(HostKnob, String)> {
        HostKnob::ALL
            .iter()
            .filter_map(|&k| {
                let v = match k {
                    HostKnob::HaltPollNs => self.halt_poll_ns.map(|v| v.to_string()),
                    HostKnob::LapicTimerAdvanceNs => {
                        self.lapic_timer_advance_ns.map(|v| v.to_string())
                    }
                    HostKnob::SchedRtRuntimeUs => self.sched_rt_runtime_us.map(|v| v.to_string()),
                };
                v.map(|v| (k, v))
            })
            .collect()
    }
}

impl Variant {
    /// The knobs of this variant that only mean something under KVM, as config keys
    /// (`qemu.cpu_pm`, `guest.idle = "haltpoll"`, `host.halt_poll_ns`): refused under TCG.
    pub fn kvm_only(&self) -> Vec<String> {
        let q = &self.qemu;
        let mut out: Vec<String> = [
            ("cpu_host", q.cpu_host),
            ("invtsc", q.invtsc),
            ("tsc_deadline", q.tsc_deadline),
            ("pmu", q.pmu.is_some()),
            ("kvm_hint_dedicated", q.kvm_hint_dedicated),
            ("cpu_pm", q.cpu_pm),
        ]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(k, _)| format!("qemu.{k}"))
        .collect();
        // cpuidle-haltpoll registers only on KVM (it needs KVM's paravirt interface).
        if self.guest.idle == Some(GuestIdle::Haltpoll) {
            out.push("guest.idle = \"haltpoll\"".into());
        }
        out.extend(
            self.host
                .set()
                .iter()
                .filter(|(k, _)| k.kvm_only())
                .map(|(k, _)| format!("host.{}", k.key())),
        );
        out
    }

    /// The knobs set, as the config writes them (`qemu.mem_lock = "on"`, …), in the order of
    /// the structs above; empty for a variant that sets none. For `pinlat check`.
    pub fn knobs(&self) -> Vec<String> {
        let (q, g) = (&self.qemu, &self.guest);
        let mut out: Vec<String> = Vec::new();
        let mut text = |key: &str, value: Option<String>| {
            if let Some(v) = value {
                out.push(format!("{key} = {v}"));
            }
        };
        let quoted = |s: &str| format!("\"{s}\"");
        let flag = |on: bool| on.then(|| "true".to_string());
        text("qemu.mem_lock", q.mem_lock.map(|m| quoted(m.as_str())));
        text("qemu.hugepages", q.hugepages.map(|h| quoted(h.as_str())));
        text("qemu.cpu_host", flag(q.cpu_host));
        text("qemu.invtsc", flag(q.invtsc));
        text("qemu.tsc_deadline", flag(q.tsc_deadline));
        text("qemu.pmu", q.pmu.map(|p| p.to_string()));
        text("qemu.kvm_hint_dedicated", flag(q.kvm_hint_dedicated));
        text("qemu.cpu_pm", flag(q.cpu_pm));
        let preset = match g.preset {
            CmdlinePreset::Pinlat => None,
            CmdlinePreset::RealtimeVirtualGuest => Some(quoted("realtime-virtual-guest")),
            CmdlinePreset::None => Some(quoted("none")),
        };
        text("guest.preset", preset);
        let idle = g.idle.map(|i| match i {
            GuestIdle::Poll => quoted("poll"),
            GuestIdle::Haltpoll => quoted("haltpoll"),
        });
        text("guest.idle", idle);
        text(
            "guest.tsc_reliable",
            (!g.tsc_reliable).then(|| "false".into()),
        );
        text("guest.mce_off", flag(g.mce_off));
        text(
            "guest.timer_migration",
            g.timer_migration.map(|t| t.to_string()),
        );
        let extra = (!g.cmdline_extra.is_empty()).then(|| format!("{:?}", g.cmdline_extra));
        text("guest.cmdline_extra", extra);
        for (key, v) in &g.sysctls {
            text(&format!("guest.sysctls.\"{key}\""), Some(quoted(v)));
        }
        for (knob, v) in self.host.set() {
            text(&format!("host.{}", knob.key()), Some(v));
        }
        out
    }

    /// Whether the variant sets no knob at all (a named baseline).
    pub fn is_baseline(&self) -> bool {
        self.qemu == QemuKnobs::default()
            && self.guest == GuestKnobs::default()
            && self.host == HostKnobs::default()
    }
}

/// The guest kernel parameters a variant's guest knobs add after the preset, in order.
/// `preset` itself is expanded where the RT vCPUs are known (the runner's `guest_cmdline`).
pub fn guest_params(g: &GuestKnobs) -> Vec<String> {
    let mut p: Vec<String> = Vec::new();
    if let Some(idle) = g.idle {
        p.extend(idle.params().iter().map(|s| s.to_string()));
    }
    if g.mce_off {
        p.push("mce=off".into());
    }
    if let Some(on) = g.timer_migration {
        p.push(format!("sysctl.kernel.timer_migration={}", u8::from(on)));
    }
    p.extend(g.cmdline_extra.iter().cloned());
    p
}

/// The sysctl name and path rules live with the agent config, which the agent links without
/// `config`.
pub use crate::agentcfg::{sysctl_path, valid_sysctl_key};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kvm_only_knobs_are_named_by_their_config_keys() {
        let mut v = Variant {
            name: "v".into(),
            ..Variant::default()
        };
        assert!(v.kvm_only().is_empty() && v.is_baseline());
        v.qemu.mem_lock = Some(MemLock::On);
        v.qemu.hugepages = Some(HugePageSize::M2);
        v.host.sched_rt_runtime_us = Some(-1);
        assert!(
            v.kvm_only().is_empty(),
            "mem-lock, hugepages and RT runtime work under TCG"
        );
        v.guest.idle = Some(GuestIdle::Poll);
        assert!(v.kvm_only().is_empty(), "idle=poll works under TCG");
        v.qemu.cpu_pm = true;
        v.guest.idle = Some(GuestIdle::Haltpoll);
        v.host.halt_poll_ns = Some(0);
        assert_eq!(
            v.kvm_only(),
            [
                "qemu.cpu_pm",
                "guest.idle = \"haltpoll\"",
                "host.halt_poll_ns"
            ]
        );
    }

    #[test]
    fn knobs_are_listed_as_the_config_writes_them() {
        let mut v = Variant {
            name: "v".into(),
            ..Variant::default()
        };
        assert!(v.knobs().is_empty());
        v.qemu.mem_lock = Some(MemLock::On);
        v.qemu.cpu_host = true;
        v.qemu.pmu = Some(false);
        v.guest.preset = CmdlinePreset::RealtimeVirtualGuest;
        v.guest.tsc_reliable = false;
        v.guest
            .sysctls
            .insert("kernel.timer_migration".into(), "0".into());
        v.host.halt_poll_ns = Some(0);
        assert_eq!(
            v.knobs(),
            [
                "qemu.mem_lock = \"on\"",
                "qemu.cpu_host = true",
                "qemu.pmu = false",
                "guest.preset = \"realtime-virtual-guest\"",
                "guest.tsc_reliable = false",
                "guest.sysctls.\"kernel.timer_migration\" = \"0\"",
                "host.halt_poll_ns = 0",
            ]
        );
    }

    #[test]
    fn guest_params_follow_the_knobs_in_order() {
        let g = GuestKnobs {
            idle: Some(GuestIdle::Haltpoll),
            mce_off: true,
            timer_migration: Some(false),
            cmdline_extra: vec!["nmi_watchdog=0".into()],
            ..GuestKnobs::default()
        };
        assert_eq!(
            guest_params(&g),
            [
                "cpuidle_haltpoll.force=1",
                "cpuidle.governor=haltpoll",
                "mce=off",
                "sysctl.kernel.timer_migration=0",
                "nmi_watchdog=0"
            ]
        );
    }

    #[test]
    fn host_knobs_are_listed_in_apply_order() {
        let h = HostKnobs {
            sched_rt_runtime_us: Some(-1),
            halt_poll_ns: Some(0),
            lapic_timer_advance_ns: None,
        };
        assert_eq!(
            h.set(),
            [
                (HostKnob::HaltPollNs, "0".to_string()),
                (HostKnob::SchedRtRuntimeUs, "-1".to_string())
            ]
        );
    }
}
