//! pinlat's tracer on the host: a tracefs instance of its own on the RT pCPUs, and its removal
//! on every path (drop, signal, crashed run), and the RT pCPUs' SMI counts. The trace text is
//! read by `pinlat::trace`; a run's tracer is `crate::engine::tracer`.

pub mod cleanup;
pub mod instance;
pub mod smi;

pub use instance::{Instance, InstanceConfig, TraceError, Tracefs};
