//! A variant's QEMU knobs ([`QemuKnobs`], `variants[i].qemu`) as QEMU arguments: the one place
//! they are spelled, for every guest whichever accelerator runs it ([`super::qemu_args`] appends
//! [`knob_args`]), and the QEMU versions they need ([`unsupported`]).
//!
//! - `mem_lock` and `cpu_pm` share one `-overcommit mem-lock=…,cpu-pm=on`: before QEMU 9.1
//!   ("vl: Allow multiple -overcommit commands") a second `-overcommit` reset every key it did
//!   not name to its default, so two options would silently drop the first one's knob.
//!   `mem-lock=on-fault` (`mlockall(MCL_ONFAULT)`) exists from QEMU 10.0 on; QEMU 7.2 takes
//!   only `on|off`.
//! - `hugepages` backs the guest's RAM with `memory-backend-memfd,hugetlb=on,hugetlbsize=…,
//!   prealloc=on` named by `-machine memory-backend=` (QEMU ≥ 5.0). memfd rather than libvirt's
//!   `memory-backend-file` on a hugetlbfs mount: it needs no mount of the right page size
//!   (Debian mounts none by default; `/dev/hugepages` is systemd's), leaves no file behind
//!   when QEMU is killed, and takes its pages from the same per-size pool
//!   (`/sys/kernel/mm/hugepages/hugepages-<kib>kB`) the runner checks before any guest starts.
//!   `prealloc=on` faults every page in at start, so no guest access ever waits on the pool.
//! - `cpu_host` and its flags make one `-cpu host,migratable=off[,invtsc=on][,tsc-deadline=on]
//!   [,pmu=on|off][,kvm-hint-dedicated=on]` (QEMU's `feature=on` form rather than the legacy
//!   `+feature`). `migratable=off` is what lets `invtsc` through: QEMU drops features that
//!   block migration from a migratable host CPU.

use pinlat::config::variant::{MemLock, QemuKnobs};

/// The id of the memory backend the `hugepages` knob creates.
pub const MEMORY_BACKEND_ID: &str = "pinlat-mem";

/// The `-cpu` value of the `cpu_host` knob and the flags that need it; `None` without
/// `cpu_host`.
pub fn cpu_arg(k: &QemuKnobs) -> Option<String> {
    if !k.cpu_host {
        return None;
    }
    let mut cpu = String::from("host,migratable=off");
    for flag in pinlat::export::libvirt_knobs::cpu_flags(k) {
        cpu.push_str(&format!(",{flag}=on"));
    }
    if let Some(pmu) = k.pmu {
        cpu.push_str(if pmu { ",pmu=on" } else { ",pmu=off" });
    }
    if k.kvm_hint_dedicated {
        cpu.push_str(",kvm-hint-dedicated=on");
    }
    Some(cpu)
}

/// The `-overcommit` value of `mem_lock` and `cpu_pm` together (see the module doc); `None`
/// when neither is set.
pub fn overcommit_arg(k: &QemuKnobs) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(m) = k.mem_lock {
        parts.push(format!("mem-lock={}", m.as_str()));
    }
    if k.cpu_pm {
        parts.push("cpu-pm=on".to_owned());
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

/// Every argument the knobs add to QEMU's command line, in order: `-cpu`, `-overcommit`, the
/// huge-page memory backend and the `-machine` property that selects it. Empty for the default
/// (no knob set). `memory_mib` is the guest's memory (the backend's size).
pub fn knob_args(k: &QemuKnobs, memory_mib: u32) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(cpu) = cpu_arg(k) {
        a.extend(["-cpu".to_owned(), cpu]);
    }
    if let Some(o) = overcommit_arg(k) {
        a.extend(["-overcommit".to_owned(), o]);
    }
    if let Some(size) = k.hugepages {
        a.push("-object".into());
        a.push(format!(
            "memory-backend-memfd,id={MEMORY_BACKEND_ID},size={memory_mib}M,hugetlb=on,hugetlbsize={},prealloc=on",
            size.as_str()
        ));
        a.push("-machine".into());
        a.push(format!("memory-backend={MEMORY_BACKEND_ID}"));
    }
    a
}

/// A QEMU version as (major, minor) from `7.2.22`; `None` when it does not start with two
/// numbers.
pub fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut it = version.split('.');
    let major = it.next()?.trim().parse().ok()?;
    let minor = it
        .next()
        .and_then(|m| {
            m.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
        .unwrap_or(0);
    Some((major, minor))
}

/// A knob this QEMU cannot take: its config key (`qemu.mem_lock`), the value and the version
/// it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The key under `variants[i]`, e.g. `qemu.mem_lock`.
    pub key: &'static str,
    /// The value as written in the config.
    pub value: String,
    /// The first QEMU version that takes it, `major.minor`.
    pub needs: &'static str,
}

/// The knobs of `k` that QEMU `version` (as `--version` prints it, e.g. `7.2.22`) cannot take.
/// An unparsable version is taken as new enough: QEMU itself then says what it refuses.
pub fn unsupported(k: &QemuKnobs, version: &str) -> Vec<Unsupported> {
    let Some(v) = major_minor(version) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if k.mem_lock == Some(MemLock::OnFault) && v < (10, 0) {
        out.push(Unsupported {
            key: "qemu.mem_lock",
            value: "on-fault".into(),
            needs: "10.0",
        });
    }
    if let Some(size) = k.hugepages.filter(|_| v < (5, 0)) {
        // `-machine memory-backend=`.
        out.push(Unsupported {
            key: "qemu.hugepages",
            value: size.as_str().into(),
            needs: "5.0",
        });
    }
    out
}

#[cfg(test)]
#[path = "knobs_tests.rs"]
mod tests;
