//! What the variants' QEMU knobs need from this host, its accelerator and its QEMU, checked
//! before any guest starts: a knob that cannot apply is a usage error (exit 2) naming
//! `variants[i].qemu.<key>` and the fix, never a failed boot or a run that silently measured
//! without it.
//!
//! - **Under TCG, knobs that need KVM are refused** ([`refuse_kvm_only`]): `-cpu host` and its
//!   flags, `cpu-pm`, and the KVM module's host knobs have no meaning in an emulated CPU, and a
//!   variant run without them would be ranked as if they had applied. pinlat refuses rather
//!   than warns (configs/README.md, "`[[variants]]`").
//! - **Huge pages** ([`hugepages`]): every guest's memory is a whole number of pages of the
//!   variant's size, and the pool of that size has enough free pages for all the guests of one
//!   run (runs are one at a time, and every layout starts every guest), read from
//!   `/sys/kernel/mm/hugepages/hugepages-<kib>kB/{free,nr}_hugepages` under a root that tests
//!   replace with a directory of their own.
//! - **QEMU's version** ([`qemu_version`]): `mem-lock=on-fault` needs QEMU 10.0.
//! - **libvirt** ([`libvirt`]): `mem-lock=on-fault` has no libvirt element (`<locked/>` is
//!   `mem-lock=on`), and libvirt raises QEMU's memlock limit only for `<locked/>`; libvirt
//!   takes huge pages from a hugetlbfs mount, which must exist.

use std::fmt::Write;

use pinlat::config::variant::{HugePageSize, MemLock, Variant};
use pinlat::config::{Config, Guest};
use pinlat::kinds::LauncherKind;

use crate::doctor::SysRoot;
use crate::qemu::knobs;

/// A variant that cannot run here as configured (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum VariantError {
    /// Knobs that need KVM, with the guests under TCG.
    #[error("{}", kvm_only_message(.variants, .why))]
    KvmOnlyUnderTcg {
        /// Per variant: its index, name and the knobs' config keys.
        variants: Vec<(usize, String, Vec<String>)>,
        /// Why the guests run under TCG (`--accel tcg`, the probe's reason).
        why: String,
    },
    /// A knob this QEMU cannot take.
    #[error("variants[{index}].{key} = \"{value}\" (variant '{name}') needs QEMU {needs} or later; this QEMU is {version}. Fix: install a newer QEMU (or set PINLAT_QEMU to one), or drop the knob")]
    QemuTooOld {
        /// The variant's index.
        index: usize,
        /// Its name.
        name: String,
        /// The key, e.g. `qemu.mem_lock`.
        key: &'static str,
        /// The value.
        value: String,
        /// The first version that takes it.
        needs: &'static str,
        /// This QEMU's version.
        version: String,
    },
    /// A guest's memory is not a whole number of huge pages.
    #[error("{at}: guest '{guest}' has memory_mib = {memory_mib}, not a multiple of the {page_mib} MiB page. Fix: set guests[{guest_index}].memory_mib to a multiple of {page_mib}")]
    NotPageMultiple {
        /// The knob: `variants[i].qemu.hugepages: "2M" (variant 'name')`.
        at: String,
        /// The guest's index.
        guest_index: usize,
        /// The guest's name.
        guest: String,
        /// Its memory, MiB.
        memory_mib: u32,
        /// The page size, MiB.
        page_mib: u64,
    },
    /// The host has no huge page pool of that size.
    #[error("{at}: this kernel has no {size} huge page pool ({dir} is missing). Fix: {fix}")]
    NoPool {
        /// The knob: `variants[i].qemu.hugepages: "2M" (variant 'name')`.
        at: String,
        /// The page size as configured.
        size: &'static str,
        /// The sysfs directory that is missing.
        dir: String,
        /// What to do.
        fix: String,
    },
    /// Too few free huge pages for the guests of one run.
    #[error("{at} needs {need} free pages of that size for its guests ({guests}), the host has {free} free of {total} ({dir}/free_hugepages). Fix: echo {want} > {dir}/nr_hugepages (as root, before pinlat run){extra}")]
    TooFewPages {
        /// The knob: `variants[i].qemu.hugepages: "2M" (variant 'name')`.
        at: String,
        /// Pages one run needs.
        need: u64,
        /// Each guest's share, `g1 512 MiB + g2 256 MiB`.
        guests: String,
        /// Free pages now.
        free: u64,
        /// Pages in the pool now (`nr_hugepages`).
        total: u64,
        /// The pool's sysfs directory.
        dir: String,
        /// The `nr_hugepages` that gives enough free pages.
        want: u64,
        /// A note for 1 GiB pages, which a running host often cannot find.
        extra: &'static str,
    },
    /// `mem_lock` with a memlock limit below the guest's memory and no CAP_IPC_LOCK.
    #[error("variants[{index}].qemu.mem_lock = \"{value}\" (variant '{name}'): QEMU locks guest '{guest}''s {memory_mib} MiB and its own memory, but pinlat runs without CAP_IPC_LOCK and RLIMIT_MEMLOCK is {limit_kib} KiB, below the guest's memory alone: QEMU would fail to start. Fix: run pinlat as root, or raise the limit (ulimit -l unlimited, or memlock in /etc/security/limits.conf), or drop the knob")]
    MemlockLimit {
        /// The variant's index.
        index: usize,
        /// Its name.
        name: String,
        /// The knob's value.
        value: &'static str,
        /// The largest guest.
        guest: String,
        /// Its memory, MiB.
        memory_mib: u32,
        /// The soft limit, KiB.
        limit_kib: u64,
    },
    /// A knob the libvirt launcher cannot apply.
    #[error("variants[{index}].{key} = \"{value}\" (variant '{name}') cannot be applied through libvirt: {why}. Fix: {fix}")]
    Libvirt {
        /// The variant's index.
        index: usize,
        /// Its name.
        name: String,
        /// The key.
        key: &'static str,
        /// The value.
        value: &'static str,
        /// Why.
        why: &'static str,
        /// What to do.
        fix: &'static str,
    },
}

