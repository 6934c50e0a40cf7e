//! Working with Debian's packages without a shell: `apt-get download`, then
//! `dpkg-deb --fsys-tarfile` once into a plain tar that every `tar -x` then reads, each tool
//! run from an argument vector, its failure named with the last line it wrote to stderr.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::DEBIAN_RT_METAPACKAGE;

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
    /// The package has no `lib/modules/<release>/modules.order` (or more than one release).
    #[error(
        "{package} has no single lib/modules/<release>/ with modules.order and modules.builtin"
    )]
    NoModuleList {
        /// The package.
        package: String,
    },
    /// A needed module is neither a file of the package nor built in.
    #[error("{package} has no module {module} (needed by {needed_by}), neither as a .ko nor in modules.builtin")]
    ModuleNotInPackage {
        /// The package.
        package: String,
        /// The module.
        module: String,
        /// The module that depends on it, or `pinlat's guest devices`.
        needed_by: String,
    },
    /// The extracted modules do not form a loadable set.
    #[error("modules extracted from {package} are unusable: {reason}")]
    BadModules {
        /// The package.
        package: String,
        /// The error and its causes.
        reason: String,
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

pub(super) fn io_err(what: String) -> impl FnOnce(std::io::Error) -> FetchError {
    move |source| FetchError::Io { what, source }
}

/// Runs `cmd` to completion; a failure is named `failed_as` (the program and what matters of
/// its arguments).
fn output(cmd: &mut Command, failed_as: &str) -> Result<Output, FetchError> {
    let prog = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => FetchError::ToolMissing { prog: prog.clone() },
        _ => FetchError::Spawn { prog, source },
    })?;
    if !out.status.success() {
        return Err(FetchError::ToolFailed {
            prog: failed_as.to_owned(),
            status: out.status.to_string(),
            last_line: last_line(&out.stderr),
        });
    }
    Ok(out)
}

/// Runs `cmd` to completion; what it wrote to stdout.
pub(super) fn run(cmd: &mut Command) -> Result<String, FetchError> {
    let prog = cmd.get_program().to_string_lossy().into_owned();
    let out = output(cmd, &prog)?;
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

/// `dpkg-deb --fsys-tarfile DEB > TAR`: the package's files as one plain tar (~400 MB for the
/// RT kernel), decompressed once so that each extraction after it is a seek-through
/// (~20 ms) instead of another xz pass over the package (~3–8 s on a loaded 2-CPU host).
pub(super) fn unpack_fsys_tar(deb: &Path, tar: &Path) -> Result<(), FetchError> {
    let out = fs::File::create(tar).map_err(io_err(format!("creating {}", tar.display())))?;
    output(
        Command::new("dpkg-deb")
            .arg("--fsys-tarfile")
            .arg(deb)
            .stdout(out)
            .stderr(std::process::Stdio::piped()),
        "dpkg-deb --fsys-tarfile",
    )
    .map(drop)
}

/// `tar -x -f TAR -C ROOT [--wildcards] MEMBERS…`. Every member must match, or tar fails.
pub(super) fn extract(
    tar: &Path,
    root: &Path,
    members: &[impl AsRef<OsStr>],
    wildcards: bool,
) -> Result<(), FetchError> {
    let mut cmd = Command::new("tar");
    cmd.arg("-x").arg("-f").arg(tar).arg("-C").arg(root);
    if wildcards {
        cmd.arg("--wildcards");
    }
    run(cmd.args(members)).map(drop)
}

/// `apt-get download PACKAGE` into `work`; the `.deb` it left.
pub(super) fn download_deb(package: &str, work: &Path) -> Result<PathBuf, FetchError> {
    run(Command::new("apt-get")
        .args(["download", "-q", package])
        .current_dir(work))?;
    fs::read_dir(work)
        .map_err(io_err(format!("reading {}", work.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension() == Some(OsStr::new("deb")))
        .ok_or_else(|| FetchError::NoDeb {
            package: package.into(),
        })
}
