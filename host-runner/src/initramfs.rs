//! The guest's root filesystem: an uncompressed newc cpio archive built per run.
//!
//! The guest is a kernel plus this initramfs; its `/init` is the static agent binary and
//! `/pinlat/config.json` is the run's agent config (docs/architecture.md "Data flow"). The format is the
//! kernel's `Documentation/driver-api/early-userspace/buffer-format.rst` (SVR4 "newc", magic
//! `070701`), written with the `cpio` crate. The kernel accepts it uncompressed, so no
//! compression is applied: it costs boot time under TCG and saves nothing that matters.
//!
//! A guest whose devices need kernel modules also gets them as `/lib/modules/<name>.ko`
//! ([`Initramfs::with_modules`]), in load order; the agent config lists the names.
//!
//! `/dev/console` is included as a character node (5, 1) because the Debian kernels lack
//! `CONFIG_DEVTMPFS_MOUNT`: without it the kernel warns "unable to open an initial console" and
//! PID 1 starts with no stdin/stdout/stderr.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use pinlat::agentcfg::GUEST_MODULES_DIR;

use crate::kernel::LoadPlan;

/// Where the agent finds its run config inside the guest.
pub const GUEST_CONFIG_PATH: &str = "/pinlat/config.json";
/// Where the agent binary lives inside the guest (the kernel runs it as PID 1).
pub const GUEST_INIT_PATH: &str = "/init";

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;

/// Errors building or reading an initramfs.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    /// Reading an input file failed.
    #[error("Cannot read {path}")]
    ReadInput {
        /// The input file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Writing the archive failed.
    #[error("Cannot write initramfs {path}")]
    Write {
        /// The archive (or `<memory>`).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// An entry is larger than newc's 32-bit size field.
    #[error("{name} is {size} bytes; newc entries hold at most 4 GiB")]
    TooLarge {
        /// The entry name.
        name: String,
        /// Its size in bytes.
        size: usize,
    },
    /// The archive could not be parsed back.
    #[error("Malformed cpio archive")]
    Malformed(#[source] io::Error),
}

/// What one archive member is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file with its contents.
    File(Vec<u8>),
    /// A character device node (major, minor).
    CharDev(u32, u32),
}

/// One archive member: a path without a leading `/`, permission bits and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the guest, relative to `/` (e.g. `pinlat/config.json`).
    pub name: String,
    /// Permission bits (e.g. `0o755`), without the file-type bits.
    pub perm: u32,
    /// Directory, file or device node.
    pub kind: EntryKind,
}

/// An initramfs under construction: entries are written in insertion order, so add parent
/// directories before their contents.
#[derive(Debug, Clone, Default)]
pub struct Initramfs {
    entries: Vec<Entry>,
}

impl Initramfs {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// The standard pinlat guest: `/dev`, `/dev/console`, `/proc`, `/sys`, `/tmp`, `/pinlat`,
    /// the agent as `/init` (0755) and the run config as `/pinlat/config.json` (0644).
    pub fn for_agent(agent: Vec<u8>, config_json: Vec<u8>) -> Self {
        Initramfs::new()
            .dir("dev", 0o755)
            .char_dev("dev/console", 0o600, 5, 1)
            .dir("proc", 0o555)
            .dir("sys", 0o555)
            .dir("tmp", 0o1777)
            .dir("pinlat", 0o755)
            .file(&GUEST_INIT_PATH[1..], 0o755, agent)
            .file(&GUEST_CONFIG_PATH[1..], 0o644, config_json)
    }

    /// Adds the modules of `plan` as `GUEST_MODULES_DIR/<name>.ko` (0644), in load order,
    /// with their directories; the agent loads the names its config lists from there. An
    /// empty plan adds nothing.
    pub fn with_modules(mut self, plan: &LoadPlan) -> Self {
        if plan.modules.is_empty() {
            return self;
        }
        let dir = GUEST_MODULES_DIR.trim_start_matches('/');
        let mut parent = String::new();
        for part in dir.split('/') {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            if !self.entries.iter().any(|e| e.name == parent) {
                self = self.dir(&parent, 0o755);
            }
        }
        for m in &plan.modules {
            self = self.file(&format!("{dir}/{}.ko", m.name), 0o644, m.bytes.clone());
        }
        self
    }

    /// Adds a directory.
    pub fn dir(mut self, name: &str, perm: u32) -> Self {
        self.push(name, perm, EntryKind::Dir);
        self
    }

    /// Adds a regular file.
    pub fn file(mut self, name: &str, perm: u32, contents: Vec<u8>) -> Self {
        self.push(name, perm, EntryKind::File(contents));
        self
    }

    /// Adds a character device node.
    pub fn char_dev(mut self, name: &str, perm: u32, major: u32, minor: u32) -> Self {
        self.push(name, perm, EntryKind::CharDev(major, minor));
        self
    }

