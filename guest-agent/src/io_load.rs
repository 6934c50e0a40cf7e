//! The `io` housekeeping load: block I/O on the guest's virtio-blk disk that QEMU's emulator
//! threads serve (thread-pool workers with `aio=threads`, the iothread, the main loop), with
//! its own latency measured per operation (issue #12, "both sides of the trade-off").
//!
//! `queue_depth` worker threads, each with one request in flight at a time (the static agent
//! links neither io_uring nor libaio, so the queue depth is made of threads). Each request is
//! a `pread` or `pwrite` of `block_bytes` at a random block-aligned offset within the span
//! ([`SplitMix64`], seeded per worker: the same config issues the same requests), reads
//! `read_percent` of the time, with an `fdatasync` after every `fdatasync_every` writes of the
//! worker. The file is opened with `O_DIRECT`, buffers 4 KiB-aligned, so every request reaches
//! the device rather than the guest's page cache.
//!
//! Read, write and flush latencies go into their own histograms ([`OpRecorder`]). A failed
//! syscall is a counted error (the first one's message kept), and the worker backs off 1 ms so
//! a dead device does not become a busy loop.

use std::alloc::{alloc_zeroed, dealloc, handle_alloc_error, Layout};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use pinlat::agentcfg::IoLoad;
use pinlat::wire::{LoadKind, LoadResult, OpKind};

use crate::clock::mono_ns;
use crate::opstats::{OpRecorder, Window};
use crate::thread::STACK_BYTES;
use pinlat::prng::SplitMix64;

/// The guest's first virtio-blk disk.
pub const GUEST_DISK: &str = "/dev/vda";
/// Size of the temporary file natively, when no span is given, bytes.
pub const NATIVE_FILE_BYTES: u64 = 64 << 20;
/// Alignment of the I/O buffers, bytes: covers any logical block size up to 4 KiB.
const BUFFER_ALIGN: usize = 4096;
/// Seed of worker 0's generator; worker `i` uses `SEED + i`.
const SEED: u64 = 0x7069_6e6c_6174_696f; // "pinlatio"
/// Pause after a failed operation.
const ERROR_BACKOFF: Duration = Duration::from_millis(1);

/// Where the io load goes: `(path, whether it is a temporary file to remove)`.
///
/// In a guest (PID 1) without a path: [`GUEST_DISK`], which must exist. Anywhere else (natively,
/// or `--init` tested on a host, where `/dev/vda` may be the host's own disk) a temporary file.
pub fn target(cfg: &IoLoad, in_guest: bool) -> Result<(PathBuf, bool)> {
    if let Some(p) = &cfg.path {
        return Ok((PathBuf::from(p), false));
    }
    if in_guest {
        let disk = PathBuf::from(GUEST_DISK);
        if !disk.exists() {
            bail!(
                "io load: no virtio-blk disk ({GUEST_DISK} missing): the scenario needs [[scenarios]] guest-io's disk"
            );
        }
        return Ok((disk, false));
    }
    let p = std::env::temp_dir().join(format!("pinlat-agent-io-{}", std::process::id()));
    Ok((p, true))
}

/// The byte offset of the next request: a uniformly drawn block of the `span_blocks` blocks of
/// `block_bytes` each, so it is aligned to the block and ends within the span.
pub fn offset(rng: &mut SplitMix64, span_blocks: u64, block_bytes: u32) -> u64 {
    rng.below(span_blocks) * u64::from(block_bytes)
}

/// The span in whole blocks: `span_bytes` (or the whole size) clamped to `size_bytes`.
pub fn span_blocks(size_bytes: u64, span_bytes: Option<u64>, block_bytes: u32) -> u64 {
    span_bytes.unwrap_or(size_bytes).min(size_bytes) / u64::from(block_bytes)
}

