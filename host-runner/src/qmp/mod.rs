//! A QEMU Machine Protocol (QMP) client: how pinlat learns QEMU's thread ids and how the
//! `mgmt-poll`, `mgmt-storm` and `migrate` scenarios load the emulator threads (`mgmt.rs`,
//! `storm.rs`, `migration.rs`).
//!
//! QMP is line-delimited JSON over a socket (QEMU `docs/interop/qmp-spec.rst`): the server sends
//! a greeting, the client must send `qmp_capabilities`, then each `{"execute": …, "id": …}` gets
//! one `{"return": …}` or `{"error": {"class", "desc"}}` carrying the same `id`, with
//! asynchronous `{"event": …}` messages interleaved at any time. The client is generic over
//! `Read + Write` so tests feed it scripted transcripts (as cloud-hypervisor's `api_client`).
//!
//! A broken or hostile peer can only produce an error: every reply is capped in size, each
//! command has a deadline, and nothing here panics on input.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Default cap on one QMP message, in bytes.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 << 20;
/// Default deadline for one command, greeting included.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// How many unread events are kept; older ones are dropped (and counted).
pub const MAX_QUEUED_EVENTS: usize = 256;

/// Errors talking QMP.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// The socket failed.
    #[error("QMP I/O error")]
    Io(#[source] io::Error),
    /// QEMU closed the connection (it exited or crashed).
    #[error("QMP connection closed by QEMU")]
    Closed,
    /// No complete reply before the deadline.
    #[error("QMP timed out after {waited_ms} ms waiting for {waiting_for}")]
    Timeout {
        /// What was awaited: `greeting` or the command name.
        waiting_for: String,
        /// How long, in milliseconds.
        waited_ms: u64,
    },
    /// A message longer than the cap.
    #[error("QMP message exceeds {max_bytes} bytes")]
    TooLarge {
        /// The cap, in bytes.
        max_bytes: usize,
    },
    /// Bytes that are not a QMP message (bad JSON, missing fields, wrong types).
    #[error("QMP protocol error: {0}")]
    Protocol(String),
    /// QEMU answered the command with an error.
    #[error("QMP command '{command}' failed: {class}: {desc}")]
    Command {
        /// The command.
        command: String,
        /// QEMU's error class, e.g. `CommandNotFound`, `GenericError`.
        class: String,
        /// QEMU's message.
        desc: String,
    },
    /// The socket never accepted a connection before the deadline.
    #[error("QMP socket {path} not connectable within {waited_ms} ms")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// How long we tried, in milliseconds.
        waited_ms: u64,
        /// The last connect error.
        #[source]
        source: io::Error,
    },
}

impl QmpError {
    /// True if QEMU said it does not know the command.
    pub fn is_command_not_found(&self) -> bool {
        matches!(self, QmpError::Command { class, .. } if class == "CommandNotFound")
    }
}

/// QEMU's version from the QMP greeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QemuVersion {
    /// Major version, e.g. 7.
    pub major: u32,
    /// Minor version, e.g. 2.
    pub minor: u32,
    /// Micro version, e.g. 22.
    pub micro: u32,
    /// Distribution package string, e.g. `Debian 1:7.2+dfsg-7+deb12u18+b3`.
    pub package: String,
}

/// An asynchronous QMP event (e.g. `SHUTDOWN`, `STOP`, `RESET`).
#[derive(Debug, Clone, PartialEq)]
pub struct QmpEvent {
    /// The event name.
    pub event: String,
    /// The event's `data`, or `null`.
    pub data: Value,
    /// QEMU's timestamp in microseconds since the Unix epoch (0 if absent).
    pub timestamp_us: u64,
}

/// One vCPU from `query-cpus-fast`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct VcpuThread {
    /// The vCPU index (0-based), as `-smp` numbers them.
    #[serde(rename = "cpu-index")]
    pub cpu_index: u32,
    /// The host thread id (tid) running this vCPU.
    #[serde(rename = "thread-id")]
    pub thread_id: i32,
    /// The QOM path of the CPU object.
    #[serde(rename = "qom-path", default)]
    pub qom_path: String,
}