    fn push(&mut self, name: &str, perm: u32, kind: EntryKind) {
        self.entries.push(Entry {
            name: name.trim_start_matches('/').to_owned(),
            perm: perm & 0o7777,
            kind,
        });
    }

    /// The entries, in archive order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Writes the archive (entries, then the `TRAILER!!!`) to `out`.
    pub fn write_to<W: Write>(&self, mut out: W) -> Result<W, InitramfsError> {
        let wr = |source| InitramfsError::Write {
            path: PathBuf::from("<stream>"),
            source,
        };
        for (i, e) in self.entries.iter().enumerate() {
            let (type_bits, data, rdev): (u32, &[u8], (u32, u32)) = match &e.kind {
                EntryKind::Dir => (S_IFDIR, &[], (0, 0)),
                EntryKind::File(d) => (S_IFREG, d, (0, 0)),
                EntryKind::CharDev(maj, min) => (S_IFCHR, &[], (*maj, *min)),
            };
            let size = u32::try_from(data.len()).map_err(|_| InitramfsError::TooLarge {
                name: e.name.clone(),
                size: data.len(),
            })?;
            let nlink = if matches!(e.kind, EntryKind::Dir) {
                2
            } else {
                1
            };
            let mut w = cpio::newc::Builder::new(&e.name)
                .ino(i as u32 + 1)
                .mode(type_bits | e.perm)
                .nlink(nlink)
                .rdev_major(rdev.0)
                .rdev_minor(rdev.1)
                .write(out, size);
            w.write_all(data).map_err(wr)?;
            out = w.finish().map_err(wr)?;
        }
        let mut out = cpio::newc::trailer(out).map_err(wr)?;
        out.flush().map_err(wr)?;
        Ok(out)
    }

    /// Writes the archive to `path` (created or truncated, mode 0644).
    pub fn write_file(&self, path: &Path) -> Result<(), InitramfsError> {
        let file = fs::File::create(path).map_err(|source| InitramfsError::Write {
            path: path.to_owned(),
            source,
        })?;
        let file = self
            .write_to(io::BufWriter::new(file))
            .map_err(|e| match e {
                InitramfsError::Write { source, .. } => InitramfsError::Write {
                    path: path.to_owned(),
                    source,
                },
                other => other,
            })?;
        file.into_inner()
            .map_err(|e| InitramfsError::Write {
                path: path.to_owned(),
                source: e.into_error(),
            })?
            .sync_all()
            .map_err(|source| InitramfsError::Write {
                path: path.to_owned(),
                source,
            })
    }
}

/// Builds the standard guest archive at `out` from the agent binary at `agent` and the run's
/// config JSON.
pub fn build_agent_initramfs(
    agent: &Path,
    config_json: &[u8],
    out: &Path,
) -> Result<(), InitramfsError> {
    let bin = fs::read(agent).map_err(|source| InitramfsError::ReadInput {
        path: agent.to_owned(),
        source,
    })?;
    Initramfs::for_agent(bin, config_json.to_vec()).write_file(out)
}