/// A zeroed heap buffer aligned for `O_DIRECT`.
struct AlignedBuf {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl AlignedBuf {
    fn new(len: usize) -> Self {
        let layout = Layout::from_size_align(len.max(1), BUFFER_ALIGN)
            .expect("a block of at most 1 MiB at 4 KiB alignment is a valid layout");
        // SAFETY: the layout's size is at least 1.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| handle_alloc_error(layout));
        AlignedBuf { ptr, layout }
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is a live allocation of `layout.size()` initialised (zeroed) bytes,
        // owned by `self`; the shared borrow of `self` keeps it from being written meanwhile.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.layout.size()) }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and the exclusive borrow of `self` makes this the only
        // reference to the bytes.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc_zeroed(self.layout)` and is freed only here, once.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// The three operation kinds' records, shared by the workers.
#[derive(Debug, Default)]
struct Records {
    read: Mutex<OpRecorder>,
    write: Mutex<OpRecorder>,
    flush: Mutex<OpRecorder>,
}

impl Records {
    fn of(&self, op: OpKind) -> &Mutex<OpRecorder> {
        match op {
            OpKind::Read => &self.read,
            OpKind::Write => &self.write,
            _ => &self.flush,
        }
    }

    fn record(&self, op: OpKind, latency_ns: u64, bytes: u64) {
        if let Ok(mut r) = self.of(op).lock() {
            r.record(latency_ns, bytes);
        }
    }

    fn error(&self, op: OpKind, message: impl FnOnce() -> String) {
        if let Ok(mut r) = self.of(op).lock() {
            r.error(message);
        }
    }
}

/// A started io load, until [`IoRun::finish`].
#[derive(Debug)]
pub struct IoRun {
    device: PathBuf,
    direct: bool,
    cpus: Vec<u32>,
    window: Window,
    records: Arc<Records>,
    temp_file: Option<PathBuf>,
}

/// Opens `path` for the load: `O_DIRECT` always for a device; a regular file on a filesystem
/// that refuses `O_DIRECT` (tmpfs before Linux 6.6) is used through the page cache, and the
/// result says so. Files are created (and a new or short one extended, sparse, to the span).
fn open(path: &Path, cfg: &IoLoad, temp: bool) -> Result<(File, bool)> {
    let create = temp || !path.starts_with("/dev");
    let opts = |direct: bool| {
        let mut o = OpenOptions::new();
        o.read(true).write(true).create(create).truncate(false);
        o.custom_flags(libc::O_NOCTTY | if direct { libc::O_DIRECT } else { 0 });
        o
    };
    let (file, direct) = match opts(true).open(path) {
        Ok(f) => (f, true),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) && create => {
            let f = opts(false).open(path).with_context(|| {
                format!(
                    "io load: cannot open {} for reading and writing",
                    path.display()
                )
            })?;
            if !f.metadata().map(|m| m.is_file()).unwrap_or(false) {
                bail!(
                    "io load: {} refuses O_DIRECT and is not a regular file",
                    path.display()
                );
            }
            (f, false)
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "io load: cannot open {} for O_DIRECT reading and writing",
                    path.display()
                )
            })
        }
    };
    let meta = file
        .metadata()
        .with_context(|| format!("io load: cannot stat {}", path.display()))?;
    if meta.is_file() {
        let want = cfg
            .span_bytes
            .unwrap_or(if temp { NATIVE_FILE_BYTES } else { meta.len() });
        if meta.len() < want {
            file.set_len(want).with_context(|| {
                format!("io load: cannot size {} to {want} bytes", path.display())
            })?;
        }
    } else if !meta.file_type().is_block_device() {
        bail!(
            "io load: {} is neither a block device nor a regular file",
            path.display()
        );
    }
    Ok((file, direct))
}

/// Starts the io load's workers on `cpus`; their handles are appended to `threads`.
pub fn start(
    cfg: &IoLoad,
    cpus: &[u32],
    in_guest: bool,
    window: Window,
    stop: &Arc<AtomicBool>,
    threads: &mut Vec<(String, JoinHandle<Result<()>>)>,
) -> Result<IoRun> {
    let (path, temp) = target(cfg, in_guest)?;
    let opened = open(&path, cfg, temp);
    let temp_file = temp.then(|| path.clone());
    let (mut file, direct) = match opened {
        Ok(x) => x,
        Err(e) => {
            if let Some(t) = &temp_file {
                let _ = std::fs::remove_file(t);
            }
            return Err(e);
        }
    };
    let run = IoRun {
        device: path.clone(),
        direct,
        cpus: cpus.to_vec(),
        window,
        records: Arc::new(Records::default()),
        temp_file,
    };
    // A block device's size is where its end is.
    let size = file
        .seek(SeekFrom::End(0))
        .with_context(|| format!("io load: cannot find the size of {}", path.display()))?;
    let blocks = span_blocks(size, cfg.span_bytes, cfg.block_bytes);
    if blocks == 0 {
        run.remove_temp();
        bail!(
            "io load: {} has {size} bytes, less than one block of {} bytes",
            path.display(),
            cfg.block_bytes
        );
    }
    let file = Arc::new(file);
    for index in 0..cfg.queue_depth {
        let name = format!("load-io-{index}");
        let worker = Worker {
            index,
            cfg: cfg.clone(),
            cpus: cpus.to_vec(),
            blocks,
            file: file.clone(),
            records: run.records.clone(),
            stop: stop.clone(),
            window,
        };
        let h = std::thread::Builder::new()
            .name(name.clone())
            .stack_size(STACK_BYTES)
            .spawn(move || worker.run())
            .with_context(|| format!("io load: cannot start thread {name}"))?;
        threads.push((name, h));
    }
    Ok(run)
}

