//! Putting a measuring thread on its CPU and policy, verified — never measure on the wrong CPU.
//!
//! Order as in cloud-hypervisor's vCPU threads (`vmm/src/cpu.rs`): affinity first, then the
//! scheduling policy, then the start barrier. `mlockall` is process-wide and done once before any
//! thread is spawned (see `run.rs`), so thread stacks are locked as they are created.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;

use anyhow::{bail, Context, Result};
use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// Stack size of measuring and load threads, bytes (small: stacks are locked by `mlockall`).
pub const STACK_BYTES: usize = 256 << 10;
/// Stack size of the reporter, bytes: the deflate encoder of the histogram export keeps
/// several hundred KiB of state, on the stack in unoptimised builds.
pub const REPORTER_STACK_BYTES: usize = 1 << 20;

/// Pin the calling thread to exactly `cpu` and check it is running there.
pub fn pin_to(cpu: u32) -> Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu as usize)
        .with_context(|| format!("CPU {cpu} is beyond the affinity mask size"))?;
    sched_setaffinity(Pid::from_raw(0), &set)
        .with_context(|| format!("Cannot pin thread to CPU {cpu} (is it online?)"))?;
    let got = sched_getaffinity(Pid::from_raw(0)).context("sched_getaffinity")?;
    for c in 0..CpuSet::count() {
        if got.is_set(c).unwrap_or(false) != (c == cpu as usize) {
            bail!("Affinity of the thread pinned to CPU {cpu} also allows CPU {c}");
        }
    }
    check_on(cpu)
}

/// Pin the calling thread to any CPU of `cpus` (no check of which one it runs on).
pub fn pin_to_any(cpus: &[u32]) -> Result<()> {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c as usize)
            .with_context(|| format!("CPU {c} is beyond the affinity mask size"))?;
    }
    sched_setaffinity(Pid::from_raw(0), &set)
        .with_context(|| format!("Cannot pin thread to CPUs {cpus:?}"))
}

/// Error unless the calling thread is running on `cpu` now.
pub fn check_on(cpu: u32) -> Result<()> {
    let on = sched_getcpu().context("sched_getcpu")?;
    if on != cpu as usize {
        bail!("Thread pinned to CPU {cpu} is running on CPU {on}");
    }
    Ok(())
}

/// The CPU the calling thread is running on.
pub fn current_cpu() -> Result<u32> {
    Ok(sched_getcpu().context("sched_getcpu")? as u32)
}

/// Places the calling measurement thread: affinity to `cpu` first, then the scheduling policy
/// (STYLE: set affinity, then policy, then wait on the start barrier).
pub fn place(cpu: u32, priority: Option<u8>) -> Result<()> {
    pin_to(cpu)?;
    set_fifo(priority)
}

/// Switch the calling thread to SCHED_FIFO at `priority`, or leave it SCHED_OTHER for `None`.
pub fn set_fifo(priority: Option<u8>) -> Result<()> {
    let Some(p) = priority else { return Ok(()) };
    let param = libc::sched_param {
        sched_priority: i32::from(p),
    };
    // SAFETY: `param` is a valid sched_param; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| {
            format!("Cannot set SCHED_FIFO priority {p} (needs root or CAP_SYS_NICE)")
        });
    }
    // SAFETY: pid 0 is the calling thread; no pointer arguments.
    let policy = unsafe { libc::sched_getscheduler(0) };
    if policy != libc::SCHED_FIFO {
        bail!("SCHED_FIFO priority {p} was accepted but the policy reads back as {policy}");
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

    #[test]
    fn pins_and_verifies() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        let target = cpus - 1;
        std::thread::spawn(move || {
            pin_to(target).unwrap();
            assert_eq!(current_cpu().unwrap(), target);
            assert!(pin_to(100_000).is_err());
        })
        .join()
        .unwrap();
    }
}
