//! The only host facts the model reads: which CPUs are online (and, for reports, isolated).
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
