//! Fetching Debian's PREEMPT_RT kernel: the package `linux-image-rt-amd64` depends on
//! (`apt-cache depends`), downloaded with `apt-get download` and unpacked with
//! `dpkg-deb --fsys-tarfile | tar -x` (two processes, no shell) into a staging directory that
//! is renamed into the cache only when complete.
//!
//! Only what pinlat boots is unpacked: `/boot/vmlinuz-*`, `/boot/config-*`, and the modules of
//! the guest devices ([`DEVICE_MODULES`]) with everything they depend on
//! ([`super::deb_modules`]). The package is decompressed once into a plain tar in the staging
//! directory, which every extraction then reads.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::deb_modules::{extract_modules, MODULES_SUBDIR};
use super::modules::DEVICE_MODULES;
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

/// Fills `pkg_dir/modules` of a cache entry made before pinlat kept modules: downloads into a
/// private staging dir beside it, then renames into place, as [`download_into`] does.
pub(super) fn fetch_modules_into(
    fetch: &dyn DebianFetch,
    pkg_dir: &Path,
    package: &str,
) -> Result<(), FetchError> {
    let staging = tempfile::Builder::new()
        .prefix(".fetch-modules-")
        .tempdir_in(pkg_dir)
        .map_err(io_err(format!(
            "cannot create a staging directory in {}",
            pkg_dir.display()
        )))?;
    let out = staging.path().join("out");
    fetch.download_modules(package, &out)?;
    let dest = pkg_dir.join(MODULES_SUBDIR);
    match fs::rename(&out, &dest) {
        Ok(()) => Ok(()),
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

/// Extracts only `./boot/vmlinuz-*` and `./boot/config-*` from the package's filesystem tar
/// into `root`. Unpacking the whole package (`dpkg-deb -x`) would write ~400 MB of modules to
/// get one 8 MB file.
fn extract_boot_files(fsys_tar: &Path, root: &Path) -> Result<(), FetchError> {
    extract(
        fsys_tar,
        root,
        &["./boot/vmlinuz-*", "./boot/config-*"],
        true,
    )
}

/// `dpkg-deb --fsys-tarfile DEB > TAR`: the package's files as one plain tar (~400 MB for the
/// RT kernel), decompressed once so that each extraction after it is a seek-through
/// (~20 ms) instead of another xz pass over the package (~3–8 s on a loaded 2-CPU host).
fn unpack_fsys_tar(deb: &Path, tar: &Path) -> Result<(), FetchError> {
    let out = fs::File::create(tar).map_err(io_err(format!("creating {}", tar.display())))?;
    let done = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(out)
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => FetchError::ToolMissing {
                prog: "dpkg-deb".into(),
            },
            _ => FetchError::Spawn {
                prog: "dpkg-deb".into(),
                source,
            },
        })?;
    if !done.status.success() {
        return Err(FetchError::ToolFailed {
            prog: "dpkg-deb --fsys-tarfile".into(),
            status: done.status.to_string(),
            last_line: last_line(&done.stderr),
        });
    }
    Ok(())
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
fn download_deb(package: &str, work: &Path) -> Result<PathBuf, FetchError> {
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

impl DebianFetch for AptFetch {
    fn resolve_package(&self) -> Result<String, FetchError> {
        let out = run(Command::new("apt-cache").args(["depends", DEBIAN_RT_METAPACKAGE]))
            .map_err(|e| FetchError::AptCache(Box::new(e)))?;
        parse_apt_depends(&out).ok_or(FetchError::NoDependency)
    }

    fn download(&self, package: &str, dest: &Path) -> Result<(), FetchError> {
        let work = dest.parent().unwrap_or(Path::new("."));
        let deb = download_deb(package, work)?;
        let version = run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg("Version"))?;
        let tar = work.join("fsys.tar");
        unpack_fsys_tar(&deb, &tar)?;
        let root = work.join("root");
        fs::create_dir(&root).map_err(io_err(format!("creating {}", root.display())))?;
        extract_boot_files(&tar, &root)?;
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
        extract_modules(
            &tar,
            package,
            work,
            &dest.join(MODULES_SUBDIR),
            DEVICE_MODULES,
        )
    }

    fn download_modules(&self, package: &str, dest: &Path) -> Result<(), FetchError> {
        let work = dest.parent().unwrap_or(Path::new("."));
        let deb = download_deb(package, work)?;
        let tar = work.join("fsys.tar");
        unpack_fsys_tar(&deb, &tar)?;
        extract_modules(&tar, package, work, dest, DEVICE_MODULES)
    }
}
