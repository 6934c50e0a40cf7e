//! What a kernel module says about itself: its `.modinfo` ELF section, read without `modinfo`
//! or libkmod.
//!
//! A `.ko` is an ELF64 relocatable object. Its `.modinfo` section is a run of NUL-terminated
//! `key=value` strings (`include/linux/moduleparam.h`, `MODULE_INFO`; `scripts/mod/modpost.c`
//! adds `depends=`, `name=` and `vermagic=`), padded with extra NULs. `depends=` lists, comma
//! separated, the modules whose symbols it uses, the same list `depmod` turns into
//! `modules.dep`; Debian's kernel packages ship no `modules.dep`, so pinlat resolves load order
//! from these. The ELF layout is the System V gABI's (section header table at `e_shoff`,
//! section names in the `e_shstrndx` section).
//!
//! Compressed modules (`.ko.xz`, `.ko.zst`, `.ko.gz`) are recognised by their magic and
//! refused with the fix: Debian's 6.1 kernels ship them uncompressed
//! (`CONFIG_MODULE_COMPRESS_NONE=y`), so pinlat carries no decompressor.

/// Why a file's `.modinfo` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModinfoError {
    /// Compressed module.
    #[error("is {0}-compressed; pinlat reads uncompressed .ko files only: decompress the modules into a directory (e.g. `xz -dk`, `zstd -d`) and use that")]
    Compressed(&'static str),
    /// Not an ELF64 little-endian object.
    #[error("is not an ELF64 little-endian object")]
    NotElf,
    /// A header or table points outside the file.
    #[error("is a malformed ELF file: {0}")]
    Malformed(&'static str),
    /// No `.modinfo` section: not a kernel module.
    #[error("has no .modinfo section (not a kernel module)")]
    NoModinfo,
}

/// The fields of `.modinfo` that loading needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModInfo {
    /// `name=`, normalised ([`normalize`]); `None` in modules built before modpost wrote it.
    pub name: Option<String>,
    /// `depends=`, normalised, in the order given (empty: depends on nothing).
    pub depends: Vec<String>,
    /// `vermagic=`, e.g. `6.1.0-57-rt-amd64 SMP preempt_rt mod_unload modversions`.
    pub vermagic: Option<String>,
}

impl ModInfo {
    /// Parses the bytes of a `.modinfo` section. Entries without `=` are skipped; for a key
    /// given twice the first wins (modpost writes each of these keys once).
    pub fn parse(section: &[u8]) -> ModInfo {
        let mut info = ModInfo::default();
        let mut depends: Option<Vec<String>> = None;
        for entry in section.split(|&b| b == 0).filter(|e| !e.is_empty()) {
            let text = String::from_utf8_lossy(entry);
            let Some((key, value)) = text.split_once('=') else {
                continue;
            };
            match key {
                "name" if info.name.is_none() => info.name = Some(normalize(value)),
                "vermagic" if info.vermagic.is_none() => {
                    info.vermagic = Some(value.trim().to_owned())
                }
                "depends" if depends.is_none() => {
                    depends = Some(
                        value
                            .split(',')
                            .map(str::trim)
                            .filter(|d| !d.is_empty())
                            .map(normalize)
                            .collect(),
                    )
                }
                _ => {}
            }
        }
        info.depends = depends.unwrap_or_default();
        info
    }

    /// Reads `.modinfo` from a module file's bytes.
    pub fn from_ko(bytes: &[u8]) -> Result<ModInfo, ModinfoError> {
        Ok(ModInfo::parse(modinfo_section(bytes)?))
    }

    /// The kernel release the module was built for: the first word of `vermagic`.
    pub fn release(&self) -> Option<&str> {
        self.vermagic.as_deref()?.split_whitespace().next()
    }
}

/// A module name as the kernel compares them: `-` and `_` are the same (`virtio-rng.ko` is
/// module `virtio_rng`), so pinlat spells them with `_`.
pub fn normalize(name: &str) -> String {
    name.trim().replace('-', "_")
}

/// The compression a file's first bytes announce, if any.
pub fn compression(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\xfd7zXZ\0") {
        Some("xz")
    } else if bytes.starts_with(b"\x28\xb5\x2f\xfd") {
        Some("zstd")
    } else if bytes.starts_with(b"\x1f\x8b") {
        Some("gzip")
    } else {
        None
    }
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], off: usize) -> Option<usize> {
    let v = u64::from_le_bytes(b.get(off..off.checked_add(8)?)?.try_into().ok()?);
    usize::try_from(v).ok()
}

