//! The life of a measuring thread around its loop, written once for every workload: put it on
//! its CPU and policy, verified — never measure on the wrong CPU — then allocate, wait for the
//! other threads, run the loop on the chosen clock, and check it is still on its CPU.
//!
//! Order as in cloud-hypervisor's vCPU threads (`vmm/src/cpu.rs`): affinity first, then the
//! scheduling policy, then the start barrier. `mlockall` is process-wide and done once before any
//! thread is spawned (see `run.rs`), so thread stacks are locked as they are created. The
//! syscalls themselves are `pinlat::sched`'s, shared with the host runner.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;

use anyhow::{Context, Result};
use pinlat::agentcfg::AgentConfig;
use pinlat::sched;
use pinlat::wire::ClockSource;

use crate::clock::{Clock, Mono, TickSource, Tsc};
use crate::recorder::{Exchange, Recorded, Recorder};

/// Stack size of measuring and load threads, bytes (small: stacks are locked by `mlockall`).
pub const STACK_BYTES: usize = 256 << 10;
/// Stack size of the reporter, bytes. The agent as shipped encodes plain V2, but a build with
/// `pinlat/host` unified in (the agent's tests, a workspace build) encodes V2 deflate, whose
/// encoder keeps several hundred KiB of state on the stack in unoptimised builds.
pub const REPORTER_STACK_BYTES: usize = 1 << 20;

/// A measurement loop, monomorphised for the clock it reads so the hot loop has no branch on
/// the clock's kind.
pub trait ClockedLoop {
    /// What the loop hands back when it ends.
    type Output;
    /// Run the loop reading `src`, whose ticks `clock` converts to ns.
    fn run<T: TickSource>(self, src: T, clock: Clock) -> Result<Self::Output>;
}

/// What a recording loop holds: the run's config, the start gate (a loop ends when another
/// thread failed) and its recorder, and the two phases every workload records in.
pub struct Recording<'a> {
    /// The run's config.
    pub cfg: &'a AgentConfig,
    /// The start gate.
    pub gate: &'a StartGate,
    /// Where the loop records.
    pub rec: Recorder<'a>,
}

impl<'a> Recording<'a> {
    /// A recording for `cfg` whose intervals go to the reporter through `exchange`.
    pub fn new(cfg: &'a AgentConfig, gate: &'a StartGate, exchange: &'a Exchange) -> Self {
        Recording {
            cfg,
            gate,
            rec: Recorder::new(exchange, cfg.top_n),
        }
    }

    /// Runs `phase` twice: through the preheat (`preheat_ms`, nothing kept), then from a
    /// fresh start for `duration_ms` in intervals of `report_interval_ms`. `now` reads the
    /// loop's clock, `to_ticks` converts ns into its units; `phase` is given the recorder, the
    /// gate and the time its phase began.
    pub fn preheat_then_measure(
        mut self,
        now: impl Fn() -> u64,
        to_ticks: impl Fn(u64) -> u64,
        mut phase: impl FnMut(&mut Recorder<'a>, &StartGate, u64) -> Result<()>,
    ) -> Result<Recorded> {
        let (cfg, gate, rec) = (self.cfg, self.gate, &mut self.rec);
        let start = now();
        rec.preheat(start + to_ticks(cfg.preheat_ms * 1_000_000));
        phase(rec, gate, start)?;
        let start = now();
        rec.start(
            start,
            to_ticks(cfg.duration_ms * 1_000_000),
            to_ticks(cfg.report_interval_ms * 1_000_000),
        );
        phase(rec, gate, start)?;
        Ok(self.rec.finish())
    }
}

/// Runs one measuring thread on `cpu`: place it (affinity to exactly `cpu`, verified, then
/// SCHED_FIFO at `priority`, or SCHED_OTHER for `None`), `prepare` its loop (after placement,
/// so the loop's memory is allocated by the CPU that uses it), pass the start `gate`, run the
/// loop on `clock`'s source, and check the thread is still on `cpu`.
///
/// `Ok(None)`: another thread failed to start, nothing was measured. `Ok(Some((cpu, out)))`:
/// the CPU the thread observed itself on at the end, and the loop's output.
pub fn run_on<L: ClockedLoop>(
    cpu: u32,
    priority: Option<u8>,
    gate: &StartGate,
    clock: Clock,
    prepare: impl FnOnce() -> L,
) -> Result<Option<(u32, L::Output)>> {
    let placed = place(cpu, priority);
    let measuring = prepare();
    if !gate.pass(placed)? {
        return Ok(None);
    }
    let out = match clock.info.source {
        ClockSource::Tsc => measuring.run(Tsc, clock)?,
        ClockSource::Monotonic => measuring.run(Mono, clock)?,
    };
    sched::check_on(cpu)?;
    Ok(Some((cpu, out)))
}

/// Affinity to exactly `cpu` (verified: the mask and the CPU running), then the policy.
fn place(cpu: u32, priority: Option<u8>) -> Result<()> {
    sched::pin_current_to(cpu)
        .with_context(|| format!("Cannot pin the thread to CPU {cpu} (is it online?)"))?;
    if let Some(p) = priority {
        sched::set_current_fifo(u32::from(p)).with_context(|| {
            format!("Cannot set SCHED_FIFO priority {p} (needs root or CAP_SYS_NICE)")
        })?;
    }
    Ok(())
}

/// Start gate for measuring threads: all threads set up, then all start — or none does.
#[derive(Debug)]
pub struct StartGate {
    barrier: Barrier,
    failed: AtomicBool,
}

impl StartGate {
    /// A gate for `n` threads.
    pub fn new(n: usize) -> Self {
        StartGate {
            barrier: Barrier::new(n),
            failed: AtomicBool::new(false),
        }
    }

