//! A run's trace read against what the run knows: which thread is which (the pinner's QEMU
//! threads, read back from `/proc` as [`ObservedThread`]s), when each guest measured (its
//! results' window on the guest's clock, mapped to the host's), and the guest's largest events.
//! The runner records; this module decides, without touching the machine.
//!
//! **Clock mapping.** The agent's times are the guest's `CLOCK_MONOTONIC`; the trace's are the
//! host's (`mono`). Every frame the agent sends says when (in guest time) it was sent or what
//! it covers, and the runner notes when (host time) it read it: host arrival − guest time is the
//! clock offset plus that frame's delay, so the smallest over all frames (the hello and every
//! interval) is the offset plus the shortest delay (NTP's minimum-delay filter). The runner
//! reads the channel every 20 ms and a frame takes a while to cross the emulated UART (a
//! few-KiB hello arrived 40 ms after it was stamped on this loaded 2-CPU machine), so the
//! fastest frame is late by up to [`MAX_FRAME_DELAY_NS`] (or the frames' spread, median −
//! fastest, when larger): the mapped time is centred in that bound, and its half is the frames'
//! uncertainty.
//!
//! **Alignment.** That is too coarse to tell which of two culprits 10 ms apart took the pCPU, so
//! the mapping is then refined against the trace, as one shift for the whole run: within the
//! frames' uncertainty, the shift that puts the guest's largest events (busy-poll gaps,
//! timer wake-ups) over the host's stolen intervals of the same length ([`align`]). One shift
//! must line up every event at once, so a single event proves nothing; the record says how
//! many events the shift explains, and the report states the method. When no shift explains an
//! event, the frames' mapping stands with its uncertainty. One shift is one offset for the whole
//! run, but the guest's clock can wander against the host's within it (±0.6 ms seen under TCG
//! on a loaded 2-CPU host): the aligned mapping claims at least the largest [`residual`] the
//! shift leaves on the guest's large events, never just the trace's resolution.
//!
//! Under KVM the exact mapping (the vCPU's TSC offset and scaling from KVM's debugfs, as
//! `trace-cmd attach` does) is not implemented; the same mapping is used and says so.

use std::collections::BTreeMap;

use super::account::{Interval, Window};
use super::attribute::{attribute, Options, Planned};
use super::class::{Class, ClassMap};
use super::matcher::{match_events, GuestEvent};
use super::parse::{EventKind, Trace};
use super::record::{
    Aligned, ClockMapping, EventMatch, GuestTrace, PcpuTrace, Strip, MAX_CULPRITS,
    MAX_MATCHED_EVENTS, MAX_STRIP_INTERVALS,
};
use crate::kinds::Accel;
use crate::result::{GuestRun, ObservedThread, ThreadRole};

/// How late the fastest agent frame may be read after the guest time it carries, ns: the
/// runner's 20 ms read period plus the frame's trip through the emulated UART and the guest's
/// reporter (40 ms seen for a hello under load), with room.
pub const MAX_FRAME_DELAY_NS: u64 = 200_000_000;
/// Events read before and after a window so the state at its edges is known, ns.
pub const EDGE_NS: u64 = 1_000_000_000;
/// A strip shows this many times the event's length on each side (at least [`STRIP_MIN_NS`]).
const STRIP_SIDES: u64 = 2;
/// Shortest stretch shown on each side of an event, ns.
const STRIP_MIN_NS: u64 = 10_000_000;

/// What the runner noted of one guest while it ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestNotes {
    /// Host `CLOCK_MONOTONIC` when the hello was read, ns.
    pub hello_arrival_ns: Option<u64>,
    /// Per interval frame: (vCPU, end offset ns from the measurement's start, host ns when read).
    pub interval_arrivals: Vec<(u32, u64, u64)>,
    /// Every QEMU thread seen during the run (periodic read-backs), beyond the record's.
    pub threads: Vec<ObservedThread>,
}

