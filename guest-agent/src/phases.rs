//! What lets one boot measure many times (README "One boot, many measurements"): the runner's
//! commands read from the agent port ([`Commands`]), and a watchdog re-armed for every phase
//! ([`Watchdog`]).
//!
//! The first phase's config is the initramfs's; after its `done` the agent waits here for the
//! next [`Command::Phase`] or [`Command::Quit`]. Nothing runs between phases: the measuring
//! threads, loads and the reporter of a phase are joined before its `done` is sent, and the
//! watchdog thread sleeps on a condition variable, so an idle agent adds no wake-ups to the
//! RT vCPUs.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use pinlat::agentcfg::AgentConfig;
use pinlat::wire::{
    Command, Decoded, ErrorReport, FrameDecoder, FrameWriter, Message, MAX_COMMAND_BYTES,
};

use crate::run::Wire;

/// The runner's commands, read from the agent port (the host→guest direction of `ttyS1`).
pub struct Commands {
    port: File,
    decoder: FrameDecoder<Command>,
    pending: VecDeque<Command>,
}

impl Commands {
    /// Opens the port for reading.
    pub fn open(path: &Path) -> Result<Self> {
        let port = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)
            .with_context(|| format!("Cannot open {} for the runner's commands", path.display()))?;
        Ok(Commands {
            port,
            decoder: FrameDecoder::of(MAX_COMMAND_BYTES),
            pending: VecDeque::new(),
        })
    }

    /// Blocks until the next command; frames it cannot read are dropped (the runner's own
    /// deadlines end a boot whose commands never come).
    fn next(&mut self) -> Result<Command> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(c) = self.pending.pop_front() {
                return Ok(c);
            }
            let n = match self.port.read(&mut buf) {
                Ok(0) => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("Cannot read the runner's commands"),
            };
            for d in self.decoder.feed(&buf[..n]) {
                if let Decoded::Message(c) = d {
                    self.pending.push_back(*c);
                }
            }
        }
    }

    /// Blocks until `go` (true) or `quit` (false); a phase command here is out of order and
    /// ignored.
    pub fn wait_for_go(&mut self) -> Result<bool> {
        loop {
            match self.next()? {
                Command::Go => return Ok(true),
                Command::Quit => return Ok(false),
                Command::Phase { .. } => {}
            }
        }
    }

    /// Blocks until the next phase's config (checked) or `quit` (`None`); a stray `go` is
    /// ignored.
    pub fn next_phase(&mut self) -> Result<Option<AgentConfig>> {
        loop {
            match self.next()? {
                Command::Phase { config } => {
                    config.validate().context("The runner's phase config")?;
                    if config.phase.is_none() {
                        anyhow::bail!("The runner's phase config has no phase index");
                    }
                    return Ok(Some(config));
                }
                Command::Quit => return Ok(None),
                Command::Go => {}
            }
        }
    }
}

/// Time allowed on top of preheat + duration before the watchdog gives up on a phase.
pub const WATCHDOG_SLACK: Duration = Duration::from_secs(60);

/// If a measurement hangs (a thread stuck in the kernel), report it and power off anyway: the
/// host gets an `error` frame instead of a silent timeout. Armed for each measurement,
/// disarmed between them.
pub struct Watchdog {
    armed: Arc<(Mutex<Armed>, Condvar)>,
}

/// When an armed watchdog fires, and the budget it was armed with; `None`: disarmed.
type Armed = Option<(Instant, Duration)>;

impl Watchdog {
    /// Starts the watchdog's thread, disarmed. `path` is the frame port, reopened when the
    /// writer itself is stuck.
    pub fn start(path: PathBuf, wire: Wire, pid1: bool) -> Self {
        let armed = Arc::new((Mutex::new(None::<(Instant, Duration)>), Condvar::new()));
        let shared = armed.clone();
        let spawned = std::thread::Builder::new()
            .name("pinlat-watchdog".into())
            .stack_size(crate::thread::STACK_BYTES)
            .spawn(move || {
                let (lock, cv) = &*shared;
                let Ok(mut slot) = lock.lock() else { return };
                let budget = loop {
                    match *slot {
                        Some((at, budget)) if Instant::now() >= at => break budget,
                        Some((at, _)) => {
                            let wait = at.saturating_duration_since(Instant::now());
                            match cv.wait_timeout(slot, wait) {
                                Ok((s, _)) => slot = s,
                                Err(_) => return,
                            }
                        }
                        None => match cv.wait(slot) {
                            Ok(s) => slot = s,
                            Err(_) => return,
                        },
                    }
                };
                drop(slot);
                fire(budget, &path, &wire, pid1);
            });
        if let Err(e) = spawned {
            eprintln!("pinlat-agent: warning: no watchdog thread: {e}");
        }
        Watchdog { armed }
    }

    /// Arms the watchdog for one measurement of `cfg`: its preheat + duration +
    /// [`WATCHDOG_SLACK`].
    pub fn arm(&self, cfg: &AgentConfig) {
        let budget =
            Duration::from_millis(cfg.preheat_ms.saturating_add(cfg.duration_ms)) + WATCHDOG_SLACK;
        self.set(Some((Instant::now() + budget, budget)));
    }

    /// The measurement is over.
    pub fn disarm(&self) {
        self.set(None);
    }

    fn set(&self, to: Armed) {
        let (lock, cv) = &*self.armed;
        if let Ok(mut slot) = lock.lock() {
            *slot = to;
            cv.notify_all();
        }
    }
}

/// The watchdog fired: the error on the wire (through a fresh handle if the writer is the
/// stuck one), on the console, then power off.
fn fire(budget: Duration, path: &Path, wire: &Wire, pid1: bool) -> ! {
    let report = Message::Error(ErrorReport {
        message: format!("Run did not finish within {budget:?}: a thread is stuck"),
        cpu: None,
    });
    let sent = match wire.try_lock() {
        Ok(mut w) => w.send(&report).is_ok(),
        Err(_) => false,
    };
    if !sent {
        if let Ok(f) = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(path)
        {
            let _ = FrameWriter::new(f).send(&report);
        }
    }
    let mut console = if pid1 {
        crate::pid1::Console::open()
    } else {
        crate::pid1::Console(None)
    };
    console.line(&format!("error: run did not finish within {budget:?}"));
    if pid1 {
        crate::pid1::power_off(&mut console);
    }
    std::process::exit(3);
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinlat::kinds::WorkloadKind;
    use pinlat::wire::encode_command;
    use std::io::Write;

    #[test]
    fn commands_arrive_in_order_and_a_bad_phase_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("port");
        let mut cfg = AgentConfig::new(WorkloadKind::Timer, vec![1], 1000);
        cfg.phase = Some(1);
        let mut bytes = Vec::new();
        for c in [
            Command::Go,
            Command::Phase {
                config: cfg.clone(),
            },
            Command::Go,
            Command::Quit,
        ] {
            bytes.extend(encode_command(&c).unwrap());
        }
        let mut unphased = cfg.clone();
        unphased.phase = None;
        bytes.extend(encode_command(&Command::Phase { config: unphased }).unwrap());
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&bytes)
            .unwrap();
        let mut c = Commands::open(&path).unwrap();
        assert!(c.wait_for_go().unwrap());
        assert_eq!(c.next_phase().unwrap(), Some(cfg));
        // The stray go is skipped; quit ends the boot.
        assert_eq!(c.next_phase().unwrap(), None);
        let e = c.next_phase().unwrap_err();
        assert!(format!("{e:#}").contains("no phase index"), "{e:#}");
    }
}
