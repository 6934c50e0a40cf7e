//! Housekeeping loads on the non-RT CPUs (docs/architecture.md "Workloads").
//!
//! They reproduce the thread's failure mode — a non-RT vCPU takes a guest kernel lock and is
//! preempted by the emulator thread — and make the emulator work:
//!
//! * `syscall`: mmap / touch / munmap of 256 KiB (mm locks, TLB shootdowns) and fork / _exit /
//!   wait every 16 rounds.
//! * `memory`: copy between the two halves of a buffer (memory bandwidth, cache pollution).
//! * `io`: 4 KiB writes plus `fdatasync` to a disk or serial port (emulated device work in QEMU);
//!   non-blocking, so a stalled device cannot keep the load from stopping.
//!
//! One thread per (load, housekeeping CPU), pinned there; all stop on one flag.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::num::NonZeroUsize;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult};
use pinlat::agentcfg::{Loads, DEFAULT_MEMORY_LOAD_MIB};

use crate::thread::STACK_BYTES;

/// Running housekeeping loads.
#[derive(Debug)]
pub struct LoadSet {
    stop: Arc<AtomicBool>,
    threads: Vec<(String, JoinHandle<Result<()>>)>,
    temp_file: Option<PathBuf>,
}

/// How long a load may take to notice the stop flag.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the I/O load writes when the config does not say: `(path, is a temp file to remove)`.
///
/// In the guest: a virtio disk `/dev/vda` if the kernel has one, else the third serial port
/// `/dev/ttyS2` if QEMU gave the guest one (`-serial file:...` a third time). Never the console
/// port: flooding ttyS0 makes a PREEMPT_RT guest under TCG declare its IRQ spurious and disable
/// it ("nobody cared"), after which console writes stall.
fn default_io_path(guest: bool) -> Result<(PathBuf, bool)> {
    if guest {
        let vda = PathBuf::from("/dev/vda");
        if vda.exists() {
            return Ok((vda, false));
        }
        // A port without a UART behind it fails to open (EIO).
        let ttys2 = PathBuf::from("/dev/ttyS2");
        if OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(&ttys2)
            .is_ok()
        {
            return Ok((ttys2, false));
        }
        return Err(anyhow!(
            "The io load has nothing to write to: give the guest a third serial port (/dev/ttyS2) or a virtio disk (/dev/vda), or set loads.io_path"
        ));
    }
    let p = std::env::temp_dir().join(format!("pinlat-agent-io-{}", std::process::id()));
    Ok((p, true))
}

/// Start every load switched on in `loads`, one thread per CPU of `cpus`.
pub fn start(loads: &Loads, cpus: &[u32], guest: bool) -> Result<LoadSet> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut set = LoadSet {
        stop: stop.clone(),
        threads: Vec::new(),
        temp_file: None,
    };
    if !loads.any() {
        return Ok(set);
    }
    if cpus.is_empty() {
        return Err(anyhow!(
            "Housekeeping loads are on but there is no housekeeping CPU: set housekeeping_cpus"
        ));
    }
    let io_path = match &loads.io_path {
        Some(p) => PathBuf::from(p),
        None if loads.io => {
            let (p, temp) = default_io_path(guest)?;
            if temp {
                set.temp_file = Some(p.clone());
            }
            p
        }
        None => PathBuf::new(),
    };
    let mem_bytes = (loads.memory_mib.unwrap_or(DEFAULT_MEMORY_LOAD_MIB) as usize) << 20;
    for &cpu in cpus {
        let mut kinds: Vec<&str> = Vec::new();
        if loads.syscall {
            kinds.push("syscall");
        }
        if loads.memory {
            kinds.push("memory");
        }
        if loads.io {
            kinds.push("io");
        }
        for kind in kinds {
            let stop = stop.clone();
            let io_path = io_path.clone();
            let name = format!("load-{kind}-cpu{cpu}");
            let h = std::thread::Builder::new()
                .name(name.clone())
                .stack_size(STACK_BYTES)
                .spawn(move || -> Result<()> {
                    pinlat::sched::pin_current_to(cpu)
                        .with_context(|| format!("Cannot pin the {kind} load to CPU {cpu}"))?;
                    match kind {
                        "syscall" => syscall_load(&stop),
                        "memory" => memory_load(&stop, mem_bytes),
                        _ => io_load(&stop, &io_path),
                    }
                })
                .with_context(|| format!("Cannot start thread {name}"))?;
            set.threads.push((name, h));
        }
    }
    Ok(set)
}

impl LoadSet {
    /// Stop all loads and report the first failure. A load stuck in the kernel (a blocked
    /// device) is an error after [`STOP_TIMEOUT`], not a hang: it is left behind.
    pub fn stop(mut self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
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
        if let Some(p) = self.temp_file.take() {
            let _ = std::fs::remove_file(p);
        }
        first
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

fn io_load(stop: &AtomicBool, path: &Path) -> Result<()> {
    let mut f: File = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .create(!path.starts_with("/dev"))
        .truncate(false)
        .open(path)
        .with_context(|| format!("Cannot open {} for the io load", path.display()))?;
    let mut block = [b'.'; 4096];
    for (i, b) in block.iter_mut().enumerate() {
        if i % 80 == 79 {
            *b = b'\n';
        }
    }
    let is_file = f.metadata().map(|m| m.is_file()).unwrap_or(false);
    let mut written = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // Non-blocking, so that a stalled device cannot keep the load from stopping.
        match f.write(&block) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("io load write to {}", path.display()))
            }
        }
        // ttys do not support fdatasync (EINVAL); the write itself is the device work.
        let _ = f.sync_data();
        written += block.len() as u64;
        if is_file && written >= 64 << 20 {
            f.set_len(0)?;
            written = 0;
        }
    }
    Ok(())
}
