//! Recording samples inside a measurement loop without allocating, locking or doing I/O.
//!
//! A measuring thread owns a [`Recorder`]: the active interval's preallocated histogram, the
//! exact min/max, a fixed top-N array, and the next interval deadline in clock ticks. When the
//! deadline passes it swaps the active [`IntervalData`] with the spare one the reporter thread
//! handed back through an [`Exchange`] (two `AtomicPtr`s, no lock), and publishes the full one.
//! The reporter merges it into the whole-run histogram, sends it, resets it and hands it back.
//! If the spare is not back yet the interval simply goes on until the next deadline (its true
//! start and end are reported), so a slow reporter never stalls the loop.

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use hdrhistogram::Histogram;
use pinlat::histo::new_histogram;

/// Samples below this many ns are counted in a flat array ([`IntervalData::small`]) and folded
/// into the histogram by the reporter. The histogram (1 ns lowest discernible value, 3
/// significant digits) holds every value below 2048 in a bucket of its own, so the fold gives it
/// exactly the counts direct recording would; what it saves is the histogram's index arithmetic
/// and bookkeeping in the busy-poll loop, whose gaps are a few tens of ns (measured: lfence;
/// rdtsc made the loop 0.93× oslat's rate with direct recording).
pub const SMALL_NS: usize = 2048;

/// One interval's samples.
#[derive(Debug)]
pub struct IntervalData {
    /// Samples, ns (those below [`SMALL_NS`] once [`IntervalData::fold`] ran).
    pub hist: Histogram<u64>,
    /// Count of samples of each ns value below [`SMALL_NS`] not yet folded into `hist`.
    small: Box<[u64]>,
    /// Samples the histogram refused (above its range).
    pub overflow: u64,
    /// 0-based interval number.
    pub index: u64,
    /// Start, clock ticks.
    pub start_ticks: u64,
    /// End, clock ticks (set when the interval is handed over).
    pub end_ticks: u64,
}

impl IntervalData {
    /// An empty interval with a preallocated histogram.
    pub fn new() -> Self {
        IntervalData {
            hist: new_histogram(),
            small: vec![0; SMALL_NS].into_boxed_slice(),
            overflow: 0,
            index: 0,
            start_ticks: 0,
            end_ticks: 0,
        }
    }

    /// Samples, overflow included.
    #[cfg(test)]
    pub fn samples(&self) -> u64 {
        self.hist.len() + self.small.iter().sum::<u64>() + self.overflow
    }

    /// Moves the small samples' counts into `hist` (the reporter's side: a few µs that the
    /// measuring loop must not spend). Idempotent.
    pub fn fold(&mut self) {
        for (v, c) in self.small.iter_mut().enumerate() {
            if *c > 0 {
                // Below the histogram's highest trackable value: cannot fail.
                let _ = self.hist.record_n(v as u64, *c);
                *c = 0;
            }
        }
    }

    /// Empty it for reuse (no allocation).
    pub fn reset(&mut self) {
        self.hist.reset();
        self.small.fill(0);
        self.overflow = 0;
    }
}

/// Hand-over between one measuring thread and the reporter.
///
/// Invariant: each of the two boxed [`IntervalData`] is owned by exactly one party at a time —
/// the measuring thread (active), `full` (published, not yet taken), the reporter (processing),
/// or `empty` (returned, not yet taken).
#[derive(Debug)]
pub struct Exchange {
    full: AtomicPtr<IntervalData>,
    empty: AtomicPtr<IntervalData>,
    /// Start of the measurement, ticks (set by the measuring thread when the preheat ends).
    pub start_ticks: AtomicU64,
}

impl Exchange {
    /// An exchange holding one spare interval.
    pub fn new() -> Self {
        Exchange {
            full: AtomicPtr::new(ptr::null_mut()),
            empty: AtomicPtr::new(Box::into_raw(Box::new(IntervalData::new()))),
            start_ticks: AtomicU64::new(0),
        }
    }

    /// Reporter side: take the published interval, if any.
    pub fn take_full(&self) -> Option<Box<IntervalData>> {
        let p = self.full.swap(ptr::null_mut(), Ordering::Acquire);
        // SAFETY: a non-null `full` was made by `Box::into_raw` in `publish`; the swap made this
        // caller its only owner.
        (!p.is_null()).then(|| unsafe { Box::from_raw(p) })
    }

    /// Reporter side: hand an emptied interval back.
    pub fn give_empty(&self, d: Box<IntervalData>) {
        let old = self.empty.swap(Box::into_raw(d), Ordering::Release);
        if !old.is_null() {
            // SAFETY: `old` came from `Box::into_raw` and the swap removed it from the exchange,
            // so nobody else holds it. (Only reachable if a caller returns more than it took.)
            drop(unsafe { Box::from_raw(old) });
        }
    }

