//! Running the tools the tasks drive: cargo builds whose binary path comes from cargo's own
//! JSON messages, commands whose failure carries their stderr, and a child's wall time, CPU time
//! and peak memory from `wait4(2)` (what GNU time's `-v` prints, without needing it installed).

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ has a parent")
}

/// The cargo that runs this task (`$CARGO` under `cargo run`), else `cargo` from `PATH`.
fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The one message of `cargo build --message-format=json` used here.
#[derive(Deserialize)]
struct Artifact {
    reason: String,
    #[serde(default)]
    executable: Option<PathBuf>,
    #[serde(default)]
    target: Option<ArtifactTarget>,
}

#[derive(Deserialize)]
struct ArtifactTarget {
    name: String,
}

/// Builds binary `bin` of package `package` with the release profile and returns its path as
/// cargo reports it (so `CARGO_TARGET_DIR` and `build.target-dir` are honoured).
pub fn build_release(package: &str, bin: &str) -> Result<PathBuf> {
    let out = Command::new(cargo())
        .current_dir(workspace_root())
        .args([
            "build",
            "--release",
            "--quiet",
            "--package",
            package,
            "--bin",
            bin,
        ])
        .args(["--message-format", "json-render-diagnostics"])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running cargo build --release -p {package}"))?;
    if !out.status.success() {
        bail!("cargo build --release -p {package} failed ({})", out.status);
    }
    for line in out.stdout.split(|&b| b == b'\n') {
        let Ok(a) = serde_json::from_slice::<Artifact>(line) else {
            continue;
        };
        if a.reason == "compiler-artifact" && a.target.is_some_and(|t| t.name == bin) {
            if let Some(exe) = a.executable {
                return Ok(exe);
            }
        }
    }
    bail!("cargo build -p {package} reported no executable named {bin}")
}

/// Whether `tool` is an executable on `PATH`.
pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            std::fs::metadata(d.join(tool))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Runs `cmd` with stdout discarded; a non-zero exit is an error that quotes its stderr.
pub fn run_quiet(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("starting {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The directory a benchmark works in: `given`, else a new temporary one named `prefix…`,
/// kept afterwards so that what it made can be read.
pub fn work_dir(given: Option<PathBuf>, prefix: &str) -> Result<PathBuf> {
    Ok(match given {
        Some(w) => w,
        None => tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .context("creating a temporary directory")?
            .keep(),
    })
}

/// What one child process cost.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    /// From spawn to reaped.
    pub wall: Duration,
    /// CPU time the child used, user and system (`ru_utime + ru_stime`): unlike `wall`, not
    /// inflated by other processes competing for the CPUs.
    pub cpu: Duration,
    /// Peak resident set size of the child, KiB (`ru_maxrss`).
    pub max_rss_kib: u64,
    /// How it exited.
    pub status: ExitStatus,
}

impl Cost {
    /// The best of two runs of one command: the shorter wall and CPU times (the run least
    /// disturbed by other processes), the larger peak RSS (memory is not noise), `self`'s exit.
    pub fn best(self, other: Cost) -> Cost {
        Cost {
            wall: self.wall.min(other.wall),
            cpu: self.cpu.min(other.cpu),
            max_rss_kib: self.max_rss_kib.max(other.max_rss_kib),
            status: self.status,
        }
    }
}

/// Runs `cmd` to completion and returns its wall time and peak RSS. stdout and stderr go
/// where `cmd` says.
pub fn run_costed(cmd: &mut Command) -> Result<Cost> {
    let start = Instant::now();
    let child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    let pid = libc::pid_t::try_from(child.id()).context("child pid out of range")?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain integers and `timeval`s, for which all-zero bytes are valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not reaped yet (`Child::wait` is never called on it,
        // and dropping a `Child` does not reap); both pointers are to live, writable locals.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).with_context(|| format!("waiting for {cmd:?}"));
        }
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    Ok(Cost {
        wall: start.elapsed(),
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        // Linux reports ru_maxrss in KiB.
        max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        status: ExitStatus::from_raw(status),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costed_child_reports_its_own_peak_memory() {
        // A shell that touches ~64 MiB (a 64 MiB string): its peak RSS must show it, and the
        // exit code must come through.
        let cost = run_costed(
            Command::new("sh").args(["-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); exit 3"]),
        )
        .unwrap();
        assert_eq!(cost.status.code(), Some(3));
        assert!(cost.max_rss_kib > 60 * 1024, "{cost:?}");
        let small = run_costed(&mut Command::new("true")).unwrap();
        assert!(small.status.success());
        assert!(small.max_rss_kib < 60 * 1024, "{small:?}");
    }

    #[test]
    fn costed_child_reports_its_cpu_time_within_its_wall_time() {
        let busy = run_costed(
            Command::new("sh").args(["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"]),
        )
        .unwrap();
        assert!(busy.cpu > Duration::from_millis(20), "{busy:?}");
        assert!(
            busy.cpu <= busy.wall + Duration::from_millis(10),
            "{busy:?}"
        );
        let idle = run_costed(Command::new("sleep").arg("0.3")).unwrap();
        assert!(idle.wall >= Duration::from_millis(300), "{idle:?}");
        assert!(idle.cpu < Duration::from_millis(100), "{idle:?}");
    }

    #[test]
    fn finds_sh_but_not_nonsense_on_path() {
        assert!(on_path("sh"));
        assert!(!on_path("pinlat-no-such-tool"));
    }

    #[test]
    fn a_failing_command_quotes_its_stderr() {
        let e = run_quiet(Command::new("sh").args(["-c", "echo out; echo broken >&2; exit 4"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("exit status: 4") && e.ends_with(": broken"),
            "{e}"
        );
        run_quiet(&mut Command::new("true")).unwrap();
    }
}
