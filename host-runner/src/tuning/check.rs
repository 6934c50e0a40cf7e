//! Before the first run: no journal left over, and every host knob of every variant accepted
//! by this host's kernel.
//!
//! Only the kernel can say whether it accepts a value (`sched_rt_runtime_us` above the period,
//! `halt_poll_ns` beyond 32 bits, RT bandwidth given to cgroups, a kernel that clamps), so
//! each variant's knobs are tried once: journaled, written, read back and restored, microseconds
//! before any run guest starts. A knob that is missing, read-only, refused or not kept is a
//! config error naming `variants[i].host.<key>`, the file and the fix.
//!
//! `pinlat run` calls this after the accelerator is settled, where KVM-only knobs under TCG
//! are refused first ([`pinlat::config::variant::Variant::kvm_only`]): under TCG a variant
//! never gets here with `halt_poll_ns` or `lapic_timer_advance_ns`.

use pinlat::config::variant::Variant;
use pinlat::report::aggregate::error_chain;

use super::{Held, HostTuner, KnobError};
use crate::doctor::SysRoot;

/// A variant's host knob cannot be used on this host.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// The knob cannot be set (exit 2: the config asks what this host cannot do).
    #[error("variants[{index}].host.{key} cannot be set on this host")]
    Knob {
        /// Index of the variant in the config.
        index: usize,
        /// The knob's key.
        key: &'static str,
        /// Why.
        #[source]
        source: KnobError,
    },
    /// A journal exists (exit 2).
    #[error(transparent)]
    Held(#[from] Held),
    /// The journal could not be written, or the trial's restore failed (exit 3).
    #[error("Trying the host knobs of variants[{index}]")]
    Infra {
        /// Index of the variant in the config.
        index: usize,
        /// Why.
        #[source]
        source: KnobError,
    },
}

/// Refuses to go on while a host-knobs journal exists under `root`: another pinlat holds the
/// knobs, or a crashed one left them changed (fix: `pinlat doctor --restore`).
pub fn refuse_leftover(root: &SysRoot) -> Result<(), Held> {
    match super::recover::read(root) {
        None => Ok(()),
        Some(Err(e)) => Err(Held::Unreadable(e)),
        Some(Ok(j)) => Err(super::recover::held_by(root, &j)),
    }
}

/// Tries each variant's host knobs once on `root` and puts them back (see the module
/// documentation). Variants without host knobs touch nothing.
pub fn preflight(root: &SysRoot, variants: &[Variant]) -> Result<(), PreflightError> {
    refuse_leftover(root)?;
    for (index, v) in variants.iter().enumerate() {
        if v.host.set().is_empty() {
            continue;
        }
        let mut tuner = HostTuner::new(root.clone());
        let outcome = tuner.apply(v);
        let restored = tuner.restore();
        let applied = match outcome {
            Ok(a) => a,
            Err(KnobError::Held(h)) => return Err(h.into()),
            Err(source) => {
                if let Err(e) = &restored {
                    eprintln!("pinlat: error: {}", error_chain(e));
                }
                return Err(match source.knob() {
                    Some(k) => PreflightError::Knob {
                        index,
                        key: k.key(),
                        source,
                    },
                    None => PreflightError::Infra { index, source },
                });
            }
        };
        restored.map_err(|e| PreflightError::Infra {
            index,
            source: e.into(),
        })?;
        if let Some(a) = applied.iter().find(|a| !a.took()) {
            return Err(PreflightError::Knob {
                index,
                key: a.knob.key(),
                source: KnobError::Mismatch {
                    knob: a.knob,
                    path: root.path(a.knob.path()),
                    wanted: a.wanted.clone(),
                    applied: a.applied.clone(),
                },
            });
        }
    }
    Ok(())
}
