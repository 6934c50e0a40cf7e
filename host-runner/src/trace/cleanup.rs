//! Removing the tracefs instances of crashed runs. Instance directories are named
//! `pinlat-<pid>-<name>`. [`remove_stale`] removes those whose pid no longer exists and leaves
//! the rest alone: a live pinlat's own, and `pinlat-*` names without a pid, which pinlat did
//! not create. (A live run's instances go in `Drop`, SIGINT and SIGTERM included: the
//! handlers only set a flag and the run loop unwinds.)

use std::io;

use super::instance::{TraceError, Tracefs, INSTANCE_PREFIX};

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
/// Whether process `pid` exists.
pub(crate) fn alive(pid: i32) -> bool {
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
}
