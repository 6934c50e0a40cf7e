//! The live instances' directories, removable from a signal handler.
//!
//! Every live [`super::instance::Instance`] registers its directory as a C string in a fixed
//! table of atomic pointers. [`remove_registered`] only loads those pointers and calls
//! `rmdir(2)`, which POSIX lists as async-signal-safe: no allocation, no lock. The strings are
//! never freed (a handler on another thread may be reading one while the owner unregisters),
//! so each instance leaks its path, about 60 bytes, once per run.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};

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

#[cfg(test)]
mod tests {
    use super::*;

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
