//! Finds the guest kernel, in the order docs/architecture.md "Where it runs" gives: an explicit
//! path (the config's `kernel` or `--kernel`), `$PINLAT_KERNEL`, the host's
//! `/boot/vmlinuz-$(uname -r)` when the host kernel is PREEMPT_RT, else Debian's PREEMPT_RT
//! kernel — the package `linux-image-rt-amd64` depends on — fetched with `apt-get download`, its `/boot/vmlinuz-*` extracted (`dpkg-deb --fsys-tarfile | tar -x`)
//! and cached under `$XDG_CACHE_HOME/pinlat/kernels/<package>/` (default `~/.cache/pinlat`).
//!
//! The agent needs only what every x86 kernel has built in (8250 serial, initramfs), so any
//! bzImage works. A candidate is accepted only if it is a readable x86 boot image (the `HdrS`
//! signature at offset 0x202, `Documentation/arch/x86/boot.rst`).
//!
//! Guest devices (a virtio disk or NIC) need drivers that Debian's kernel has as modules, so
//! the kernel comes with where its modules are ([`KernelModules`]): `$PINLAT_KERNEL_MODULES` if
//! set, else for Debian's kernel the `modules/` its fetch caches (fetched once, when first
//! needed, into an older cache that lacks it), for the host's kernel `/lib/modules/<release>`,
//! and none for a kernel the user names. [`GuestKernel::module_plan`] turns a device's needs
//! into the modules to load.
//!
//! The search is pure apart from the filesystem and the [`DebianFetch`] it is given, so tests
//! inject the environment, directories and a fake fetcher. External tools run from argument
//! vectors, never through a shell.

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod deb_modules;
mod deb_package;
mod debian;
mod load_order;
mod modinfo;
mod module_dir;
mod modules;
pub use deb_modules::DEVICE_MODULES;
pub use deb_package::FetchError;
use debian::download_into;
pub use debian::{parse_apt_depends, AptFetch};
pub use load_order::{LoadPlan, PlannedModule};
pub use modinfo::{ModInfo, ModinfoError};
pub use module_dir::{ModuleDir, ModuleError, Need, MODULES_BUILTIN, MODULES_ENV, MODULES_SUBDIR};
pub use modules::KernelModules;

/// The Debian metapackage whose dependency is the current PREEMPT_RT kernel image.
pub const DEBIAN_RT_METAPACKAGE: &str = "linux-image-rt-amd64";
/// The environment variable that overrides the kernel search.
pub const KERNEL_ENV: &str = "PINLAT_KERNEL";

/// Where the guest kernel came from (recorded in `host.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelSource {
    /// The config's `kernel` or the `--kernel` option.
    Explicit,
    /// `$PINLAT_KERNEL`.
    Env,
    /// The host's own `/boot/vmlinuz-$(uname -r)`.
    HostBoot,
    /// Debian's RT kernel, already in the cache.
    DebianRtCached,
    /// Debian's RT kernel, downloaded by this invocation.
    DebianRtDownloaded,
}

impl fmt::Display for KernelSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KernelSource::Explicit => "explicit path",
            KernelSource::Env => "$PINLAT_KERNEL",
            KernelSource::HostBoot => "host /boot",
            KernelSource::DebianRtCached => "Debian RT kernel (cached)",
            KernelSource::DebianRtDownloaded => "Debian RT kernel (downloaded)",
        })
    }
}

/// The kernel a run boots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestKernel {
    /// Path of the bzImage.
    pub path: PathBuf,
    /// How it was found.
    pub source: KernelSource,
    /// The Debian package, when it came from one (e.g. `linux-image-6.1.0-56-rt-amd64`).
    pub package: Option<String>,
    /// The Debian package version, when known (e.g. `6.1.192-2`).
    pub package_version: Option<String>,
    /// Where its modules are, or why there are none.
    #[serde(default)]
    pub modules: KernelModules,
}

/// One place the search looked and why it did not use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The place, e.g. `/boot/vmlinuz-6.1.0-13-amd64` or `$PINLAT_KERNEL`.
    pub place: String,
    /// Why it was not used.
    pub reason: String,
}

/// Errors finding the guest kernel.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// An explicitly named kernel is unusable; pinlat does not silently pick another.
    #[error("Guest kernel {path} (from {source_kind}) is unusable: {reason}")]
    BadOverride {
        /// The path given.
        path: PathBuf,
        /// Where it was given.
        source_kind: KernelSource,
        /// What is wrong with it.
        reason: BzImageError,
    },
    /// Nothing worked.
    #[error("{}", not_found_message(.attempts))]
    NotFound {
        /// Every place looked, in order.
        attempts: Vec<Attempt>,
    },
}