/// The guest→host clock mapping of one guest, when it sent a hello with its clock.
pub fn mapping(run: &GuestRun, notes: &GuestNotes, accel: Accel) -> Option<ClockMapping> {
    let mut samples: Vec<i64> = Vec::new();
    if let (Some(sent), Some(arrived)) = (
        run.hello.as_ref().and_then(|h| h.sent_mono_ns),
        notes.hello_arrival_ns,
    ) {
        samples.push(arrived as i64 - sent as i64);
    }
    for &(cpu, end_offset, arrived) in &notes.interval_arrivals {
        if let Some(start) = run
            .results
            .iter()
            .find(|r| r.cpu == cpu)
            .and_then(|r| r.start_mono_ns)
        {
            samples.push(arrived as i64 - (start + end_offset) as i64);
        }
    }
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let min = samples[0];
    let median = samples[samples.len() / 2];
    let spread = (median - min).max(0) as u64;
    let bound = MAX_FRAME_DELAY_NS.max(spread);
    let half = bound / 2;
    let frames = samples.len() as u32;
    let base = format!(
        "guest CLOCK_MONOTONIC mapped through the fastest of {frames} agent frame(s) (hello and intervals, read up to {} ms after they were stamped; their delays spread over {:.1} ms), known to ±{:.1} ms",
        bound / 1_000_000,
        spread as f64 / 1e6,
        half as f64 / 1e6
    );
    let note = match accel {
        Accel::Tcg => format!("TCG: {base}"),
        Accel::Kvm => format!("KVM: the exact mapping from the vCPU's TSC offset and scaling in KVM's debugfs (as trace-cmd attach does) is not implemented; {base}"),
    };
    Some(ClockMapping {
        method: "frames".into(),
        offset_ns: min - half as i64,
        uncertainty_ns: half,
        frames,
        delay_min_ns: min,
        delay_median_ns: median,
        note,
        aligned: None,
    })
}

/// How far an aligned mapping may be off, ns: the trace's µs text, the guest's TSC-to-ns
/// conversion and the few µs between a host switch and the guest's next clock read.
pub const ALIGNED_UNCERTAINTY_NS: u64 = 200_000;
/// Two lengths agree when they differ by at most this fraction of the guest's (or 2 × the
/// aligned uncertainty, whichever is larger).
const LENGTH_AGREEMENT: f64 = 0.1;

/// The shift (ns, added to guest-mapped times) within `±max_shift_ns` that lays the guest's
/// events `(mapped end, length)` over `intervals` best: the candidates are the shifts that make
/// an event's end coincide with the end of an interval of nearly its length; the winner is the
/// one under which the events overlap stolen time the most (ties: the smallest shift). Returns
/// the shift and how many events it lines up with an interval of their length, or `None` when
/// no candidate lines up any.
pub fn align(
    events: &[(u64, u64)],
    intervals: &[Interval],
    max_shift_ns: u64,
) -> Option<(i64, usize)> {
    let agree = |len: u64, iv: &Interval| {
        let tol = ((len as f64 * LENGTH_AGREEMENT) as u64).max(2 * ALIGNED_UNCERTAINTY_NS);
        iv.len_ns().abs_diff(len) <= tol
    };
    let mut candidates: Vec<i64> = Vec::new();
    for &(end, len) in events {
        let lo = end.saturating_sub(max_shift_ns);
        let hi = end.saturating_add(max_shift_ns);
        let first = intervals.partition_point(|i| i.end_ns < lo);
        for iv in intervals[first..].iter().take_while(|i| i.end_ns <= hi) {
            if agree(len, iv) {
                candidates.push(iv.end_ns as i64 - end as i64);
            }
        }
    }
    let score = |shift: i64| {
        let mut overlap = 0u64;
        let mut lined_up = 0usize;
        for &(end, len) in events {
            let e1 = (end as i64 + shift).max(0) as u64;
            let e0 = e1.saturating_sub(len);
            let first = intervals.partition_point(|i| i.end_ns <= e0);
            let mut hit = false;
            for iv in intervals[first..].iter().take_while(|i| i.start_ns < e1) {
                overlap += iv.end_ns.min(e1).saturating_sub(iv.start_ns.max(e0));
                hit |= agree(len, iv) && iv.end_ns.abs_diff(e1) <= 2 * ALIGNED_UNCERTAINTY_NS;
            }
            lined_up += usize::from(hit);
        }
        (overlap, lined_up)
    };
    candidates
        .into_iter()
        .map(|s| (s, score(s)))
        .filter(|(_, (_, n))| *n > 0)
        .max_by(|a, b| {
            (a.1 .0, std::cmp::Reverse(a.0.unsigned_abs()))
                .cmp(&(b.1 .0, std::cmp::Reverse(b.0.unsigned_abs())))
        })
        .map(|(s, (_, n))| (s, n))
}

/// Events shorter than this do not count in [`residual`], ns: for them many stolen intervals
/// agree in length, so the nearest would be a guess.
pub const RESIDUAL_MIN_EVENT_NS: u64 = 5 * ALIGNED_UNCERTAINTY_NS;

