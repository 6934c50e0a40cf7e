//! Who took the RT pCPU (DESIGN.md, "Who took the pCPU"): the pure half of pinlat's tracer.
//!
//! The runner records scheduling, IRQ, IPI and (under KVM) exit events on the RT pCPUs in a
//! tracefs instance of its own with the `mono` clock; this module turns that text into typed
//! events. Nothing here touches the machine.
//!
//! - [`parse`]: tracefs text → typed events, malformed lines counted, lost events recorded;
//! - [`event`]: the typed events and their fields.

pub mod event;
pub mod parse;

pub use parse::{parse_trace, Event, EventKind, Trace, TraceParser};