impl IoRun {
    fn remove_temp(&self) {
        if let Some(t) = &self.temp_file {
            let _ = std::fs::remove_file(t);
        }
    }

    /// The load's result, its window ending at `stop_ns`; removes a temporary file. Call once
    /// every worker has stopped.
    pub fn finish(self, stop_ns: u64) -> LoadResult {
        self.remove_temp();
        let take = |m: &Mutex<OpRecorder>| {
            std::mem::take(&mut *m.lock().unwrap_or_else(|p| p.into_inner())).finish()
        };
        LoadResult {
            load: LoadKind::Io,
            device: self.device.display().to_string(),
            direct: Some(self.direct),
            cpus: self.cpus,
            duration_ns: self.window.length_ns(stop_ns),
            target_per_s: None,
            ops: [
                (OpKind::Read, take(&self.records.read)),
                (OpKind::Write, take(&self.records.write)),
                (OpKind::Flush, take(&self.records.flush)),
            ]
            .into(),
            net: None,
        }
    }
}

/// One worker: one request in flight at a time.
struct Worker {
    index: u32,
    cfg: IoLoad,
    cpus: Vec<u32>,
    blocks: u64,
    file: Arc<File>,
    records: Arc<Records>,
    stop: Arc<AtomicBool>,
    window: Window,
}

