//! A directory of a kernel's modules, and where such directories are: `.ko` files anywhere
//! below it indexed by module name, and the `modules.builtin` list at its top (a module listed
//! there is built into the kernel and needs nothing; a directory without the list treats a
//! module it lacks as built in). [`super::load_order`] resolves what to load from one.
//!
//! Also the errors of finding a guest's modules ([`ModuleError`]): every one names the module,
//! what needs it (a device, a scenario), where pinlat looked, and the fix.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::modinfo::{normalize, ModinfoError};

/// The environment variable naming a directory of the guest kernel's modules (`<name>.ko`
/// files anywhere below it, and `modules.builtin` at its top), e.g. `/lib/modules/<release>`.
pub const MODULES_ENV: &str = "PINLAT_KERNEL_MODULES";

/// The file listing a kernel's built-in modules, one `kernel/…/<name>.ko` path a line.
pub const MODULES_BUILTIN: &str = "modules.builtin";

/// The subdirectory of a cached kernel package that holds its modules.
pub const MODULES_SUBDIR: &str = "modules";

/// How deep [`ModuleDir::open`] looks below its root (`/lib/modules/<release>/kernel/drivers/
/// net/ethernet/<vendor>/<driver>/x.ko` is 6).
const MAX_DEPTH: usize = 10;

/// One module a guest needs, and who needs it (named in errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// Module name (`virtio_blk`).
    pub module: String,
    /// What needs it, e.g. `the virtio-blk disk of scenario guest-io`.
    pub needed_by: String,
}

impl Need {
    /// A need of `module` by `needed_by`.
    pub fn new(module: &str, needed_by: impl Into<String>) -> Self {
        Need {
            module: normalize(module),
            needed_by: needed_by.into(),
        }
    }
}

/// Resolving or reading the guest's modules failed.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The kernel came with no module directory at all (a `--kernel` of the user's).
    #[error("{needed_by} needs kernel module {module}, but guest kernel {kernel} has no module directory ({why}). Fix: set {MODULES_ENV} to a directory with that kernel's modules (<name>.ko files and modules.builtin, e.g. /lib/modules/<release>; if the kernel has the driver built in, a directory holding just its modules.builtin will do), or leave out --kernel/PINLAT_KERNEL so pinlat uses Debian's RT kernel and its modules")]
    NoModuleDir {
        /// The first module needed.
        module: String,
        /// What needs it.
        needed_by: String,
        /// The kernel.
        kernel: PathBuf,
        /// Why there is no directory.
        why: String,
    },
    /// The Debian cache entry lacks its modules and fetching them failed.
    #[error("{needed_by} needs kernel module {module}; the cached {package} in {dir} has no {MODULES_SUBDIR}/ yet and fetching them failed: {reason}. Fix: check that `apt-get download {package}` works (run `apt-get update`), or set {MODULES_ENV} to the kernel's modules")]
    Fetch {
        /// The first module needed.
        module: String,
        /// What needs it.
        needed_by: String,
        /// The kernel package.
        package: String,
        /// Its cache directory.
        dir: PathBuf,
        /// The fetch error.
        reason: String,
    },
    /// The directory cannot be read.
    #[error("Cannot read the module directory {dir}")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Neither a `.ko` nor built in.
    #[error("{needed_by} needs kernel module {module}, which is neither in {dir} nor in its modules.builtin. Fix: add {module}.ko (built for this kernel) to {dir}, or use a kernel with the driver built in")]
    Missing {
        /// The module.
        module: String,
        /// What needs it (with the dependency chain).
        needed_by: String,
        /// The directory searched.
        dir: PathBuf,
    },
    /// A `.ko` file cannot be read.
    #[error("Cannot read kernel module {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A `.ko` file is not a readable module.
    #[error("Kernel module {path} {problem}")]
    Modinfo {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (a sentence's predicate, shown inline).
        problem: ModinfoError,
    },
    /// Built for another kernel: the guest kernel would refuse it.
    #[error("Kernel module {path} was built for kernel {module_release}, but the guest kernel is {kernel_release}. Fix: use the modules of the guest kernel ({MODULES_ENV})")]
    WrongKernel {
        /// The file.
        path: PathBuf,
        /// `vermagic`'s release.
        module_release: String,
        /// The guest kernel's release.
        kernel_release: String,
    },
    /// Modules that depend on each other in a circle (a damaged module set).
    #[error("Kernel modules depend on each other in a circle: {}", .chain.join(" -> "))]
    Cycle {
        /// The circle.
        chain: Vec<String>,
    },
}

