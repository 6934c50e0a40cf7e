//! The guest devices' modules out of Debian's kernel package.
//!
//! The package ships its modules under `lib/modules/<release>/kernel/…` but no `modules.dep`,
//! so the dependencies are found in rounds: `modules.order` maps module names to their paths
//! in the package, each round extracts the modules still missing and reads their `.modinfo`
//! `depends=` for the next (three rounds for the virtio set). The cache keeps them flat in
//! [`super::MODULES_SUBDIR`] (`<name>.ko`) beside the package's `modules.builtin`, about 0.5 MB.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::deb_package::{extract, io_err, FetchError};
use super::modinfo::{normalize, ModInfo};
use super::module_dir::{module_file_name, parse_builtin, ModuleDir, Need, MODULES_BUILTIN};

/// Modules the guest devices pinlat can attach need (see `crate::devices`): the virtio PCI
/// transport, the block and the net driver. The Debian fetch caches these and everything they
/// depend on.
pub const DEVICE_MODULES: &[&str] = &["virtio_pci", "virtio_blk", "virtio_net"];

/// More rounds than any module's dependency depth (the virtio set needs 3).
const MAX_MODULE_ROUNDS: usize = 12;

/// Extracts from the package's filesystem tar `fsys_tar` the modules `roots` and everything they depend on into `dest` (which
/// must not exist): flat `<name>.ko` files and the package's `modules.builtin`. `work` is a
/// scratch directory. Built-in roots need nothing. The result is checked by resolving `roots`
/// in it, `vermagic` included.
pub(super) fn extract_modules(
    fsys_tar: &Path,
    package: &str,
    work: &Path,
    dest: &Path,
    roots: &[&str],
) -> Result<(), FetchError> {
    let root = work.join("modroot");
    fs::create_dir_all(&root).map_err(io_err(format!("creating {}", root.display())))?;
    extract(
        fsys_tar,
        &root,
        &[
            "./lib/modules/*/modules.order",
            "./lib/modules/*/modules.builtin",
        ],
        true,
    )
    .map_err(|e| match e {
        FetchError::ToolFailed { .. } => FetchError::NoModuleList {
            package: package.into(),
        },
        other => other,
    })?;
    let lib = root.join("lib/modules");
    let releases: Vec<String> = fs::read_dir(&lib)
        .map_err(io_err(format!("reading {}", lib.display())))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let [release] = releases.as_slice() else {
        return Err(FetchError::NoModuleList {
            package: package.into(),
        });
    };
    let base = lib.join(release);
    let read = |name: &str| {
        fs::read_to_string(base.join(name)).map_err(|_| FetchError::NoModuleList {
            package: package.into(),
        })
    };
    let builtin = parse_builtin(&read(MODULES_BUILTIN)?);
    // Module name -> path below lib/modules/<release>/ (`kernel/drivers/virtio/virtio.ko`).
    let order: BTreeMap<String, String> = read("modules.order")?
        .lines()
        .filter_map(|l| Some((module_file_name(l.trim())?, l.trim().to_owned())))
        .collect();

    let mut have: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut pending: Vec<(String, String)> = roots
        .iter()
        .map(|r| (normalize(r), "pinlat's guest devices".to_owned()))
        .collect();
    for _ in 0..MAX_MODULE_ROUNDS {
        let mut wanted: BTreeMap<String, String> = BTreeMap::new();
        for (module, needed_by) in pending.drain(..) {
            if !builtin.contains(&module) && !have.contains_key(&module) {
                wanted.entry(module).or_insert(needed_by);
            }
        }
        if wanted.is_empty() {
            break;
        }
        let mut members = Vec::new();
        for (module, needed_by) in &wanted {
            let rel = order
                .get(module)
                .ok_or_else(|| FetchError::ModuleNotInPackage {
                    package: package.into(),
                    module: module.clone(),
                    needed_by: needed_by.clone(),
                })?;
            members.push(format!("./lib/modules/{release}/{rel}"));
        }
        extract(fsys_tar, &root, &members, false)?;
        for module in wanted.keys() {
            let path = base.join(&order[module]);
            let bytes = fs::read(&path).map_err(io_err(format!("reading {}", path.display())))?;
            let info = ModInfo::from_ko(&bytes).map_err(|e| FetchError::BadModules {
                package: package.into(),
                reason: format!("{}: {e}", path.display()),
            })?;
            pending.extend(info.depends.into_iter().map(|d| (d, module.clone())));
            have.insert(module.clone(), path);
        }
    }
    if !pending.is_empty() {
        return Err(FetchError::BadModules {
            package: package.into(),
            reason: format!("dependencies deeper than {MAX_MODULE_ROUNDS} levels"),
        });
    }
    fs::create_dir(dest).map_err(io_err(format!("creating {}", dest.display())))?;
    for (module, path) in &have {
        let to = dest.join(format!("{module}.ko"));
        fs::copy(path, &to).map_err(io_err(format!("copying {}", path.display())))?;
    }
    fs::copy(base.join(MODULES_BUILTIN), dest.join(MODULES_BUILTIN))
        .map_err(io_err(format!("copying {MODULES_BUILTIN}")))?;
    let needs: Vec<Need> = roots.iter().map(|r| Need::new(r, "check")).collect();
    ModuleDir::open(dest)
        .and_then(|d| d.resolve(&needs, Some(release)))
        .map_err(|e| FetchError::BadModules {
            package: package.into(),
            reason: format!("{:#}", anyhow::Error::from(e)),
        })?;
    Ok(())
}
