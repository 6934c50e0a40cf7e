//! `host.json`: the host a set of runs was measured on — kernel, CPUs and their isolation,
//! accelerator (and why), QEMU, guest kernel, privileges. A latency figure without these is not
//! reproducible.

use serde::{Deserialize, Serialize};

use crate::cpuset::CpuSet;
use crate::kinds::Accel;

/// File name of the host facts in a results directory.
pub const HOST_FILE: &str = "host.json";
/// Version of [`HostFacts`].
pub const HOST_SCHEMA_VERSION: u32 = 1;

/// `host.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostFacts {
    /// [`HOST_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// pinlat's version.
    pub pinlat_version: String,
    /// What the host kernel and CPUs say (flattened into the same JSON object).
    #[serde(flatten)]
    pub local: LocalFacts,
    /// The accelerator the runs used.
    pub accel: Accel,
    /// Why that accelerator (e.g. the KVM probe's failure when `auto` fell back to TCG).
    pub accel_note: Option<String>,
    /// QEMU binary path.
    pub qemu_path: String,
    /// QEMU's `--version` first line.
    pub qemu_version: String,
    /// Guest kernel path.
    pub guest_kernel: String,
    /// Where the guest kernel came from (config, env, host /boot, Debian RT package).
    pub guest_kernel_source: String,
    /// Whether the runner holds CAP_SYS_NICE (root normally does), which SCHED_FIFO on QEMU's
    /// threads needs; without it RT vCPUs run SCHED_OTHER and each run says so.
    pub can_set_realtime: bool,
    /// The static agent put into each guest's initramfs.
    pub agent_path: String,
}

/// Facts about this host that need no guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalFacts {
    /// `uname -n`: the host's name, which `pinlat merge` labels the host by (absent from
    /// `host.json` files written before it was recorded, and when the kernel has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// `uname -r`.
    pub kernel_release: String,
    /// `uname -v` (contains `PREEMPT_RT` on RT kernels).
    pub kernel_version: String,
    /// Whether the host kernel is PREEMPT_RT (`/sys/kernel/realtime` or `uname -v`).
    pub preempt_rt: bool,
    /// `/proc/cmdline`.
    pub cmdline: String,
    /// `model name` of the first CPU in `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Online CPUs.
    pub online_cpus: CpuSet,
    /// `isolcpus=` CPUs (`/sys/devices/system/cpu/isolated`).
    pub isolated_cpus: CpuSet,
    /// `nohz_full=` CPUs (`/sys/devices/system/cpu/nohz_full`), empty when none.
    pub nohz_full_cpus: CpuSet,
    /// `/proc/sys/kernel/sched_rt_runtime_us` (-1 = RT throttling off).
    pub sched_rt_runtime_us: Option<i64>,
}

impl super::Versioned for HostFacts {
    const NAME: &'static str = HOST_FILE;
    const VERSION: u32 = HOST_SCHEMA_VERSION;
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = r##"{"schema_version": 1, "pinlat_version": "0.1.0",
        "kernel_release": "6.1.0-rt", "kernel_version": "#1 SMP PREEMPT_RT", "preempt_rt": true,
        "cmdline": "", "cpu_model": "x", "online_cpus": "0-3", "isolated_cpus": "",
        "nohz_full_cpus": "", "sched_rt_runtime_us": -1, "accel": "tcg", "accel_note": null,
        "qemu_path": "q", "qemu_version": "v", "guest_kernel": "k", "guest_kernel_source": "s",
        "can_set_realtime": false, "agent_path": "a"}"##;

    /// A host.json written before the host's name was recorded still reads, without one; a
    /// name is written and read back, and no name is not written at all.
    #[test]
    fn hostname_is_optional_and_round_trips() {
        let p = std::path::Path::new("host.json");
        let old: HostFacts = crate::schema::parse_versioned(p, OLD.as_bytes()).unwrap();
        assert_eq!(old.local.hostname, None);
        assert!(!serde_json::to_string(&old).unwrap().contains("hostname"));
        let mut named = old.clone();
        named.local.hostname = Some("rt-lab-07".into());
        let text = serde_json::to_string(&named).unwrap();
        assert!(text.contains(r#""hostname":"rt-lab-07""#), "{text}");
        let back: HostFacts = crate::schema::parse_versioned(p, text.as_bytes()).unwrap();
        assert_eq!(back, named);
    }
}
