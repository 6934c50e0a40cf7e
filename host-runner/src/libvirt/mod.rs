//! libvirt through `virsh`, run as a subprocess with an argument vector (never a shell).
//!
//! Why `virsh` and not the `virt` crate (bindings to libvirt's C API): the crate needs
//! `libvirt-dev` to build and links `libvirt.so` into every `pinlat`, also on the hosts that
//! never use libvirt; `virsh` comes with `libvirt-clients`, which any libvirt host has, and
//! what pinlat asks of libvirt (create, resume, destroy, a QMP query, `domstats`) is a handful
//! of calls per run, where a process start costs nothing that matters.
//!
//! The connection is virsh's own: `$LIBVIRT_DEFAULT_URI`, else `qemu:///system` for root
//! ([`Virsh::uri`] names what was used). Every call has a deadline: a hung daemon fails the
//! run rather than holding it.

pub mod domain;
pub mod launch;
pub mod poll;

use std::ffi::{OsStr, OsString};
use std::io::{Read, Seek};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

/// The virsh binary, searched on `PATH`.
pub const VIRSH: &str = "virsh";

/// How long one virsh call may take (starting a domain included).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A virsh call failed.
#[derive(Debug, thiserror::Error)]
pub enum VirshError {
    /// virsh could not be started.
    #[error("Cannot run virsh. Fix: install libvirt-clients (Debian: `apt-get install libvirt-clients`)")]
    Spawn(#[source] std::io::Error),
    /// virsh exited with an error.
    #[error("`virsh {args}` failed ({status}): {stderr}")]
    Failed {
        /// The arguments.
        args: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// virsh did not finish in time.
    #[error("`virsh {args}` did not finish within {waited_s} s (is libvirtd hung?)")]
    Timeout {
        /// The arguments.
        args: String,
        /// Seconds waited.
        waited_s: u64,
    },
    /// The daemon did not answer when a run began.
    #[error(
        "libvirt at {uri} does not answer. Fix: start libvirtd, or point LIBVIRT_DEFAULT_URI at \
         the daemon (`pinlat doctor --launcher libvirt` checks the host)"
    )]
    Unreachable {
        /// The URI virsh used.
        uri: String,
        /// What virsh said.
        #[source]
        source: Box<VirshError>,
    },
    /// virsh's output was not what was expected.
    #[error("`virsh {args}` printed something unexpected: {reason}")]
    Parse {
        /// The arguments.
        args: String,
        /// What was wrong.
        reason: String,
    },
}

/// A domain on a libvirt connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibvirtDomain {
    /// The connection.
    pub virsh: Virsh,
    /// The domain's name.
    pub name: String,
}

/// A libvirt connection through virsh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Virsh {
    /// `--connect URI`; `None` leaves it to virsh (`$LIBVIRT_DEFAULT_URI`, else `qemu:///system`).
    pub uri: Option<String>,
}

/// The versions `virsh version` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    /// The daemon's libvirt, e.g. `9.0.0` (`Running against daemon`, else the library's).
    pub libvirt: String,
    /// The hypervisor, e.g. `QEMU 7.2.22`.
    pub hypervisor: String,
}

