//! Removing pinlat's tracefs instances when the normal path cannot: from a signal handler,
//! and after a crashed run.
//!
//! **Signal path.** Every live [`super::instance::Instance`] registers its directory as a C
//! string in a fixed table of atomic pointers. [`remove_registered`] only loads those pointers
//! and calls `rmdir(2)`, which POSIX lists as async-signal-safe: no allocation, no lock. The
//! strings are never freed (a handler on another thread may be reading one while the owner
//! unregisters), so each instance leaks its path, about 60 bytes, once per run.
//!
//! **Crashed runs.** Instance directories are named `pinlat-<pid>-<name>`. [`remove_stale`]
//! removes those whose pid no longer exists and leaves the rest alone: a live pinlat's own,
//! and `pinlat-*` names without a pid, which pinlat did not create.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};

use super::instance::{TraceError, Tracefs, INSTANCE_PREFIX};

/// Instances registered at once for the signal path; more still work, but only `Drop`
/// removes them.
pub const SLOTS: usize = 16;

static REGISTERED: [AtomicPtr<libc::c_char>; SLOTS] = [const { AtomicPtr::new(null_mut()) }; SLOTS];

/// Serialises the tests that create instances or use the registry: [`remove_registered`]
/// removes every registered instance of the process, a parallel test's too.
#[cfg(test)]
pub(crate) fn test_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers `path` for [`remove_registered`]; the slot, or `None` when the table is full.
pub(crate) fn register(path: &Path) -> Option<usize> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    let raw = c.into_raw();
    for (i, slot) in REGISTERED.iter().enumerate() {
        if slot
            .compare_exchange(null_mut(), raw, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return Some(i);
        }
    }
    // SAFETY: `raw` came from `CString::into_raw` above and was published nowhere.
    drop(unsafe { CString::from_raw(raw) });
    None
}

/// Forgets slot `i` (its string is leaked on purpose, see the module docs).
pub(crate) fn unregister(i: usize) {
    if let Some(slot) = REGISTERED.get(i) {
        slot.store(null_mut(), Ordering::SeqCst);
    }
}

/// Removes every registered instance directory with `rmdir(2)`; returns how many went.
/// Async-signal-safe: call it from a SIGINT/SIGTERM handler. Recording stops with the
/// directory; an instance whose `trace_pipe` this process still holds open stays (EBUSY).
pub fn remove_registered() -> usize {
    let mut n = 0;
    for slot in REGISTERED.iter() {
        let p = slot.load(Ordering::SeqCst);
        if p.is_null() {
            continue;
        }
        // SAFETY: registered pointers come from `CString::into_raw` and are never freed, so
        // `p` is a valid NUL-terminated string; rmdir(2) is async-signal-safe.
        if unsafe { libc::rmdir(p) } == 0 {
            n += 1;
        }
    }
    n
}

/// What [`remove_stale`] did.
#[derive(Debug, Default)]
pub struct StaleReport {
    /// Instances removed: their owner is gone.
    pub removed: Vec<String>,
    /// `pinlat-*` instances left alone, with why.
    pub kept: Vec<(String, &'static str)>,
    /// Stale instances that could not be removed.
    pub failed: Vec<(String, io::Error)>,
}

/// Removes `pinlat-<pid>-*` instances whose pid is not alive (left by a crashed or killed run).
pub fn remove_stale(fs: &Tracefs) -> Result<StaleReport, TraceError> {
    let dir = fs.instances_dir();
    let entries = std::fs::read_dir(&dir).map_err(|source| TraceError::Read {
        path: dir.clone(),
        source,
    })?;
    let mut r = StaleReport::default();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(INSTANCE_PREFIX) else {
            continue;
        };
        let pid = rest
            .split_once('-')
            .and_then(|(p, _)| p.parse::<i32>().ok())
            .filter(|&p| p > 0);
        let Some(pid) = pid else {
            r.kept
                .push((name, "no owner pid in the name: not pinlat's"));
            continue;
        };
        if alive(pid) {
            r.kept.push((name, "its pinlat is running"));
            continue;
        }
        let path = dir.join(&name);
        // Stop recording first, so nothing keeps writing while rmdir waits.
        let _ = std::fs::write(path.join("tracing_on"), "0");
        match std::fs::remove_dir(&path) {
            Ok(()) => r.removed.push(name),
            Err(e) => r.failed.push((name, e)),
        }
    }
    Ok(r)
}

/// Whether process `pid` exists (signal 0: ESRCH means gone; EPERM means someone else's).
fn alive(pid: i32) -> bool {
    use nix::errno::Errno;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(Errno::ESRCH) => false,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_pid_is_dead_and_we_are_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert!(!alive(pid));
        assert!(alive(std::process::id() as i32));
    }

    #[test]
    fn register_unregister_and_the_signal_path_on_a_plain_directory() {
        let _serial = test_lock();
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("pinlat-1-x");
        std::fs::create_dir(&d).unwrap();
        let slot = register(&d).unwrap();
        assert!(remove_registered() >= 1);
        assert!(!d.exists());
        unregister(slot);
        std::fs::create_dir(&d).unwrap();
        remove_registered();
        assert!(d.exists(), "an unregistered path is left alone");
    }
}
