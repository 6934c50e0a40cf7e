//! The stall injector: a SCHED_FIFO thread pinned to the measured CPU, at a higher priority than
//! the agent's measuring thread, that sleeps to absolute `CLOCK_MONOTONIC` deadlines and spins
//! for a known length at each. While it spins the agent cannot run on that CPU, so the agent
//! must see a gap of that length ending when the spin ends.

use std::time::Duration;

use nix::sys::time::TimeSpec;
use nix::time::{clock_nanosleep, ClockId, ClockNanosleepFlags};
use pinlat::host::monotonic_ns;

pub use pinlat::calibration::Injection;

use super::CalibrateError;
use pinlat::sched;

/// One stall to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    /// When to start, `CLOCK_MONOTONIC` ns.
    pub at_ns: u64,
    /// How long to spin, ns.
    pub spin_ns: u64,
}

fn sleep_until(ns: u64) {
    let ts = TimeSpec::from_duration(Duration::from_nanos(ns));
    // EINTR: sleep again to the same absolute deadline.
    while let Err(nix::errno::Errno::EINTR) = clock_nanosleep(
        ClockId::CLOCK_MONOTONIC,
        ClockNanosleepFlags::TIMER_ABSTIME,
        &ts,
    ) {}
}

/// Starts the injector thread on `cpu` at SCHED_FIFO `priority`; it performs `plan` (sorted by
/// time) and returns what happened.
pub fn spawn(
    cpu: u32,
    priority: u32,
    plan: Vec<Planned>,
) -> std::io::Result<std::thread::JoinHandle<Result<Vec<Injection>, CalibrateError>>> {
    std::thread::Builder::new()
        .name(format!("inject-cpu{cpu}"))
        .spawn(move || {
            // Policy first, then the CPU: moved there as SCHED_OTHER, the thread would wait
            // behind the SCHED_FIFO agent until RT throttling let it run (~0.5 s, seen here).
            sched::set_fifo(0, priority).map_err(CalibrateError::Injector)?;
            sched::set_affinity(0, &[cpu]).map_err(CalibrateError::Injector)?;
            let mut done = Vec::with_capacity(plan.len());
            for p in plan {
                sleep_until(p.at_ns);
                let start_ns = monotonic_ns();
                let mut now = start_ns;
                while now - start_ns < p.spin_ns {
                    std::hint::spin_loop();
                    now = monotonic_ns();
                }
                done.push(Injection {
                    deadline_ns: p.at_ns,
                    start_ns,
                    end_ns: now,
                    spin_ns: p.spin_ns,
                });
            }
            Ok(done)
        })
}