/// How far the guest's clock still wanders from the host's once `shift` is applied: over the
/// guest's events of at least [`RESIDUAL_MIN_EVENT_NS`] that have exactly one stolen interval
/// of their length ending within `±max_shift_ns` of their shifted end, the largest distance
/// between the two ends (ns), and how many events that was. `None` when no event qualifies.
/// One shift is one offset for the whole run; a guest clock that drifts or steps against the
/// host's within it shows here, and the mapping must not claim less.
pub fn residual(
    events: &[(u64, u64)],
    intervals: &[Interval],
    shift: i64,
    max_shift_ns: u64,
) -> Option<(u64, usize)> {
    let agree = |len: u64, iv: &Interval| {
        let tol = ((len as f64 * LENGTH_AGREEMENT) as u64).max(2 * ALIGNED_UNCERTAINTY_NS);
        iv.len_ns().abs_diff(len) <= tol
    };
    let mut worst: Option<(u64, usize)> = None;
    for &(end, len) in events.iter().filter(|e| e.1 >= RESIDUAL_MIN_EVENT_NS) {
        let e1 = (end as i64 + shift).max(0) as u64;
        let (lo, hi) = (
            e1.saturating_sub(max_shift_ns),
            e1.saturating_add(max_shift_ns),
        );
        let first = intervals.partition_point(|i| i.end_ns < lo);
        let mut near = intervals[first..]
            .iter()
            .take_while(|i| i.end_ns <= hi)
            .filter(|iv| agree(len, iv));
        if let (Some(iv), None) = (near.next(), near.next()) {
            let d = iv.end_ns.abs_diff(e1);
            worst = Some(worst.map_or((d, 1), |(w, n)| (w.max(d), n + 1)));
        }
    }
    worst
}

/// Guest `CLOCK_MONOTONIC` ns → host ns.
fn to_host(m: &ClockMapping, guest_ns: u64) -> u64 {
    (guest_ns as i128 + m.offset_ns as i128).max(0) as u64
}

/// The guest's measurement window on the host's clock: from the earliest start to the latest
/// end of its results.
pub fn window(run: &GuestRun, m: &ClockMapping) -> Option<Window> {
    let start = run.results.iter().filter_map(|r| r.start_mono_ns).min()?;
    let end = run.results.iter().filter_map(|r| r.end_mono_ns).max()?;
    (end > start).then(|| Window {
        start_ns: to_host(m, start),
        end_ns: to_host(m, end),
    })
}

/// The class of a QEMU thread of guest `owner` seen from guest `me`'s RT pCPUs.
fn qemu_class(t: &ObservedThread, qemu_pid: Option<i32>, own: bool) -> Class {
    match &t.role {
        ThreadRole::Vcpu { .. } if own => Class::Vcpu,
        ThreadRole::Vcpu { .. } => Class::ForeignVcpu,
        ThreadRole::Iothread { .. } => Class::Iothread,
        ThreadRole::Emulator => {
            if Some(t.tid) == qemu_pid {
                Class::Emulator
            } else if t.comm == "worker" {
                Class::Worker
            } else if t.comm.starts_with("live_migration") || t.comm.starts_with("mig/") {
                Class::Migration
            } else {
                Class::Emulator
            }
        }
    }
}

/// Thread id → class for guest `me`: every QEMU thread of every guest of the run (its own
/// vCPUs as vCPUs, the others' as foreign), then, for threads the read-backs missed, QEMU's
/// thread-pool workers by the comm the trace shows (`worker`: short-lived, they may come and
/// go between two read-backs).
pub fn class_map(guests: &[(&GuestRun, &GuestNotes)], me: usize, trace: &Trace) -> ClassMap {
    let mut m = ClassMap::new();
    for (i, (run, notes)) in guests.iter().enumerate() {
        let threads = run
            .observed_start
            .iter()
            .chain(&run.observed_end)
            .chain(&notes.threads);
        for t in threads {
            if let Ok(tid) = u32::try_from(t.tid) {
                m.insert(tid, qemu_class(t, run.qemu_pid, i == me));
            }
        }
    }
    for e in &trace.events {
        let mut see = |pid: u32, comm: &str| {
            if pid != 0 && comm == "worker" && m.get(pid).is_none() {
                m.insert(pid, Class::Worker);
            }
        };
        see(e.pid, &e.comm);
        if let EventKind::Switch(s) = &e.kind {
            see(s.next_pid, &s.next_comm);
        }
    }
    m
}

/// The largest events of `vcpu` as (host end, length), mapped with `m`.
fn top_events(run: &GuestRun, vcpu: u32, m: &ClockMapping) -> Vec<(u64, u64)> {
    run.results
        .iter()
        .filter(|r| r.cpu == vcpu)
        .filter_map(|r| Some((r.start_mono_ns?, &r.top)))
        .flat_map(|(start, top)| {
            top.iter()
                .take(MAX_MATCHED_EVENTS)
                .map(move |t| (to_host(m, start + t.offset_ns), t.latency_ns))
        })
        .collect()
}

