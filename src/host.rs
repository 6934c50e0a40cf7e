//! The only host facts the model reads: which CPUs are online (and, for reports, isolated),
//! and whether a kernel is PREEMPT_RT (the one rule the host facts, the doctor and the agent's
//! guest facts share).
//!
//! Kept apart so the planner itself stays pure: it takes a [`CpuSet`] of online CPUs, which
//! `pinlat plan --host-cpus` can also supply for a lab host other than this one.

use std::io;
use std::path::Path;

use crate::cpuset::CpuSet;

/// sysfs file listing online CPUs in CPU-list syntax.
pub const ONLINE_PATH: &str = "/sys/devices/system/cpu/online";
/// sysfs file listing CPUs isolated with `isolcpus=` (empty when none).
pub const ISOLATED_PATH: &str = "/sys/devices/system/cpu/isolated";

/// `CLOCK_MONOTONIC` now, ns: the clock the runner, the agent (whose timer loop reads it, hence
/// inlined) and the host tracer (`trace_clock` = `mono`) share.
#[inline(always)]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux, so the
    // call cannot fail and `ts` is filled in.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Peak resident memory of this process (`VmHWM` of `/proc/self/status`), KiB; `None` where
/// `/proc` is not mounted or the line is missing.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// sysfs file that reads `1` on a PREEMPT_RT kernel (absent on others).
pub const REALTIME_PATH: &str = "/sys/kernel/realtime";

/// Whether a kernel is PREEMPT_RT: `/sys/kernel/realtime` reads `1` (`realtime`, trimmed; `None`
/// when absent), or its `uname -v` says `PREEMPT_RT` (kernels before 6.12 without the file).
pub fn is_preempt_rt(realtime: Option<&str>, uname_version: &str) -> bool {
    realtime == Some("1") || uname_version.contains("PREEMPT_RT")
}

/// Parses the kernel command line into (key, value) pairs; flags have an empty value.
pub fn cmdline_params(cmdline: &str) -> Vec<(String, String)> {
    cmdline
        .split_whitespace()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), v.trim_matches('"').to_string()),
            None => (w.to_string(), String::new()),
        })
        .collect()
}

/// The last value of `key` on the command line (the kernel uses the last one).
pub fn cmdline_value(cmdline: &str, key: &str) -> Option<String> {
    cmdline_params(cmdline)
        .into_iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// Parses a CPU-list value that may carry flags (`isolcpus=managed_irq,domain,2-5`) or be
/// `all`.
pub fn cpu_list_value(v: &str, online: &CpuSet) -> CpuSet {
    if v.trim() == "all" {
        return online.clone();
    }
    let list: Vec<&str> = v
        .split(',')
        .filter(|t| t.starts_with(|c: char| c.is_ascii_digit() || c == '^'))
        .collect();
    CpuSet::parse(&list.join(",")).unwrap_or_default()
}

/// Reads a sysfs CPU-list file. An empty file is an empty set.
pub fn read_cpu_list(path: &Path) -> io::Result<CpuSet> {
    let text = std::fs::read_to_string(path)?;
    let t = text.trim();
    if t.is_empty() {
        return Ok(CpuSet::new());
    }
    CpuSet::parse(t).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

/// This host's online CPUs.
pub fn online_cpus() -> io::Result<CpuSet> {
    read_cpu_list(Path::new(ONLINE_PATH))
}

/// This host's `isolcpus=` CPUs (empty when none).
pub fn isolated_cpus() -> io::Result<CpuSet> {
    read_cpu_list(Path::new(ISOLATED_PATH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_hosts_online_cpus() {
        let online = online_cpus().unwrap();
        assert!(online.contains(0), "CPU 0 is always online: {online}");
    }
}
