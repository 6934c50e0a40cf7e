//! The kernel modules a guest needs for its devices, in the order to load them.
//!
//! Debian's RT kernel has the virtio PCI transport, block and net drivers as modules
//! (`CONFIG_VIRTIO_PCI=m`, `CONFIG_VIRTIO_BLK=m`, `CONFIG_VIRTIO_NET=m`, and `virtio`,
//! `virtio_ring`, `failover` … beneath them). A guest with a virtio disk or NIC therefore needs
//! those `.ko` files in its initramfs and the agent must load them, dependencies first, before
//! measuring. This module knows where a guest kernel's modules are ([`KernelModules`]: the
//! cached Debian package's `modules/`, fetched when first needed, or a directory the user
//! names) and turns a guest's needs into a [`LoadPlan`]: the directory indexed by
//! [`super::module_dir`], the load order resolved by [`super::load_order`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::debian::fetch_modules_into;
use super::load_order::LoadPlan;
use super::module_dir::{ModuleDir, ModuleError, Need, MODULES_SUBDIR};
use super::{bzimage_release, AptFetch, DebianFetch, GuestKernel};

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
