//! SMI counts of the RT pCPUs: System Management Interrupts take a CPU away from the OS
//! entirely (no trace event sees them), so the only evidence is Intel's `MSR_SMI_COUNT`
//! (0x34, Nehalem and later), read through the `msr` driver's `/dev/cpu/N/msr` as
//! `turbostat` and `rdmsr` do: an 8-byte `pread` at the MSR's number.
//!
//! Where the device is missing (`msr` module not loaded, not x86), unreadable (not root) or the
//! MSR does not read (AMD, most hypervisors: EIO), the count is "not available", never 0.

use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use pinlat::trace::record::SmiCount;

/// `MSR_SMI_COUNT`: SMIs since reset in bits 31:0 (Intel SDM vol. 4, table 2-14).
pub const MSR_SMI_COUNT: u64 = 0x34;

/// Where `/dev` is: `/` on the live host, a fake tree in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsrRoot(PathBuf);

impl Default for MsrRoot {
    fn default() -> Self {
        MsrRoot(PathBuf::from("/"))
    }
}

impl MsrRoot {
    /// `/dev/cpu/N/msr` under `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        MsrRoot(root.into())
    }

    fn device(&self, cpu: u32) -> PathBuf {
        self.0.join(format!("dev/cpu/{cpu}/msr"))
    }

    /// The SMI count of `cpu` (bits 31:0 of the MSR), or why it cannot be read.
    pub fn read(&self, cpu: u32) -> Reading {
        read_msr(&self.device(cpu), MSR_SMI_COUNT).map(|v| v & 0xffff_ffff)
    }
}

/// One read of a pCPU's SMI count.
pub type Reading = Result<u64, MsrError>;

/// Why an MSR cannot be read. The message, cause included, is the sentence a run record keeps
/// as the count's `why`.
#[derive(Debug, thiserror::Error)]
pub enum MsrError {
    /// No `/dev/cpu/N/msr`.
    #[error("{} does not exist (load the msr module: modprobe msr)", dev.display())]
    NoDevice {
        /// The device.
        dev: PathBuf,
    },
    /// The device is there but this process may not read it.
    #[error("{} is not readable (run as root)", dev.display())]
    Denied {
        /// The device.
        dev: PathBuf,
    },
    /// The device could not be opened for another reason.
    #[error("{}: {error}", dev.display())]
    Open {
        /// The device.
        dev: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The read returned fewer than 8 bytes.
    #[error("{}: MSR {msr:#x} read {bytes} bytes, not 8", dev.display())]
    Short {
        /// The device.
        dev: PathBuf,
        /// The MSR's number.
        msr: u64,
        /// Bytes read.
        bytes: usize,
    },
    /// The CPU does not have the MSR (AMD, most hypervisors: EIO).
    #[error("{}: MSR {msr:#x} does not read on this CPU ({error})", dev.display())]
    NotOnThisCpu {
        /// The device.
        dev: PathBuf,
        /// The MSR's number.
        msr: u64,
        /// Why.
        error: io::Error,
    },
}

fn read_msr(dev: &Path, msr: u64) -> Reading {
    let dev = dev.to_path_buf();
    let f = std::fs::File::open(&dev).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound => MsrError::NoDevice { dev: dev.clone() },
        io::ErrorKind::PermissionDenied => MsrError::Denied { dev: dev.clone() },
        _ => MsrError::Open {
            dev: dev.clone(),
            error,
        },
    })?;
    let mut b = [0u8; 8];
    match f.read_at(&mut b, msr) {
        Ok(8) => Ok(u64::from_le_bytes(b)),
        Ok(bytes) => Err(MsrError::Short { dev, msr, bytes }),
        Err(error) => Err(MsrError::NotOnThisCpu { dev, msr, error }),
    }
}

/// The counts of `cpus` before a run: each a count or why not.
pub fn before(root: &MsrRoot, cpus: impl IntoIterator<Item = u32>) -> Vec<(u32, Reading)> {
    cpus.into_iter().map(|c| (c, root.read(c))).collect()
}

/// The record of each pCPU: counted only when both reads worked.
pub fn after(root: &MsrRoot, before: &[(u32, Reading)]) -> Vec<SmiCount> {
    before
        .iter()
        .map(|(cpu, b)| decide(*cpu, b, &root.read(*cpu)))
        .collect()
}

/// Counted when both reads gave a value, else not available with the first reason.
pub fn decide(cpu: u32, before: &Reading, after: &Reading) -> SmiCount {
    match (before, after) {
        (Ok(before), Ok(after)) => SmiCount::Counted {
            cpu,
            before: *before,
            after: *after,
        },
        (Err(why), _) | (_, Err(why)) => SmiCount::NotAvailable {
            cpu,
            why: why.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake `/dev/cpu/N/msr`: a file with `value` at offset 0x34.
    fn fake(root: &Path, cpu: u32, value: u64) {
        let d = root.join(format!("dev/cpu/{cpu}"));
        std::fs::create_dir_all(&d).unwrap();
        let mut bytes = vec![0u8; 0x34 + 8];
        bytes[0x34..].copy_from_slice(&value.to_le_bytes());
        std::fs::write(d.join("msr"), bytes).unwrap();
    }

    #[test]
    fn counted_where_the_msr_reads_not_available_elsewhere_never_zero() {
        let tmp = tempfile::tempdir().unwrap();
        let root = MsrRoot::at(tmp.path());
        fake(tmp.path(), 1, 0xdead_0000_0000_0007);
        let b = before(&root, [1, 2]);
        fake(tmp.path(), 1, 0xdead_0000_0000_0009);
        let a = after(&root, &b);
        assert_eq!(
            a[0],
            SmiCount::Counted {
                cpu: 1,
                before: 7,
                after: 9
            },
            "bits 31:0 only"
        );
        assert_eq!(a[0].delta(), Some(2));
        match &a[1] {
            SmiCount::NotAvailable { cpu: 2, why } => {
                assert!(why.contains("modprobe msr"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(a[1].delta(), None);
    }

    #[test]
    fn a_device_that_does_not_read_the_msr_is_not_available() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("dev/cpu/3");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("msr"), [0u8; 4]).unwrap();
        let s = decide(3, &MsrRoot::at(tmp.path()).read(3), &Ok(5));
        assert!(
            matches!(&s, SmiCount::NotAvailable { why, .. } if why.contains("read 0 bytes")),
            "{s:?}"
        );
        let gone = MsrError::NoDevice {
            dev: "/dev/cpu/3/msr".into(),
        };
        let s = decide(3, &Ok(5), &Err(gone));
        assert_eq!(s.delta(), None);
        assert!(
            matches!(&s, SmiCount::NotAvailable { why, .. } if why == "/dev/cpu/3/msr does not exist (load the msr module: modprobe msr)"),
            "{s:?}"
        );
    }
}
