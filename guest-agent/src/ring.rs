//! `ring`: one-way latency through a lock-free single-producer/single-consumer ring, as a DPDK
//! `rte_ring` pipeline between two cores would see it.
//!
//! The producer, on its own CPU, sends on a fixed schedule, one message every `ring_period_ns`
//! (spinning, never sleeping), each stamped with its *planned* send time; the consumer, on
//! another CPU, polls the ring and records now − stamp. A stall of either vCPU shows up as
//! latency: a stalled consumer leaves messages waiting, a stalled producer sends the messages it
//! owed late, and each carries the time it was due (the coordinated-omission correction of
//! HdrHistogram and wrk2; stamping the actual send time would hide producer stalls). This is
//! the thread's point that a slow vCPU slows its partners. With the TSC both CPUs must share a synchronised TSC (the kernel checks
//! this at boot); a negative difference is counted as `backwards`, never recorded.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use anyhow::Result;
use pinlat::agentcfg::AgentConfig;

use crate::clock::{Clock, TickSource};
use crate::recorder::{Exchange, Recorded, Recorder};
use crate::thread::{run_on, ClockedLoop, Recording, StartGate};

/// Slots in the ring (a power of two).
pub const RING_SLOTS: usize = 1024;

#[repr(align(64))]
#[derive(Debug, Default)]
struct CacheLine<T>(T);

/// Lock-free SPSC ring of u64 timestamps (Lamport's queue with acquire/release indices).
#[derive(Debug)]
pub struct Spsc {
    head: CacheLine<AtomicUsize>,
    tail: CacheLine<AtomicUsize>,
    slots: Box<[AtomicU64]>,
}

impl Default for Spsc {
    fn default() -> Self {
        Self::new()
    }
}

impl Spsc {
    /// An empty ring of [`RING_SLOTS`].
    pub fn new() -> Self {
        Spsc {
            head: CacheLine::default(),
            tail: CacheLine::default(),
            slots: (0..RING_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Producer only: push `v`; false when full.
    #[inline(always)]
    pub fn push(&self, v: u64) -> bool {
        let h = self.head.0.load(Ordering::Relaxed);
        let t = self.tail.0.load(Ordering::Acquire);
        if h.wrapping_sub(t) == RING_SLOTS {
            return false;
        }
        self.slots[h % RING_SLOTS].store(v, Ordering::Relaxed);
        self.head.0.store(h.wrapping_add(1), Ordering::Release);
        true
    }

    /// Consumer only: pop the oldest value.
    #[inline(always)]
    pub fn pop(&self) -> Option<u64> {
        let t = self.tail.0.load(Ordering::Relaxed);
        let h = self.head.0.load(Ordering::Acquire);
        if t == h {
            return None;
        }
        let v = self.slots[t % RING_SLOTS].load(Ordering::Relaxed);
        self.tail.0.store(t.wrapping_add(1), Ordering::Release);
        Some(v)
    }
}

/// What the producer and the consumer share: the ring, and the flag that ends the producer.
#[derive(Debug, Default)]
pub struct Pipe {
    ring: Spsc,
    stop: AtomicBool,
}

impl Pipe {
    /// An empty ring, the producer not stopped.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ends the producer at its next check.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Body of the producer thread on `cpu`; returns when the pipe is stopped.
pub fn produce(
    cpu: u32,
    cfg: &AgentConfig,
    clock: Clock,
    gate: &StartGate,
    pipe: &Pipe,
) -> Result<Option<u32>> {
    let out = run_on(cpu, cfg.effective_priority(), gate, clock, || Producer {
        period_ns: cfg.ring_period_ns,
        ring: &pipe.ring,
        stop: &pipe.stop,
    })?;
    Ok(out.map(|(cpu, ())| cpu))
}

/// The producer's loop: send on schedule until stopped.
struct Producer<'a> {
    period_ns: u64,
    ring: &'a Spsc,
    stop: &'a AtomicBool,
}

impl ClockedLoop for Producer<'_> {
    type Output = ();

    fn run<T: TickSource>(self, src: T, clock: Clock) -> Result<()> {
        let period = clock.to_ticks(self.period_ns).max(1);
        produce_loop(src, period, self.ring, self.stop);
        Ok(())
    }
}

#[inline(never)]
fn produce_loop<T: TickSource>(src: T, period: u64, ring: &Spsc, stop: &AtomicBool) {
    // The schedule never slips: after a stall the owed messages go out back to back, each
    // stamped with the time it was due.
    let mut next = src.now();
    while !stop.load(Ordering::Relaxed) {
        if src.now() < next {
            std::hint::spin_loop();
            continue;
        }
        while !ring.push(next) {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::hint::spin_loop();
        }
        next += period;
    }
}

/// Body of the consumer thread on `cpu`; stops the pipe when done, failed, or not started, so
/// the producer always ends.
pub fn consume(
    cpu: u32,
    cfg: &AgentConfig,
    clock: Clock,
    gate: &StartGate,
    pipe: &Pipe,
    exchange: &Exchange,
) -> Result<Option<(u32, Recorded)>> {
    let out = run_on(cpu, cfg.effective_priority(), gate, clock, || Consumer {
        recording: Recording::new(cfg, gate, exchange),
        pipe,
    });
    pipe.stop();
    out
}

/// The consumer's loop: preheat, then record each message's one-way latency.
struct Consumer<'a> {
    recording: Recording<'a>,
    pipe: &'a Pipe,
}

impl ClockedLoop for Consumer<'_> {
    type Output = Recorded;

    fn run<T: TickSource>(self, src: T, clock: Clock) -> Result<Recorded> {
        let ring = &self.pipe.ring;
        let recorded = self.recording.preheat_then_measure(
            || src.now(),
            |ns| clock.to_ticks(ns),
            |rec, gate, _| {
                consume_loop(src, clock, gate, ring, rec);
                Ok(())
            },
        );
        // The producer may stop now: the last messages would not be recorded.
        self.pipe.stop();
        recorded
    }
}

#[inline(never)]
fn consume_loop<T: TickSource>(
    src: T,
    clock: Clock,
    gate: &StartGate,
    ring: &Spsc,
    rec: &mut Recorder<'_>,
) {
    loop {
        let msg = ring.pop();
        let now = src.now();
        if let Some(stamp) = msg {
            let d = now.wrapping_sub(stamp);
            if d > i64::MAX as u64 {
                rec.backwards += 1;
            } else {
                rec.record(clock.to_ns(d), now);
            }
        }
        if now >= rec.next_deadline && (rec.rotate(now) || gate.aborted()) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spsc_is_fifo_and_bounded() {
        let r = Spsc::new();
        assert_eq!(r.pop(), None);
        for i in 0..RING_SLOTS as u64 {
            assert!(r.push(i));
        }
        assert!(!r.push(99));
        for i in 0..RING_SLOTS as u64 {
            assert_eq!(r.pop(), Some(i));
        }
        assert_eq!(r.pop(), None);
    }

    #[test]
    fn spsc_across_threads_keeps_order() {
        let r = Spsc::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 1..=100_000u64 {
                    while !r.push(i) {
                        std::hint::spin_loop();
                    }
                }
            });
            let mut want = 1;
            while want <= 100_000 {
                if let Some(v) = r.pop() {
                    assert_eq!(v, want);
                    want += 1;
                }
            }
        });
    }
}
