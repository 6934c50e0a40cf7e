//! Fetching Debian's PREEMPT_RT kernel: the package `linux-image-rt-amd64` depends on
//! (`apt-cache depends`), downloaded and unpacked ([`super::deb_package`]) into a staging
//! directory that is renamed into the cache only when complete.
//!
//! Only what pinlat boots is unpacked: `/boot/vmlinuz-*`, `/boot/config-*`, and the modules of
//! the guest devices ([`DEVICE_MODULES`]) with everything they depend on
//! ([`super::deb_modules`]). The package is decompressed once into a plain tar in the staging
//! directory, which every extraction then reads.

use std::fs;
use std::path::Path;
use std::process::Command;

use super::deb_modules::{extract_modules, DEVICE_MODULES};
use super::deb_package::{download_deb, extract, io_err, run, unpack_fsys_tar, FetchError};
use super::module_dir::MODULES_SUBDIR;
use super::{DebianFetch, DEBIAN_RT_METAPACKAGE};

/// Fills `dest` through a private staging directory beside it, renamed into place only when
/// complete, so an interrupted fetch never leaves a half-filled cache entry.
fn stage_into(
    dest: &Path,
    prefix: &str,
    fill: impl FnOnce(&Path) -> Result<(), FetchError>,
) -> Result<(), FetchError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    let staging = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(parent)
        .map_err(io_err(format!(
            "cannot create a staging directory in {}",
            parent.display()
        )))?;
    let out = staging.path().join("out");
    fill(&out)?;
    match fs::rename(&out, dest) {
        Ok(()) => Ok(()),
        // Another pinlat filled it meanwhile; theirs is as good as ours.
        Err(_) if dest.is_dir() => Ok(()),
        Err(e) => Err(io_err(format!("cannot move into {}", dest.display()))(e)),
    }
}

/// Downloads `package` into `kernels/<package>` ([`stage_into`]).
pub(super) fn download_into(
    fetch: &dyn DebianFetch,
    kernels: &Path,
    package: &str,
) -> Result<(), FetchError> {
    fs::create_dir_all(kernels).map_err(io_err(format!("cannot create {}", kernels.display())))?;
    stage_into(&kernels.join(package), ".fetch-", |out| {
        fetch.download(package, out)
    })
}

/// Fills `pkg_dir/modules` of a cache entry made before pinlat kept modules ([`stage_into`]).
pub(super) fn fetch_modules_into(
    fetch: &dyn DebianFetch,
    pkg_dir: &Path,
    package: &str,
) -> Result<(), FetchError> {
    stage_into(&pkg_dir.join(MODULES_SUBDIR), ".fetch-modules-", |out| {
        fetch.download_modules(package, out)
    })
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
