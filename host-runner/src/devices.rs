//! Guest devices whose backends the runner owns: a virtio-blk disk backed by a sparse raw
//! file, and a virtio-net NIC whose backend is a UNIX stream socket in the run's private
//! directory that the runner serves ([`NetEcho`]: it sends back every frame that arrives), so
//! no packet ever leaves the machine.
//!
//! Both exist to make QEMU's emulator and I/O threads work the way a real guest's devices do:
//! with `aio=threads` (the default) the disk's requests run on QEMU's thread-pool workers, which
//! are emulator threads; with `iothreads >= 1` the disk is served by `iothread1`, so an
//! iothread pinning is exercised for real. Their QEMU arguments come from
//! [`crate::qemu::qemu_args`]; the kernel modules they need from
//! [`crate::kernel::GuestKernel::module_plan`] with [`Device::needs`].

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::kernel::Need;

/// Disk size when none is configured, MiB.
pub const DEFAULT_DISK_MIB: u64 = 256;
/// Largest frame QEMU's stream netdev sends (`NET_BUFSIZE`, 4 KiB + 64 KiB), bytes.
const MAX_FRAME_BYTES: usize = 4096 + 65536;
/// How often the echo thread looks at its stop flag.
const ECHO_POLL: Duration = Duration::from_millis(50);

/// The host page cache's part in disk I/O: QEMU's `cache=` modes, as `-blockdev`'s
/// `cache.direct` and the device's `write-cache` spell them (QEMU's "Block device caching"
/// table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cache {
    /// `O_DIRECT`, guest-visible write cache (flushes reach the disk): QEMU's and libvirt's
    /// recommendation for latency work. Needs a filesystem with `O_DIRECT`.
    #[default]
    None,
    /// Host page cache, guest-visible write cache.
    Writeback,
    /// Host page cache, every write flushed (no guest write cache).
    Writethrough,
    /// `O_DIRECT` and every write flushed.
    Directsync,
}

impl Cache {
    /// Opens the image with `O_DIRECT` (`cache.direct=on`).
    pub fn direct(self) -> bool {
        matches!(self, Cache::None | Cache::Directsync)
    }

    /// The guest sees a volatile write cache (`write-cache=on`).
    pub fn write_cache(self) -> bool {
        matches!(self, Cache::None | Cache::Writeback)
    }

    /// QEMU's name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Cache::None => "none",
            Cache::Writeback => "writeback",
            Cache::Writethrough => "writethrough",
            Cache::Directsync => "directsync",
        }
    }
}

pub use pinlat::kinds::Aio;

/// A virtio-blk disk backed by a raw image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtioBlk {
    /// The raw image (created sparse by [`create_disk`]).
    pub image: PathBuf,
    /// Its size, MiB.
    pub size_mib: u64,
    /// Caching mode.
    pub cache: Cache,
    /// I/O submission.
    pub aio: Aio,
    /// The iothread serving it (`iothread1`); `None`: QEMU's main loop.
    pub iothread: Option<String>,
}

impl VirtioBlk {
    /// `disk0.raw` in `dir` with `size_mib`, `cache=none`, `aio=threads`, no iothread (see
    /// [`crate::qemu::VmSpec::with_devices`] for the iothread rule).
    pub fn in_dir(dir: &Path, size_mib: u64) -> Self {
        VirtioBlk {
            image: dir.join("disk0.raw"),
            size_mib,
            cache: Cache::None,
            aio: Aio::Threads,
            iothread: None,
        }
    }
}

/// A virtio-net NIC on a UNIX stream socket the runner listens on (QEMU connects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtioNet {
    /// The socket ([`NetEcho::start`] binds it).
    pub socket: PathBuf,
}

impl VirtioNet {
    /// `net0.sock` in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        VirtioNet {
            socket: dir.join("net0.sock"),
        }
    }
}

/// A guest device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// See [`VirtioBlk`].
    VirtioBlk(VirtioBlk),
    /// See [`VirtioNet`].
    VirtioNet(VirtioNet),
}

impl Device {
    /// What it is, for messages (`virtio-blk disk`).
    pub fn describe(&self) -> &'static str {
        match self {
            Device::VirtioBlk(_) => "virtio-blk disk",
            Device::VirtioNet(_) => "virtio-net NIC",
        }
    }

    /// The kernel modules its guest driver is made of (before their dependencies): the PCI
    /// transport and the device's driver. Built-in ones cost nothing
    /// ([`crate::kernel::ModuleDir::resolve`]).
    pub fn modules(&self) -> &'static [&'static str] {
        match self {
            Device::VirtioBlk(_) => &["virtio_pci", "virtio_blk"],
            Device::VirtioNet(_) => &["virtio_pci", "virtio_net"],
        }
    }

    /// [`Device::modules`] as needs of this device in `scenario` (named in errors).
    pub fn needs(&self, scenario: &str) -> Vec<Need> {
        self.modules()
            .iter()
            .map(|m| Need::new(m, format!("the {} of scenario {scenario}", self.describe())))
            .collect()
    }
}

