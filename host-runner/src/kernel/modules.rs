//! The kernel modules a guest needs for its devices, in the order to load them.
//!
//! Debian's RT kernel has the virtio PCI transport, block and net drivers as modules
//! (`CONFIG_VIRTIO_PCI=m`, `CONFIG_VIRTIO_BLK=m`, `CONFIG_VIRTIO_NET=m`, and `virtio`,
//! `virtio_ring`, `failover` … beneath them). A guest with a virtio disk or NIC therefore needs
//! those `.ko` files in its initramfs and the agent must load them, dependencies first, before
//! measuring. This module finds them in a [`ModuleDir`] (the cached Debian package's
//! `modules/`, or a directory the user names) and resolves the load order from each module's
//! `.modinfo` `depends=` ([`super::modinfo`]), the way `depmod` would have. A module listed in
//! the directory's `modules.builtin` is built into the kernel and needs nothing. A directory
//! without `modules.builtin` treats a module it lacks as built in.
//!
//! Every error names the module, what needs it (a device, a scenario), where pinlat looked,
//! and the fix.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::deb_modules::MODULES_SUBDIR;
use super::debian::fetch_modules_into;
use super::modinfo::{compression, normalize, ModInfo, ModinfoError};
use super::{bzimage_release, AptFetch, DebianFetch, GuestKernel};

/// Modules the guest devices pinlat can attach need (see `crate::devices`): the virtio PCI
/// transport, the block and the net driver. The Debian fetch caches these and everything they
/// depend on.
pub const DEVICE_MODULES: &[&str] = &["virtio_pci", "virtio_blk", "virtio_net"];

/// The environment variable naming a directory of the guest kernel's modules (`<name>.ko`
/// files anywhere below it, and `modules.builtin` at its top), e.g. `/lib/modules/<release>`.
pub const MODULES_ENV: &str = "PINLAT_KERNEL_MODULES";

/// The file listing a kernel's built-in modules, one `kernel/…/<name>.ko` path a line.
pub const MODULES_BUILTIN: &str = "modules.builtin";

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

/// Where a guest kernel's modules are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelModules {
    /// In this directory (see [`ModuleDir`]).
    Dir(PathBuf),
    /// Debian's cached kernel, whose cache entry (`dir`) predates pinlat keeping modules: they
    /// are fetched from `package` into `dir/modules` the first time a device needs them.
    Fetchable {
        /// The kernel package.
        package: String,
        /// Its cache directory.
        dir: PathBuf,
    },
    /// None known, and why (shown when a device needs one).
    Missing(String),
}

impl Default for KernelModules {
    fn default() -> Self {
        KernelModules::Missing("not looked for".into())
    }
}

impl GuestKernel {
    /// The modules to put into the initramfs, in load order, for `needs` (e.g. from
    /// `crate::devices::Device::needs`), checked against this kernel's release. Nothing needed,
    /// nothing to load, even without a module directory.
    /// [`KernelModules::Fetchable`] modules are fetched here with `apt-get`.
    pub fn module_plan(&self, needs: &[Need]) -> Result<LoadPlan, ModuleError> {
        self.module_plan_with(&AptFetch, needs)
    }

    /// [`GuestKernel::module_plan`] with the given fetcher.
    pub fn module_plan_with(
        &self,
        fetch: &dyn DebianFetch,
        needs: &[Need],
    ) -> Result<LoadPlan, ModuleError> {
        let Some(first) = needs.first() else {
            return Ok(LoadPlan::default());
        };
        let release = bzimage_release(&self.path);
        match &self.modules {
            KernelModules::Dir(dir) => ModuleDir::open(dir)?.resolve(needs, release.as_deref()),
            KernelModules::Fetchable { package, dir } => {
                let modules = dir.join(MODULES_SUBDIR);
                // Another run may have fetched them since the search.
                if !modules.is_dir() {
                    fetch_modules_into(fetch, dir, package).map_err(|e| ModuleError::Fetch {
                        module: first.module.clone(),
                        needed_by: first.needed_by.clone(),
                        package: package.clone(),
                        dir: dir.clone(),
                        reason: e.to_string(),
                    })?;
                }
                ModuleDir::open(&modules)?.resolve(needs, release.as_deref())
            }
            KernelModules::Missing(why) => Err(ModuleError::NoModuleDir {
                module: first.module.clone(),
                needed_by: first.needed_by.clone(),
                kernel: self.path.clone(),
                why: why.clone(),
            }),
        }
    }
}

/// A directory of a kernel's modules: `.ko` files anywhere below it, indexed by module name,
/// and the `modules.builtin` list at its top, if any.
#[derive(Debug, Clone)]
pub struct ModuleDir {
    root: PathBuf,
    files: BTreeMap<String, PathBuf>,
    builtin: Option<BTreeSet<String>>,
}

