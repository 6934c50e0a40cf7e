//! What can go wrong setting or restoring a host knob, each with the fix.

use std::io;
use std::path::PathBuf;

use pinlat::atomic_write::WriteError;
use pinlat::config::variant::HostKnob;
use pinlat::report::aggregate::error_chain;
use pinlat::schema::SchemaError;

/// A host knob could not be read, written or trusted.
#[derive(Debug, thiserror::Error)]
pub enum KnobError {
    /// The knob's file does not exist.
    #[error("{} does not exist: {fix}", path.display())]
    Missing {
        /// The knob.
        knob: HostKnob,
        /// Its file.
        path: PathBuf,
        /// What to do.
        fix: String,
    },
    /// The knob's file has no write permission for anyone: the kernel refuses a write even
    /// from root (kernfs), so this is known before writing.
    #[error("{} is read-only (mode {mode:04o}): {fix}", path.display())]
    ReadOnly {
        /// The knob.
        knob: HostKnob,
        /// Its file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// What to do.
        fix: String,
    },
    /// Reading the knob's file failed.
    #[error("Cannot read {}", path.display())]
    Read {
        /// The knob.
        knob: HostKnob,
        /// Its file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The kernel refused the write.
    #[error("{} refused {value:?}: {fix}", path.display())]
    Write {
        /// The knob.
        knob: HostKnob,
        /// Its file.
        path: PathBuf,
        /// The value written.
        value: String,
        /// What to do.
        fix: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The write succeeded but the file reads back another value.
    #[error("{} reads back {applied:?} after pinlat wrote {wanted:?}: the kernel changed the value, so the variant would not run as configured; use a value the kernel keeps", path.display())]
    Mismatch {
        /// The knob.
        knob: HostKnob,
        /// Its file.
        path: PathBuf,
        /// The value written.
        wanted: String,
        /// The value read back.
        applied: String,
    },
    /// A journal exists: another pinlat holds the knobs, or a crashed one left them changed.
    #[error(transparent)]
    Held(#[from] Held),
    /// The journal could not be written: nothing is changed without it.
    #[error("Cannot write the host-knobs journal (no knob is changed without it)")]
    Journal(#[source] WriteError),
    /// Restoring the knobs of the previous variant failed.
    #[error(transparent)]
    Restore(#[from] RestoreError),
}

impl KnobError {
    /// The knob concerned, when the error is about one.
    pub fn knob(&self) -> Option<HostKnob> {
        match self {
            KnobError::Missing { knob, .. }
            | KnobError::ReadOnly { knob, .. }
            | KnobError::Read { knob, .. }
            | KnobError::Write { knob, .. }
            | KnobError::Mismatch { knob, .. } => Some(*knob),
            KnobError::Held(_) | KnobError::Journal(_) | KnobError::Restore(_) => None,
        }
    }
}

/// Restoring journaled knobs failed for some; the journal is kept for `pinlat doctor
/// --restore`.
#[derive(Debug, thiserror::Error)]
#[error("{} of {total} host knobs could not be restored ({}); the journal {} is kept: fix the cause, then run pinlat doctor --restore", failed.len(), failed.iter().map(|e| error_chain(e)).collect::<Vec<_>>().join("; "), journal.display())]
pub struct RestoreError {
    /// The journal.
    pub journal: PathBuf,
    /// Knobs journaled.
    pub total: usize,
    /// Each knob that could not be restored.
    pub failed: Vec<KnobError>,
    /// Knobs restored, even so.
    pub restored: Vec<super::Restored>,
}

/// The journal exists, so pinlat leaves the knobs alone.
#[derive(Debug, thiserror::Error)]
pub enum Held {
    /// Its pinlat is running.
    #[error("pinlat {pid} is running with the host knobs of variant '{variant}' applied ({}): wait for it to end, or stop it with SIGINT (it restores them)", journal.display())]
    Running {
        /// The journal.
        journal: PathBuf,
        /// Its pinlat.
        pid: u32,
        /// The variant.
        variant: String,
    },
    /// Its pinlat is gone: the knobs are still changed.
    #[error("{} was left by pinlat {pid} (no longer running) with the host knobs of variant '{variant}' still changed: run pinlat doctor --restore first", journal.display())]
    Left {
        /// The journal.
        journal: PathBuf,
        /// Its pinlat.
        pid: u32,
        /// The variant.
        variant: String,
    },
    /// It cannot be read.
    #[error("A host-knobs journal exists but cannot be read: put the knobs it lists back by hand, then delete it")]
    Unreadable(#[source] SchemaError),
}

/// The fix when `knob`'s file is missing under a root where `kvm_loaded` says whether
/// `sys/module/kvm` exists and `advance_bool` whether KVM's `lapic_timer_advance` exists.
pub(super) fn missing_fix(knob: HostKnob, kvm_loaded: bool, advance_bool: bool) -> String {
    let key = knob.key();
    match knob {
        HostKnob::LapicTimerAdvanceNs if advance_bool => format!(
            "this kernel's KVM no longer has it (removed upstream in 2024: only the read-only \
             boolean kvm.lapic_timer_advance, adaptive advancement on or off at module load, is \
             left): remove host.{key} from the variant"
        ),
        HostKnob::HaltPollNs | HostKnob::LapicTimerAdvanceNs if !kvm_loaded => format!(
            "the kvm module is not loaded: modprobe kvm_intel (or kvm_amd), or remove host.{key} \
             from the variant"
        ),
        HostKnob::HaltPollNs | HostKnob::LapicTimerAdvanceNs => {
            format!("this kernel's kvm module has no {key}: remove host.{key} from the variant")
        }
        HostKnob::SchedRtRuntimeUs => format!(
            "/proc/sys is not mounted or this kernel has no RT throttling sysctl: remove \
             host.{key} from the variant"
        ),
    }
}

/// The fix when `knob`'s file has no write permission.
pub(super) fn read_only_fix(knob: HostKnob, value: &str) -> String {
    let key = knob.key();
    if knob.kvm_only() {
        format!(
            "this kernel does not let {key} change at runtime; set it when kvm loads \
             (`options kvm {key}={value}` in /etc/modprobe.d/pinlat.conf, then with no guest \
             running: modprobe -r kvm_intel kvm && modprobe kvm_intel) and remove host.{key} \
             from the variant"
        )
    } else {
        format!(
            "run pinlat as root on the host itself (not in a container whose /proc/sys is \
             read-only), or remove host.{key} from the variant"
        )
    }
}

/// The fix when the kernel refused writing `value` to `knob`'s file with `e`.
pub(super) fn write_fix(knob: HostKnob, value: &str, e: &io::Error) -> String {
    let key = knob.key();
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "writing {key} needs root (CAP_SYS_ADMIN): run pinlat as root, or remove host.{key} \
             from the variant"
        ),
        Some(libc::EROFS) => format!(
            "the file system is read-only (a container?): run pinlat on the host, or remove \
             host.{key} from the variant"
        ),
        Some(libc::EBUSY) if knob == HostKnob::SchedRtRuntimeUs => format!(
            "RT bandwidth already given to cgroups exceeds {value} µs: lower their \
             cpu.rt_runtime_us first, or choose a larger value"
        ),
        _ => match knob {
            HostKnob::SchedRtRuntimeUs => format!(
                "the value must be -1 or at most kernel.sched_rt_period_us; choose another \
                 host.{key}"
            ),
            HostKnob::HaltPollNs => {
                format!("halt_poll_ns is an unsigned 32-bit value; choose another host.{key}")
            }
            HostKnob::LapicTimerAdvanceNs => {
                format!("choose another host.{key} (-1 adaptive, or ns)")
            }
        },
    }
}