fn kvm_only_message(variants: &[(usize, String, Vec<String>)], why: &str) -> String {
    let mut m = format!(
        "the guests run under TCG ({why}), and these variants set knobs that only KVM applies:"
    );
    for (i, name, keys) in variants {
        let keys: Vec<String> = keys.iter().map(|k| format!("variants[{i}].{k}")).collect();
        let _ = write!(m, " variant '{name}': {};", keys.join(", "));
    }
    m.pop();
    m.push_str(". pinlat refuses a knob it cannot apply rather than rank a variant that ran without it. Fix: run on a KVM host with --accel kvm, or drop the knob");
    m
}

/// Refuses, under TCG (`why` says why the guests run under TCG), every variant that sets a
/// knob only KVM applies ([`Variant::kvm_only`]), naming each variant and knob.
pub fn refuse_kvm_only(variants: &[Variant], why: &str) -> Result<(), VariantError> {
    let bad: Vec<(usize, String, Vec<String>)> = variants
        .iter()
        .enumerate()
        .map(|(i, v)| (i, v.name.clone(), v.kvm_only()))
        .filter(|(_, _, keys)| !keys.is_empty())
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(VariantError::KvmOnlyUnderTcg {
            variants: bad,
            why: why.to_owned(),
        })
    }
}

/// Refuses knobs QEMU `version` (`7.2.22`) cannot take ([`knobs::unsupported`]).
pub fn qemu_version(variants: &[Variant], version: &str) -> Result<(), VariantError> {
    for (index, v) in variants.iter().enumerate() {
        if let Some(u) = knobs::unsupported(&v.qemu, version).into_iter().next() {
            return Err(VariantError::QemuTooOld {
                index,
                name: v.name.clone(),
                key: u.key,
                value: u.value,
                needs: u.needs,
                version: version.to_owned(),
            });
        }
    }
    Ok(())
}

/// Refuses knobs the libvirt launcher cannot apply (none for the QEMU launcher): on-fault, and
/// huge pages without a hugetlbfs mount under `root` (`/proc/mounts`), from which libvirt, unlike
/// pinlat's memfd backend, takes them.
pub fn libvirt(
    root: &SysRoot,
    variants: &[Variant],
    launcher: LauncherKind,
) -> Result<(), VariantError> {
    if launcher != LauncherKind::Libvirt {
        return Ok(());
    }
    let hugetlbfs = || {
        root.read("/proc/mounts").is_ok_and(|m| {
            m.lines()
                .any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs"))
        })
    };
    for (index, v) in variants.iter().enumerate() {
        if v.qemu.hugepages.is_some() && !hugetlbfs() {
            return Err(VariantError::Libvirt {
                index,
                name: v.name.clone(),
                key: "qemu.hugepages",
                value: v.qemu.hugepages.map_or("", |s| s.as_str()),
                why: "libvirt backs huge-page memory with a file on a hugetlbfs mount, and /proc/mounts has none",
                fix: "mount one (`mount -t hugetlbfs hugetlbfs /dev/hugepages`, then restart libvirtd), or run this variant with --launcher qemu",
            });
        }
        if v.qemu.mem_lock == Some(MemLock::OnFault) {
            return Err(VariantError::Libvirt {
                index,
                name: v.name.clone(),
                key: "qemu.mem_lock",
                value: "on-fault",
                why: "the domain XML has only <memoryBacking><locked/> (mem-lock=on), and libvirt raises QEMU's RLIMIT_MEMLOCK only for that",
                fix: "use mem_lock = \"on\" with --launcher libvirt, or run this variant with --launcher qemu",
            });
        }
    }
    Ok(())
}

