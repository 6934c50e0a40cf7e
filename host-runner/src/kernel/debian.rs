//! Fetching Debian's PREEMPT_RT kernel: the package `linux-image-rt-amd64` depends on
//! (`apt-cache depends`), downloaded with `apt-get download` and unpacked with
//! `dpkg-deb --fsys-tarfile | tar -x` (two processes, no shell) into a staging directory that
//! is renamed into the cache only when complete.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::Command;

use super::{DebianFetch, DEBIAN_RT_METAPACKAGE};

/// Fetching the kernel package failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A Debian tool is not installed.
    #[error("{prog} not found (not a Debian host?)")]
    ToolMissing {
        /// The program.
        prog: String,
    },
    /// A tool could not be started.
    #[error("cannot run {prog}: {source}")]
    Spawn {
        /// The program.
        prog: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A tool failed.
    #[error("{prog} failed ({status}): {last_line}")]
    ToolFailed {
        /// The program.
        prog: String,
        /// Its exit status.
        status: String,
        /// The last line it wrote to stderr.
        last_line: String,
    },
    /// `apt-cache` failed: usually the package lists are missing.
    #[error("{0}; run `apt-get update`")]
    AptCache(Box<FetchError>),
    /// `apt-cache` names no kernel package.
    #[error("apt-cache names no kernel for {DEBIAN_RT_METAPACKAGE}; run `apt-get update`")]
    NoDependency,
    /// `apt-get download` produced no package file.
    #[error("apt-get download left no .deb for {package}")]
    NoDeb {
        /// The package.
        package: String,
    },
    /// The package holds no kernel image.
    #[error("{package} has no /boot/vmlinuz-*")]
    NoVmlinuz {
        /// The package.
        package: String,
    },
    /// Filesystem work failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> FetchError {
    move |source| FetchError::Io { what, source }
}

/// Downloads into a private staging dir next to `kernels/<package>`, then renames it into
/// place, so an interrupted fetch never leaves a half-filled cache entry.
pub(super) fn download_into(
    fetch: &dyn DebianFetch,
    kernels: &Path,
    package: &str,
) -> Result<(), FetchError> {
    fs::create_dir_all(kernels).map_err(io_err(format!("cannot create {}", kernels.display())))?;
    let staging = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(kernels)
        .map_err(io_err(format!(
            "cannot create a staging directory in {}",
            kernels.display()
        )))?;
    let out = staging.path().join("out");
    fetch.download(package, &out)?;
    let dest = kernels.join(package);
    match fs::rename(&out, &dest) {
        Ok(()) => Ok(()),
        // Another pinlat filled it meanwhile; theirs is as good as ours.
        Err(_) if dest.is_dir() => Ok(()),
        Err(e) => Err(io_err(format!("cannot move into {}", dest.display()))(e)),
    }
}

/// Extracts the first `Depends: linux-image-…` package from `apt-cache depends` output.
pub fn parse_apt_depends(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim().trim_start_matches('|').trim_start();
        let name = rest.strip_prefix("Depends:")?.trim();
        let valid = name.starts_with("linux-image-")
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-+._".contains(c));
        valid.then(|| name.to_owned())
    })
}

/// The real fetcher: `apt-cache depends`, `apt-get download`, `dpkg-deb`, `tar`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AptFetch;

fn run(cmd: &mut Command) -> Result<String, FetchError> {
    let prog = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => FetchError::ToolMissing { prog: prog.clone() },
        _ => FetchError::Spawn {
            prog: prog.clone(),
            source,
        },
    })?;
    if !out.status.success() {
        return Err(FetchError::ToolFailed {
            prog,
            status: out.status.to_string(),
            last_line: last_line(&out.stderr),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Extracts only `./boot/vmlinuz-*` and `./boot/config-*` from a kernel `.deb` into `root`:
/// `dpkg-deb --fsys-tarfile DEB | tar -x`, piped between two processes (no shell). Unpacking
/// the whole package (`dpkg-deb -x`) would write ~400 MB of modules to get one 8 MB file.
fn extract_boot_files(deb: &Path, root: &Path) -> Result<(), FetchError> {
    let spawn = |prog: &str| {
        let prog = prog.to_string();
        move |source| FetchError::Spawn { prog, source }
    };
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(spawn("dpkg-deb"))?;
    let Some(tar_in) = dpkg.stdout.take() else {
        let _ = dpkg.kill();
        let _ = dpkg.wait();
        return Err(FetchError::ToolFailed {
            prog: "dpkg-deb".into(),
            status: "no stdout".into(),
            last_line: String::new(),
        });
    };
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(root)
        .args(["--wildcards", "./boot/vmlinuz-*", "./boot/config-*"])
        .stdin(tar_in)
        .output();
    let dpkg_out = dpkg.wait_with_output();
    let tar = tar.map_err(spawn("tar"))?;
    let dpkg_out = dpkg_out.map_err(spawn("dpkg-deb"))?;
    for (prog, out) in [("dpkg-deb --fsys-tarfile", &dpkg_out), ("tar -x", &tar)] {
        if !out.status.success() {
            return Err(FetchError::ToolFailed {
                prog: prog.into(),
                status: out.status.to_string(),
                last_line: last_line(&out.stderr),
            });
        }
    }
    Ok(())
}

impl DebianFetch for AptFetch {
    fn resolve_package(&self) -> Result<String, FetchError> {
        let out = run(Command::new("apt-cache").args(["depends", DEBIAN_RT_METAPACKAGE]))
            .map_err(|e| FetchError::AptCache(Box::new(e)))?;
        parse_apt_depends(&out).ok_or(FetchError::NoDependency)
    }

    fn download(&self, package: &str, dest: &Path) -> Result<(), FetchError> {
        let work = dest.parent().unwrap_or(Path::new("."));
        run(Command::new("apt-get")
            .args(["download", "-q", package])
            .current_dir(work))?;
        let deb = fs::read_dir(work)
            .map_err(io_err(format!("reading {}", work.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension() == Some(OsStr::new("deb")))
            .ok_or_else(|| FetchError::NoDeb {
                package: package.into(),
            })?;
        let version = run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg("Version"))?;
        let root = work.join("root");
        fs::create_dir(&root).map_err(io_err(format!("creating {}", root.display())))?;
        extract_boot_files(&deb, &root)?;
        fs::create_dir(dest).map_err(io_err(format!("creating {}", dest.display())))?;
        let boot = root.join("boot");
        let mut found = false;
        for entry in fs::read_dir(&boot).map_err(io_err(format!("reading {}", boot.display())))? {
            let entry = entry.map_err(io_err(format!("reading {}", boot.display())))?;
            let name = entry.file_name();
            let n = name.to_string_lossy();
            if n.starts_with("vmlinuz-") || n.starts_with("config-") {
                found |= n.starts_with("vmlinuz-");
                fs::copy(entry.path(), dest.join(&name)).map_err(io_err(format!("copying {n}")))?;
            }
        }
        if !found {
            return Err(FetchError::NoVmlinuz {
                package: package.into(),
            });
        }
        fs::write(dest.join("package-version"), version.trim())
            .map_err(io_err("writing package-version".into()))?;
        Ok(())
    }
}
