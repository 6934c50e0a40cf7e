//! The variant prerequisites against configs and a fake sysfs root.

use pinlat::config::Config;

use super::*;

/// Two guests of 512 and 256 MiB, and `variants` (TOML).
fn config(variants: &str) -> Config {
    Config::from_toml_str(&format!(
        "[[guests]]\nname = \"a\"\nvcpus = 2\nmemory_mib = 512\n\
         [[guests]]\nname = \"b\"\nvcpus = 2\nmemory_mib = 256\n\
         [host]\ncpus = \"0-7\"\n[[layouts]]\nkind = \"vcpu0\"\n{variants}"
    ))
    .unwrap()
}

/// A root whose 2 MiB pool has `free` of `total` pages (no 1 GiB pool unless `gig`).
fn root(free: u64, total: u64, gig: Option<(u64, u64)>) -> (tempfile::TempDir, SysRoot) {
    let dir = tempfile::tempdir().unwrap();
    let mut pools = vec![(HugePageSize::M2, free, total)];
    if let Some((f, t)) = gig {
        pools.push((HugePageSize::G1, f, t));
    }
    for (size, f, t) in pools {
        let p = dir.path().join(pool_dir(size).trim_start_matches('/'));
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("free_hugepages"), format!("{f}\n")).unwrap();
        std::fs::write(p.join("nr_hugepages"), format!("{t}\n")).unwrap();
    }
    let r = SysRoot::at(dir.path());
    (dir, r)
}

#[test]
fn kvm_only_knobs_are_refused_by_variant_and_key() {
    let c = config(
        "[[variants]]\nname = \"base\"\nqemu.mem_lock = \"on\"\nqemu.hugepages = \"2M\"\n\
         [[variants]]\nname = \"tuned\"\nqemu.cpu_host = true\nqemu.invtsc = true\nhost.halt_poll_ns = 0\n\
         [[variants]]\nname = \"pm\"\nqemu.cpu_pm = true\n",
    );
    let e = refuse_kvm_only(&c.variants, "--accel tcg").unwrap_err();
    assert_eq!(
        e.to_string(),
        "the guests run under TCG (--accel tcg), and these variants set knobs that only KVM \
         applies: variant 'tuned': variants[1].qemu.cpu_host, variants[1].qemu.invtsc, \
         variants[1].host.halt_poll_ns; variant 'pm': variants[2].qemu.cpu_pm. pinlat refuses a \
         knob it cannot apply rather than rank a variant that ran without it. Fix: run on a KVM \
         host with --accel kvm, or drop the knob"
    );
    // mem-lock and huge pages apply under TCG too; no variants at all is the untuned matrix.
    assert!(refuse_kvm_only(&c.variants[..1], "x").is_ok());
    assert!(refuse_kvm_only(&[], "x").is_ok());
}

#[test]
fn enough_free_pages_for_every_guest_of_a_run() {
    let c = config("[[variants]]\nname = \"hp\"\nqemu.hugepages = \"2M\"\n");
    // 512 + 256 MiB = 384 pages of 2 MiB.
    let (_d, r) = root(384, 400, None);
    assert!(hugepages(&r, &c.variants, &c.guests).is_ok());
    let (_d, r) = root(100, 120, None);
    let e = hugepages(&r, &c.variants, &c.guests)
        .unwrap_err()
        .to_string();
    let dir = r.path(&pool_dir(HugePageSize::M2)).display().to_string();
    assert_eq!(
        e,
        format!(
            "variants[0].qemu.hugepages = \"2M\" (variant 'hp') needs 384 free pages of that size for its \
             guests ('a' 512 MiB + 'b' 256 MiB), the host has 100 free of 120 \
             ({dir}/free_hugepages). Fix: echo 404 > {dir}/nr_hugepages (as root, before pinlat run)"
        )
    );
    // Variants without huge pages need nothing.
    let plain = config("[[variants]]\nname = \"p\"\nqemu.mem_lock = \"on\"\n");
    assert!(hugepages(&r, &plain.variants, &plain.guests).is_ok());
}

