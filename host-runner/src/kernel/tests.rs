//! Unit tests of the kernel search (kept apart so the module itself stays readable).
use super::modinfo::tests::{fake_module_dir, VIRTIO_BLK_ORDER};
use super::*;
use std::cell::Cell;

fn fake_bzimage(path: &Path) {
    let mut b = vec![0u8; 0x400];
    b[0x202..0x206].copy_from_slice(b"HdrS");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, b).unwrap();
}

fn network_down() -> FetchError {
    FetchError::ToolFailed {
        prog: "apt-get".into(),
        status: "exit status: 100".into(),
        last_line: "network down".into(),
    }
}

struct FakeFetch {
    package: Result<String, &'static str>,
    downloads: Cell<u32>,
    module_downloads: Cell<u32>,
    good: bool,
}

impl FakeFetch {
    fn new(package: Result<&str, &'static str>, good: bool) -> Self {
        FakeFetch {
            package: package.map(str::to_owned),
            downloads: Cell::new(0),
            module_downloads: Cell::new(0),
            good,
        }
    }
}

impl DebianFetch for FakeFetch {
    fn resolve_package(&self) -> Result<String, FetchError> {
        self.package.clone().map_err(|e| FetchError::ToolMissing {
            prog: e.to_string(),
        })
    }
    fn download(&self, package: &str, dest: &Path) -> Result<(), FetchError> {
        self.downloads.set(self.downloads.get() + 1);
        if !self.good {
            return Err(network_down());
        }
        let v = package.trim_start_matches("linux-image-");
        fake_bzimage(&dest.join(format!("vmlinuz-{v}")));
        fs::write(dest.join("package-version"), "6.1.192-2\n").unwrap();
        fake_module_dir(&dest.join(MODULES_SUBDIR));
        Ok(())
    }
    fn download_modules(&self, _package: &str, dest: &Path) -> Result<(), FetchError> {
        self.module_downloads.set(self.module_downloads.get() + 1);
        if !self.good {
            return Err(network_down());
        }
        fake_module_dir(dest);
        Ok(())
    }
}

fn search(root: &Path) -> KernelSearch {
    KernelSearch {
        explicit: None,
        env_kernel: None,
        host_release: Some("6.18.44-test".into()),
        host_preempt_rt: true,
        boot_dir: root.join("boot"),
        cache_dir: Some(root.join("cache/pinlat")),
        allow_download: true,
        modules_dir: None,
        host_modules_root: root.join("lib/modules"),
    }
}

const PKG: &str = "linux-image-6.1.0-56-rt-amd64";

#[test]
fn explicit_then_env_then_host() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, host) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("boot/vmlinuz-6.18.44-test"),
    );
    for p in [&a, &b, &host] {
        fake_bzimage(p);
    }
    let fetch = FakeFetch::new(Err("unused"), false);
    let found = |s: &KernelSearch| {
        let k = s.find_with(&fetch).unwrap();
        (k.path, k.source)
    };
    let mut s = search(dir.path());
    s.explicit = Some(a.clone());
    s.env_kernel = Some(b.clone());
    assert_eq!(found(&s), (a, KernelSource::Explicit));
    s.explicit = None;
    assert_eq!(found(&s), (b, KernelSource::Env));
    s.env_kernel = None;
    assert_eq!(found(&s), (host, KernelSource::HostBoot));
    assert_eq!(fetch.downloads.get(), 0);
}

#[test]
fn where_the_modules_are() {
    let dir = tempfile::tempdir().unwrap();
    let explicit = dir.path().join("mine/bzImage");
    fake_bzimage(&explicit);
    fake_bzimage(&dir.path().join("boot/vmlinuz-6.18.44-test"));
    let fetch = FakeFetch::new(Err("unused"), false);
    let mut s = search(dir.path());
    s.explicit = Some(explicit);
    let k = s.find_with(&fetch).unwrap();
    let KernelModules::Missing(why) = &k.modules else {
        panic!("{:?}", k.modules)
    };
    assert!(why.contains("--kernel"), "{why}");
    // The variable wins for any kernel; a wrong one says so.
    let mods = dir.path().join("mods");
    fs::create_dir(&mods).unwrap();
    s.modules_dir = Some(mods.clone());
    assert_eq!(
        s.find_with(&fetch).unwrap().modules,
        KernelModules::Dir(mods)
    );
    s.modules_dir = Some(dir.path().join("nope"));
    let KernelModules::Missing(why) = s.find_with(&fetch).unwrap().modules else {
        panic!()
    };
    assert!(why.contains(MODULES_ENV) && why.contains("nope"), "{why}");
    // The host's kernel: /lib/modules/<release>.
    s.modules_dir = None;
    s.explicit = None;
    let host_mods = dir.path().join("lib/modules/6.18.44-test");
    fs::create_dir_all(&host_mods).unwrap();
    let k = s.find_with(&fetch).unwrap();
    assert_eq!(k.source, KernelSource::HostBoot);
    assert_eq!(k.modules, KernelModules::Dir(host_mods));
}

