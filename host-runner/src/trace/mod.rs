//! pinlat's tracer on the host: a tracefs instance of its own on the RT pCPUs, and its removal
//! on every path (drop, signal, crashed run). The trace text is read by `pinlat::trace`.

pub mod cleanup;
pub mod instance;

pub use instance::{Instance, InstanceConfig, TraceError, Tracefs};