fn not_found_message(attempts: &[Attempt]) -> String {
    let mut s = String::from("No guest kernel found. Looked in:\n");
    for a in attempts {
        s.push_str(&format!("  - {}: {}\n", a.place, a.reason));
    }
    s.push_str(
        "Fix: pass --kernel PATH (or set `kernel` in the config) or set PINLAT_KERNEL to an x86 \
         bzImage; on Debian, run `apt-get update` so pinlat can fetch linux-image-rt-amd64",
    );
    s
}

/// Why a file is not a usable guest kernel.
#[derive(Debug, thiserror::Error)]
pub enum BzImageError {
    /// Nothing at the path.
    #[error("does not exist")]
    Missing,
    /// `stat` failed otherwise.
    #[error("cannot stat: {0}")]
    Stat(std::io::Error),
    /// A directory or special file.
    #[error("not a regular file")]
    NotAFile,
    /// Not readable by this user.
    #[error("not readable (Debian installs /boot/vmlinuz-* mode 0600: run as root or copy it)")]
    Unreadable,
    /// `open` failed otherwise.
    #[error("cannot open: {0}")]
    Open(std::io::Error),
    /// Shorter than a boot header.
    #[error("too short to be a kernel image")]
    TooShort,
    /// No x86 boot signature.
    #[error("not an x86 bzImage (no HdrS boot signature at 0x202)")]
    NoSignature,
}

/// Checks that `path` is a readable x86 boot image (bzImage).
pub fn check_bzimage(path: &Path) -> Result<(), BzImageError> {
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => BzImageError::Missing,
        _ => BzImageError::Stat(e),
    })?;
    if !meta.is_file() {
        return Err(BzImageError::NotAFile);
    }
    let mut header = [0u8; 0x206];
    let mut f = fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => BzImageError::Unreadable,
        _ => BzImageError::Open(e),
    })?;
    f.read_exact(&mut header)
        .map_err(|_| BzImageError::TooShort)?;
    if &header[0x202..0x206] != b"HdrS" {
        return Err(BzImageError::NoSignature);
    }
    Ok(())
}

/// The kernel release a bzImage announces, as `uname -r` will show it: the first word of the
/// version string the setup header's `kernel_version` field (offset 0x20E) points to, plus
/// 0x200 (`Documentation/arch/x86/boot.rst`). `None` if unreadable or absent.
pub fn bzimage_release(path: &Path) -> Option<String> {
    let mut head = Vec::with_capacity(0x10000);
    fs::File::open(path)
        .ok()?
        .take(0x10000)
        .read_to_end(&mut head)
        .ok()?;
    let field = head.get(0x20e..0x210)?;
    let off = usize::from(u16::from_le_bytes([field[0], field[1]]));
    if off == 0 {
        return None;
    }
    let text = head.get(off + 0x200..)?;
    let end = text.iter().position(|&b| b == 0 || b == b' ')?;
    let release = std::str::from_utf8(&text[..end]).ok()?;
    (!release.is_empty()).then(|| release.to_owned())
}

/// Fetches Debian's RT kernel; real implementation [`AptFetch`], fakes in tests.
pub trait DebianFetch {
    /// The concrete kernel package `linux-image-rt-amd64` currently depends on.
    fn resolve_package(&self) -> Result<String, FetchError>;
    /// Downloads and unpacks `package` so that `dest` (which does not exist yet) ends up
    /// holding `vmlinuz-*`, a `package-version` file and the guest devices' modules in
    /// [`MODULES_SUBDIR`].
    fn download(&self, package: &str, dest: &Path) -> Result<(), FetchError>;
    /// Downloads `package` and unpacks only the guest devices' modules ([`DEVICE_MODULES`] and
    /// their dependencies) so that `dest` (which does not exist yet) holds them: for a cache
    /// filled before pinlat kept modules.
    fn download_modules(&self, package: &str, dest: &Path) -> Result<(), FetchError>;
}

/// Inputs of the kernel search, so it can be tested without touching the real environment.
#[derive(Debug, Clone)]
pub struct KernelSearch {
    /// The config's `kernel` or `--kernel`.
    pub explicit: Option<PathBuf>,
    /// The value of `$PINLAT_KERNEL`, if set and non-empty.
    pub env_kernel: Option<PathBuf>,
    /// The host kernel release (`uname -r`).
    pub host_release: Option<String>,
    /// Whether the host kernel is PREEMPT_RT: only then is it a candidate.
    pub host_preempt_rt: bool,
    /// Where host kernels live, normally `/boot`.
    pub boot_dir: PathBuf,
    /// pinlat's cache directory (`$XDG_CACHE_HOME/pinlat` or `~/.cache/pinlat`), if any.
    pub cache_dir: Option<PathBuf>,
    /// Whether a download may be attempted.
    pub allow_download: bool,
    /// `$PINLAT_KERNEL_MODULES`: the kernel's modules, whatever the kernel's source.
    pub modules_dir: Option<PathBuf>,
    /// Where the host keeps its kernels' modules, normally `/lib/modules`.
    pub host_modules_root: PathBuf,
}