/// A directory of a kernel's modules: `.ko` files anywhere below it, indexed by module name,
/// and the `modules.builtin` list at its top, if any.
#[derive(Debug, Clone)]
pub struct ModuleDir {
    root: PathBuf,
    files: BTreeMap<String, PathBuf>,
    builtin: Option<BTreeSet<String>>,
}

/// Module names of a `modules.builtin` text (`kernel/drivers/virtio/virtio.ko` → `virtio`).
pub fn parse_builtin(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| module_file_name(l.trim()))
        .collect()
}

/// The module name of a file name or path ending in `.ko` (or `.ko.xz`, `.ko.zst`, `.ko.gz`).
pub fn module_file_name(path: &str) -> Option<String> {
    let base = path.rsplit('/').next()?;
    let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|ext| base.strip_suffix(ext))?;
    (!stem.is_empty()).then(|| normalize(stem))
}

impl ModuleDir {
    /// Indexes `root`: every `*.ko` (and compressed `*.ko.*`) below it by module name, and
    /// `root/modules.builtin` if present. Reads no module yet.
    pub fn open(root: &Path) -> Result<ModuleDir, ModuleError> {
        let mut files = BTreeMap::new();
        let mut stack = vec![(root.to_owned(), 0usize)];
        while let Some((dir, depth)) = stack.pop() {
            let entries = fs::read_dir(&dir).map_err(|source| ModuleError::Dir {
                dir: dir.clone(),
                source,
            })?;
            for entry in entries.filter_map(Result::ok) {
                let path = entry.path();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() && depth < MAX_DEPTH {
                    stack.push((path, depth + 1));
                } else if let Some(name) = module_file_name(&entry.file_name().to_string_lossy()) {
                    // Prefer the uncompressed file when both exist.
                    let plain = path.extension().is_some_and(|e| e == "ko");
                    if plain || !files.contains_key(&name) {
                        files.insert(name, path);
                    }
                }
            }
        }
        let builtin = match fs::read_to_string(root.join(MODULES_BUILTIN)) {
            Ok(text) => Some(parse_builtin(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(ModuleError::Dir {
                    dir: root.to_owned(),
                    source,
                })
            }
        };
        Ok(ModuleDir {
            root: root.to_owned(),
            files,
            builtin,
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the kernel has `module` built in, by `modules.builtin`.
    pub fn is_builtin(&self, module: &str) -> bool {
        self.builtin
            .as_ref()
            .is_some_and(|b| b.contains(&normalize(module)))
    }

    /// The `.ko` file of `module`, if the directory has it.
    pub fn file(&self, module: &str) -> Option<&Path> {
        self.files.get(&normalize(module)).map(PathBuf::as_path)
    }

    /// Whether the directory has a `modules.builtin` list (without one, a module it lacks is
    /// taken to be built in).
    pub fn has_builtin_list(&self) -> bool {
        self.builtin.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(
            module_file_name("kernel/drivers/char/hw_random/virtio-rng.ko").as_deref(),
            Some("virtio_rng")
        );
        assert_eq!(module_file_name("x.ko.zst").as_deref(), Some("x"));
        assert_eq!(module_file_name("modules.order"), None);
        assert_eq!(module_file_name(".ko"), None);
    }
}
