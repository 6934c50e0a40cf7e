//! The `migrate` scenario's destination: a UNIX socket in a private directory of the run that
//! QEMU migrates to (`migrate` with `uri` `unix:<path>`), where every byte is read and dropped.
//! Nothing is executed (never an `exec:` migration through a shell) and nothing leaves the
//! machine or reaches the disk.
//!
//! One thread (`migrate-sink`), pinned to the host's housekeeping pCPUs, accepts every
//! connection (each pass is one; a new pass may connect before the last one's close is read)
//! and reads them all with `poll(2)`, counting bytes. It stops, and the socket file is removed,
//! on [`MigrationSink::stop`] or drop.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use pinlat::cpuset::CpuSet;

/// How often the sink looks at its stop flag, ms.
const POLL_MS: u16 = 50;
/// Bytes read per `read(2)`.
const CHUNK: usize = 256 << 10;
/// Connections kept open at once; more are closed unread (QEMU has one per pass, and a closed
/// one is read dry before it is dropped).
const MAX_CONNECTIONS: usize = 64;

/// The sink could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The socket could not be bound.
    #[error("Cannot listen on {path}")]
    Bind {
        /// The socket.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The sink's thread failed.
    #[error("The migration sink on {path} failed")]
    Serve {
        /// The socket.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// A running sink.
#[derive(Debug)]
pub struct MigrationSink {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl MigrationSink {
    /// Binds `socket` (which must not exist) and starts discarding what arrives on it, from a
    /// thread pinned to `cpus` when not empty.
    pub fn start(socket: &Path, cpus: &CpuSet) -> Result<MigrationSink, SinkError> {
        let listener = UnixListener::bind(socket).map_err(|source| SinkError::Bind {
            path: socket.to_owned(),
            source,
        })?;
        let serve_err = |source| SinkError::Serve {
            path: socket.to_owned(),
            source,
        };
        listener.set_nonblocking(true).map_err(serve_err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let bytes = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (s, b, c) = (stop.clone(), bytes.clone(), connections.clone());
        let cpus: Vec<u32> = cpus.iter().collect();
        let thread = std::thread::Builder::new()
            .name("migrate-sink".into())
            .spawn(move || {
                if !cpus.is_empty() {
                    let _ = pinlat::sched::set_affinity(0, &cpus);
                }
                serve(&listener, &s, &b, &c)
            })
            .map_err(|e| {
                let _ = std::fs::remove_file(socket);
                serve_err(e)
            })?;
        Ok(MigrationSink {
            path: socket.to_owned(),
            stop,
            bytes,
            connections,
            thread: Some(thread),
        })
    }

    /// The counter of bytes received, shared with the sink's thread.
    pub fn bytes_counter(&self) -> Arc<AtomicU64> {
        self.bytes.clone()
    }

    /// Bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Stops the thread; the bytes received, or the error that ended it.
    pub fn stop(mut self) -> Result<u64, SinkError> {
        self.shutdown()?;
        Ok(self.bytes())
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::fs::remove_file(&self.path);
        let Some(t) = self.thread.take() else {
            return Ok(());
        };
        t.join()
            .unwrap_or_else(|_| Err(io::Error::other("the sink thread panicked")))
            .map_err(|source| SinkError::Serve {
                path: self.path.clone(),
                source,
            })
    }
}

impl Drop for MigrationSink {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn serve(
    listener: &UnixListener,
    stop: &AtomicBool,
    bytes: &AtomicU64,
    connections: &AtomicU64,
) -> io::Result<()> {
    let mut open: Vec<UnixStream> = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        // Read once more after the stop: what QEMU sent before it counts.
        let stopping = stop.load(Ordering::Relaxed);
        loop {
            match listener.accept() {
                Ok((s, _)) => {
                    connections.fetch_add(1, Ordering::Relaxed);
                    if open.len() < MAX_CONNECTIONS {
                        s.set_nonblocking(true)?;
                        open.push(s);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // Read every connection dry; drop the ones QEMU closed.
        open.retain_mut(|s| loop {
            match s.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A pass cancelled mid-write resets its connection: that pass is over.
                Err(_) => return false,
            }
        });
        if stopping {
            return Ok(());
        }
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(open.len() + 1);
        fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
        fds.extend(
            open.iter()
                .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN)),
        );
        match poll(&mut fds, PollTimeout::from(POLL_MS)) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::{Duration, Instant};

    fn wait_for(what: &str, f: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn reads_and_drops_every_pass_even_overlapping_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("migrate-0.sock");
        let sink = MigrationSink::start(&path, &CpuSet::new()).unwrap();
        let mut first = UnixStream::connect(&path).unwrap();
        first.write_all(&vec![7u8; 3 << 20]).unwrap();
        // The next pass connects before the first one is closed.
        let mut second = UnixStream::connect(&path).unwrap();
        second.write_all(&[1u8; 1000]).unwrap();
        drop(first);
        second.write_all(&[1u8; 24]).unwrap();
        wait_for("every byte", || sink.bytes() == (3 << 20) + 1024);
        assert_eq!(sink.connections(), 2);
        let counter = sink.bytes_counter();
        assert_eq!(sink.stop().unwrap(), (3 << 20) + 1024);
        assert_eq!(counter.load(Ordering::Relaxed), (3 << 20) + 1024);
        assert!(!path.exists(), "the socket is removed");
        // A writer to a stopped sink is refused, not stuck.
        assert!(UnixStream::connect(&path).is_err());
    }

    #[test]
    fn an_existing_path_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taken");
        std::fs::write(&path, b"").unwrap();
        let e = MigrationSink::start(&path, &CpuSet::new()).unwrap_err();
        assert!(e.to_string().contains("taken"), "{e}");
        assert!(path.exists(), "never removed what it did not create");
    }

    #[test]
    fn pinned_to_the_cpus_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let cpu = pinlat::sched::get_affinity(0).unwrap()[0];
        let sink = MigrationSink::start(&path, &[cpu].into_iter().collect()).unwrap();
        let pid = std::process::id() as i32;
        wait_for("the sink thread pinned", || {
            crate::procfs::Procfs::default()
                .read_threads(pid)
                .unwrap()
                .iter()
                .any(|t| t.comm == "migrate-sink" && t.cpus_allowed == [cpu])
        });
        drop(sink);
    }
}