    fn take_empty(&self) -> Option<Box<IntervalData>> {
        let p = self.empty.swap(ptr::null_mut(), Ordering::Acquire);
        // SAFETY: a non-null `empty` was made by `Box::into_raw` in `new`/`give_empty`; the swap
        // made this caller its only owner.
        (!p.is_null()).then(|| unsafe { Box::from_raw(p) })
    }

    fn publish(&self, d: Box<IntervalData>) {
        let old = self.full.swap(Box::into_raw(d), Ordering::Release);
        debug_assert!(old.is_null(), "full published twice");
        if !old.is_null() {
            // SAFETY: as in `give_empty`; unreachable while the ownership invariant holds.
            drop(unsafe { Box::from_raw(old) });
        }
    }
}

impl Default for Exchange {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        drop(self.take_full());
        drop(self.take_empty());
    }
}

/// What a measuring thread hands back when it ends.
#[derive(Debug)]
pub struct Recorded {
    /// The last, partial interval (not published).
    pub last: Box<IntervalData>,
    /// Exact smallest sample, ns (u64::MAX if none).
    pub min_ns: u64,
    /// Exact largest sample, ns.
    pub max_ns: u64,
    /// Largest samples as (ns, ticks when recorded), largest first.
    pub top: Vec<(u64, u64)>,
    /// Clock went backwards this many times.
    pub backwards: u64,
    /// Timer periods skipped.
    pub missed_periods: u64,
    /// Start of the measurement, ticks.
    pub start_ticks: u64,
    /// When recording stopped, ticks.
    pub stop_ticks: u64,
    /// Interval boundaries at which the spare was not back yet.
    pub late_handoffs: u64,
}

/// The in-loop recorder. Everything is preallocated in [`Recorder::new`].
#[derive(Debug)]
pub struct Recorder<'a> {
    exchange: &'a Exchange,
    active: Box<IntervalData>,
    /// Next time [`Recorder::rotate`] must run, ticks.
    pub next_deadline: u64,
    interval_ticks: u64,
    end_ticks: u64,
    start_ticks: u64,
    min_ns: u64,
    max_ns: u64,
    /// Samples above this may enter the top-N.
    threshold: u64,
    top: Box<[(u64, u64)]>,
    top_len: usize,
    /// Clock went backwards.
    pub backwards: u64,
    /// Timer periods skipped.
    pub missed_periods: u64,
    late_handoffs: u64,
}

impl<'a> Recorder<'a> {
    /// A recorder keeping `top_n` largest events, publishing through `exchange`.
    pub fn new(exchange: &'a Exchange, top_n: usize) -> Self {
        Recorder {
            exchange,
            active: Box::new(IntervalData::new()),
            next_deadline: u64::MAX,
            interval_ticks: u64::MAX,
            end_ticks: u64::MAX,
            start_ticks: 0,
            min_ns: u64::MAX,
            max_ns: 0,
            threshold: 0,
            top: vec![(0, 0); top_n].into_boxed_slice(),
            top_len: 0,
            backwards: 0,
            missed_periods: 0,
            late_handoffs: 0,
        }
    }

    /// Preheat recording: `rotate` fires at `until` and ends the preheat.
    pub fn preheat(&mut self, until: u64) {
        self.next_deadline = until;
        self.end_ticks = until;
    }

    /// Forget everything recorded so far and start measuring at `now` for `duration_ticks`,
    /// with intervals of `interval_ticks`.
    pub fn start(&mut self, now: u64, duration_ticks: u64, interval_ticks: u64) {
        self.active.reset();
        self.active.index = 0;
        self.active.start_ticks = now;
        self.start_ticks = now;
        self.exchange.start_ticks.store(now, Ordering::Release);
        self.interval_ticks = interval_ticks.max(1);
        self.end_ticks = now.saturating_add(duration_ticks);
        self.next_deadline = now.saturating_add(self.interval_ticks).min(self.end_ticks);
        self.min_ns = u64::MAX;
        self.max_ns = 0;
        self.threshold = 0;
        self.top_len = 0;
        self.backwards = 0;
        self.missed_periods = 0;
        self.late_handoffs = 0;
    }

    /// Record one sample of `ns` taken at `at_ticks`.
    #[inline(always)]
    pub fn record(&mut self, ns: u64, at_ticks: u64) {
        if let Some(c) = self.active.small.get_mut(ns as usize) {
            *c += 1;
        } else if self.active.hist.record(ns).is_err() {
            self.active.overflow += 1;
        }
        if ns < self.min_ns {
            self.min_ns = ns;
        }
        if ns > self.threshold {
            self.note_large(ns, at_ticks);
        }
    }