/// Parses a newc archive back into entries (for tests and for checking what a run booted).
/// Stops at the trailer; at most `max_entries` entries are read.
pub fn read_archive<R: Read>(
    mut input: R,
    max_entries: usize,
) -> Result<Vec<Entry>, InitramfsError> {
    let mut out = Vec::new();
    loop {
        let mut reader = cpio::newc::Reader::new(input).map_err(InitramfsError::Malformed)?;
        let e = reader.entry();
        if e.is_trailer() {
            return Ok(out);
        }
        if out.len() >= max_entries {
            return Err(InitramfsError::Malformed(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("more than {max_entries} entries"),
            )));
        }
        let (name, mode) = (e.name().to_owned(), e.mode());
        let (rmaj, rmin, size) = (e.rdev_major(), e.rdev_minor(), e.file_size());
        let kind = match mode & 0o170_000 {
            S_IFDIR => EntryKind::Dir,
            S_IFCHR => EntryKind::CharDev(rmaj, rmin),
            S_IFREG => {
                let mut data = Vec::new();
                reader
                    .read_to_end(&mut data)
                    .map_err(InitramfsError::Malformed)?;
                if data.len() != size as usize {
                    return Err(InitramfsError::Malformed(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{name}: {} of {size} bytes", data.len()),
                    )));
                }
                EntryKind::File(data)
            }
            other => {
                return Err(InitramfsError::Malformed(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{name}: unsupported file type {other:o}"),
                )))
            }
        };
        out.push(Entry {
            name,
            perm: mode & 0o7777,
            kind,
        });
        input = reader.finish().map_err(InitramfsError::Malformed)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_agent_archive() {
        let agent = b"\x7fELF fake agent".to_vec();
        let cfg = br#"{"duration_s": 5}"#.to_vec();
        let bytes = Initramfs::for_agent(agent.clone(), cfg.clone())
            .write_to(Vec::new())
            .unwrap();
        assert_eq!(&bytes[..6], b"070701");
        assert_eq!(bytes.len() % 4, 0);
        let entries = read_archive(&bytes[..], 100).unwrap();
        let find = |n: &str| entries.iter().find(|e| e.name == n).unwrap().clone();
        let init = find("init");
        assert_eq!(init.perm, 0o755);
        assert_eq!(init.kind, EntryKind::File(agent));
        assert_eq!(find("pinlat/config.json").kind, EntryKind::File(cfg));
        assert_eq!(find("dev/console").kind, EntryKind::CharDev(5, 1));
        for d in ["dev", "proc", "sys", "pinlat", "tmp"] {
            assert_eq!(find(d).kind, EntryKind::Dir, "{d}");
        }
        // Parents come before children.
        let pos = |n: &str| entries.iter().position(|e| e.name == n).unwrap();
        assert!(pos("pinlat") < pos("pinlat/config.json"));
        assert!(pos("dev") < pos("dev/console"));
    }

    #[test]
    fn modules_go_to_lib_modules_in_load_order() {
        use crate::kernel::PlannedModule;
        let plan = LoadPlan {
            modules: ["virtio_ring", "virtio", "virtio_blk"]
                .iter()
                .map(|n| PlannedModule {
                    name: n.to_string(),
                    path: PathBuf::from(format!("/cache/{n}.ko")),
                    bytes: format!("\x7fELF {n}").into_bytes(),
                })
                .collect(),
            ..LoadPlan::default()
        };
        let plain = Initramfs::for_agent(b"agent".to_vec(), b"{}".to_vec());
        assert_eq!(
            plain.clone().with_modules(&LoadPlan::default()).entries(),
            plain.entries()
        );
        let bytes = plain.with_modules(&plan).write_to(Vec::new()).unwrap();
        let entries = read_archive(&bytes[..], 100).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let at = names.iter().position(|n| *n == "lib").unwrap();
        assert_eq!(
            names[at..],
            [
                "lib",
                "lib/modules",
                "lib/modules/virtio_ring.ko",
                "lib/modules/virtio.ko",
                "lib/modules/virtio_blk.ko"
            ]
        );
        assert_eq!(
            entries.last().unwrap().kind,
            EntryKind::File(b"\x7fELF virtio_blk".to_vec())
        );
        assert_eq!(entries.last().unwrap().perm, 0o644);
    }

    #[test]
    fn odd_sizes_are_padded() {
        for len in 0..9 {
            let a =
                Initramfs::new()
                    .file("f", 0o644, vec![b'x'; len])
                    .file("gg", 0o600, vec![1; 3]);
            let bytes = a.write_to(Vec::new()).unwrap();
            assert_eq!(bytes.len() % 4, 0);
            assert_eq!(read_archive(&bytes[..], 10).unwrap(), a.entries());
        }
    }

    #[test]
    fn file_roundtrip_and_missing_input() {
        let dir = tempfile::tempdir().unwrap();
        let agent = dir.path().join("agent");
        fs::write(&agent, b"binary").unwrap();
        let out = dir.path().join("initrd.cpio");
        build_agent_initramfs(&agent, b"{}", &out).unwrap();
        let entries = read_archive(fs::File::open(&out).unwrap(), 100).unwrap();
        assert!(entries
            .iter()
            .any(|e| e.kind == EntryKind::File(b"binary".to_vec())));
        let err = build_agent_initramfs(&dir.path().join("nope"), b"{}", &out).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    proptest::proptest! {
        /// Any set of files round-trips byte for byte.
        #[test]
        fn roundtrip_any_files(files in proptest::collection::vec(("[a-z]{1,12}", proptest::collection::vec(proptest::num::u8::ANY, 0..64), 0u32..0o7777), 0..8)) {
            let mut a = Initramfs::new();
            for (i, (name, data, perm)) in files.iter().enumerate() {
                a = a.file(&format!("{name}{i}"), *perm, data.clone());
            }
            let bytes = a.write_to(Vec::new()).unwrap();
            proptest::prop_assert_eq!(read_archive(&bytes[..], 100).unwrap(), a.entries());
        }

        #[test]
        fn reader_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = read_archive(&bytes[..], 10);
            let mut with_magic = b"070701".to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = read_archive(&with_magic[..], 10);
        }
    }

    #[test]
    fn garbage_is_malformed_not_panic() {
        assert!(read_archive(&b"not a cpio archive at all"[..], 10).is_err());
        assert!(read_archive(&b""[..], 10).is_err());
        let mut bytes = Initramfs::new()
            .file("a", 0o644, vec![7; 100])
            .write_to(Vec::new())
            .unwrap();
        bytes.truncate(150);
        assert!(read_archive(&bytes[..], 10).is_err());
    }
}
