//! The seam under the guest (hyperfine's `Executor` is the model): what the run engine needs
//! of one launched guest, whatever launched it. [`QemuGuest`] is the real one (a QEMU process,
//! its agent channel file, its console log, the pinner); the engine's unit tests drive a
//! scripted one, so the deadline, hang, garbage, flood and early-exit logic is tested in
//! milliseconds while the boot tests prove the real path.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use pinlat::wire::Command;

use super::channel::PipeChannel;
use crate::follow::log_tail;
use crate::pin::Pinner;
use crate::qemu::Qemu;
use crate::qmp::QmpClient;

/// Bytes a guest has written so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputBytes {
    /// The console (ttyS0) log.
    pub console: u64,
    /// The agent channel (ttyS1).
    pub channel: u64,
}

impl OutputBytes {
    /// The console log's size and what was read of the agent channel.
    pub fn of(console_log: &Path, channel: &PipeChannel) -> Self {
        OutputBytes {
            console: std::fs::metadata(console_log).map(|m| m.len()).unwrap_or(0),
            channel: channel.bytes_read(),
        }
    }
}

/// Resuming a paused guest failed.
#[derive(Debug, thiserror::Error)]
#[error("Cannot resume the guest (QMP cont)")]
pub struct ResumeError(#[source] pub anyhow::Error);

/// One launched guest, as the run engine drives it.
pub trait GuestBackend: Send {
    /// When the guest's process started.
    fn started(&self) -> Instant;
    /// Reads at most `max` new bytes of the agent channel into `out`; 0 when there are none.
    fn read_channel(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<usize>;
    /// Sizes of the guest's output so far.
    fn output_bytes(&self) -> OutputBytes;
    /// The exit status once the guest's process has exited.
    fn exited(&mut self) -> Option<String>;
    /// Waits for the process to exit until `deadline`; whether it did.
    fn wait_exit(&mut self, deadline: Instant) -> bool;
    /// Kills the process (idempotent).
    fn kill(&mut self);
    /// The console's last lines, for failure messages.
    fn console_tail(&self) -> String;
    /// The console's last [`pinlat::console::SCAN_TAIL_BYTES`], to explain a failure and find
    /// the warnings the guest kernel printed.
    fn console(&self) -> Vec<u8>;
    /// Lets the guest's vCPUs run (QMP `cont`).
    fn resume(&mut self) -> Result<(), ResumeError>;
    /// Sends a command to the agent.
    fn send(&mut self, cmd: &Command) -> io::Result<()>;
    /// The management QMP socket, when the VM was given one.
    fn mgmt_socket(&self) -> Option<PathBuf>;
    /// The pinner of the guest's threads, when its placement can be read back.
    fn pinner(&mut self) -> Option<&mut Pinner>;
    /// The libvirt domain the guest runs as, when libvirt launched it.
    fn libvirt_domain(&self) -> Option<crate::libvirt::LibvirtDomain> {
        None
    }
    /// What the guest's NIC echo service has seen, when it has a NIC.
    fn net_echo(&self) -> Option<pinlat::result::EchoStats> {
        None
    }
}

/// The last non-empty lines of a console log, `|`-joined.
pub fn console_tail(path: &Path) -> String {
    let tail = log_tail(path, 2048);
    let lines: Vec<&str> = tail.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = &lines[lines.len().saturating_sub(5)..];
    if last.is_empty() {
        "nothing".to_string()
    } else {
        last.join(" | ")
    }
}

/// A QEMU process launched by [`super::launch::QemuLauncher`], paused with its placement
/// applied until [`GuestBackend::resume`].
pub struct QemuGuest {
    /// The process.
    pub qemu: Qemu,
    /// Its threads' placement.
    pub pinner: Pinner,
    /// The control monitor, kept until the guest is resumed.
    pub control: Option<QmpClient<std::os::unix::net::UnixStream>>,
    /// The agent channel, both ways.
    pub channel: PipeChannel,
    /// The console log file.
    pub console_log: PathBuf,
    /// The devices' backends (disk images, NIC echo), for as long as QEMU uses them.
    pub backends: crate::devices::Backends,
}

impl GuestBackend for QemuGuest {
    fn started(&self) -> Instant {
        self.qemu.started()
    }

    fn read_channel(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        self.channel.read_new(out, max)
    }

    fn output_bytes(&self) -> OutputBytes {
        OutputBytes::of(&self.console_log, &self.channel)
    }

    fn exited(&mut self) -> Option<String> {
        self.qemu.try_wait().ok().flatten().map(|s| s.to_string())
    }

    fn wait_exit(&mut self, deadline: Instant) -> bool {
        matches!(self.qemu.wait_until(deadline), Ok(Some(_)))
    }

    fn kill(&mut self) {
        let _ = self.qemu.kill();
    }

    fn console_tail(&self) -> String {
        console_tail(&self.console_log)
    }

    fn console(&self) -> Vec<u8> {
        log_tail(&self.console_log, pinlat::console::SCAN_TAIL_BYTES as u64).into_bytes()
    }

    fn resume(&mut self) -> Result<(), ResumeError> {
        if let Some(mut qmp) = self.control.take() {
            qmp.execute("cont", None)
                .map_err(|e| ResumeError(anyhow::Error::new(e)))?;
        }
        Ok(())
    }

    fn send(&mut self, cmd: &Command) -> io::Result<()> {
        self.channel.send(cmd)
    }

    fn mgmt_socket(&self) -> Option<PathBuf> {
        self.qemu.mgmt_socket().map(Path::to_path_buf)
    }

    fn pinner(&mut self) -> Option<&mut Pinner> {
        Some(&mut self.pinner)
    }

    fn net_echo(&self) -> Option<pinlat::result::EchoStats> {
        self.backends.echo_stats()
    }
}