    #[cold]
    #[inline(never)]
    fn note_large(&mut self, ns: u64, at: u64) {
        if ns > self.max_ns {
            self.max_ns = ns;
        }
        let cap = self.top.len();
        if cap > 0 {
            // Insertion into a small array sorted largest first.
            let mut i = if self.top_len < cap {
                self.top_len += 1;
                self.top_len - 1
            } else {
                cap - 1
            };
            while i > 0 && self.top[i - 1].0 < ns {
                self.top[i] = self.top[i - 1];
                i -= 1;
            }
            self.top[i] = (ns, at);
        }
        self.threshold = if cap == 0 {
            self.max_ns
        } else if self.top_len < cap {
            0
        } else {
            self.top[cap - 1].0
        };
    }

    /// Call when `now >= next_deadline`: hand over the interval. Returns true when the
    /// measurement (or the preheat) is over.
    #[cold]
    #[inline(never)]
    pub fn rotate(&mut self, now: u64) -> bool {
        if now >= self.end_ticks {
            self.active.end_ticks = now;
            return true;
        }
        if let Some(mut spare) = self.exchange.take_empty() {
            spare.index = self.active.index + 1;
            spare.start_ticks = now;
            self.active.end_ticks = now;
            let full = std::mem::replace(&mut self.active, spare);
            self.exchange.publish(full);
        } else {
            self.late_handoffs += 1;
        }
        while self.next_deadline <= now {
            self.next_deadline = self.next_deadline.saturating_add(self.interval_ticks);
        }
        self.next_deadline = self.next_deadline.min(self.end_ticks);
        false
    }

    /// End of the measurement: everything not yet published.
    pub fn finish(self) -> Recorded {
        Recorded {
            stop_ticks: self.active.end_ticks,
            last: self.active,
            min_ns: self.min_ns,
            max_ns: self.max_ns,
            top: self.top[..self.top_len].to_vec(),
            backwards: self.backwards,
            missed_periods: self.missed_periods,
            start_ticks: self.start_ticks,
            late_handoffs: self.late_handoffs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_min_max_top_and_overflow_exactly() {
        let ex = Exchange::new();
        let mut r = Recorder::new(&ex, 3);
        r.start(0, 1_000, 1_000);
        for (i, v) in [5u64, 1, 9, 7, 3, 200_000_000_000, 8].iter().enumerate() {
            r.record(*v, i as u64);
        }
        assert!(r.rotate(1_000));
        let out = r.finish();
        assert_eq!(out.min_ns, 1);
        assert_eq!(out.max_ns, 200_000_000_000);
        assert_eq!(out.top, vec![(200_000_000_000, 5), (9, 2), (8, 6)]);
        assert_eq!(out.last.overflow, 1);
        assert_eq!(out.last.samples(), 7);
    }

    #[test]
    fn intervals_are_handed_over_and_late_spares_extend_the_interval() {
        let ex = Exchange::new();
        let mut r = Recorder::new(&ex, 0);
        r.start(100, 1_000, 100);
        r.record(1, 110);
        assert!(!r.rotate(200));
        let first = ex.take_full().expect("first interval published");
        assert_eq!(
            (first.index, first.start_ticks, first.end_ticks),
            (0, 100, 200)
        );
        assert_eq!(first.samples(), 1);
        // Spare not given back: the interval continues.
        r.record(2, 250);
        assert!(!r.rotate(300));
        assert!(ex.take_full().is_none());
        ex.give_empty(first);
        r.record(3, 350);
        assert!(!r.rotate(400));
        let second = ex.take_full().unwrap();
        assert_eq!(
            (second.index, second.start_ticks, second.end_ticks),
            (1, 200, 400)
        );
        assert_eq!(second.samples(), 2);
        assert!(r.rotate(1_100));
        let out = r.finish();
        assert_eq!(out.late_handoffs, 1);
        assert_eq!(out.max_ns, 3);
    }

    #[test]
    fn folding_the_small_counts_gives_the_histogram_direct_recording_would() {
        let ex = Exchange::new();
        let mut r = Recorder::new(&ex, 0);
        r.start(0, 1_000, 1_000);
        let mut direct = new_histogram();
        for i in 0..20_000u64 {
            // Every small value, the edges of the flat array, and large ones.
            let v = (i * 7919) % 6_000;
            r.record(v, i);
            direct.record(v).unwrap();
        }
        assert!(r.rotate(1_000));
        let mut out = r.finish();
        assert_eq!(out.last.samples(), 20_000);
        out.last.fold();
        out.last.fold();
        assert_eq!(out.last.hist, direct);
        assert_eq!(out.last.samples(), 20_000);
    }
}