#[test]
fn gigantic_pages_need_their_pool_and_whole_pages() {
    let c = config("[[variants]]\nname = \"big\"\nqemu.hugepages = \"1G\"\n");
    let (_d, r) = root(1000, 1000, None);
    let e = hugepages(&r, &c.variants, &c.guests)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("variants[0].qemu.hugepages = \"1G\" (variant 'big'): guest 'a' has memory_mib = 512, not a multiple of the 1024 MiB page. Fix: set guests[0].memory_mib to a multiple of 1024"),
        "{e}"
    );
    let c = Config::from_toml_str(
        "[[guests]]\nname = \"a\"\nvcpus = 2\nmemory_mib = 2048\n[host]\ncpus = \"0-3\"\n\
         [[layouts]]\nkind = \"vcpu0\"\n[[variants]]\nname = \"big\"\nqemu.hugepages = \"1G\"\n",
    )
    .unwrap();
    let e = hugepages(&r, &c.variants, &c.guests)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("this kernel has no 1G huge page pool") && e.contains("hugepagesz=1G"),
        "{e}"
    );
    let (_d, r) = root(0, 0, Some((1, 1)));
    let e = hugepages(&r, &c.variants, &c.guests)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("needs 2 free pages")
            && e.contains("echo 2 > ")
            && e.contains("reserve them at boot"),
        "{e}"
    );
    let (_d, r) = root(0, 0, Some((2, 2)));
    assert!(hugepages(&r, &c.variants, &c.guests).is_ok());
}

#[test]
fn on_fault_needs_qemu_10_and_the_qemu_launcher() {
    let c = config("[[variants]]\nname = \"base\"\n[[variants]]\nname = \"lazy\"\nqemu.mem_lock = \"on-fault\"\n");
    let e = qemu_version(&c.variants, "7.2.22").unwrap_err().to_string();
    assert_eq!(
        e,
        "variants[1].qemu.mem_lock = \"on-fault\" (variant 'lazy') needs QEMU 10.0 or later; this \
         QEMU is 7.2.22. Fix: install a newer QEMU (or set PINLAT_QEMU to one), or drop the knob"
    );
    assert!(qemu_version(&c.variants, "10.0.2").is_ok());
    let (_d, r) = root(0, 0, None);
    assert!(libvirt(&r, &c.variants, LauncherKind::Qemu).is_ok());
    let e = libvirt(&r, &c.variants, LauncherKind::Libvirt)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("variants[1].qemu.mem_lock = \"on-fault\" (variant 'lazy') cannot be applied through libvirt:") && e.contains("--launcher qemu"),
        "{e}"
    );
}

#[test]
fn libvirt_takes_huge_pages_from_a_hugetlbfs_mount() {
    let c = config("[[variants]]\nname = \"hp\"\nqemu.hugepages = \"2M\"\n");
    let (d, r) = root(384, 384, None);
    std::fs::create_dir_all(d.path().join("proc")).unwrap();
    std::fs::write(d.path().join("proc/mounts"), "proc /proc proc rw 0 0\n").unwrap();
    let e = libvirt(&r, &c.variants, LauncherKind::Libvirt)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "variants[0].qemu.hugepages = \"2M\" (variant 'hp') cannot be applied through libvirt:"
        ) && e.contains("mount -t hugetlbfs"),
        "{e}"
    );
    assert!(
        libvirt(&r, &c.variants, LauncherKind::Qemu).is_ok(),
        "pinlat's memfd needs no mount"
    );
    std::fs::write(
        d.path().join("proc/mounts"),
        "proc /proc proc rw 0 0\nhugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n",
    )
    .unwrap();
    assert!(libvirt(&r, &c.variants, LauncherKind::Libvirt).is_ok());
}

#[test]
fn mem_lock_below_the_memlock_limit_is_refused_with_the_fix() {
    let c = config(
        "[[variants]]\nname = \"base\"\n[[variants]]\nname = \"locked\"\nqemu.mem_lock = \"on\"\n",
    );
    // Unlimited, or room for the largest guest: nothing to say (QEMU's own pages may still
    // need more; the limit is refused only where it cannot work).
    assert!(mem_lock(&c.variants, &c.guests, None).is_ok());
    assert!(mem_lock(&c.variants, &c.guests, Some(600 << 20)).is_ok());
    // The 8 MiB default of many distributions, below guest a's 512 MiB.
    let e = mem_lock(&c.variants, &c.guests, Some(8 << 20))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("variants[1].qemu.mem_lock = \"on\" (variant 'locked')")
            && e.contains("guest 'a''s 512 MiB")
            && e.contains("8192 KiB")
            && e.contains("ulimit -l unlimited"),
        "{e}"
    );
    // mem-lock off locks nothing.
    let off = config("[[variants]]\nname = \"off\"\nqemu.mem_lock = \"off\"\n");
    assert!(mem_lock(&off.variants, &off.guests, Some(0)).is_ok());
}
