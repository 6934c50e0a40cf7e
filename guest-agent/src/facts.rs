//! Facts about the system the agent runs on, read from procfs/sysfs (missing files give empty
//! strings: a minimal guest kernel may lack some of them).

use std::fs;
use std::path::Path;

use pinlat::cpuset::CpuSet;
use pinlat::wire::{
    virtio_kind, ClockInfo, DeviceFacts, SysctlReadBack, SystemFacts, VirtioDevice,
};

fn read_trim(path: &str) -> String {
    crate::tuning::read_trimmed(Path::new(path)).unwrap_or_default()
}

/// CPUs the kernel has online (`/sys/devices/system/cpu/online`), or `0..available_parallelism`.
pub fn online_cpus() -> CpuSet {
    CpuSet::parse(&read_trim(pinlat::host::ONLINE_PATH)).unwrap_or_else(|_| {
        CpuSet::first_n(std::thread::available_parallelism().map_or(1, |n| n.get()) as u32)
    })
}

/// The devices on the virtio bus under `sys` (normally `/sys`), in bus order (`virtio0`,
/// `virtio1`, …): each one's type from its `device` file (the virtio device ID), its driver
/// from the `driver` link, and the block or net interface the driver made of it from its
/// `block/` or `net/` subdirectory (the same names as `/sys/class/block` and `/sys/class/net`).
pub fn virtio_devices(sys: &Path) -> Vec<VirtioDevice> {
    let bus = sys.join("bus/virtio/devices");
    let Ok(entries) = fs::read_dir(&bus) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    // virtio2 before virtio10.
    ids.sort_by_key(|id| {
        let n = id.trim_start_matches(|c: char| !c.is_ascii_digit());
        (n.parse::<u64>().unwrap_or(u64::MAX), id.clone())
    });
    ids.into_iter()
        .map(|bus_id| {
            let dir = bus.join(&bus_id);
            let id = fs::read_to_string(dir.join("device")).unwrap_or_default();
            let id = u32::from_str_radix(id.trim().trim_start_matches("0x"), 16).unwrap_or(0);
            let driver = fs::read_link(dir.join("driver"))
                .ok()
                .and_then(|l| Some(l.file_name()?.to_string_lossy().into_owned()));
            let name = ["block", "net"]
                .iter()
                .find_map(|class| first_entry(&dir.join(class)))
                .unwrap_or_default();
            VirtioDevice {
                bus_id,
                kind: virtio_kind(id),
                name,
                driver,
            }
        })
        .collect()
}

fn first_entry(dir: &Path) -> Option<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names.into_iter().next()
}

/// Collect the facts; `clock` is the clock chosen for this run, `sysctls` the run's sysctls as
/// the agent wrote and read them back ([`crate::sysctl::apply`]). The modules part of
/// [`SystemFacts::devices`] is left empty for the caller that loaded them.
pub fn collect(clock: ClockInfo, sysctls: Vec<SysctlReadBack>) -> SystemFacts {
    let (release, version) = match nix::sys::utsname::uname() {
        Ok(u) => (
            u.release().to_string_lossy().into_owned(),
            u.version().to_string_lossy().into_owned(),
        ),
        Err(_) => (String::new(), String::new()),
    };
    let realtime = read_trim(pinlat::host::REALTIME_PATH);
    let tuning = crate::tuning::collect(Path::new("/"), sysctls);
    SystemFacts {
        kernel_release: release,
        preempt_rt: pinlat::host::is_preempt_rt(Some(&realtime), &version),
        kernel_version: version,
        clocksource: read_trim("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
        cmdline: read_trim("/proc/cmdline"),
        // The same file as the tuning's `isolated`, read once.
        isolated_cpus: tuning.isolated.clone().unwrap_or_default(),
        cpu_count: online_cpus().len() as u32,
        clock,
        devices: DeviceFacts {
            virtio: virtio_devices(Path::new("/sys")),
            ..DeviceFacts::default()
        },
        tuning: Some(tuning),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A sysfs tree as the guest shows it with a disk, a NIC and a balloon without driver.
    #[test]
    fn virtio_bus_with_block_and_net() {
        let sys = tempfile::tempdir().unwrap();
        let bus = sys.path().join("bus/virtio/devices");
        let drivers = sys.path().join("bus/virtio/drivers");
        for (id, dev, driver, class) in [
            ("virtio10", "0x0005", None, None),
            (
                "virtio2",
                "0x0001",
                Some("virtio_net"),
                Some(("net", "eth0")),
            ),
            (
                "virtio1",
                "0x0002",
                Some("virtio_blk"),
                Some(("block", "vda")),
            ),
        ] {
            let d = bus.join(id);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("device"), format!("{dev}\n")).unwrap();
            if let Some(drv) = driver {
                fs::create_dir_all(drivers.join(drv)).unwrap();
                symlink(format!("../../drivers/{drv}"), d.join("driver")).unwrap();
            }
            if let Some((class, name)) = class {
                fs::create_dir_all(d.join(class).join(name)).unwrap();
            }
        }
        let found = virtio_devices(sys.path());
        let brief: Vec<(&str, &str, &str, Option<&str>)> = found
            .iter()
            .map(|d| {
                (
                    d.bus_id.as_str(),
                    d.kind.as_str(),
                    d.name.as_str(),
                    d.driver.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            brief,
            [
                ("virtio1", "block", "vda", Some("virtio_blk")),
                ("virtio2", "net", "eth0", Some("virtio_net")),
                ("virtio10", "balloon", "", None),
            ]
        );
        assert!(virtio_devices(&sys.path().join("nothing")).is_empty());
    }
}
