//! Housekeeping loads on the non-RT CPUs (docs/architecture.md "Workloads").
//!
//! They reproduce the thread's failure mode — a non-RT vCPU takes a guest kernel lock and is
//! preempted by the emulator thread — and make the emulator work:
//!
//! * `syscall`: mmap / touch / munmap of 256 KiB (mm locks, TLB shootdowns) and fork / _exit /
//!   wait every 16 rounds; one thread per housekeeping CPU, pinned there.
//! * `memory`: copy between the two halves of a buffer (memory bandwidth, cache pollution); one
//!   thread per housekeeping CPU, pinned there.
//! * `io` ([`crate::io_load`]): `O_DIRECT` reads, writes and `fdatasync` on the virtio-blk disk,
//!   served by QEMU's thread-pool workers or iothread; `queue_depth` threads on the
//!   housekeeping CPUs.
//! * `net` ([`crate::net_load`]): raw Ethernet frames through virtio-net, echoed by the host;
//!   a sender and a receiver thread on the housekeeping CPUs.
//!
//! `io` and `net` measure themselves: [`LoadSet::stop`] returns one [`LoadResult`] each, counted
//! over the measurement window (after the preheat). All loads stop on one flag.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult};
use pinlat::agentcfg::{Loads, DEFAULT_MEMORY_LOAD_MIB};
use pinlat::wire::LoadResult;

use crate::clock::mono_ns;
use crate::io_load::{self, IoRun};
use crate::net_load::{self, NetRun};
use crate::opstats::Window;
use crate::thread::STACK_BYTES;

/// Running housekeeping loads.
#[derive(Debug)]
pub struct LoadSet {
    stop: Arc<AtomicBool>,
    threads: Vec<(String, JoinHandle<Result<()>>)>,
    io: Option<IoRun>,
    net: Option<NetRun>,
}

/// How long a load may take to notice the stop flag (the net load waits up to 1 s for its
/// last echoes).
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the loads run and what they may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The agent is PID 1 of a guest: `io` defaults to the guest's disk, `net` to its
    /// virtio-net interface, which the load brings up.
    Guest,
    /// Anywhere else (natively, or `--init` tried on a host): `io` defaults to a temporary
    /// file, `net` runs only on an interface named in the config and changes nothing on it.
    Host,
}

/// Start every load switched on in `loads` on the housekeeping `cpus`; `io` and `net` count
/// their operations from `window`'s start. A load that cannot start stops the others and is an
/// error naming it.
pub fn start(loads: &Loads, cpus: &[u32], place: Place, window: Window) -> Result<LoadSet> {
    let mut set = LoadSet {
        stop: Arc::new(AtomicBool::new(false)),
        threads: Vec::new(),
        io: None,
        net: None,
    };
    if !loads.any() {
        return Ok(set);
    }
    if cpus.is_empty() {
        return Err(anyhow!(
            "Housekeeping loads are on but there is no housekeeping CPU: set housekeeping_cpus"
        ));
    }
    match start_all(&mut set, loads, cpus, place, window) {
        Ok(()) => Ok(set),
        Err(e) => {
            let _ = set.stop();
            Err(e)
        }
    }
}