impl Worker {
    fn run(self) -> Result<()> {
        pinlat::sched::set_affinity(0, &self.cpus)
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("io load: cannot put a worker on CPUs {:?}", self.cpus))?;
        let block = self.cfg.block_bytes;
        let mut buf = AlignedBuf::new(block as usize);
        // Not zeros: a write must allocate the disk image's blocks on the host.
        for (i, b) in buf.as_mut_slice().iter_mut().enumerate() {
            *b = (i as u8) ^ (self.index as u8) ^ 0x5a;
        }
        let mut rng = SplitMix64::new(SEED.wrapping_add(u64::from(self.index)));
        let mut writes = 0u32;
        while !self.stop.load(Ordering::Relaxed) {
            let off = offset(&mut rng, self.blocks, block);
            let op = if rng.percent(self.cfg.read_percent) {
                OpKind::Read
            } else {
                OpKind::Write
            };
            let t0 = mono_ns();
            let r = match op {
                OpKind::Read => self.file.read_at(buf.as_mut_slice(), off),
                _ => self.file.write_at(buf.as_slice(), off),
            };
            let t1 = mono_ns();
            let counted = self.window.counts(t0);
            let failed = match r {
                Ok(n) if n == block as usize => {
                    if counted {
                        self.records.record(op, t1 - t0, u64::from(block));
                    }
                    false
                }
                Ok(n) => {
                    if counted {
                        self.records.error(op, || {
                            let at = self.window.at(t0);
                            format!("{op} of {block} bytes at offset {off} {at}: only {n} bytes")
                        });
                    }
                    true
                }
                Err(e) => {
                    if counted {
                        self.records.error(op, || {
                            let at = self.window.at(t0);
                            format!("{op} of {block} bytes at offset {off} {at}: {e}")
                        });
                    }
                    true
                }
            };
            if op == OpKind::Write && !failed {
                writes += 1;
                if self.cfg.fdatasync_every > 0 && writes >= self.cfg.fdatasync_every {
                    writes = 0;
                    self.flush();
                }
            }
            if failed {
                std::thread::sleep(ERROR_BACKOFF);
            }
        }
        Ok(())
    }

    fn flush(&self) {
        let t0 = mono_ns();
        let r = self.file.sync_data();
        let t1 = mono_ns();
        if !self.window.counts(t0) {
            return;
        }
        match r {
            Ok(()) => self.records.record(OpKind::Flush, t1 - t0, 0),
            Err(e) => {
                self.records.error(OpKind::Flush, || {
                    format!("fdatasync {}: {e}", self.window.at(t0))
                });
                std::thread::sleep(ERROR_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_block_aligned_and_inside_the_span() {
        let mut rng = SplitMix64::new(1);
        let (blocks, block) = (1000u64, 4096u32);
        let mut highest = 0;
        for _ in 0..100_000 {
            let off = offset(&mut rng, blocks, block);
            assert_eq!(off % u64::from(block), 0);
            assert!(off + u64::from(block) <= blocks * u64::from(block));
            highest = highest.max(off);
        }
        assert_eq!(
            highest,
            (blocks - 1) * u64::from(block),
            "the last block is used"
        );
    }

    #[test]
    fn the_span_is_whole_blocks_of_at_most_the_device() {
        assert_eq!(span_blocks(64 << 20, None, 4096), 16_384);
        assert_eq!(span_blocks(64 << 20, Some(1 << 20), 4096), 256);
        assert_eq!(span_blocks(64 << 20, Some(1 << 40), 4096), 16_384);
        assert_eq!(span_blocks(10_000, None, 4096), 2);
        assert_eq!(span_blocks(4095, None, 4096), 0);
    }

    #[test]
    fn buffers_are_aligned_for_o_direct() {
        for len in [512, 4096, 65_536] {
            let mut b = AlignedBuf::new(len);
            assert_eq!(b.as_slice().as_ptr() as usize % BUFFER_ALIGN, 0);
            assert_eq!(b.as_slice().len(), len);
            assert!(b.as_slice().iter().all(|&x| x == 0));
            b.as_mut_slice()[len - 1] = 7;
            assert_eq!(b.as_slice()[len - 1], 7);
        }
    }

    #[test]
    fn outside_a_guest_the_default_is_a_temporary_file_never_the_hosts_disk() {
        let (p, temp) = target(&IoLoad::default(), false).unwrap();
        assert!(
            temp && p.starts_with(std::env::temp_dir()),
            "{}",
            p.display()
        );
        let given = IoLoad {
            path: Some("/tmp/x".into()),
            ..IoLoad::default()
        };
        assert_eq!(
            target(&given, true).unwrap(),
            (PathBuf::from("/tmp/x"), false)
        );
    }

    /// A short run on a file: every operation kind is timed, counted and sized.
    #[test]
    fn a_short_run_on_a_file_records_reads_writes_and_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = IoLoad {
            path: Some(dir.path().join("disk").display().to_string()),
            queue_depth: 2,
            span_bytes: Some(1 << 20),
            ..IoLoad::default()
        };
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let window = Window { from_ns: 0 };
        let run = start(&cfg, &[0], false, window, &stop, &mut threads).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while run.records.flush.lock().unwrap().count() < 5 && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::Relaxed);
        for (_, t) in threads {
            t.join().unwrap().unwrap();
        }
        let r = run.finish(mono_ns());
        assert_eq!(r.load, LoadKind::Io);
        let (read, write, flush) = (
            &r.ops[&OpKind::Read],
            &r.ops[&OpKind::Write],
            &r.ops[&OpKind::Flush],
        );
        assert!(
            read.count > 0 && write.count > 0 && flush.count >= 5,
            "{r:?}"
        );
        assert_eq!(
            (read.errors, write.errors, flush.errors),
            (0, 0, 0),
            "{r:?}"
        );
        assert_eq!(read.bytes, read.count * 4096);
        assert_eq!(flush.bytes, 0);
        // fdatasync after every write of each worker: one flush per write, give or take the
        // writes whose flush the stop cut short.
        assert!(
            write.count - flush.count <= 2,
            "{} writes, {} flushes",
            write.count,
            flush.count
        );
        for s in r.ops.values() {
            assert_eq!(s.histogram.0.len() + s.overflow, s.count);
        }
        assert_eq!(
            std::fs::metadata(dir.path().join("disk")).unwrap().len(),
            1 << 20
        );
    }
}