/// The needs of all `devices` of `scenario`.
pub fn needs(devices: &[Device], scenario: &str) -> Vec<Need> {
    devices.iter().flat_map(|d| d.needs(scenario)).collect()
}

/// Creating a device's backend failed. Messages name the path and the cause.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The image file cannot be created.
    #[error("Cannot create the disk image {path}")]
    CreateImage {
        /// The image.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The image cannot be given its size.
    #[error("Cannot size the disk image {path} to {size_mib} MiB")]
    SizeImage {
        /// The image.
        path: PathBuf,
        /// The size asked for, MiB.
        size_mib: u64,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// `cache=none`/`directsync` on a filesystem without `O_DIRECT` (tmpfs before Linux 6.6).
    #[error("The disk image {path} cannot be opened with O_DIRECT, which cache={cache} needs. Fix: put the run directory on a disk filesystem (not tmpfs), or use cache=writeback")]
    NoDirectIo {
        /// The image.
        path: PathBuf,
        /// The cache mode.
        cache: &'static str,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// `aio=native` without `O_DIRECT`, which QEMU refuses.
    #[error("aio=native needs cache=none or cache=directsync (O_DIRECT), not cache={cache}")]
    NativeAioNeedsDirect {
        /// The cache mode.
        cache: &'static str,
    },
    /// The NIC's socket cannot be bound.
    #[error("Cannot listen on the NIC socket {path}")]
    Bind {
        /// The socket.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The echo thread could not be started or failed.
    #[error("NIC echo service on {path} failed")]
    Echo {
        /// The socket.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// Creates the disk's image: a new sparse file of `size_mib` MiB (mode 0600; an existing file
/// is an error, never overwritten), checked to open with `O_DIRECT` if its cache mode needs it.
pub fn create_disk(disk: &VirtioBlk) -> Result<(), DeviceError> {
    if disk.aio == Aio::Native && !disk.cache.direct() {
        return Err(DeviceError::NativeAioNeedsDirect {
            cache: disk.cache.as_str(),
        });
    }
    let path = &disk.image;
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| DeviceError::CreateImage {
            path: path.clone(),
            source,
        })?;
    let size_err = |source| DeviceError::SizeImage {
        path: path.clone(),
        size_mib: disk.size_mib,
        source,
    };
    let bytes = disk
        .size_mib
        .checked_mul(1 << 20)
        .ok_or_else(|| size_err(io::Error::from(io::ErrorKind::InvalidInput)))?;
    file.set_len(bytes).map_err(size_err)?;
    drop(file);
    if disk.cache.direct() {
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .map_err(|source| DeviceError::NoDirectIo {
                path: path.clone(),
                cache: disk.cache.as_str(),
                source,
            })?;
    }
    Ok(())
}

pub use pinlat::result::EchoStats;

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    frames: AtomicU64,
    bytes: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> EchoStats {
        EchoStats {
            connections: self.connections.load(Ordering::Relaxed),
            frames: self.frames.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}

/// The NIC's backend: listens on the socket and sends every frame that arrives back to the
/// guest. QEMU's stream netdev frames each Ethernet frame with a 4-byte big-endian length
/// (`net/stream.c`); a connection that sends a longer frame than QEMU can is dropped. One
/// thread (`net-echo`), stopped and joined on [`NetEcho::stop`] or drop; the socket file is
/// removed then.
#[derive(Debug)]
pub struct NetEcho {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl NetEcho {
    /// Binds `socket` (which must not exist) and starts serving it.
    pub fn start(socket: &Path) -> Result<NetEcho, DeviceError> {
        let listener = UnixListener::bind(socket).map_err(|source| DeviceError::Bind {
            path: socket.to_owned(),
            source,
        })?;
        let echo_err = |source| DeviceError::Echo {
            path: socket.to_owned(),
            source,
        };
        listener.set_nonblocking(true).map_err(echo_err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (s, c) = (stop.clone(), counters.clone());
        let thread = std::thread::Builder::new()
            .name("net-echo".into())
            .spawn(move || serve(&listener, &s, &c))
            .map_err(|e| {
                let _ = fs::remove_file(socket);
                echo_err(e)
            })?;
        Ok(NetEcho {
            path: socket.to_owned(),
            stop,
            counters,
            thread: Some(thread),
        })
    }

    /// The socket.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What it has seen so far.
    pub fn stats(&self) -> EchoStats {
        self.counters.snapshot()
    }

    /// Stops the thread and returns what it saw, or the error that ended it.
    pub fn stop(mut self) -> Result<EchoStats, DeviceError> {
        self.shutdown()?;
        Ok(self.stats())
    }

    fn shutdown(&mut self) -> Result<(), DeviceError> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = fs::remove_file(&self.path);
        let Some(t) = self.thread.take() else {
            return Ok(());
        };
        let result = t
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the echo thread panicked")));
        result.map_err(|source| DeviceError::Echo {
            path: self.path.clone(),
            source,
        })
    }
}

impl Drop for NetEcho {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn serve(listener: &UnixListener, stop: &AtomicBool, counters: &Counters) -> io::Result<()> {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                counters.connections.fetch_add(1, Ordering::Relaxed);
                echo(stream, stop, counters)?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(ECHO_POLL),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Echoes whole frames on one connection until it closes, breaks the framing, or `stop`.
fn echo(mut stream: UnixStream, stop: &AtomicBool, counters: &Counters) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(ECHO_POLL))?;
    let mut pending: Vec<u8> = Vec::with_capacity(2 * MAX_FRAME_BYTES);
    let mut buf = vec![0u8; MAX_FRAME_BYTES];
    while !stop.load(Ordering::Relaxed) {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            // QEMU went away mid-frame: that connection is over, not the service.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
            Err(e) => return Err(e),
        };
        pending.extend_from_slice(&buf[..n]);
        let mut used = 0;
        while let Some(len_bytes) = pending.get(used..used + 4) {
            let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]])
                as usize;
            if len > MAX_FRAME_BYTES {
                // Not QEMU's framing: drop the connection rather than echo garbage.
                return Ok(());
            }
            let Some(frame) = pending.get(used..used + 4 + len) else {
                break;
            };
            match stream.write_all(frame) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(e),
            }
            counters.frames.fetch_add(1, Ordering::Relaxed);
            counters.bytes.fetch_add(len as u64, Ordering::Relaxed);
            used += 4 + len;
        }
        pending.drain(..used);
    }
    Ok(())
}

/// Where a disk image goes when the run's private directory cannot do `O_DIRECT` (a tmpfs
/// `$XDG_RUNTIME_DIR`): a private directory here, which distributions keep on disk.
const DISK_FALLBACK_PARENT: &str = "/var/tmp";

/// The running backends of a guest's devices: the disk images and the NIC echo service. Made
/// before QEMU starts; dropping them stops the echo and removes the images.
#[derive(Debug, Default)]
pub struct Backends {
    /// The NIC's echo service, when the guest has a NIC.
    pub echo: Option<NetEcho>,
    /// Private directories holding disk images outside the runtime directory.
    fallback_dirs: Vec<tempfile::TempDir>,
    /// Disk images made.
    images: Vec<PathBuf>,
}

impl Backends {
    /// Creates the backend of every device: relative paths (as disturbances write them) are
    /// taken in `dir`, the run's private directory. A disk that needs `O_DIRECT` where `dir`
    /// cannot do it moves to a private directory under `/var/tmp`. Any failure names the path
    /// and the cause; what was made so far is removed.
    pub fn start(devices: &mut [Device], dir: &Path) -> Result<Backends, DeviceError> {
        let mut b = Backends::default();
        for d in devices.iter_mut() {
            match d {
                Device::VirtioBlk(disk) => {
                    if disk.image.is_relative() {
                        disk.image = dir.join(&disk.image);
                    }
                    match create_disk(disk) {
                        Ok(()) => {}
                        Err(DeviceError::NoDirectIo { path, .. })
                            if Path::new(DISK_FALLBACK_PARENT).is_dir() =>
                        {
                            let _ = fs::remove_file(&path);
                            let other = tempfile::Builder::new()
                                .prefix("pinlat-disk-")
                                .permissions(fs::Permissions::from_mode(0o700))
                                .tempdir_in(DISK_FALLBACK_PARENT)
                                .map_err(|source| DeviceError::CreateImage {
                                    path: PathBuf::from(DISK_FALLBACK_PARENT),
                                    source,
                                })?;
                            disk.image = other
                                .path()
                                .join(path.file_name().unwrap_or(std::ffi::OsStr::new("disk.raw")));
                            b.fallback_dirs.push(other);
                            create_disk(disk)?;
                        }
                        Err(e) => return Err(e),
                    }
                    b.images.push(disk.image.clone());
                }
                Device::VirtioNet(nic) => {
                    if nic.socket.is_relative() {
                        nic.socket = dir.join(&nic.socket);
                    }
                    b.echo = Some(NetEcho::start(&nic.socket)?);
                }
            }
        }
        Ok(b)
    }

    /// What the echo service has seen, if there is one.
    pub fn echo_stats(&self) -> Option<EchoStats> {
        self.echo.as_ref().map(NetEcho::stats)
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        for i in &self.images {
            let _ = fs::remove_file(i);
        }
    }
}

#[cfg(test)]
#[path = "devices_tests.rs"]
mod tests;