#[test]
fn a_cache_without_modules_gets_them_once_when_needed() {
    let dir = tempfile::tempdir().unwrap();
    let pkg_dir = dir.path().join("cache/pinlat/kernels").join(PKG);
    fake_bzimage(&pkg_dir.join("vmlinuz-6.1.0-56-rt-amd64"));
    let mut s = search(dir.path());
    s.allow_download = false;
    let k = s.find_with(&FakeFetch::new(Ok(PKG), true)).unwrap();
    let KernelModules::Missing(why) = &k.modules else {
        panic!()
    };
    assert!(why.contains("downloads are disabled"), "{why}");
    s.allow_download = true;
    // The search itself fetches nothing: a run without devices does not pay for modules.
    let fetch = FakeFetch::new(Ok(PKG), true);
    let k = s.find_with(&fetch).unwrap();
    assert_eq!(k.source, KernelSource::DebianRtCached);
    assert!(matches!(k.modules, KernelModules::Fetchable { .. }));
    assert_eq!(
        (fetch.downloads.get(), fetch.module_downloads.get()),
        (0, 0)
    );
    let needs = [Need::new("virtio_blk", "the disk of scenario s")];
    // Offline: the error says who needed what, and the fix.
    let down = FakeFetch::new(Ok(PKG), false);
    let msg = k.module_plan_with(&down, &needs).unwrap_err().to_string();
    for needle in ["the disk of scenario s", "network down", "Fix:", PKG] {
        assert!(msg.contains(needle), "{needle:?} not in {msg}");
    }
    // Fetched on the first need, then found in the cache.
    for _ in 0..2 {
        let plan = k.module_plan_with(&fetch, &needs).unwrap();
        assert_eq!(plan.names(), ["virtio_ring", "virtio", "virtio_blk"]);
    }
    assert_eq!(fetch.module_downloads.get(), 1);
    assert_eq!(
        s.find_with(&fetch).unwrap().modules,
        KernelModules::Dir(pkg_dir.join(MODULES_SUBDIR))
    );
    // Nothing but the kernel, its modules and no staging left.
    let mut left: Vec<String> = fs::read_dir(&pkg_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, [MODULES_SUBDIR, "vmlinuz-6.1.0-56-rt-amd64"]);
}

#[test]
fn module_plan_for_devices() {
    let dir = tempfile::tempdir().unwrap();
    let fetch = FakeFetch::new(Ok(PKG), true);
    let k = search(dir.path()).find_with(&fetch).unwrap();
    assert_eq!(k.source, KernelSource::DebianRtDownloaded);
    let needs = [
        Need::new("virtio_pci", "the virtio-blk disk"),
        Need::new("virtio_blk", "the virtio-blk disk"),
    ];
    let plan = k.module_plan(&needs).unwrap();
    assert_eq!(plan.names(), VIRTIO_BLK_ORDER);
    assert!(plan.total_bytes() > 0);
    assert_eq!(k.module_plan(&[]).unwrap(), LoadPlan::default());
    // A kernel of the user's, no module directory: the error says who needs what, and how
    // to fix it.
    let mut mine = k.clone();
    mine.modules = KernelModules::Missing("a kernel named by --kernel".into());
    let msg = mine.module_plan(&needs).unwrap_err().to_string();
    for needle in [
        "the virtio-blk disk",
        "virtio_pci",
        "--kernel",
        MODULES_ENV,
        "Fix:",
    ] {
        assert!(msg.contains(needle), "{needle:?} not in {msg}");
    }
}

#[test]
fn release_from_the_bzimage_header() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bz");
    let mut b = vec![0u8; 0x1000];
    b[0x202..0x206].copy_from_slice(b"HdrS");
    b[0x20e..0x210].copy_from_slice(&0x0c00u16.to_le_bytes());
    let v = b"6.1.0-57-rt-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_RT\0";
    b[0xe00..0xe00 + v.len()].copy_from_slice(v);
    fs::write(&p, &b).unwrap();
    assert_eq!(bzimage_release(&p).as_deref(), Some("6.1.0-57-rt-amd64"));
    b[0x20e..0x210].copy_from_slice(&[0, 0]);
    fs::write(&p, &b).unwrap();
    assert_eq!(bzimage_release(&p), None);
    assert_eq!(bzimage_release(&dir.path().join("none")), None);
}

#[test]
fn a_non_rt_host_kernel_is_skipped_for_debians_rt_kernel() {
    let dir = tempfile::tempdir().unwrap();
    fake_bzimage(&dir.path().join("boot/vmlinuz-6.18.44-test"));
    let mut s = search(dir.path());
    s.host_preempt_rt = false;
    let k = s.find_with(&FakeFetch::new(Ok(PKG), true)).unwrap();
    assert_eq!(k.source, KernelSource::DebianRtDownloaded);
    // Named explicitly, it is used all the same.
    s.explicit = Some(dir.path().join("boot/vmlinuz-6.18.44-test"));
    assert_eq!(
        s.find_with(&FakeFetch::new(Ok(PKG), true)).unwrap().source,
        KernelSource::Explicit
    );
}

