//! `timer`: the cyclictest-like wake-up latency (rt-tests `src/cyclictest/cyclictest.c`).
//!
//! A SCHED_FIFO thread sleeps with `clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)` to absolute
//! deadlines `interval` apart; latency = `CLOCK_MONOTONIC` after waking − the deadline, in ns.
//! Like cyclictest, a wake-up later than the next deadline skips the missed periods (counted in
//! `missed_periods`) instead of firing them back to back.

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::time::{clock_nanosleep, ClockId, ClockNanosleepFlags};
use pinlat::agentcfg::AgentConfig;

use crate::clock::{mono_ns, Clock, TickSource};
use crate::recorder::{Exchange, Recorded, Recorder};
use crate::thread::{run_on, ClockedLoop, Recording, StartGate};

/// Body of the timer thread on `cpu`. `Ok(None)`: another thread failed to start.
pub fn run(
    cpu: u32,
    cfg: &AgentConfig,
    gate: &StartGate,
    exchange: &Exchange,
) -> Result<Option<(u32, Recorded)>> {
    // The timer sleeps to CLOCK_MONOTONIC deadlines, so it always reads that clock.
    let clock = Clock::monotonic(false);
    run_on(cpu, cfg.effective_priority(), gate, clock, || {
        Timer(Recording::new(cfg, gate, exchange))
    })
}

/// The timer loop of one CPU: preheat, then record for the run's duration.
struct Timer<'a>(Recording<'a>);

impl ClockedLoop for Timer<'_> {
    type Output = Recorded;

    /// [`run`] hands this `CLOCK_MONOTONIC`; the loop reads it with [`mono_ns`] directly, as
    /// its deadlines are in that clock whatever the source: its ticks are ns.
    fn run<T: TickSource>(self, _: T, _: Clock) -> Result<Recorded> {
        let interval_ns = self.0.cfg.timer_interval_us * 1_000;
        self.0.preheat_then_measure(
            mono_ns,
            |ns| ns,
            |rec, gate, start| {
                let mut next = start + interval_ns;
                sleep_loop(rec, &mut next, interval_ns, gate)
            },
        )
    }
}

fn sleep_loop(
    rec: &mut Recorder<'_>,
    next: &mut u64,
    interval_ns: u64,
    gate: &StartGate,
) -> Result<()> {
    loop {
        let deadline = TimeSpec::new(
            (*next / 1_000_000_000) as libc::time_t,
            (*next % 1_000_000_000) as libc::c_long,
        );
        match clock_nanosleep(
            ClockId::CLOCK_MONOTONIC,
            ClockNanosleepFlags::TIMER_ABSTIME,
            &deadline,
        ) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e).context("clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)"),
        }
        let now = mono_ns();
        if now < *next {
            // Woken before the deadline (a signal): not a sample; sleep again to the same one.
            if now >= rec.next_deadline && (rec.rotate(now) || gate.aborted()) {
                return Ok(());
            }
            continue;
        }
        rec.record(now - *next, now);
        *next += interval_ns;
        while *next <= now {
            *next += interval_ns;
            rec.missed_periods += 1;
        }
        if now >= rec.next_deadline && (rec.rotate(now) || gate.aborted()) {
            return Ok(());
        }
    }
}