/// One module to put into the initramfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedModule {
    /// Module name.
    pub name: String,
    /// Where it came from.
    pub path: PathBuf,
    /// The file's bytes (what goes into the initramfs).
    pub bytes: Vec<u8>,
}

/// The modules to load, dependencies first, and the needed ones the kernel has built in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadPlan {
    /// In load order.
    pub modules: Vec<PlannedModule>,
    /// Needed but listed in `modules.builtin`: nothing to load.
    pub builtin: Vec<String>,
    /// Needed, absent, and the directory has no `modules.builtin`: taken to be built in.
    pub assumed_builtin: Vec<String>,
}

impl LoadPlan {
    /// Module names in load order (the agent config's `modules`).
    pub fn names(&self) -> Vec<String> {
        self.modules.iter().map(|m| m.name.clone()).collect()
    }

    /// Bytes of all modules, the initramfs's share of them.
    pub fn total_bytes(&self) -> usize {
        self.modules.iter().map(|m| m.bytes.len()).sum()
    }
}

/// An error and its causes, `: `-joined, for errors that carry another as text.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
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
        let dir_err = |source| ModuleError::Dir {
            dir: root.to_owned(),
            source,
        };
        let mut files = BTreeMap::new();
        let mut stack = vec![(root.to_owned(), 0usize)];
        while let Some((dir, depth)) = stack.pop() {
            let entries = fs::read_dir(&dir).map_err(|e| {
                if dir == root {
                    dir_err(e)
                } else {
                    ModuleError::Dir {
                        dir: dir.clone(),
                        source: e,
                    }
                }
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
            Err(e) => return Err(dir_err(e)),
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

    /// The modules `needs` name and everything they depend on, dependencies first, each once;
    /// built-in ones left out. With `kernel_release`, every module's `vermagic` must name that
    /// release.
    pub fn resolve(
        &self,
        needs: &[Need],
        kernel_release: Option<&str>,
    ) -> Result<LoadPlan, ModuleError> {
        let mut r = Resolver {
            dir: self,
            kernel_release,
            plan: LoadPlan::default(),
            done: BTreeSet::new(),
            chain: Vec::new(),
        };
        for need in needs {
            r.visit(&need.module, &need.needed_by)?;
        }
        Ok(r.plan)
    }
}

struct Resolver<'a> {
    dir: &'a ModuleDir,
    kernel_release: Option<&'a str>,
    plan: LoadPlan,
    done: BTreeSet<String>,
    /// The modules being visited, outermost first (to name a dependency's path and find
    /// circles).
    chain: Vec<String>,
}

impl Resolver<'_> {
    fn needed_by(&self, root_need: &str) -> String {
        if self.chain.is_empty() {
            root_need.to_owned()
        } else {
            let path: Vec<&str> = self.chain.iter().rev().map(String::as_str).collect();
            format!("{root_need} (through {})", path.join(" <- "))
        }
    }

    fn visit(&mut self, module: &str, root_need: &str) -> Result<(), ModuleError> {
        let name = normalize(module);
        if self.done.contains(&name) {
            return Ok(());
        }
        if let Some(at) = self.chain.iter().position(|m| *m == name) {
            let mut chain = self.chain[at..].to_vec();
            chain.push(name);
            return Err(ModuleError::Cycle { chain });
        }
        if self.dir.is_builtin(&name) {
            self.done.insert(name.clone());
            self.plan.builtin.push(name);
            return Ok(());
        }
        let Some(path) = self.dir.file(&name).map(Path::to_path_buf) else {
            if self.dir.builtin.is_some() {
                return Err(ModuleError::Missing {
                    module: name,
                    needed_by: self.needed_by(root_need),
                    dir: self.dir.root.clone(),
                });
            }
            self.done.insert(name.clone());
            self.plan.assumed_builtin.push(name);
            return Ok(());
        };
        let bytes = fs::read(&path).map_err(|source| ModuleError::Read {
            path: path.clone(),
            source,
        })?;
        if let Some(kind) = compression(&bytes) {
            return Err(ModuleError::Modinfo {
                path,
                problem: ModinfoError::Compressed(kind),
            });
        }
        let info = ModInfo::from_ko(&bytes).map_err(|problem| ModuleError::Modinfo {
            path: path.clone(),
            problem,
        })?;
        if let (Some(want), Some(got)) = (self.kernel_release, info.release()) {
            if want != got {
                return Err(ModuleError::WrongKernel {
                    path,
                    module_release: got.to_owned(),
                    kernel_release: want.to_owned(),
                });
            }
        }
        self.chain.push(name.clone());
        for dep in &info.depends {
            self.visit(dep, root_need)?;
        }
        self.chain.pop();
        self.done.insert(name.clone());
        self.plan.modules.push(PlannedModule { name, path, bytes });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::modinfo::tests::{fake_ko, FIXTURES};
    use super::*;

    const BUILTIN: &str = include_str!("fixtures/modules.builtin");

    /// The Debian package's modules as the cache holds them: fake ELF files carrying the real
    /// `.modinfo` sections, and the real `modules.builtin`.
    fn debian_dir(dir: &Path) {
        for (name, modinfo) in FIXTURES {
            fs::write(dir.join(format!("{name}.ko")), fake_ko(modinfo)).unwrap();
        }
        fs::write(dir.join(MODULES_BUILTIN), BUILTIN).unwrap();
    }

    fn device_needs() -> Vec<Need> {
        DEVICE_MODULES
            .iter()
            .map(|m| Need::new(m, format!("test device ({m})")))
            .collect()
    }

    #[test]
    fn debian_virtio_modules_resolve_dependencies_first() {
        let dir = tempfile::tempdir().unwrap();
        debian_dir(dir.path());
        let md = ModuleDir::open(dir.path()).unwrap();
        let plan = md
            .resolve(&device_needs(), Some("6.1.0-57-rt-amd64"))
            .unwrap();
        assert_eq!(
            plan.names(),
            [
                "virtio_ring",
                "virtio_pci_modern_dev",
                "virtio_pci_legacy_dev",
                "virtio",
                "virtio_pci",
                "virtio_blk",
                "failover",
                "net_failover",
                "virtio_net"
            ]
        );
        // Every module comes after everything it depends on.
        for (i, m) in plan.modules.iter().enumerate() {
            for dep in ModInfo::from_ko(&m.bytes).unwrap().depends {
                let at = plan.modules.iter().position(|x| x.name == dep).unwrap();
                assert!(at < i, "{dep} after {}", m.name);
            }
        }
        assert!(plan.builtin.is_empty() && plan.assumed_builtin.is_empty());
        // The disk alone needs no net modules.
        let disk = md
            .resolve(&[Need::new("virtio_blk", "disk")], None)
            .unwrap();
        assert_eq!(disk.names(), ["virtio_ring", "virtio", "virtio_blk"]);
    }

    #[test]
    fn builtin_needs_nothing_and_missing_names_who_needs_it() {
        let dir = tempfile::tempdir().unwrap();
        debian_dir(dir.path());
        // In Debian's modules.builtin: the kernel has it.
        assert!(parse_builtin(BUILTIN).contains("zswap"));
        fs::remove_file(dir.path().join("failover.ko")).unwrap();
        fs::write(
            dir.path().join(MODULES_BUILTIN),
            format!("{BUILTIN}kernel/drivers/virtio/virtio_ring.ko\n"),
        )
        .unwrap();
        let md = ModuleDir::open(dir.path()).unwrap();
        let plan = md
            .resolve(&[Need::new("virtio-blk", "the disk")], None)
            .unwrap();
        assert_eq!(plan.names(), ["virtio", "virtio_blk"]);
        assert_eq!(plan.builtin, ["virtio_ring"]);
        let err = md
            .resolve(
                &[Need::new("virtio_net", "the virtio-net NIC of scenario x")],
                None,
            )
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ModuleError::Missing { .. }), "{msg}");
        for needle in [
            "module failover",
            "the virtio-net NIC of scenario x",
            "net_failover <- virtio_net",
            "Fix:",
        ] {
            assert!(msg.contains(needle), "{needle:?} not in {msg}");
        }
        // Without modules.builtin an absent module is taken to be built in.
        fs::remove_file(dir.path().join(MODULES_BUILTIN)).unwrap();
        let plan = ModuleDir::open(dir.path())
            .unwrap()
            .resolve(&[Need::new("virtio_net", "nic")], None)
            .unwrap();
        assert_eq!(plan.assumed_builtin, ["failover"]);
        assert_eq!(plan.names().last().map(String::as_str), Some("virtio_net"));
    }

    #[test]
    fn wrong_kernel_compressed_and_cycles_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("kernel/drivers");
        fs::create_dir_all(&sub).unwrap();
        fs::write(
            sub.join("a.ko"),
            fake_ko(b"name=a\0depends=b\0vermagic=6.1.0-9-rt-amd64 SMP\0"),
        )
        .unwrap();
        fs::write(sub.join("b.ko"), fake_ko(b"name=b\0depends=a\0")).unwrap();
        fs::write(sub.join("c.ko.xz"), b"\xfd7zXZ\0...").unwrap();
        let md = ModuleDir::open(dir.path()).unwrap();
        let err = md
            .resolve(&[Need::new("a", "x")], Some("6.1.0-57-rt-amd64"))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("built for kernel 6.1.0-9-rt-amd64, but the guest kernel is 6.1.0-57"),
            "{err}"
        );
        let err = md.resolve(&[Need::new("a", "x")], None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Kernel modules depend on each other in a circle: a -> b -> a"
        );
        let err = md.resolve(&[Need::new("c", "x")], None).unwrap_err();
        assert!(err.to_string().contains("xz-compressed"), "{err}");
        assert!(matches!(
            ModuleDir::open(&dir.path().join("none")),
            Err(ModuleError::Dir { .. })
        ));
    }

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