/// The `.modinfo` section's bytes of an ELF64 little-endian module. Every offset is
/// bounds-checked: garbage gives an error, never a panic.
pub fn modinfo_section(elf: &[u8]) -> Result<&[u8], ModinfoError> {
    use ModinfoError::Malformed;
    if let Some(kind) = compression(elf) {
        return Err(ModinfoError::Compressed(kind));
    }
    // e_ident: magic, EI_CLASS = ELFCLASS64 (2), EI_DATA = ELFDATA2LSB (1).
    if elf.get(..4) != Some(b"\x7fELF") || elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        return Err(ModinfoError::NotElf);
    }
    let shoff = u64_at(elf, 0x28).ok_or(Malformed("truncated ELF header"))?;
    let shentsize = usize::from(u16_at(elf, 0x3a).ok_or(Malformed("truncated ELF header"))?);
    let shnum = usize::from(u16_at(elf, 0x3c).ok_or(Malformed("truncated ELF header"))?);
    let shstrndx = usize::from(u16_at(elf, 0x3e).ok_or(Malformed("truncated ELF header"))?);
    if shentsize < 0x40 {
        return Err(Malformed("section header entries shorter than ELF64's"));
    }
    if shnum == 0 || shstrndx >= shnum {
        return Err(Malformed("no usable section name table"));
    }
    // (sh_name, sh_offset, sh_size) of section i.
    let header = |i: usize| -> Option<(usize, usize, usize)> {
        let at = shoff.checked_add(i.checked_mul(shentsize)?)?;
        Some((
            u32_at(elf, at)? as usize,
            u64_at(elf, at.checked_add(0x18)?)?,
            u64_at(elf, at.checked_add(0x20)?)?,
        ))
    };
    let data = |off: usize, size: usize| elf.get(off..off.checked_add(size)?);
    let (_, str_off, str_size) =
        header(shstrndx).ok_or(Malformed("section headers past the end of the file"))?;
    let names = data(str_off, str_size).ok_or(Malformed("section name table out of bounds"))?;
    for i in 0..shnum {
        let (name, off, size) =
            header(i).ok_or(Malformed("section headers past the end of the file"))?;
        let Some(rest) = names.get(name..) else {
            continue;
        };
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        if &rest[..end] == b".modinfo" {
            return data(off, size).ok_or(Malformed(".modinfo section out of bounds"));
        }
    }
    Err(ModinfoError::NoModinfo)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `.modinfo` sections of Debian's `linux-image-6.1.0-57-rt-amd64` (6.1.192-3), cut out
    /// with `objcopy -O binary --only-section=.modinfo`.
    pub(crate) const FIXTURES: &[(&str, &[u8])] = &[
        ("virtio_pci", include_bytes!("fixtures/virtio_pci.modinfo")),
        ("virtio_blk", include_bytes!("fixtures/virtio_blk.modinfo")),
        ("virtio_net", include_bytes!("fixtures/virtio_net.modinfo")),
        ("virtio", include_bytes!("fixtures/virtio.modinfo")),
        (
            "virtio_ring",
            include_bytes!("fixtures/virtio_ring.modinfo"),
        ),
        (
            "virtio_pci_modern_dev",
            include_bytes!("fixtures/virtio_pci_modern_dev.modinfo"),
        ),
        (
            "virtio_pci_legacy_dev",
            include_bytes!("fixtures/virtio_pci_legacy_dev.modinfo"),
        ),
        (
            "net_failover",
            include_bytes!("fixtures/net_failover.modinfo"),
        ),
        ("failover", include_bytes!("fixtures/failover.modinfo")),
    ];

    /// A minimal ELF64 LE relocatable with sections: null, `.text`, `.modinfo`, `.shstrtab`,
    /// as a `.ko` lays them out (section data first, the header table last).
    pub(crate) fn fake_ko(modinfo: &[u8]) -> Vec<u8> {
        let shstrtab = b"\0.text\0.modinfo\0.shstrtab\0";
        let mut f = vec![0u8; 0x40];
        f[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let text_off = f.len();
        f.extend_from_slice(&[0x90; 16]);
        let modinfo_off = f.len();
        f.extend_from_slice(modinfo);
        let str_off = f.len();
        f.extend_from_slice(shstrtab);
        while f.len() % 8 != 0 {
            f.push(0);
        }
        let shoff = f.len();
        let mut sh = |name: u32, off: usize, size: usize| {
            let mut h = [0u8; 0x40];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(off as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            f.extend_from_slice(&h);
        };
        sh(0, 0, 0);
        sh(1, text_off, 16);
        sh(7, modinfo_off, modinfo.len());
        sh(16, str_off, shstrtab.len());
        f[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        f[0x3a..0x3c].copy_from_slice(&0x40u16.to_le_bytes());
        f[0x3c..0x3e].copy_from_slice(&4u16.to_le_bytes());
        f[0x3e..0x40].copy_from_slice(&3u16.to_le_bytes());
        f
    }

    /// Debian's `modules.builtin` for the kernel of [`FIXTURES`].
    pub(crate) const BUILTIN: &str = include_str!("fixtures/modules.builtin");

    /// The load order of [`FIXTURES`]' virtio PCI transport and block driver.
    pub(crate) const VIRTIO_BLK_ORDER: [&str; 6] = [
        "virtio_ring",
        "virtio_pci_modern_dev",
        "virtio_pci_legacy_dev",
        "virtio",
        "virtio_pci",
        "virtio_blk",
    ];

    /// The virtio modules as the Debian fetch leaves them in the cache (created if needed):
    /// fake ELF files carrying the real `.modinfo` sections, and Debian's `modules.builtin`.
    pub(crate) fn fake_module_dir(dir: &std::path::Path) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, modinfo) in FIXTURES {
            std::fs::write(dir.join(format!("{name}.ko")), fake_ko(modinfo)).unwrap();
        }
        std::fs::write(dir.join(super::super::MODULES_BUILTIN), BUILTIN).unwrap();
    }

    fn fixture(name: &str) -> &'static [u8] {
        FIXTURES.iter().find(|(n, _)| *n == name).unwrap().1
    }

    #[test]
    fn debian_modinfo_sections() {
        let pci = ModInfo::parse(fixture("virtio_pci"));
        assert_eq!(pci.name.as_deref(), Some("virtio_pci"));
        assert_eq!(
            pci.depends,
            [
                "virtio_ring",
                "virtio_pci_modern_dev",
                "virtio_pci_legacy_dev",
                "virtio"
            ]
        );
        assert_eq!(pci.release(), Some("6.1.0-57-rt-amd64"));
        assert_eq!(
            pci.vermagic.as_deref(),
            Some("6.1.0-57-rt-amd64 SMP preempt_rt mod_unload modversions")
        );
        let net = ModInfo::parse(fixture("virtio_net"));
        assert_eq!(net.depends, ["virtio_ring", "virtio", "net_failover"]);
        // An empty `depends=` is no dependency, not one named "".
        let ring = ModInfo::parse(fixture("virtio_ring"));
        assert!(ring.depends.is_empty());
        for (name, bytes) in FIXTURES {
            assert_eq!(ModInfo::parse(bytes).name.as_deref(), Some(*name));
        }
    }

    #[test]
    fn section_is_found_in_an_elf() {
        let ko = fake_ko(fixture("net_failover"));
        assert_eq!(modinfo_section(&ko).unwrap(), fixture("net_failover"));
        assert_eq!(ModInfo::from_ko(&ko).unwrap().depends, ["failover"]);
    }

    #[test]
    fn not_modules_are_refused() {
        assert_eq!(
            modinfo_section(b"\xfd7zXZ\0rest"),
            Err(ModinfoError::Compressed("xz"))
        );
        assert_eq!(
            modinfo_section(b"\x28\xb5\x2f\xfdrest"),
            Err(ModinfoError::Compressed("zstd"))
        );
        assert_eq!(modinfo_section(b"#!/bin/sh"), Err(ModinfoError::NotElf));
        // Rename .modinfo (the third of four headers at the end) to ".text": none is left.
        let mut ko = fake_ko(b"name=x\0");
        let modinfo_hdr = ko.len() - 2 * 0x40;
        ko[modinfo_hdr..modinfo_hdr + 4].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(modinfo_section(&ko), Err(ModinfoError::NoModinfo));
        let ko = fake_ko(b"name=x\0");
        assert!(matches!(
            modinfo_section(&ko[..ko.len() - 0x20]),
            Err(ModinfoError::Malformed(_))
        ));
    }

    #[test]
    fn names_are_normalised() {
        let info = ModInfo::parse(b"name=virtio-rng\0depends=a-b,,c\0\0\0vermagic=6.1 SMP \0");
        assert_eq!(info.name.as_deref(), Some("virtio_rng"));
        assert_eq!(info.depends, ["a_b", "c"]);
        assert_eq!(info.release(), Some("6.1"));
        assert_eq!(ModInfo::parse(b""), ModInfo::default());
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = modinfo_section(&bytes);
            let mut elf = b"\x7fELF\x02\x01".to_vec();
            elf.extend_from_slice(&bytes);
            let _ = modinfo_section(&elf);
            let _ = ModInfo::parse(&bytes);
        }

        #[test]
        fn damaged_headers_never_panic(at in 0usize..0x40, byte in proptest::num::u8::ANY) {
            let mut ko = fake_ko(b"name=x\0depends=y\0");
            ko[at] = byte;
            let _ = modinfo_section(&ko);
        }
    }
}
