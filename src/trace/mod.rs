//! Who took the RT pCPU (DESIGN.md, "Who took the pCPU"): the pure half of pinlat's tracer.
//!
//! The runner records scheduling, IRQ, IPI and (under KVM) exit events on the RT pCPUs in a
//! tracefs instance of its own with the `mono` clock; this module turns that text into an
//! account of every RT pCPU's measurement window and matches the guest's largest events to
//! host culprits. Nothing here touches the machine.
//!
//! - [`analyse`]: a run's trace read against its record (clock mapping, classes, windows);
//! - [`parse`]: tracefs text → typed events, malformed lines counted, lost events recorded;
//! - [`event`]: the typed events and their fields;
//! - [`mod@attribute`]: events → per pCPU, time ran / voluntarily idle / stolen by class;
//! - [`class`]: the culprit classes and the thread id → class map;
//! - [`account`]: the bookkeeping of stolen segments and intervals;
//! - [`matcher`]: guest events → overlapping host intervals, with the tolerance;
//! - [`table`]: the Markdown "who took the RT pCPUs" table;
//! - [`record`]: what a run keeps of its trace in its record.

pub mod account;
pub mod analyse;
pub mod attribute;
pub mod class;
pub mod event;
pub mod matcher;
pub mod parse;
pub mod record;
pub mod table;

pub use account::{ClassStats, Interval, NameStats, Part, Window};
pub use attribute::{attribute, CpuAttribution, Options, Planned};
pub use class::{Class, ClassMap};
pub use matcher::{match_events, Culprit, GuestEvent, GuestMatch};
pub use parse::{parse_trace, Event, EventKind, Trace, TraceParser};

#[cfg(test)]
mod fixture_tests;