impl KernelSearch {
    /// The search as the real environment defines it, with `explicit` from config or CLI.
    pub fn from_env(explicit: Option<PathBuf>) -> Self {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let uts = nix::sys::utsname::uname().ok();
        KernelSearch {
            explicit,
            env_kernel: var(KERNEL_ENV).map(PathBuf::from),
            host_release: uts
                .as_ref()
                .map(|u| u.release().to_string_lossy().into_owned()),
            host_preempt_rt: pinlat::host::is_preempt_rt(
                std::fs::read_to_string(pinlat::host::REALTIME_PATH)
                    .ok()
                    .as_deref()
                    .map(str::trim),
                &uts.as_ref()
                    .map(|u| u.version().to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            boot_dir: PathBuf::from("/boot"),
            cache_dir: cache_dir(var("XDG_CACHE_HOME").as_deref(), var("HOME").as_deref()),
            allow_download: true,
            modules_dir: var(MODULES_ENV).map(PathBuf::from),
            host_modules_root: PathBuf::from("/lib/modules"),
        }
    }

    /// Runs the search with the real `apt-get`/`dpkg-deb`.
    pub fn find(&self) -> Result<GuestKernel, KernelError> {
        self.find_with(&AptFetch)
    }

    /// Runs the search with the given fetcher.
    pub fn find_with(&self, fetch: &dyn DebianFetch) -> Result<GuestKernel, KernelError> {
        let mut kernel = self.find_image(fetch)?;
        kernel.modules = self.modules_of(&kernel);
        Ok(kernel)
    }

    /// Where `kernel`'s modules are (see the module docs for the order). Never fails: a kernel
    /// without modules still boots guests without devices, and [`GuestKernel::module_plan`]
    /// reports why there are none. A Debian cache entry made before pinlat kept modules gets
    /// them when a device first needs them, not here: a run without devices, or offline,
    /// pays nothing for them.
    fn modules_of(&self, kernel: &GuestKernel) -> KernelModules {
        if let Some(dir) = &self.modules_dir {
            return if dir.is_dir() {
                KernelModules::Dir(dir.clone())
            } else {
                KernelModules::Missing(format!(
                    "${MODULES_ENV} is {}, which is not a directory",
                    dir.display()
                ))
            };
        }
        match kernel.source {
            KernelSource::Explicit | KernelSource::Env => KernelModules::Missing(
                "a kernel named by --kernel, the config's `kernel` or $PINLAT_KERNEL comes \
                 without modules"
                    .into(),
            ),
            KernelSource::HostBoot => {
                let rel = self.host_release.as_deref().unwrap_or("");
                let dir = self.host_modules_root.join(rel);
                if !rel.is_empty() && dir.is_dir() {
                    KernelModules::Dir(dir)
                } else {
                    KernelModules::Missing(format!("{} does not exist", dir.display()))
                }
            }
            KernelSource::DebianRtCached | KernelSource::DebianRtDownloaded => {
                let (Some(pkg_dir), Some(package)) = (kernel.path.parent(), &kernel.package) else {
                    return KernelModules::Missing("not from a cached package".into());
                };
                let dir = pkg_dir.join(MODULES_SUBDIR);
                if dir.is_dir() {
                    KernelModules::Dir(dir)
                } else if !self.allow_download {
                    KernelModules::Missing(format!(
                        "{} lacks {MODULES_SUBDIR}/ and downloads are disabled",
                        pkg_dir.display()
                    ))
                } else {
                    KernelModules::Fetchable {
                        package: package.clone(),
                        dir: pkg_dir.to_owned(),
                    }
                }
            }
        }
    }

    /// The kernel image alone.
    fn find_image(&self, fetch: &dyn DebianFetch) -> Result<GuestKernel, KernelError> {
        let mut attempts = Vec::new();
        for (given, source_kind, place) in [
            (
                &self.explicit,
                KernelSource::Explicit,
                "--kernel / config `kernel`",
            ),
            (&self.env_kernel, KernelSource::Env, "$PINLAT_KERNEL"),
        ] {
            match given {
                Some(path) => {
                    return match check_bzimage(path) {
                        Ok(()) => Ok(plain(path.clone(), source_kind)),
                        Err(reason) => Err(KernelError::BadOverride {
                            path: path.clone(),
                            source_kind,
                            reason,
                        }),
                    }
                }
                None => attempts.push(Attempt {
                    place: place.into(),
                    reason: "not set".into(),
                }),
            }
        }

        match &self.host_release {
            // A guest on a non-RT kernel has its own preemption latency in every number, which
            // no layout can fix: the host's kernel serves only when it is PREEMPT_RT.
            Some(rel) if !self.host_preempt_rt => attempts.push(Attempt {
                place: self
                    .boot_dir
                    .join(format!("vmlinuz-{rel}"))
                    .display()
                    .to_string(),
                reason:
                    "the host kernel is not PREEMPT_RT (pass it with --kernel to use it anyway)"
                        .into(),
            }),
            Some(rel) => {
                let path = self.boot_dir.join(format!("vmlinuz-{rel}"));
                match check_bzimage(&path) {
                    Ok(()) => return Ok(plain(path, KernelSource::HostBoot)),
                    Err(reason) => attempts.push(Attempt {
                        place: path.display().to_string(),
                        reason: reason.to_string(),
                    }),
                }
            }
            None => attempts.push(Attempt {
                place: "host kernel in /boot".into(),
                reason: "uname failed".into(),
            }),
        }

        let debian_place = |dir: &Path| {
            format!(
                "Debian RT kernel ({DEBIAN_RT_METAPACKAGE}) cached in {}",
                dir.display()
            )
        };
        let Some(cache) = &self.cache_dir else {
            attempts.push(Attempt {
                place: format!("Debian RT kernel ({DEBIAN_RT_METAPACKAGE})"),
                reason: "no cache directory: neither XDG_CACHE_HOME nor HOME is set".into(),
            });
            return Err(KernelError::NotFound { attempts });
        };
        let kernels = cache.join("kernels");
        match fetch.resolve_package() {
            Ok(package) => {
                let dir = kernels.join(&package);
                if let Some(k) = cached_in(&dir, &package, KernelSource::DebianRtCached) {
                    return Ok(k);
                }
                if !self.allow_download {
                    attempts.push(Attempt {
                        place: debian_place(&dir),
                        reason: format!("{package} not cached and downloads are disabled"),
                    });
                } else {
                    match download_into(fetch, &kernels, &package) {
                        Ok(()) => {
                            if let Some(k) =
                                cached_in(&dir, &package, KernelSource::DebianRtDownloaded)
                            {
                                return Ok(k);
                            }
                            attempts.push(Attempt {
                                place: debian_place(&dir),
                                reason: format!("{package} unpacked but holds no usable vmlinuz"),
                            });
                        }
                        Err(reason) => attempts.push(Attempt {
                            place: debian_place(&dir),
                            reason: format!("fetching {package} failed: {reason}"),
                        }),
                    }
                }
            }
            Err(reason) => {
                // Offline or not Debian: any kernel fetched earlier still serves.
                if let Some(k) = newest_cached(&kernels) {
                    return Ok(k);
                }
                attempts.push(Attempt {
                    place: debian_place(&kernels),
                    reason: format!("nothing cached, and {reason}"),
                });
            }
        }
        Err(KernelError::NotFound { attempts })
    }
}

fn plain(path: PathBuf, source: KernelSource) -> GuestKernel {
    GuestKernel {
        path,
        source,
        package: None,
        package_version: None,
        modules: KernelModules::default(),
    }
}

/// pinlat's cache directory: `$XDG_CACHE_HOME/pinlat`, else `$HOME/.cache/pinlat`.
pub fn cache_dir(xdg_cache_home: Option<&OsStr>, home: Option<&OsStr>) -> Option<PathBuf> {
    match (xdg_cache_home, home) {
        (Some(x), _) if Path::new(x).is_absolute() => Some(Path::new(x).join("pinlat")),
        (_, Some(h)) => Some(Path::new(h).join(".cache").join("pinlat")),
        _ => None,
    }
}

/// The usable `vmlinuz-*` in a package's cache directory, if any.
fn cached_in(dir: &Path, package: &str, source: KernelSource) -> Option<GuestKernel> {
    let mut images: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(OsStr::to_str)
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .filter(|p| check_bzimage(p).is_ok())
        .collect();
    images.sort();
    let path = images.pop()?;
    let package_version = fs::read_to_string(dir.join("package-version"))
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    Some(GuestKernel {
        path,
        source,
        package: Some(package.to_owned()),
        package_version,
        modules: KernelModules::default(),
    })
}

/// The cached package with the highest ABI number (`linux-image-6.1.0-56-rt-amd64`).
fn newest_cached(kernels: &Path) -> Option<GuestKernel> {
    let mut pkgs: Vec<String> = fs::read_dir(kernels)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("linux-image-"))
        .collect();
    pkgs.sort_by_key(|p| version_key(p));
    pkgs.iter()
        .rev()
        .find_map(|p| cached_in(&kernels.join(p), p, KernelSource::DebianRtCached))
}

/// Orders names by their digit runs numerically (`6.1.0-9` < `6.1.0-56`).
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(u64::MAX))
        .collect()
}

#[cfg(test)]
mod tests;
