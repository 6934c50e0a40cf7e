//! `busy-poll`: the oslat-like tight loop (rt-tests `src/oslat/oslat.c`).
//!
//! The loop reads the clock and records the gap since the previous read. A gap above the loop's
//! own cost is time the CPU was taken away. Unlike oslat's 1 µs buckets, every gap goes into the
//! HDR histogram at ns resolution. Nothing in the loop allocates, locks or makes a syscall (with
//! the TSC; with `CLOCK_MONOTONIC` the vDSO read may fall back to a syscall if the kernel's
//! clocksource has no vDSO support, and the result says which clock was used).

use anyhow::Result;
use pinlat::agentcfg::AgentConfig;

use crate::clock::{Clock, TickSource};
use crate::recorder::{Exchange, Recorded, Recorder};
use crate::thread::{run_on, ClockedLoop, Recording, StartGate};

/// Body of the measuring thread on `cpu`. `Ok(None)`: another thread failed to start.
pub fn run(
    cpu: u32,
    cfg: &AgentConfig,
    clock: Clock,
    gate: &StartGate,
    exchange: &Exchange,
) -> Result<Option<(u32, Recorded)>> {
    run_on(cpu, cfg.effective_priority(), gate, clock, || {
        BusyPoll(Recording::new(cfg, gate, exchange))
    })
}

/// The busy-poll loop of one CPU: preheat, then record for the run's duration.
struct BusyPoll<'a>(Recording<'a>);

impl ClockedLoop for BusyPoll<'_> {
    type Output = Recorded;

    fn run<T: TickSource>(self, src: T, clock: Clock) -> Result<Recorded> {
        self.0.preheat_then_measure(
            || src.now(),
            |ns| clock.to_ticks(ns),
            |rec, gate, _| {
                spin(src, clock, gate, rec);
                Ok(())
            },
        )
    }
}

/// The hot loop. Each gap is the difference of two reads converted to ns *from a common base*,
/// so the conversion's rounding telescopes away: the recorded gaps add up to the measured time
/// exactly. (Converting each gap on its own truncated ~0.5 ns per sample: 2.5 % of the time of
/// a 20 ns loop went missing from the histogram.)
#[inline(never)]
fn spin<T: TickSource>(src: T, clock: Clock, gate: &StartGate, rec: &mut Recorder<'_>) {
    let mut base = src.now();
    let mut prev = base;
    let mut prev_ns = 0;
    loop {
        let now = src.now();
        if now < prev {
            // The clock went backwards: not a sample; measure on from here.
            rec.backwards += 1;
            (base, prev, prev_ns) = (now, now, 0);
        } else {
            let ns = clock.to_ns(now - base);
            rec.record(ns - prev_ns, now);
            (prev, prev_ns) = (now, ns);
        }
        if now >= rec.next_deadline && (rec.rotate(now) || gate.aborted()) {
            return;
        }
    }
}