/// One iothread from `query-iothreads`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct IoThread {
    /// The iothread's id (`-object iothread,id=…`).
    pub id: String,
    /// The host thread id.
    #[serde(rename = "thread-id")]
    pub thread_id: i32,
}

/// The VM run state from `query-status`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct VmStatus {
    /// Run state, e.g. `running`, `paused`, `shutdown`, `guest-panicked`.
    pub status: String,
    /// Whether vCPUs are running.
    pub running: bool,
}

/// Which statistics `query-stats` should return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsTarget {
    /// Per-VM statistics.
    Vm,
    /// Per-vCPU statistics.
    Vcpu,
}

impl StatsTarget {
    fn as_str(self) -> &'static str {
        match self {
            StatsTarget::Vm => "vm",
            StatsTarget::Vcpu => "vcpu",
        }
    }
}

/// A QMP client over any byte stream that is both readable and writable.
pub struct QmpClient<S> {
    stream: S,
    pending: Vec<u8>,
    next_id: u64,
    version: QemuVersion,
    events: VecDeque<QmpEvent>,
    dropped_events: u64,
    max_message_bytes: usize,
    command_timeout: Duration,
}

impl<S> std::fmt::Debug for QmpClient<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QmpClient")
            .field("version", &self.version)
            .field("next_id", &self.next_id)
            .field("queued_events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl<S: Read + Write> QmpClient<S> {
    /// Reads the greeting and negotiates capabilities (`qmp_capabilities`), with the default
    /// deadline and size cap.
    pub fn handshake(stream: S) -> Result<Self, QmpError> {
        Self::handshake_with(stream, DEFAULT_COMMAND_TIMEOUT, DEFAULT_MAX_MESSAGE_BYTES)
    }

    /// Like [`QmpClient::handshake`] with an explicit per-command deadline and message cap.
    /// The deadline is checked between reads, so a stream without its own read timeout can
    /// still block; [`connect_unix`] sets one.
    pub fn handshake_with(
        stream: S,
        command_timeout: Duration,
        max_message_bytes: usize,
    ) -> Result<Self, QmpError> {
        let mut client = QmpClient {
            stream,
            pending: Vec::new(),
            next_id: 1,
            version: QemuVersion {
                major: 0,
                minor: 0,
                micro: 0,
                package: String::new(),
            },
            events: VecDeque::new(),
            dropped_events: 0,
            max_message_bytes,
            command_timeout,
        };
        let deadline = Instant::now() + command_timeout;
        let greeting = loop {
            let msg = client.read_message("greeting", deadline)?;
            if msg.get("event").is_some() {
                client.push_event(&msg);
                continue;
            }
            break msg;
        };
        client.version = parse_greeting(&greeting)?;
        client.execute("qmp_capabilities", None)?;
        Ok(client)
    }

    /// The QEMU version announced in the greeting.
    pub fn version(&self) -> &QemuVersion {
        &self.version
    }

    /// Runs one command and returns its `return` value. Events that arrive meanwhile are
    /// queued (see [`QmpClient::take_events`]); replies carrying another command's id (left
    /// over from a command that timed out) are skipped.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut req = json!({ "execute": command, "id": id });
        if let Some(args) = arguments {
            req["arguments"] = args;
        }
        let mut line = serde_json::to_vec(&req).map_err(|e| QmpError::Protocol(e.to_string()))?;
        line.push(b'\n');
        self.stream.write_all(&line).map_err(map_io)?;
        self.stream.flush().map_err(map_io)?;

        let deadline = Instant::now() + self.command_timeout;
        loop {
            let msg = self.read_message(command, deadline)?;
            if msg.get("event").is_some() {
                self.push_event(&msg);
                continue;
            }
            match msg.get("id") {
                Some(v) if v.as_u64() != Some(id) => continue,
                _ => {}
            }
            if let Some(ret) = msg.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = msg.get("error") {
                let field = |k: &str| err.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                return Err(QmpError::Command {
                    command: command.to_owned(),
                    class: field("class"),
                    desc: field("desc"),
                });
            }
            return Err(QmpError::Protocol(format!(
                "reply to '{command}' has neither return nor error: {}",
                truncate(&msg.to_string(), 200)
            )));
        }
    }

    /// Runs a command and deserializes its `return` value into `T`.
    pub fn execute_as<T: DeserializeOwned>(
        &mut self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<T, QmpError> {
        let value = self.execute(command, arguments)?;
        serde_json::from_value(value)
            .map_err(|e| QmpError::Protocol(format!("unexpected '{command}' reply: {e}")))
    }

    /// `query-cpus-fast`: each vCPU's index and host thread id, sorted by index.
    pub fn query_cpus_fast(&mut self) -> Result<Vec<VcpuThread>, QmpError> {
        let mut cpus: Vec<VcpuThread> = self.execute_as("query-cpus-fast", None)?;
        cpus.sort_by_key(|c| c.cpu_index);
        Ok(cpus)
    }

    /// `query-iothreads`: each iothread's id and host thread id.
    pub fn query_iothreads(&mut self) -> Result<Vec<IoThread>, QmpError> {
        self.execute_as("query-iothreads", None)
    }

    /// `query-status`: the VM run state.
    pub fn query_status(&mut self) -> Result<VmStatus, QmpError> {
        self.execute_as("query-status", None)
    }

    /// `query-stats` for one target (QEMU ≥ 7.1). Under TCG QEMU 7.2 returns an empty list
    /// (only KVM provides statistics); the call still costs a main-loop round trip.
    pub fn query_stats(&mut self, target: StatsTarget) -> Result<Value, QmpError> {
        self.execute("query-stats", Some(json!({ "target": target.as_str() })))
    }

    /// `query-blockstats`: per-drive I/O statistics (an empty list without drives).
    pub fn query_blockstats(&mut self) -> Result<Value, QmpError> {
        self.execute("query-blockstats", None)
    }

    /// `cont`: starts (or resumes) the vCPUs of a VM started with `-S` or stopped.
    pub fn cont(&mut self) -> Result<(), QmpError> {
        self.execute("cont", None).map(|_| ())
    }

    /// `quit`: asks QEMU to exit at once. QEMU may close the socket before replying, so a
    /// closed connection counts as success.
    pub fn quit(&mut self) -> Result<(), QmpError> {
        match self.execute("quit", None) {
            Ok(_) | Err(QmpError::Closed) => Ok(()),
            Err(QmpError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Reads and queues any events already sent, waiting at most `wait` for the first one.
    /// Returns the number of events queued by this call.
    pub fn poll_events(&mut self, wait: Duration) -> Result<usize, QmpError> {
        let before = self.events.len() as u64 + self.dropped_events;
        let deadline = Instant::now() + wait;
        match self.read_message("events", deadline) {
            Ok(msg) if msg.get("event").is_some() => self.push_event(&msg),
            Ok(msg) => {
                return Err(QmpError::Protocol(format!(
                    "unsolicited reply: {}",
                    truncate(&msg.to_string(), 200)
                )))
            }
            Err(QmpError::Timeout { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok((self.events.len() as u64 + self.dropped_events - before) as usize)
    }

    /// Removes and returns the queued events, oldest first.
    pub fn take_events(&mut self) -> Vec<QmpEvent> {
        self.events.drain(..).collect()
    }

    /// How many events were dropped because the queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// The underlying stream, e.g. to shorten its read timeout so that
    /// [`QmpClient::poll_events`] waits no longer than asked (commands still wait for their
    /// own deadline), or to shut it down from another thread.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The underlying stream.
    pub fn into_inner(self) -> S {
        self.stream
    }

    fn push_event(&mut self, msg: &Value) {
        let ts = &msg["timestamp"];
        let timestamp_us = ts["seconds"].as_u64().unwrap_or(0) * 1_000_000
            + ts["microseconds"].as_u64().unwrap_or(0);
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
            self.dropped_events += 1;
        }
        self.events.push_back(QmpEvent {
            event: msg["event"].as_str().unwrap_or("").to_owned(),
            data: msg.get("data").cloned().unwrap_or(Value::Null),
            timestamp_us,
        });
    }

    /// Reads one newline-terminated JSON object.
    fn read_message(&mut self, waiting_for: &str, deadline: Instant) -> Result<Value, QmpError> {
        let started = Instant::now();
        loop {
            if let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=pos).collect();
                let text = trim_ascii(&line);
                if text.is_empty() {
                    continue;
                }
                let value: Value = serde_json::from_slice(text).map_err(|e| {
                    QmpError::Protocol(format!(
                        "bad JSON ({e}): {}",
                        truncate(&String::from_utf8_lossy(text), 200)
                    ))
                })?;
                if !value.is_object() {
                    return Err(QmpError::Protocol(format!(
                        "message is not an object: {}",
                        truncate(&value.to_string(), 200)
                    )));
                }
                return Ok(value);
            }
            if self.pending.len() > self.max_message_bytes {
                self.pending.clear();
                return Err(QmpError::TooLarge {
                    max_bytes: self.max_message_bytes,
                });
            }
            if Instant::now() >= deadline {
                return Err(QmpError::Timeout {
                    waiting_for: waiting_for.to_owned(),
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(QmpError::Closed),
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() >= deadline {
                        return Err(QmpError::Timeout {
                            waiting_for: waiting_for.to_owned(),
                            waited_ms: started.elapsed().as_millis() as u64,
                        });
                    }
                }
                Err(e) => return Err(map_io(e)),
            }
        }
    }
}

fn map_io(e: io::Error) -> QmpError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => QmpError::Closed,
        _ => QmpError::Io(e),
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &b[start..end]
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn parse_greeting(msg: &Value) -> Result<QemuVersion, QmpError> {
    let qmp = msg
        .get("QMP")
        .ok_or_else(|| QmpError::Protocol("first message is not a QMP greeting".into()))?;
    let v = &qmp["version"]["qemu"];
    let num = |k: &str| -> Result<u32, QmpError> {
        v[k].as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| QmpError::Protocol(format!("greeting lacks version.qemu.{k}")))
    };
    Ok(QemuVersion {
        major: num("major")?,
        minor: num("minor")?,
        micro: num("micro")?,
        package: qmp["version"]["package"].as_str().unwrap_or("").to_owned(),
    })
}

/// Connects to a QMP unix socket, retrying until `deadline` while QEMU has not created or is
/// not yet listening on it, then sets `io_timeout` as the socket's read/write timeout and
/// per-command deadline, and performs the handshake.
pub fn connect_unix(
    path: &Path,
    deadline: Instant,
    io_timeout: Duration,
) -> Result<QmpClient<UnixStream>, QmpError> {
    let started = Instant::now();
    let stream = loop {
        match UnixStream::connect(path) {
            Ok(s) => break s,
            Err(e) => {
                let retryable = matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                );
                if !retryable || Instant::now() >= deadline {
                    return Err(QmpError::Connect {
                        path: path.to_owned(),
                        waited_ms: started.elapsed().as_millis() as u64,
                        source: e,
                    });
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    stream
        .set_read_timeout(Some(io_timeout))
        .map_err(QmpError::Io)?;
    stream
        .set_write_timeout(Some(io_timeout))
        .map_err(QmpError::Io)?;
    QmpClient::handshake_with(stream, io_timeout, DEFAULT_MAX_MESSAGE_BYTES)
}

mod mgmt;
pub mod migration;
pub mod storm;
pub use mgmt::{MgmtPoll, PollRound};
pub use storm::{parse_query, Storm};

#[cfg(test)]
mod tests;