fn joined(args: &[OsString]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Virsh {
    /// The connection virsh uses by default (`$LIBVIRT_DEFAULT_URI` or `qemu:///system`).
    pub fn from_env() -> Self {
        Virsh { uri: None }
    }

    /// The URI as virsh resolves it, for messages and the run record.
    pub fn uri(&self) -> String {
        self.uri
            .clone()
            .or_else(|| std::env::var("LIBVIRT_DEFAULT_URI").ok())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "qemu:///system".into())
    }

    /// Runs `virsh [-c URI] -q <args>` with [`CALL_TIMEOUT`]; its stdout.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<String, VirshError> {
        self.run_for(args, CALL_TIMEOUT)
    }

    /// [`Virsh::run`] with a timeout of its own.
    pub fn run_for<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        timeout: Duration,
    ) -> Result<String, VirshError> {
        let args: Vec<OsString> = args.iter().map(|a| a.as_ref().to_owned()).collect();
        // Files, not pipes: nothing can block on a full pipe while the deadline is watched.
        let mut out = tempfile::tempfile().map_err(VirshError::Spawn)?;
        let mut err = tempfile::tempfile().map_err(VirshError::Spawn)?;
        let mut child = self
            .command()
            .args(&args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(VirshError::Spawn)?)
            .stderr(err.try_clone().map_err(VirshError::Spawn)?)
            .spawn()
            .map_err(VirshError::Spawn)?;
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = child.try_wait().map_err(VirshError::Spawn)? {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(VirshError::Timeout {
                    args: joined(&args),
                    waited_s: timeout.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let read = |f: &mut std::fs::File| {
            let mut s = String::new();
            let _ = f.rewind();
            let _ = f.read_to_string(&mut s);
            s
        };
        if !status.success() {
            return Err(VirshError::Failed {
                args: joined(&args),
                status: status.to_string(),
                // One line: the message goes into a run's failure reason and the doctor's table.
                stderr: read(&mut err)
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(" / "),
            });
        }
        Ok(read(&mut out))
    }

    /// `virsh [--connect URI] -q`, for callers that drive virsh themselves ([`poll`]).
    pub fn command(&self) -> Command {
        let mut c = Command::new(VIRSH);
        if let Some(uri) = &self.uri {
            c.arg("--connect").arg(uri);
        }
        c.arg("-q");
        c
    }

    /// `virsh version`: the daemon's libvirt and the hypervisor.
    pub fn versions(&self) -> Result<Versions, VirshError> {
        let text = self.run(&["version"])?;
        parse_versions(&text).ok_or_else(|| VirshError::Parse {
            args: "version".into(),
            reason: format!("no libvirt or hypervisor version in {text:?}"),
        })
    }

    /// [`Virsh::versions`], for a run about to use the daemon: a daemon that does not answer is
    /// [`VirshError::Unreachable`], which names the fix (a missing virsh stays
    /// [`VirshError::Spawn`], which names its own).
    pub fn reach(&self) -> Result<Versions, VirshError> {
        self.versions().map_err(|e| match e {
            VirshError::Spawn(_) => e,
            other => VirshError::Unreachable {
                uri: self.uri(),
                source: Box::new(other),
            },
        })
    }

    /// `virsh create --paused FILE`: a transient domain, started with its vCPUs stopped.
    pub fn create_paused(&self, xml: &Path) -> Result<(), VirshError> {
        self.run(&[
            OsStr::new("create"),
            xml.as_os_str(),
            OsStr::new("--paused"),
        ])
        .map(drop)
    }

    /// `virsh resume DOMAIN`.
    pub fn resume(&self, domain: &str) -> Result<(), VirshError> {
        self.run(&["resume", domain]).map(drop)
    }

    /// `virsh destroy DOMAIN` (a transient domain is gone after it).
    pub fn destroy(&self, domain: &str) -> Result<(), VirshError> {
        self.run_for(&["destroy", domain], Duration::from_secs(30))
            .map(drop)
    }

    /// `virsh domstate DOMAIN`, e.g. `running`, `paused`, `shut off`.
    pub fn domstate(&self, domain: &str) -> Result<String, VirshError> {
        Ok(self
            .run_for(&["domstate", domain], Duration::from_secs(10))?
            .trim()
            .to_owned())
    }

    /// One QMP command through libvirt's own monitor (`virsh qemu-monitor-command`): its
    /// `return` value.
    pub fn qmp<T: DeserializeOwned>(&self, domain: &str, command: &str) -> Result<T, VirshError> {
        let cmd = format!("{{\"execute\":\"{command}\"}}");
        let args = ["qemu-monitor-command", domain, cmd.as_str()];
        let text = self.run(&args)?;
        let parse = |reason: String| VirshError::Parse {
            args: args.join(" "),
            reason,
        };
        let v: serde_json::Value =
            serde_json::from_str(text.trim()).map_err(|e| parse(e.to_string()))?;
        let ret = v
            .get("return")
            .cloned()
            .ok_or_else(|| parse(format!("no \"return\" in {text}")))?;
        serde_json::from_value(ret).map_err(|e| parse(e.to_string()))
    }

    /// `virsh emulatorpin DOMAIN CPUS --live`: re-pins the emulator threads of a running domain.
    pub fn emulatorpin(&self, domain: &str, cpus: &str) -> Result<(), VirshError> {
        self.run(&["emulatorpin", domain, cpus, "--live"]).map(drop)
    }
}

/// Parses `virsh version`'s output.
pub fn parse_versions(text: &str) -> Option<Versions> {
    let value = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_owned()))
    };
    let libvirt = value("Running against daemon:")
        .or_else(|| value("Using library:"))?
        .trim_start_matches("libvirt ")
        .to_owned();
    let hypervisor = value("Running hypervisor:")?;
    Some(Versions {
        libvirt,
        hypervisor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_virsh_version() {
        let text = "Compiled against library: libvirt 9.0.0\nUsing library: libvirt 9.0.0\n\
                    Using API: QEMU 9.0.0\nRunning hypervisor: QEMU 7.2.22\n";
        assert_eq!(
            parse_versions(text),
            Some(Versions {
                libvirt: "9.0.0".into(),
                hypervisor: "QEMU 7.2.22".into()
            })
        );
        let daemon = format!("{text}Running against daemon: 10.1.0\n");
        assert_eq!(parse_versions(&daemon).unwrap().libvirt, "10.1.0");
        assert_eq!(parse_versions("Using library: libvirt 9.0.0\n"), None);
    }

    #[test]
    fn an_unreachable_daemon_is_named_with_the_fix() {
        // A URI virsh cannot reach fails with virsh's own message, never a hang, under the
        // error that says what to do.
        let uri = "qemu:///system?socket=/nonexistent/pinlat-test.sock";
        let v = Virsh {
            uri: Some(uri.into()),
        };
        match v.reach() {
            Err(e @ VirshError::Unreachable { .. }) => {
                let text = format!("{:#}", anyhow::Error::new(e));
                assert!(
                    text.contains(uri) && text.contains("Fix: start libvirtd"),
                    "{text}"
                );
                assert!(text.contains("`virsh version` failed"), "{text}");
            }
            Err(VirshError::Spawn(e)) => {
                assert!(std::env::var_os("CI").is_none(), "CI has virsh: {e}");
                eprintln!("skipped: no virsh ({e}): install libvirt-clients");
            }
            other => panic!("{other:?}"),
        }
    }
}
