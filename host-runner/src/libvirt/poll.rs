//! `virsh domstats` rounds over one long-lived virsh: one libvirt connection per guest, as
//! nova's, collectd's and Prometheus' libvirt exporter keep theirs, each round answered by
//! libvirt's `virConnectGetAllDomainStats` (the QMP queries libvirt makes for it reach QEMU's
//! main loop: the load a real cloud puts on an RT guest).
//!
//! virsh reads commands from its stdin; after each `domstats` an `echo` of a marker ends the
//! round. The marker is written quoted in two parts (`'PINLAT''-END'`), so virsh's echo of the
//! command line never contains it and only the echo's output does.

use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::{Arc, Mutex};

use super::Virsh;

/// What virsh prints for the round's marker.
const MARKER: &str = "PINLAT-END";

/// One guest's stats poller.
#[derive(Debug)]
pub struct DomstatsPoller {
    /// Shared with whoever must end a round blocked on a daemon that no longer answers
    /// ([`DomstatsPoller::process`]).
    child: Arc<Mutex<Child>>,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    domain: String,
}

impl DomstatsPoller {
    /// Starts virsh on `virsh`'s connection for `domain`.
    pub fn start(virsh: &Virsh, domain: &str) -> io::Result<Self> {
        let mut child = virsh
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("no stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        Ok(DomstatsPoller {
            child: Arc::new(Mutex::new(child)),
            stdin,
            stdout: BufReader::new(stdout),
            domain: domain.to_owned(),
        })
    }

    /// The virsh process, for a caller that ends a round blocked on a daemon that no longer
    /// answers by killing it (the round then fails with virsh's end of output). Killing it
    /// after this poller was dropped does nothing: the drop has reaped it.
    pub fn process(&self) -> Arc<Mutex<Child>> {
        self.child.clone()
    }

    /// One round: `domstats DOMAIN`. The number of statistics libvirt returned; an error when
    /// it returned none (the domain is gone, or libvirt failed).
    pub fn round(&mut self) -> io::Result<usize> {
        writeln!(self.stdin, "domstats {}", self.domain)?;
        writeln!(self.stdin, "echo 'PINLAT''-END'")?;
        self.stdin.flush()?;
        // Read until the marker: virsh prints its prompt right after the echo's output, with
        // no line end in between, so this reads bytes, not lines.
        let mut text: Vec<u8> = Vec::new();
        loop {
            let chunk = self.stdout.fill_buf()?;
            if chunk.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "virsh exited"));
            }
            text.extend_from_slice(chunk);
            let n = chunk.len();
            self.stdout.consume(n);
            if text.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()) {
                break;
            }
        }
        let stats = String::from_utf8_lossy(&text)
            .lines()
            .filter(|l| l.starts_with("  ") && l.contains('='))
            .count();
        if stats == 0 {
            return Err(io::Error::other(format!(
                "virsh domstats {} returned no statistics",
                self.domain
            )));
        }
        Ok(stats)
    }
}

impl Drop for DomstatsPoller {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}