/// Every check but the accelerator's, for `pinlat run` on this host with QEMU `version`:
/// QEMU's version, the launcher, the huge page pools. Before any guest starts.
pub fn before_run(config: &Config, version: &str) -> Result<(), VariantError> {
    qemu_version(&config.variants, version)?;
    let root = SysRoot::live();
    libvirt(&root, &config.variants, config.run.launcher)?;
    hugepages(&root, &config.variants, &config.guests)?;
    if config.run.launcher == LauncherKind::Qemu && !crate::hostfacts::can_lock_memory() {
        mem_lock(
            &config.variants,
            &config.guests,
            crate::hostfacts::memlock_limit_bytes(),
        )?;
    }
    Ok(())
}

/// Checks every variant's `mem_lock` against the memlock limit QEMU inherits, `limit` bytes
/// (`None`: unlimited), for a pinlat without CAP_IPC_LOCK: a limit below the largest guest's
/// memory alone cannot work. (Under libvirt, libvirt raises QEMU's limit for `<locked/>`.)
pub fn mem_lock(
    variants: &[Variant],
    guests: &[Guest],
    limit: Option<u64>,
) -> Result<(), VariantError> {
    let Some(limit) = limit else {
        return Ok(());
    };
    let Some(largest) = guests.iter().max_by_key(|g| g.memory_mib) else {
        return Ok(());
    };
    for (index, v) in variants.iter().enumerate() {
        let value = match v.qemu.mem_lock {
            Some(m @ (MemLock::On | MemLock::OnFault)) => m.as_str(),
            _ => continue,
        };
        if limit < u64::from(largest.memory_mib) << 20 {
            return Err(VariantError::MemlockLimit {
                index,
                name: v.name.clone(),
                value,
                guest: largest.name.clone(),
                memory_mib: largest.memory_mib,
                limit_kib: limit >> 10,
            });
        }
    }
    Ok(())
}

/// The sysfs directory of the huge page pool of `size`, relative to the root.
pub fn pool_dir(size: HugePageSize) -> String {
    format!("/sys/kernel/mm/hugepages/hugepages-{}kB", size.kib())
}

/// Checks every variant's `hugepages` against `guests` (all of which one run starts) and the
/// pools under `root`.
pub fn hugepages(
    root: &SysRoot,
    variants: &[Variant],
    guests: &[Guest],
) -> Result<(), VariantError> {
    for (index, v) in variants.iter().enumerate() {
        let Some(size) = v.qemu.hugepages else {
            continue;
        };
        let page_kib = size.kib();
        let at = format!(
            "variants[{index}].qemu.hugepages = \"{}\" (variant '{}')",
            size.as_str(),
            v.name
        );
        let mut need = 0;
        for (gi, g) in guests.iter().enumerate() {
            let kib = u64::from(g.memory_mib) * 1024;
            if kib % page_kib != 0 {
                return Err(VariantError::NotPageMultiple {
                    at,
                    guest_index: gi,
                    guest: g.name.clone(),
                    memory_mib: g.memory_mib,
                    page_mib: page_kib / 1024,
                });
            }
            need += kib / page_kib;
        }
        let dir = pool_dir(size);
        let shown = root.path(&dir).display().to_string();
        let read = |file: &str| -> Option<u64> {
            root.read(&format!("{dir}/{file}"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
        };
        let (Some(free), Some(total)) = (read("free_hugepages"), read("nr_hugepages")) else {
            return Err(VariantError::NoPool {
                at,
                size: size.as_str(),
                dir: shown,
                fix: match size {
                    HugePageSize::G1 => "1 GiB pages need a CPU with pdpe1gb and are best reserved at boot: add hugepagesz=1G hugepages=N to the host kernel command line, or use hugepages = \"2M\"".into(),
                    HugePageSize::M2 => "build the host kernel with CONFIG_HUGETLBFS, or drop the knob".into(),
                },
            });
        };
        if free < need {
            let guests = guests
                .iter()
                .map(|g| format!("'{}' {} MiB", g.name, g.memory_mib))
                .collect::<Vec<_>>()
                .join(" + ");
            return Err(VariantError::TooFewPages {
                at,
                need,
                guests,
                free,
                total,
                dir: shown,
                want: total + (need - free),
                extra: match size {
                    HugePageSize::G1 => "; a running host often cannot find free 1 GiB ranges: reserve them at boot with hugepagesz=1G hugepages=N",
                    HugePageSize::M2 => "",
                },
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "prereq_tests.rs"]
mod tests;
