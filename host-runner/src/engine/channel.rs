//! The agent channel of a running guest, both ways: QEMU's `-chardev pipe` on `ttyS1` over two
//! FIFOs in the guest's private runtime directory. The runner reads `<base>.out` without
//! blocking and keeps every byte in the results directory (`console/<run>.<guest>.agent`, the
//! raw evidence when frames are rejected; a soak keeps its first [`SOAK_LOG_BYTES`], since the
//! frames it decoded are in its record), and writes [`Command`]s to `<base>.in`.
//!
//! Both FIFOs are created 0600 and opened read-write by the runner before QEMU starts, so
//! neither open blocks and what the guest wrote before QEMU exited stays readable. A runner
//! that stops reading slows only the guest's reporter thread (the UART backs up), never the
//! measuring threads, which never write.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use pinlat::wire::{encode_command, Command};

/// The raw agent stream a soak keeps, bytes: its first hours at 1 s intervals
/// (~1.5 KB a frame per RT vCPU, README "Soak"); the rest is decoded into the run record.
pub const SOAK_LOG_BYTES: u64 = 16 << 20;

/// The runner's ends of one guest's agent channel.
#[derive(Debug)]
pub struct PipeChannel {
    from_guest: File,
    to_guest: File,
    log: File,
    log_limit: u64,
    read: u64,
    base: PathBuf,
}

/// The channel's FIFOs or its log could not be made.
#[derive(Debug, thiserror::Error)]
#[error("Cannot create {}", .path.display())]
pub struct ChannelError {
    /// The FIFO or log.
    pub path: PathBuf,
    /// Cause.
    #[source]
    pub source: io::Error,
}

fn fifo(path: &Path) -> Result<File, ChannelError> {
    let err = |source| ChannelError {
        path: path.to_path_buf(),
        source,
    };
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| err(e.into()))?;
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(err)
}

impl PipeChannel {
    /// Creates `<base>.in` and `<base>.out` (for `-chardev pipe,path=<base>`) and the log the
    /// guest's bytes are kept in (created or truncated), at most `log_limit` of them.
    pub fn create(base: &Path, log: &Path, log_limit: u64) -> Result<Self, ChannelError> {
        let with = |ext: &str| {
            let mut p = base.as_os_str().to_owned();
            p.push(ext);
            PathBuf::from(p)
        };
        Ok(PipeChannel {
            from_guest: fifo(&with(".out"))?,
            to_guest: fifo(&with(".in"))?,
            log: File::create(log).map_err(|source| ChannelError {
                path: log.to_path_buf(),
                source,
            })?,
            log_limit,
            read: 0,
            base: base.to_path_buf(),
        })
    }

    /// The base path QEMU is given.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Reads at most `max` new bytes from the guest into `out` (0: none now), keeping them in
    /// the log.
    pub fn read_new(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        let start = out.len();
        out.resize(start + max, 0);
        let n = loop {
            match self.from_guest.read(&mut out[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break 0,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    out.truncate(start);
                    return Err(e);
                }
            }
        };
        out.truncate(start + n);
        let room = self.log_limit.saturating_sub(self.read);
        let keep = (n as u64).min(room) as usize;
        self.log.write_all(&out[start..start + keep])?;
        if self.read <= self.log_limit && self.read + n as u64 > self.log_limit {
            self.log.write_all(
                format!(
                    "\n# pinlat: the raw stream is kept up to {} bytes in a soak; the frames after it are in the run record\n",
                    self.log_limit
                )
                .as_bytes(),
            )?;
        }
        self.read += n as u64;
        Ok(n)
    }

    /// Bytes read from the guest so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Sends a command to the agent.
    pub fn send(&mut self, cmd: &Command) -> io::Result<()> {
        let frame = encode_command(cmd).map_err(io::Error::other)?;
        self.to_guest.write_all(&frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_go_both_ways_and_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("run.g.agent");
        let mut ch = PipeChannel::create(&dir.path().join("agent"), &log, u64::MAX).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("agent.out"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        // QEMU's side of the FIFOs.
        let mut guest_out = OpenOptions::new()
            .write(true)
            .open(dir.path().join("agent.out"))
            .unwrap();
        let mut guest_in = OpenOptions::new()
            .read(true)
            .open(dir.path().join("agent.in"))
            .unwrap();
        let mut buf = Vec::new();
        assert_eq!(ch.read_new(&mut buf, 64).unwrap(), 0);
        guest_out.write_all(b"hello\n").unwrap();
        drop(guest_out);
        // Written before "QEMU" went away: still there.
        assert_eq!(ch.read_new(&mut buf, 64).unwrap(), 6);
        assert_eq!(buf, b"hello\n");
        assert_eq!(std::fs::read(&log).unwrap(), b"hello\n");
        assert_eq!(ch.bytes_read(), 6);
        ch.send(&Command::Go).unwrap();
        let mut got = [0u8; 64];
        let n = guest_in.read(&mut got).unwrap();
        let text = String::from_utf8_lossy(&got[..n]);
        assert!(
            text.starts_with("PLF1 ") && text.ends_with("{\"type\":\"go\"}\n"),
            "{text}"
        );
    }

    #[test]
    fn a_soak_keeps_the_start_of_the_stream_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("run.g.agent");
        let mut ch = PipeChannel::create(&dir.path().join("agent"), &log, 8).unwrap();
        let mut guest_out = OpenOptions::new()
            .write(true)
            .open(dir.path().join("agent.out"))
            .unwrap();
        let mut buf = Vec::new();
        for chunk in [&b"hello\n"[..], b"world\n", b"more\n"] {
            guest_out.write_all(chunk).unwrap();
            ch.read_new(&mut buf, 64).unwrap();
        }
        // Every byte still reaches the decoder; the log keeps the first 8 and a note.
        assert_eq!(buf, b"hello\nworld\nmore\n");
        assert_eq!(ch.bytes_read(), 17);
        let kept = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            kept,
            "hello\nwo\n# pinlat: the raw stream is kept up to 8 bytes in a soak; the frames after it are in the run record\n"
        );
    }
}
