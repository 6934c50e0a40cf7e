//! pinlat core library: the pure model (CPU lists, config, layouts, placement planning, exports)
//! and the formats shared by the host runner and the guest agent (wire frames, histograms,
//! the agent's run config).
//!
//! Everything here is testable without QEMU; the binaries in `host-runner/` and
//! `guest-agent/` are thin shells around it.

pub mod agentcfg;
pub mod atomic_write;
pub mod calibration;
pub mod config;
pub mod cpuset;
pub mod export;
pub mod histo;
pub mod host;
pub mod plan;
pub mod report;
pub mod result;
pub mod trace;
pub mod wire;
