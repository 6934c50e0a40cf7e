//! Facts about the system the agent runs on, read from procfs/sysfs (missing files give empty
//! strings: a minimal guest kernel may lack some of them).

use std::fs;

use pinlat::cpuset::CpuSet;
use pinlat::wire::{ClockInfo, SystemFacts};

fn read_trim(path: &str) -> String {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// CPUs the kernel has online (`/sys/devices/system/cpu/online`), or `0..available_parallelism`.
pub fn online_cpus() -> CpuSet {
    CpuSet::parse(&read_trim("/sys/devices/system/cpu/online")).unwrap_or_else(|_| {
        CpuSet::first_n(std::thread::available_parallelism().map_or(1, |n| n.get()) as u32)
    })
}

/// Collect the facts; `clock` is the clock chosen for this run.
pub fn collect(clock: ClockInfo) -> SystemFacts {
    let (release, version) = match nix::sys::utsname::uname() {
        Ok(u) => (
            u.release().to_string_lossy().into_owned(),
            u.version().to_string_lossy().into_owned(),
        ),
        Err(_) => (String::new(), String::new()),
    };
    let realtime = read_trim(pinlat::host::REALTIME_PATH);
    SystemFacts {
        kernel_release: release,
        preempt_rt: pinlat::host::is_preempt_rt(Some(&realtime), &version),
        kernel_version: version,
        clocksource: read_trim("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
        cmdline: read_trim("/proc/cmdline"),
        isolated_cpus: read_trim("/sys/devices/system/cpu/isolated"),
        cpu_count: online_cpus().len() as u32,
        clock,
    }
}
