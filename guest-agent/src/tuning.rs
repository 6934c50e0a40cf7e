//! The guest's side of realtime readiness ([`GuestTuning`]), read under a root directory (`/`
//! in a guest, a fixture tree in tests). A file that is absent stays `None`: the report says
//! "unknown", never "ok".

use std::fs;
use std::path::Path;

use pinlat::wire::{
    GuestIrq, GuestTuning, SysctlReadBack, CPUIDLE_DRIVER_PATH, CPUIDLE_GOVERNOR_PATH,
    CPUIDLE_GOVERNOR_RO_PATH, MAX_IRQS, NOHZ_FULL_PATH, PROC_IRQ_DIR, SCHED_RT_RUNTIME_PATH,
    TIMER_MIGRATION_PATH,
};

/// The text of `path`, trimmed; `None` when it cannot be read.
pub(crate) fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// `path` (absolute) under `root`, trimmed; `None` when it cannot be read.
fn read(root: &Path, path: &str) -> Option<String> {
    read_trimmed(&root.join(path.trim_start_matches('/')))
}

/// Every IRQ under `<root>/proc/irq` with at least one action (a subdirectory named for its
/// handler), in number order; `None` when the directory cannot be listed.
pub fn irqs(root: &Path) -> Option<Vec<GuestIrq>> {
    let dir = root.join(PROC_IRQ_DIR.trim_start_matches('/'));
    let mut numbers: Vec<u32> = fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    numbers.sort_unstable();
    let mut out = Vec::new();
    for irq in numbers {
        let d = dir.join(irq.to_string());
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        let mut actions: Vec<String> = entries
            .filter_map(|e| {
                let e = e.ok()?;
                e.file_type().ok()?.is_dir().then_some(())?;
                e.file_name().into_string().ok()
            })
            .collect();
        if actions.is_empty() {
            continue;
        }
        actions.sort();
        let file = |name: &str| read_trimmed(&d.join(name));
        out.push(GuestIrq {
            irq,
            actions,
            effective: file("effective_affinity_list"),
            affinity: file("smp_affinity_list"),
        });
        if out.len() == MAX_IRQS {
            break;
        }
    }
    Some(out)
}

/// The tuning facts under `root`, with the run's sysctls as read back.
pub fn collect(root: &Path, sysctls: Vec<SysctlReadBack>) -> GuestTuning {
    GuestTuning {
        cpuidle_driver: read(root, CPUIDLE_DRIVER_PATH),
        cpuidle_governor: read(root, CPUIDLE_GOVERNOR_RO_PATH)
            .or_else(|| read(root, CPUIDLE_GOVERNOR_PATH)),
        isolated: read(root, pinlat::host::ISOLATED_PATH),
        nohz_full: read(root, NOHZ_FULL_PATH),
        timer_migration: read(root, TIMER_MIGRATION_PATH),
        sched_rt_runtime_us: read(root, SCHED_RT_RUNTIME_PATH),
        irqs: irqs(root),
        sysctls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn a_full_tree_is_read_and_irqs_without_actions_are_left_out() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        write(r, "sys/devices/system/cpu/cpuidle/current_driver", "none\n");
        write(
            r,
            "sys/devices/system/cpu/cpuidle/current_governor_ro",
            "menu\n",
        );
        write(r, "sys/devices/system/cpu/isolated", "1-3\n");
        write(r, "sys/devices/system/cpu/nohz_full", "1-3\n");
        write(r, "proc/sys/kernel/timer_migration", "0\n");
        write(r, "proc/sys/kernel/sched_rt_runtime_us", "-1\n");
        // IRQ 4 (ttyS0) on CPU 0, IRQ 11 (virtio) on CPU 2, IRQ 7 with no handler.
        write(r, "proc/irq/4/effective_affinity_list", "0\n");
        write(r, "proc/irq/4/smp_affinity_list", "0\n");
        fs::create_dir_all(r.join("proc/irq/4/ttyS0")).unwrap();
        write(r, "proc/irq/11/smp_affinity_list", "0-3\n");
        fs::create_dir_all(r.join("proc/irq/11/virtio0-requests")).unwrap();
        fs::create_dir_all(r.join("proc/irq/11/virtio0-config")).unwrap();
        write(r, "proc/irq/7/smp_affinity_list", "0-3\n");
        write(r, "proc/irq/default_smp_affinity", "f\n");
        let t = collect(r, Vec::new());
        assert_eq!(t.cpuidle_driver.as_deref(), Some("none"));
        assert_eq!(t.cpuidle_governor.as_deref(), Some("menu"));
        assert_eq!(t.isolated.as_deref(), Some("1-3"));
        assert_eq!(t.nohz_full.as_deref(), Some("1-3"));
        assert_eq!(t.timer_migration.as_deref(), Some("0"));
        assert_eq!(t.sched_rt_runtime_us.as_deref(), Some("-1"));
        let irqs = t.irqs.unwrap();
        assert_eq!(
            irqs,
            [
                GuestIrq {
                    irq: 4,
                    actions: vec!["ttyS0".into()],
                    effective: Some("0".into()),
                    affinity: Some("0".into()),
                },
                GuestIrq {
                    irq: 11,
                    actions: vec!["virtio0-config".into(), "virtio0-requests".into()],
                    effective: None,
                    affinity: Some("0-3".into()),
                }
            ]
        );
    }

    #[test]
    fn absent_files_are_unknown_and_the_writable_governor_is_the_fallback() {
        let d = tempfile::tempdir().unwrap();
        let t = collect(d.path(), Vec::new());
        assert_eq!(
            t,
            GuestTuning {
                irqs: None,
                ..GuestTuning::default()
            }
        );
        write(
            d.path(),
            "sys/devices/system/cpu/cpuidle/current_governor",
            "ladder\n",
        );
        assert_eq!(
            collect(d.path(), Vec::new()).cpuidle_governor.as_deref(),
            Some("ladder")
        );
    }
}