/// The RT vCPUs of a guest pinned to one pCPU each: (vCPU, pCPU, host tid), and a note for each
/// that is not.
fn planned(run: &GuestRun) -> (Vec<(u32, Planned)>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for v in run.planned.vcpus.iter().filter(|v| v.realtime) {
        let tid = run
            .observed_start
            .iter()
            .chain(&run.observed_end)
            .find(|t| t.role == ThreadRole::Vcpu { vcpu: v.vcpu })
            .and_then(|t| u32::try_from(t.tid).ok());
        match (v.cpus.iter().collect::<Vec<_>>().as_slice(), tid) {
            ([cpu], Some(tid)) => out.push((v.vcpu, Planned { cpu: *cpu, tid })),
            ([_], None) => notes.push(format!(
                "RT vCPU {}: its host thread was never read back: not attributed",
                v.vcpu
            )),
            _ => notes.push(format!(
                "RT vCPU {} may run on pCPUs {}: only a vCPU pinned to one pCPU is attributed",
                v.vcpu, v.cpus
            )),
        }
    }
    (out, notes)
}

/// Attributes the window of every RT pCPU of every guest, matches each RT vCPU's largest events
/// to the stolen intervals of its pCPU and keeps the stretch around the largest one.
/// `guests` and `mappings` are in config order; `trace` holds (at least) the events of every
/// window with [`EDGE_NS`] on each side.
pub fn analyse(
    trace: &Trace,
    guests: &[(&GuestRun, &GuestNotes)],
    mappings: &[Option<ClockMapping>],
    opts: &Options,
) -> Vec<GuestTrace> {
    let resolution = trace.stats.resolution_ns.max(1);
    guests
        .iter()
        .enumerate()
        .map(|(i, (run, _))| {
            let mut gt = GuestTrace {
                guest: run.guest.clone(),
                mapping: mappings.get(i).cloned().flatten(),
                ..Default::default()
            };
            let (pinned, notes) = planned(run);
            gt.notes = notes;
            let Some(m) = gt.mapping.clone() else {
                gt.notes
                    .push("no clock mapping (no hello with its clock): not attributed".into());
                return gt;
            };
            let Some(w) = window(run, &m) else {
                gt.notes
                    .push("no measurement window (no final result): not attributed".into());
                return gt;
            };
            gt.window = Some(w);
            if pinned.is_empty() {
                return gt;
            }
            let classes = class_map(guests, i, trace);
            let plan: Vec<Planned> = pinned.iter().map(|(_, p)| *p).collect();
            let attrs = attribute(trace, &plan, &classes, w, opts);
            // One shift for the guest: every RT vCPU's largest events against its pCPU.
            let mut shift_events = 0usize;
            let mut candidates: Vec<(i64, usize)> = Vec::new();
            let mut per_vcpu: Vec<Vec<(u64, u64)>> = Vec::new();
            for ((vcpu, _), a) in pinned.iter().zip(&attrs) {
                let evs = top_events(run, *vcpu, &m);
                if let Some(c) = align(&evs, &a.intervals, m.uncertainty_ns) {
                    candidates.push(c);
                }
                shift_events += evs.len();
                per_vcpu.push(evs);
            }
            let mut m = m;
            if let Some(&(shift, n)) = candidates.iter().max_by_key(|c| c.1) {
                let frames_uncertainty = m.uncertainty_ns;
                // What one shift leaves unexplained, over every RT vCPU of the guest.
                let residual = per_vcpu
                    .iter()
                    .zip(&attrs)
                    .filter_map(|(evs, a)| residual(evs, &a.intervals, shift, frames_uncertainty))
                    .reduce(|a, b| (a.0.max(b.0), a.1 + b.1));
                let uncertainty = residual
                    .map_or(0, |r| r.0)
                    .clamp(ALIGNED_UNCERTAINTY_NS, frames_uncertainty.max(ALIGNED_UNCERTAINTY_NS));
                m.offset_ns += shift;
                m.aligned = Some(Aligned {
                    shift_ns: shift,
                    events: shift_events as u32,
                    lined_up: n as u32,
                    frames_uncertainty_ns: frames_uncertainty,
                    residual_ns: residual.map(|r| r.0),
                    residual_events: residual.map_or(0, |r| r.1 as u32),
                });
                m.uncertainty_ns = uncertainty;
                let why = match residual {
                    Some((r, k)) if r > ALIGNED_UNCERTAINTY_NS => format!(
                        "the largest residual of {k} large event(s) after the shift, {:.2} ms: the guest's clock wandered against the host's within the run",
                        r as f64 / 1e6
                    ),
                    _ => "the trace's and the guest clock's resolution".to_string(),
                };
                m.note = format!(
                    "{}; refined by one shift of {:+.3} ms (searched ±{:.1} ms) that lines {n} of the guest's {shift_events} largest events up with host stolen intervals of their length, to ±{:.2} ms ({why})",
                    m.note,
                    shift as f64 / 1e6,
                    frames_uncertainty as f64 / 1e6,
                    uncertainty as f64 / 1e6
                );
                gt.mapping = Some(m.clone());
            }
            for ((vcpu, p), mut a) in pinned.into_iter().zip(attrs) {
                let intervals = std::mem::take(&mut a.intervals);
                let mut events: Vec<(u64, u64)> = Vec::new();
                for r in run.results.iter().filter(|r| r.cpu == vcpu) {
                    let Some(start) = r.start_mono_ns else {
                        continue;
                    };
                    for t in r.top.iter().take(MAX_MATCHED_EVENTS) {
                        events.push((t.offset_ns, t.latency_ns));
                        let ev = GuestEvent {
                            end_ns: to_host(&m, start + t.offset_ns),
                            length_ns: t.latency_ns,
                            uncertainty_ns: m.uncertainty_ns,
                        };
                        let mut host = match_events(&intervals, &[ev], resolution).remove(0);
                        host.culprits.truncate(MAX_CULPRITS);
                        gt.matches.push(EventMatch {
                            vcpu,
                            pcpu: p.cpu,
                            offset_ns: t.offset_ns,
                            latency_ns: t.latency_ns,
                            host,
                        });
                    }
                }
                let largest = run
                    .results
                    .iter()
                    .filter(|r| r.cpu == vcpu)
                    .filter_map(|r| Some((r.start_mono_ns?, r.top.first()?)))
                    .max_by_key(|(_, t)| t.latency_ns);
                let strip = largest.map(|(start, t)| {
                    let end = to_host(&m, start + t.offset_ns);
                    let begin = end.saturating_sub(t.latency_ns);
                    let side = (t.latency_ns * STRIP_SIDES).max(STRIP_MIN_NS) + m.uncertainty_ns;
                    strip(
                        &intervals,
                        begin.saturating_sub(side),
                        end + side,
                        (begin, end),
                    )
                });
                a.intervals = strip
                    .as_ref()
                    .map(|s| s.intervals.clone())
                    .unwrap_or_default();
                gt.pcpus.push(PcpuTrace {
                    vcpu,
                    attribution: a,
                    strip,
                });
            }
            gt
        })
        .collect()
}

