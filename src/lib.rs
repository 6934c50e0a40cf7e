//! pinlat core library: the pure model (CPU lists, config, layouts, placement planning, exports)
//! and the formats shared by the host runner and the guest agent (wire frames, histograms,
//! the agent's run config).
//!
//! Everything here is testable without QEMU; the binaries in `host-runner/` and
//! `guest-agent/` are thin shells around it.
//!
//! The default feature `host` builds everything. The guest agent depends on this crate without
//! it and links only what it needs (no TOML, plotters or deflate): [`cpuset`], [`kinds`],
//! [`agentcfg`], the encoding half of [`wire`], [`histo`] (recording and plain V2 encoding),
//! [`duration`], [`sched`], [`prng`] and [`atomic_write`].

pub mod agentcfg;
pub mod atomic_write;
#[cfg(feature = "host")]
pub mod calibration;
#[cfg(feature = "host")]
pub mod config;
#[cfg(feature = "host")]
pub mod console;
pub mod cpuset;
pub mod duration;
#[cfg(feature = "host")]
pub mod export;
pub mod histo;
pub mod host;
pub mod kinds;
#[cfg(feature = "host")]
pub mod plan;
pub mod prng;
#[cfg(feature = "host")]
pub mod report;
#[cfg(feature = "host")]
pub mod result;
pub mod sched;
#[cfg(feature = "host")]
pub mod schema;
#[cfg(feature = "host")]
pub mod trace;
pub mod wire;
