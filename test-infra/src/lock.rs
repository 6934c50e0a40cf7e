//! The host-wide lock serializing guest boots. Tests that boot a guest are named `boot_*`
//! (nextest runs them one at a time, `.config/nextest.toml`) and hold this lock, so plain
//! `cargo test`, other test binaries and other worktrees never boot two guests at once either.

use std::fs;
use std::io;
use std::path::Path;

/// The lock file serializing guest boots across test processes.
pub const BOOT_LOCK_PATH: &str = "/tmp/pinlat-boot.lock";

/// A process-wide exclusive lock that serializes guest boots (tests named `boot_*` take it),
/// so two guests never compete for this machine's two CPUs. Released on drop.
#[derive(Debug)]
pub struct BootLock {
    _lock: nix::fcntl::Flock<fs::File>,
}

impl BootLock {
    /// Blocks until the lock at [`BOOT_LOCK_PATH`] is held.
    pub fn acquire() -> io::Result<Self> {
        Self::acquire_at(Path::new(BOOT_LOCK_PATH))
    }

    /// Blocks until the lock at `path` is held.
    pub fn acquire_at(path: &Path) -> io::Result<Self> {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| io::Error::from(e))?;
        Ok(BootLock { _lock: lock })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let held = BootLock::acquire_at(&p).unwrap();
        let file = fs::OpenOptions::new().write(true).open(&p).unwrap();
        let r = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock);
        assert!(r.is_err(), "second lock must fail while the first is held");
        drop(held);
        let file = fs::OpenOptions::new().write(true).open(&p).unwrap();
        assert!(nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok());
    }
}