/// The intervals overlapping `[from, to)`; when there are more than [`MAX_STRIP_INTERVALS`],
/// the longest of them, in time order.
fn strip(intervals: &[Interval], from: u64, to: u64, event: (u64, u64)) -> Strip {
    let mut v: Vec<Interval> = intervals
        .iter()
        .filter(|i| i.end_ns > from && i.start_ns < to)
        .cloned()
        .collect();
    if v.len() > MAX_STRIP_INTERVALS {
        v.sort_by_key(|i| std::cmp::Reverse(i.len_ns()));
        v.truncate(MAX_STRIP_INTERVALS);
        v.sort_by_key(|i| i.start_ns);
    }
    Strip {
        from_ns: from,
        to_ns: to,
        event_ns: event,
        intervals: v,
    }
}

/// The host span `[lo, hi)` whose events [`analyse`] needs: every window widened by
/// [`EDGE_NS`]; `None` when no guest has a window.
pub fn span(windows: impl IntoIterator<Item = Window>) -> Option<(u64, u64)> {
    windows.into_iter().fold(None, |acc, w| {
        let (lo, hi) = (w.start_ns.saturating_sub(EDGE_NS), w.end_ns + EDGE_NS);
        Some(match acc {
            None => (lo, hi),
            Some((a, b)) => (a.min(lo), b.max(hi)),
        })
    })
}

/// Stolen time per class summed over a run's RT pCPUs, for a one-line summary: (class, ns).
pub fn stolen_by_class(t: &[GuestTrace]) -> Vec<(Class, u64)> {
    let mut m: BTreeMap<Class, u64> = BTreeMap::new();
    for g in t {
        for p in &g.pcpus {
            for c in &p.attribution.by_class {
                *m.entry(c.class).or_default() += c.total_ns;
            }
        }
    }
    let mut v: Vec<(Class, u64)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

#[cfg(test)]
#[path = "analyse_tests.rs"]
mod tests;