fn start_all(
    set: &mut LoadSet,
    loads: &Loads,
    cpus: &[u32],
    place: Place,
    window: Window,
) -> Result<()> {
    let in_guest = place == Place::Guest;
    if let Some(io) = &loads.io {
        set.io = Some(io_load::start(
            io,
            cpus,
            in_guest,
            window,
            &set.stop,
            &mut set.threads,
        )?);
    }
    if let Some(net) = &loads.net {
        set.net = net_load::start(net, cpus, in_guest, window, &set.stop, &mut set.threads)?;
        if set.net.is_none() {
            eprintln!("pinlat-agent: net load skipped: no interface named (loads.net.interface), and outside a guest the agent does not pick one");
        }
    }
    let mem_bytes = (loads.memory_mib.unwrap_or(DEFAULT_MEMORY_LOAD_MIB) as usize) << 20;
    for &cpu in cpus {
        let mut kinds: Vec<&str> = Vec::new();
        if loads.syscall {
            kinds.push("syscall");
        }
        if loads.memory {
            kinds.push("memory");
        }
        for kind in kinds {
            let stop = set.stop.clone();
            let name = format!("load-{kind}-cpu{cpu}");
            let h = std::thread::Builder::new()
                .name(name.clone())
                .stack_size(STACK_BYTES)
                .spawn(move || -> Result<()> {
                    pinlat::sched::pin_current_to(cpu)
                        .with_context(|| format!("Cannot pin the {kind} load to CPU {cpu}"))?;
                    match kind {
                        "syscall" => syscall_load(&stop),
                        _ => memory_load(&stop, mem_bytes),
                    }
                })
                .with_context(|| format!("Cannot start thread {name}"))?;
            set.threads.push((name, h));
        }
    }
    Ok(())
}

impl LoadSet {
    /// Stop all loads; the results of the loads that measure themselves, or the first
    /// failure. A load stuck in the kernel (a blocked device) is an error after
    /// [`STOP_TIMEOUT`], not a hang: it is left behind.
    pub fn stop(mut self) -> Result<Vec<LoadResult>> {
        self.stop.store(true, Ordering::Relaxed);
        let stop_ns = mono_ns();
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut first = Ok(());
        for (name, h) in self.threads.drain(..) {
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if !h.is_finished() {
                if first.is_ok() {
                    first = Err(anyhow!(
                        "Housekeeping load {name} did not stop within {STOP_TIMEOUT:?}"
                    ));
                }
                continue;
            }
            let r = match h.join() {
                Ok(r) => r.with_context(|| format!("Housekeeping load {name} failed")),
                Err(_) => Err(anyhow!("Housekeeping load {name} panicked")),
            };
            if first.is_ok() {
                first = r;
            }
        }
        // Results are made even when a thread failed: the io load's temporary file goes too.
        let mut results = Vec::new();
        if let Some(io) = self.io.take() {
            results.push(io.finish(stop_ns));
        }
        if let Some(net) = self.net.take() {
            results.push(net.finish(stop_ns));
        }
        first.map(|()| results)
    }
}

fn syscall_load(stop: &AtomicBool) -> Result<()> {
    const LEN: usize = 256 << 10;
    let len = NonZeroUsize::new(LEN).expect("nonzero");
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: a fresh private anonymous mapping, not aliased by anything.
        let p = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE,
            )
        }
        .context("mmap")?;
        for off in (0..LEN).step_by(4096) {
            // SAFETY: `off < LEN`, inside the writable mapping just created.
            unsafe { p.cast::<u8>().as_ptr().add(off).write_volatile(1) };
        }
        // SAFETY: unmapping exactly the mapping created above; no reference into it remains.
        unsafe { munmap(p, LEN) }.context("munmap")?;
        round += 1;
        if round % 16 == 0 {
            // SAFETY: the child only calls the async-signal-safe `_exit`.
            match unsafe { fork() }.context("fork")? {
                ForkResult::Child => {
                    // SAFETY: `_exit` is async-signal-safe and ends the child at once.
                    unsafe { libc::_exit(0) }
                }
                ForkResult::Parent { child } => {
                    waitpid(child, None).context("waitpid")?;
                }
            }
        }
    }
    Ok(())
}

fn memory_load(stop: &AtomicBool, bytes: usize) -> Result<()> {
    let half = (bytes / 2).max(4096);
    let mut buf = vec![1u8; half * 2];
    while !stop.load(Ordering::Relaxed) {
        let (a, b) = buf.split_at_mut(half);
        b.copy_from_slice(a);
        a[0] = a[0].wrapping_add(b[half - 1]);
        std::hint::black_box(&mut buf);
    }
    Ok(())
}
