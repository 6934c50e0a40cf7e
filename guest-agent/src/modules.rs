//! Loading the kernel modules the run config lists ([`AgentConfig::modules`]) before measuring.
//!
//! Debian's RT kernel has the virtio PCI, block and net drivers as modules; the runner puts
//! them into the initramfs at [`GUEST_MODULES_DIR`]`/<name>.ko`, dependencies first, and lists
//! their names in load order. With no udev or modprobe in the guest, the agent loads each with
//! `finit_module(2)`, which also runs the driver's probe of devices already present, so the
//! devices exist when it returns. A module the kernel already has (`EEXIST`) is not an error.
//! Each load is timed with `CLOCK_MONOTONIC` and the times go into the hello.
//!
//! [`AgentConfig::modules`]: pinlat::agentcfg::AgentConfig::modules

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};
use pinlat::wire::ModuleLoad;

pub use pinlat::agentcfg::GUEST_MODULES_DIR;

/// Loading one module failed; the message names the module and its file.
#[derive(Debug, thiserror::Error)]
pub enum ModuleLoadError {
    /// The `.ko` is not where the runner put it.
    #[error("Cannot open kernel module {name} at {path}")]
    Open {
        /// Module name.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The kernel refused it (`ENOEXEC`: built for another kernel; `ENOENT`/`EINVAL` with
    /// "Unknown symbol" in the console: a dependency was not loaded first).
    #[error("Kernel refused module {name} ({path}): {errno}{}", hint(*.errno))]
    Load {
        /// Module name.
        name: String,
        /// Its file.
        path: PathBuf,
        /// `finit_module`'s error.
        errno: Errno,
    },
}

fn hint(errno: Errno) -> &'static str {
    match errno {
        Errno::ENOEXEC => " (built for another kernel: its vermagic differs from this kernel's)",
        Errno::ENOENT | Errno::EINVAL => {
            " (a symbol it needs is missing: is a dependency not loaded first? see the console)"
        }
        Errno::EPERM => " (module loading is disabled or the agent lacks CAP_SYS_MODULE)",
        _ => "",
    }
}

/// What loading produced: one entry per module, and the time of the whole sequence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Per module, in load order.
    pub modules: Vec<ModuleLoad>,
    /// Wall time of all loads, ns; `None` when the list was empty.
    pub total_ns: Option<u64>,
}

/// Loads `names` in order from `dir/<name>.ko`; stops at the first failure.
pub fn load_all(names: &[String], dir: &Path) -> Result<Loaded, ModuleLoadError> {
    // No parameters, as `modprobe` passes when none are configured.
    load_with(names, dir, |f| {
        finit_module(f, c"", ModuleInitFlags::empty())
    })
}

/// [`load_all`] with the syscall injected (tests).
fn load_with(
    names: &[String],
    dir: &Path,
    mut init: impl FnMut(&File) -> Result<(), Errno>,
) -> Result<Loaded, ModuleLoadError> {
    if names.is_empty() {
        return Ok(Loaded::default());
    }
    let start = Instant::now();
    let mut modules = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(format!("{name}.ko"));
        let file = File::open(&path).map_err(|source| ModuleLoadError::Open {
            name: name.clone(),
            path: path.clone(),
            source,
        })?;
        let t = Instant::now();
        let already_loaded = match init(&file) {
            Ok(()) => false,
            Err(Errno::EEXIST) => true,
            Err(errno) => {
                return Err(ModuleLoadError::Load {
                    name: name.clone(),
                    path,
                    errno,
                })
            }
        };
        modules.push(ModuleLoad {
            name: name.clone(),
            load_ns: nanos(t),
            already_loaded,
        });
    }
    Ok(Loaded {
        modules,
        total_ns: Some(nanos(start)),
    })
}

fn nanos(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn loads_in_order_and_times_each() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["virtio_ring", "virtio", "virtio_blk"] {
            std::fs::write(dir.path().join(format!("{n}.ko")), n).unwrap();
        }
        let mut seen = Vec::new();
        let loaded = load_with(
            &names(&["virtio_ring", "virtio", "virtio_blk"]),
            dir.path(),
            |f| {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut &*f, &mut s).unwrap();
                seen.push(s.clone());
                if s == "virtio" {
                    Err(Errno::EEXIST)
                } else {
                    Ok(())
                }
            },
        )
        .unwrap();
        assert_eq!(seen, ["virtio_ring", "virtio", "virtio_blk"]);
        let flags: Vec<bool> = loaded.modules.iter().map(|m| m.already_loaded).collect();
        assert_eq!(flags, [false, true, false]);
        let sum: u64 = loaded.modules.iter().map(|m| m.load_ns).sum();
        assert!(loaded.total_ns.unwrap() >= sum);
    }

    #[test]
    fn errors_name_the_module() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_with(&names(&["virtio_net"]), dir.path(), |_| Ok(())).unwrap_err();
        assert!(matches!(err, ModuleLoadError::Open { .. }));
        assert!(err.to_string().contains("virtio_net"), "{err}");
        std::fs::write(dir.path().join("virtio_net.ko"), b"x").unwrap();
        std::fs::write(dir.path().join("late.ko"), b"x").unwrap();
        let mut calls = 0;
        let err = load_with(&names(&["virtio_net", "late"]), dir.path(), |_| {
            calls += 1;
            Err(Errno::ENOEXEC)
        })
        .unwrap_err();
        assert_eq!(calls, 1, "stops at the first failure");
        let msg = err.to_string();
        assert!(
            msg.contains("virtio_net") && msg.contains("vermagic"),
            "{msg}"
        );
        assert_eq!(
            load_with(&[], dir.path(), |_| unreachable!()).unwrap(),
            Loaded::default()
        );
    }
}