    /// Wait for every thread with this thread's setup result. Returns `Err` if this setup failed,
    /// or `Ok(false)` if another thread's did (then return without measuring).
    pub fn pass(&self, setup: Result<()>) -> Result<bool> {
        if setup.is_err() {
            self.failed.store(true, Ordering::SeqCst);
        }
        self.barrier.wait();
        setup?;
        Ok(!self.failed.load(Ordering::SeqCst))
    }

    /// Stop the others at the next check (a thread failed after the start).
    pub fn abort(&self) {
        self.failed.store(true, Ordering::SeqCst);
    }

    /// Has any thread failed?
    pub fn aborted(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the ticks it saw; fails when told to.
    struct Probe(bool);

    impl ClockedLoop for Probe {
        type Output = u32;
        fn run<T: TickSource>(self, src: T, _: Clock) -> Result<u32> {
            anyhow::ensure!(self.0, "loop failed");
            assert!(src.now() > 0);
            sched::current_cpu().map_err(Into::into)
        }
    }

    fn last_cpu() -> u32 {
        std::thread::available_parallelism().map_or(1, |n| n.get()) as u32 - 1
    }

    #[test]
    fn runs_the_loop_on_its_cpu_and_reports_it() {
        let cpu = last_cpu();
        let gate = StartGate::new(1);
        let clock = Clock::monotonic(false);
        let out = std::thread::scope(|s| {
            s.spawn(|| run_on(cpu, None, &gate, clock, || Probe(true)))
                .join()
                .unwrap()
        });
        assert_eq!(out.unwrap(), Some((cpu, cpu)));
    }

    #[test]
    fn a_failed_placement_stops_every_thread_at_the_gate() {
        let gate = StartGate::new(2);
        let clock = Clock::monotonic(false);
        let (bad, good) = std::thread::scope(|s| {
            let bad = s.spawn(|| run_on(100_000, None, &gate, clock, || Probe(true)));
            let good = s.spawn(|| run_on(last_cpu(), None, &gate, clock, || Probe(true)));
            (bad.join().unwrap(), good.join().unwrap())
        });
        let e = bad.unwrap_err();
        assert!(
            format!("{e:#}").contains("Cannot pin the thread to CPU 100000"),
            "{e:#}"
        );
        assert!(good.unwrap().is_none(), "the other thread must not measure");
        let failed = std::thread::scope(|s| {
            s.spawn(|| run_on(last_cpu(), None, &StartGate::new(1), clock, || Probe(false)))
                .join()
                .unwrap()
        });
        assert!(failed.is_err());
    }
}
