//! Launches one QEMU guest from an argument vector (never a shell) and owns its lifetime.
//!
//! The command line follows docs/architecture.md "Data flow": `-kernel` + `-initrd` (the agent initramfs),
//! `-accel kvm` or `-accel tcg,thread=multi` (one host thread per vCPU), QMP on a unix socket in
//! a private 0700 runtime directory, ttyS0 (the guest console) and ttyS1 (the agent's frames)
//! each to a QEMU `file` chardev. `-name …,debug-threads=on` names QEMU's threads (`CPU 0/TCG`,
//! `CPU 1/KVM`, `IO io0`, `call_rcu`, `worker`, main loop `qemu-system-x86`), so a report can say
//! which emulator thread ran where.
//!
//! Why a `file` chardev for the agent channel: QEMU's file backend never blocks the guest and
//! never drops bytes, whether or not the runner is reading yet (a unix `socket` backend with
//! `wait=off` discards output until a client connects, and `wait=on` stalls QEMU start-up on the
//! runner), and the raw stream stays on disk with the run for post-mortems. The runner follows
//! the file with [`crate::follow::FileFollower`].
//!
//! The child runs in its own process group with `PR_SET_PDEATHSIG(SIGKILL)`, so it dies with
//! the runner's spawning thread even if the runner is killed with SIGKILL; [`Qemu`]'s `Drop`
//! kills and reaps it otherwise.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::qmp::{self, QmpClient, QmpError};
use pinlat::kinds::Accel;

mod args;
pub mod knobs;
pub use args::{
    device_args, guest_append, guest_cmdline, mgmt_socket_path, preset_cmdline, qemu_args,
    qmp_args, AgentChannel, VmSpec, GUEST_PARAMS,
};

/// The environment variable that names the QEMU binary.
pub const QEMU_ENV: &str = "PINLAT_QEMU";
/// The QEMU binary searched on `PATH` by default.
pub const QEMU_BINARY: &str = "qemu-system-x86_64";