#[test]
fn bad_override_is_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    fake_bzimage(&dir.path().join("boot/vmlinuz-6.18.44-test"));
    let notkernel = dir.path().join("notkernel");
    fs::write(&notkernel, vec![1u8; 4096]).unwrap();
    let mut s = search(dir.path());
    s.env_kernel = Some(notkernel);
    let err = s.find_with(&FakeFetch::new(Ok(PKG), true)).unwrap_err();
    assert!(matches!(
        err,
        KernelError::BadOverride {
            source_kind: KernelSource::Env,
            ..
        }
    ));
    assert!(err.to_string().contains("bzImage"), "{err}");
    s.env_kernel = None;
    s.explicit = Some(dir.path().join("missing"));
    let err = s.find_with(&FakeFetch::new(Ok(PKG), true)).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn downloads_once_then_reuses_cache() {
    let dir = tempfile::tempdir().unwrap();
    let s = search(dir.path());
    let fetch = FakeFetch::new(Ok(PKG), true);
    let k = s.find_with(&fetch).unwrap();
    assert_eq!(k.source, KernelSource::DebianRtDownloaded);
    assert_eq!(k.package.as_deref(), Some(PKG));
    assert_eq!(k.package_version.as_deref(), Some("6.1.192-2"));
    assert!(k
        .path
        .starts_with(dir.path().join("cache/pinlat/kernels").join(PKG)));
    let again = s.find_with(&fetch).unwrap();
    assert_eq!(again.source, KernelSource::DebianRtCached);
    assert_eq!(again.path, k.path);
    assert_eq!(fetch.downloads.get(), 1);
    // No staging directories left behind.
    let left: Vec<_> = fs::read_dir(dir.path().join("cache/pinlat/kernels"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from(PKG)]);
    // Offline later: the cached kernel still serves.
    let offline = FakeFetch::new(Err("apt-cache not found"), false);
    assert_eq!(s.find_with(&offline).unwrap().path, k.path);
}

#[test]
fn offline_picks_newest_cached() {
    let dir = tempfile::tempdir().unwrap();
    let kernels = dir.path().join("cache/pinlat/kernels");
    for abi in ["9", "56", "10"] {
        let p = format!("linux-image-6.1.0-{abi}-rt-amd64");
        fake_bzimage(
            &kernels
                .join(&p)
                .join(format!("vmlinuz-6.1.0-{abi}-rt-amd64")),
        );
    }
    let k = search(dir.path())
        .find_with(&FakeFetch::new(Err("offline"), false))
        .unwrap();
    assert_eq!(k.package.as_deref(), Some("linux-image-6.1.0-56-rt-amd64"));
}

#[test]
fn not_found_names_every_place() {
    let dir = tempfile::tempdir().unwrap();
    let fetch = FakeFetch::new(Ok(PKG), false);
    let err = search(dir.path()).find_with(&fetch).unwrap_err();
    let KernelError::NotFound { attempts } = &err else {
        panic!("{err}")
    };
    assert_eq!(attempts.len(), 4);
    let msg = err.to_string();
    for needle in [
        "--kernel",
        "$PINLAT_KERNEL",
        "vmlinuz-6.18.44-test: does not exist",
        "network down",
        "Fix:",
    ] {
        assert!(msg.contains(needle), "missing {needle:?} in:\n{msg}");
    }
    let mut s = search(dir.path());
    s.cache_dir = None;
    assert!(s
        .find_with(&fetch)
        .unwrap_err()
        .to_string()
        .contains("HOME"));
}

#[test]
fn apt_depends_parsing() {
    let out = "linux-image-rt-amd64\n  Depends: linux-image-6.1.0-56-rt-amd64\n";
    assert_eq!(parse_apt_depends(out).as_deref(), Some(PKG));
    let alt = "x\n |Depends: linux-image-6.1.0-9-rt-amd64\n  Depends: other\n";
    assert_eq!(
        parse_apt_depends(alt).as_deref(),
        Some("linux-image-6.1.0-9-rt-amd64")
    );
    assert_eq!(parse_apt_depends("  Depends: libc6\n"), None);
    assert_eq!(
        parse_apt_depends("  Depends: linux-image-$(rm -rf)\n"),
        None
    );
    assert_eq!(parse_apt_depends(""), None);
}

#[test]
fn cache_dir_rules() {
    let some = |s: &'static str| Some(OsStr::new(s));
    assert_eq!(
        cache_dir(some("/x/cache"), some("/home/u")),
        Some(PathBuf::from("/x/cache/pinlat"))
    );
    // A relative XDG_CACHE_HOME is invalid per the XDG spec and ignored.
    assert_eq!(
        cache_dir(some("rel"), some("/home/u")),
        Some(PathBuf::from("/home/u/.cache/pinlat"))
    );
    assert_eq!(cache_dir(None, None), None);
}

#[test]
fn version_ordering() {
    let mut v = [
        "linux-image-6.1.0-9-rt",
        "linux-image-6.1.0-56-rt",
        "linux-image-6.1.0-10-rt",
    ];
    v.sort_by_key(|p| version_key(p));
    assert_eq!(v.last().copied(), Some("linux-image-6.1.0-56-rt"));
}
