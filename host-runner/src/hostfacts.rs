//! Reading this host's facts for `host.json` ([`pinlat::schema::HostFacts`]): kernel, CPUs,
//! isolation, RT throttling, and whether this process may set SCHED_FIFO.

use std::fs;
use std::path::Path;

use pinlat::cpuset::CpuSet;
pub use pinlat::schema::{HostFacts, LocalFacts};

/// `CAP_SYS_NICE`'s bit in the capability sets of `/proc/<pid>/status`.
const CAP_SYS_NICE_BIT: u32 = 23;
/// `CAP_IPC_LOCK`'s bit: locking memory beyond `RLIMIT_MEMLOCK`.
const CAP_IPC_LOCK_BIT: u32 = 14;

/// Whether a `status` text's effective capabilities (`CapEff:`, hex) include capability `bit`.
fn has_cap(status: &str, bit: u32) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << bit) != 0)
}

/// Whether a `status` text's effective capabilities (`CapEff:`, hex) include CAP_SYS_NICE.
pub fn has_cap_sys_nice(status: &str) -> bool {
    has_cap(status, CAP_SYS_NICE_BIT)
}

/// Whether this process holds CAP_SYS_NICE.
pub fn can_set_realtime() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|s| has_cap_sys_nice(&s))
}

/// Whether this process (and so the QEMU it starts) may lock memory beyond its
/// `RLIMIT_MEMLOCK`: it holds CAP_IPC_LOCK.
pub fn can_lock_memory() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|s| has_cap(&s, CAP_IPC_LOCK_BIT))
}

/// This process's soft `RLIMIT_MEMLOCK`, bytes (`None`: unlimited or unreadable). QEMU started
/// by pinlat inherits it.
pub fn memlock_limit_bytes() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid, exclusive pointer to a local.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) };
    (rc == 0 && r.rlim_cur != libc::RLIM_INFINITY).then_some(r.rlim_cur)
}

fn read_trim(path: &str) -> String {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn cpu_list_file(path: &str) -> CpuSet {
    pinlat::host::read_cpu_list(Path::new(path)).unwrap_or_default()
}

/// Reads this host's facts.
pub fn local() -> LocalFacts {
    let uts = nix::sys::utsname::uname().ok();
    let hostname = uts
        .as_ref()
        .map(|u| u.nodename().to_string_lossy().trim().to_string())
        .filter(|n| !n.is_empty() && n != "(none)");
    let kernel_release = uts
        .as_ref()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let kernel_version = uts
        .as_ref()
        .map(|u| u.version().to_string_lossy().into_owned())
        .unwrap_or_default();
    let realtime = read_trim(pinlat::host::REALTIME_PATH);
    let preempt_rt = pinlat::host::is_preempt_rt(Some(&realtime), &kernel_version);
    let cpu_model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    LocalFacts {
        hostname,
        kernel_release,
        kernel_version,
        preempt_rt,
        cmdline: read_trim("/proc/cmdline"),
        cpu_model,
        online_cpus: pinlat::host::online_cpus().unwrap_or_default(),
        isolated_cpus: cpu_list_file(pinlat::host::ISOLATED_PATH),
        nohz_full_cpus: cpu_list_file("/sys/devices/system/cpu/nohz_full"),
        sched_rt_runtime_us: read_trim("/proc/sys/kernel/sched_rt_runtime_us")
            .parse()
            .ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_sys_nice_from_status() {
        assert!(has_cap_sys_nice("Name:\tx\nCapEff:\t000001ffffffffff\n"));
        assert!(has_cap("CapEff:\t0000000000004000\n", CAP_IPC_LOCK_BIT));
        assert!(!has_cap("CapEff:\t0000000000800000\n", CAP_IPC_LOCK_BIT));
        assert!(!has_cap_sys_nice("CapEff:\t0000000000000000\n"));
        assert!(has_cap_sys_nice("CapEff:\t0000000000800000\n"));
        assert!(!has_cap_sys_nice("CapEff:\t00000000007fffff\n"));
        assert!(!has_cap_sys_nice("no caps here"));
    }
}
