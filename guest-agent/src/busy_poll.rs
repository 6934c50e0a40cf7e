//! `busy-poll`: the oslat-like tight loop (rt-tests `src/oslat/oslat.c`).
//!
//! The loop reads the clock and records the gap since the previous read. A gap above the loop's
//! own cost is time the CPU was taken away. Unlike oslat's 1 µs buckets, every gap goes into the
//! HDR histogram at ns resolution. Nothing in the loop allocates, locks or makes a syscall (with
//! the TSC; with `CLOCK_MONOTONIC` the vDSO read may fall back to a syscall if the kernel's
//! clocksource has no vDSO support, and the result says which clock was used).

use anyhow::Result;
use pinlat::agentcfg::AgentConfig;
use pinlat::wire::ClockSource;

use crate::clock::{Clock, Mono, TickSource, Tsc};
use crate::recorder::{Exchange, Recorded, Recorder};
use crate::thread::{check_on, current_cpu, place, StartGate};

/// Body of the measuring thread on `cpu`. `Ok(None)`: another thread failed to start.
pub fn run(
    cpu: u32,
    cfg: &AgentConfig,
    clock: Clock,
    gate: &StartGate,
    exchange: &Exchange,
) -> Result<Option<(u32, Recorded)>> {
    let setup = place(cpu, cfg.effective_priority());
    let mut rec = Recorder::new(exchange, cfg.top_n);
    if !gate.pass(setup)? {
        return Ok(None);
    }
    match clock.info.source {
        ClockSource::Tsc => measure(Tsc, clock, cfg, gate, &mut rec),
        ClockSource::Monotonic => measure(Mono, clock, cfg, gate, &mut rec),
    }
    check_on(cpu)?;
    Ok(Some((current_cpu()?, rec.finish())))
}

fn measure<T: TickSource>(
    src: T,
    clock: Clock,
    cfg: &AgentConfig,
    gate: &StartGate,
    rec: &mut Recorder<'_>,
) {
    let now = src.now();
    rec.preheat(now + clock.to_ticks(cfg.preheat_ms * 1_000_000));
    spin(src, clock, gate, rec);
    let now = src.now();
    rec.start(
        now,
        clock.to_ticks(cfg.duration_ms * 1_000_000),
        clock.to_ticks(cfg.report_interval_ms * 1_000_000),
    );
    spin(src, clock, gate, rec);
}

/// The hot loop.
#[inline(never)]
fn spin<T: TickSource>(src: T, clock: Clock, gate: &StartGate, rec: &mut Recorder<'_>) {
    let mut prev = src.now();
    loop {
        let now = src.now();
        let gap = now.wrapping_sub(prev);
        prev = now;
        if gap > i64::MAX as u64 {
            rec.backwards += 1;
        } else {
            rec.record(clock.to_ns(gap), now);
        }
        if now >= rec.next_deadline && (rec.rotate(now) || gate.aborted()) {
            return;
        }
    }
}