/// Errors launching or talking to QEMU.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// No QEMU binary found.
    #[error("QEMU not found: looked at {looked}. Fix: install qemu-system-x86 (Debian: `apt-get install qemu-system-x86`) or set PINLAT_QEMU")]
    NotFound {
        /// Where we looked.
        looked: String,
    },
    /// `qemu --version` failed or printed nothing recognisable.
    #[error("Cannot get the version of {path}: {reason}")]
    Version {
        /// The binary.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The private runtime directory could not be created.
    #[error("Cannot create a runtime directory in {parent}")]
    RuntimeDir {
        /// Where it was attempted.
        parent: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Spawning failed.
    #[error("Cannot start {path}")]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// QEMU exited before it was expected to.
    #[error("QEMU exited early ({status}): {stderr}")]
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// The last lines of its stderr.
        stderr: String,
    },
    /// QEMU did not create its QMP socket in time.
    #[error("QEMU created no QMP socket within {waited_ms} ms")]
    NoQmpSocket {
        /// How long we waited, in milliseconds.
        waited_ms: u64,
    },
    /// QMP failed.
    #[error("QMP with QEMU failed")]
    Qmp(#[from] QmpError),
    /// Other I/O on QEMU's files.
    #[error("I/O on {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// True if `/dev/kvm` can be opened read-write. Necessary for `-accel kvm`, not sufficient:
/// a nested paravirtual KVM can accept the device and still hang the guest, so `auto` must
/// also boot with a deadline.
pub fn kvm_device_usable() -> bool {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// A QEMU binary and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QemuBinary {
    /// The executable.
    pub path: PathBuf,
    /// Version number, e.g. `7.2.22`.
    pub version: String,
    /// The full first line of `--version`, e.g.
    /// `QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)`.
    pub version_line: String,
}

impl QemuBinary {
    /// Finds QEMU (`$PINLAT_QEMU`, else `qemu-system-x86_64` on `$PATH`) and asks its version.
    pub fn detect() -> Result<Self, QemuError> {
        let path = find_qemu(
            std::env::var_os(QEMU_ENV).as_deref(),
            std::env::var_os("PATH").as_deref(),
        )?;
        Self::at(path)
    }

    /// Asks the binary at `path` for its version.
    pub fn at(path: PathBuf) -> Result<Self, QemuError> {
        let out = Command::new(&path)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| QemuError::Version {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        let (version, version_line) =
            parse_qemu_version(&text).ok_or_else(|| QemuError::Version {
                path: path.clone(),
                reason: format!(
                    "unrecognised output {:?}",
                    text.lines().next().unwrap_or("")
                ),
            })?;
        Ok(QemuBinary {
            path,
            version,
            version_line,
        })
    }
}

/// Resolves the QEMU binary from `$PINLAT_QEMU` (used as-is when set) or a `$PATH` search.
pub fn find_qemu(env_qemu: Option<&OsStr>, path_var: Option<&OsStr>) -> Result<PathBuf, QemuError> {
    if let Some(p) = env_qemu.filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(QemuError::NotFound {
                looked: format!("$PINLAT_QEMU={} (not an executable file)", p.display()),
            })
        };
    }
    let dirs: Vec<PathBuf> = path_var
        .map(|p| std::env::split_paths(p).collect())
        .unwrap_or_default();
    for d in &dirs {
        let candidate = d.join(QEMU_BINARY);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(QemuError::NotFound {
        looked: format!(
            "$PINLAT_QEMU (not set), {QEMU_BINARY} in $PATH ({})",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        ),
    })
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Parses `qemu-system-x86_64 --version` output into (`7.2.22`, first line).
pub fn parse_qemu_version(text: &str) -> Option<(String, String)> {
    let line = text.lines().next()?.trim();
    let rest = line.split("version ").nth(1)?;
    let ver: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!ver.is_empty() && ver.contains('.')).then(|| (ver, line.to_owned()))
}

/// A private directory (mode 0700) for QEMU's sockets and logs, removed with its contents on
/// drop: `pinlat-XXXXXX` under `$XDG_RUNTIME_DIR` when set, else the system's temporary
/// directory.
pub type RuntimeDir = tempfile::TempDir;

/// Creates a [`RuntimeDir`] where [`RuntimeDir`] says.
pub fn runtime_dir() -> Result<RuntimeDir, QemuError> {
    let parent = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    runtime_dir_in(&parent)
}

/// Creates a [`RuntimeDir`] under `parent`.
pub fn runtime_dir_in(parent: &Path) -> Result<RuntimeDir, QemuError> {
    tempfile::Builder::new()
        .prefix("pinlat-")
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir_in(parent)
        .map_err(|source| QemuError::RuntimeDir {
            parent: parent.to_owned(),
            source,
        })
}

/// A running QEMU. Dropping it kills the whole process group and reaps the child.
#[derive(Debug)]
pub struct Qemu {
    child: Child,
    status: Option<ExitStatus>,
    qmp_socket: PathBuf,
    mgmt_socket: Option<PathBuf>,
    stderr_log: PathBuf,
    args: Vec<OsString>,
    started: Instant,
    // Declared last: removed only after the child is dead.
    runtime: RuntimeDir,
}

impl Qemu {
    /// Starts QEMU for `spec` with a fresh private runtime directory.
    ///
    /// `PR_SET_PDEATHSIG` fires when the *thread* that spawned the child exits, so spawn from
    /// a thread that lives as long as the guest should (e.g. the main thread).
    pub fn spawn(binary: &QemuBinary, spec: &VmSpec) -> Result<Self, QemuError> {
        Self::spawn_in(binary, spec, runtime_dir()?)
    }

    /// Starts QEMU using the given runtime directory.
    pub fn spawn_in(
        binary: &QemuBinary,
        spec: &VmSpec,
        runtime: RuntimeDir,
    ) -> Result<Self, QemuError> {
        let qmp_socket = runtime.path().join("qmp.sock");
        let stderr_log = runtime.path().join("qemu.stderr");
        let stderr = fs::File::create(&stderr_log).map_err(|source| QemuError::Io {
            path: stderr_log.clone(),
            source,
        })?;
        let args = qemu_args(spec, &qmp_socket);
        let parent = nix::unistd::getpid().as_raw();
        let mut cmd = Command::new(&binary.path);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0);
        // SAFETY: the closure runs in the forked child before exec and calls only
        // async-signal-safe functions (prctl, getppid); it allocates nothing and takes no locks.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before prctl: then nobody would ever kill us.
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|source| QemuError::Spawn {
            path: binary.path.clone(),
            source,
        })?;
        Ok(Qemu {
            child,
            status: None,
            mgmt_socket: spec.mgmt_qmp.then(|| mgmt_socket_path(&qmp_socket)),
            qmp_socket,
            stderr_log,
            args,
            started: Instant::now(),
            runtime,
        })
    }

    /// QEMU's pid (also its process group id).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The argument vector QEMU was started with (for the run record).
    pub fn args(&self) -> &[OsString] {
        &self.args
    }

    /// When QEMU was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The QMP socket path.
    pub fn qmp_socket(&self) -> &Path {
        &self.qmp_socket
    }

    /// The second QMP socket (for `mgmt-poll`), when [`VmSpec::mgmt_qmp`] asked for one.
    /// Connect with [`qmp::connect_unix`] after [`Qemu::connect_qmp`] succeeded (it waits
    /// for both sockets and makes both mode 0600).
    pub fn mgmt_socket(&self) -> Option<&Path> {
        self.mgmt_socket.as_deref()
    }

    /// The private runtime directory.
    pub fn runtime_dir(&self) -> &Path {
        self.runtime.path()
    }

    /// The last `max_bytes` of QEMU's stderr (warnings, or why it failed to start).
    pub fn stderr_tail(&self, max_bytes: u64) -> String {
        crate::follow::log_tail(&self.stderr_log, max_bytes)
    }

    /// The exit status if QEMU has exited; reaps it.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, QemuError> {
        if self.status.is_none() {
            self.status = self.child.try_wait().map_err(|source| QemuError::Io {
                path: PathBuf::from("<qemu child>"),
                source,
            })?;
        }
        Ok(self.status)
    }

    /// Waits until QEMU exits or `deadline` passes (polling every 10 ms).
    pub fn wait_until(&mut self, deadline: Instant) -> Result<Option<ExitStatus>, QemuError> {
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(Some(s));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for QEMU's QMP socket (failing fast if QEMU exits), makes it mode 0600, connects
    /// and negotiates capabilities. `io_timeout` bounds every later command.
    pub fn connect_qmp(
        &mut self,
        deadline: Instant,
        io_timeout: Duration,
    ) -> Result<QmpClient<std::os::unix::net::UnixStream>, QemuError> {
        let started = Instant::now();
        while !self.qmp_socket.exists() {
            if let Some(status) = self.try_wait()? {
                return Err(QemuError::Exited {
                    status,
                    stderr: self.stderr_tail(4096),
                });
            }
            if Instant::now() >= deadline {
                return Err(QemuError::NoQmpSocket {
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let sockets: Vec<PathBuf> = std::iter::once(self.qmp_socket.clone())
            .chain(self.mgmt_socket.clone())
            .collect();
        for sock in &sockets {
            fs::set_permissions(sock, fs::Permissions::from_mode(0o600)).map_err(|source| {
                QemuError::Io {
                    path: sock.clone(),
                    source,
                }
            })?;
        }
        qmp::connect_unix(&self.qmp_socket, deadline, io_timeout).map_err(|e| {
            match self.try_wait() {
                Ok(Some(status)) => QemuError::Exited {
                    status,
                    stderr: self.stderr_tail(4096),
                },
                _ => QemuError::Qmp(e),
            }
        })
    }

    /// Kills QEMU's process group with SIGKILL and reaps QEMU. Idempotent.
    pub fn kill(&mut self) -> Result<ExitStatus, QemuError> {
        if let Some(s) = self.try_wait()? {
            return Ok(s);
        }
        let pgid = nix::unistd::Pid::from_raw(self.pid());
        // Kill the group (QEMU helpers included); fall back to the child alone.
        if nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL).is_err() {
            let _ = self.child.kill();
        }
        let status = self.child.wait().map_err(|source| QemuError::Io {
            path: PathBuf::from("<qemu child>"),
            source,
        })?;
        self.status = Some(status);
        Ok(status)
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

#[cfg(test)]
mod cmdline_tests;
#[cfg(test)]
mod tests;
