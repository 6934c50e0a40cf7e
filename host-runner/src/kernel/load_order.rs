//! The load order of the modules a guest needs: each module's `.modinfo` `depends=`
//! ([`super::modinfo`]) resolved the way `depmod` would have, dependencies first, each module
//! once, checked against the guest kernel's release.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::modinfo::{compression, normalize, ModInfo, ModinfoError};
use super::module_dir::{ModuleDir, ModuleError, Need};

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

impl ModuleDir {
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
            if self.dir.has_builtin_list() {
                return Err(ModuleError::Missing {
                    module: name,
                    needed_by: self.needed_by(root_need),
                    dir: self.dir.root().to_owned(),
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
    use super::super::modinfo::tests::{fake_ko, fake_module_dir, BUILTIN, VIRTIO_BLK_ORDER};
    use super::super::module_dir::{parse_builtin, MODULES_BUILTIN};
    use super::super::DEVICE_MODULES;
    use super::*;

    fn device_needs() -> Vec<Need> {
        DEVICE_MODULES
            .iter()
            .map(|m| Need::new(m, format!("test device ({m})")))
            .collect()
    }

    #[test]
    fn debian_virtio_modules_resolve_dependencies_first() {
        let dir = tempfile::tempdir().unwrap();
        fake_module_dir(dir.path());
        let md = ModuleDir::open(dir.path()).unwrap();
        let plan = md
            .resolve(&device_needs(), Some("6.1.0-57-rt-amd64"))
            .unwrap();
        let mut want = VIRTIO_BLK_ORDER.to_vec();
        want.extend(["failover", "net_failover", "virtio_net"]);
        assert_eq!(plan.names(), want);
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
        fake_module_dir(dir.path());
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
}
