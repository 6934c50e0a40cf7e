//! Wire format between the guest agent and the host runner: line frames and a versioned schema.
//!
//! # Frames
//!
//! One frame per line, ASCII header then a JSON body:
//!
//! ```text
//! PLF1 <len> <crc32> <json>\n
//! ```
//!
//! * `PLF1` — magic ([`MAGIC`]), followed by one space.
//! * `<len>` — decimal byte length of `<json>`.
//! * `<crc32>` — CRC-32 (IEEE, as `crc32fast`/zlib) of the `<json>` bytes, 8 lowercase hex digits.
//! * `<json>` — one [`Message`], compact JSON (never contains a raw newline).
//! * The line ends in `\n`; `\r\n` (a tty's `onlcr`) is accepted too.
//!
//! The serial port also carries whatever else the guest prints. `FrameDecoder` (feature `host`:
//! only the host decodes) is fed arbitrary
//! byte chunks: lines without the magic are console noise and are counted, not errors; a frame
//! whose header, length, CRC or JSON is wrong is dropped and counted (`DecoderStats`); a line
//! longer than the frame cap ([`DEFAULT_MAX_FRAME_BYTES`]) is discarded up to the next newline
//! without being buffered. The decoder never panics and its memory is bounded by the cap.
//!
//! # Messages (schema [`SCHEMA_VERSION`])
//!
//! JSON objects tagged by `"type"`:
//!
//! | type | struct | when |
//! |---|---|---|
//! | `hello` | [`Hello`] | first (of each phase, in a shared boot): schema and agent versions, [`SystemFacts`] (kernel, PREEMPT_RT, clocksource, cmdline, isolated CPUs, CPU count, measuring clock and TSC frequency, modules loaded and virtio devices found, the guest's tuning: [`GuestTuning`]), the [`AgentConfig`] |
//! | `interval` | [`IntervalReport`] | every `report_interval_ms` per measuring CPU: that interval's histogram |
//! | `load` | [`LoadResult`] | once per housekeeping load that measures itself (`io`, `net`) at the end, before the `final`s: per operation kind (`read`, `write`, `flush`, `rtt`) count, bytes, errors, first error and latency histogram; net's frames sent, received, lost |
//! | `final` | [`CpuResult`] | once per measuring CPU at the end: whole-run histogram, samples, min/max, top-N events, overflow, measured duration, clock |
//! | `error` | [`ErrorReport`] | any failure, with the CPU if one thread failed; the agent powers off after it |
//! | `done` | [`Done`] | last frame of a successful measurement (in a shared boot the agent then waits for the next command) |
//!
//! Histograms are HdrHistogram V2 in base64 ([`crate::histo::Hist`]): plain V2 (`HISTE…`) from
//! the agent as `scripts/build-agent.sh` builds it (without the `host` feature), V2 deflate
//! (`HISTF…`) from builds with it; readers accept both. All times are integer nanoseconds,
//! offsets counted from the start of the measurement (after the preheat).
//! Native mode writes a [`RunResult`] holding the same [`CpuResult`]s.
//!
//! A change that an old reader would misread bumps [`SCHEMA_VERSION`]; added optional fields
//! do not, nor does an added message type (`load`): a reader that predates it refuses that
//! frame as bad JSON, counts it, and reads every other frame as before.
//!
//! # Commands
//!
//! The runner writes [`Command`]s to the agent in the same frames on the other direction of
//! the port: `go` (measure now), and in a shared boot `phase` (the next phase's config) and
//! `quit` (power off). The agent decodes them with the same [`FrameDecoder`], capped at
//! [`MAX_COMMAND_BYTES`].

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::agentcfg::AgentConfig;
use crate::histo::Hist;
use crate::kinds::WorkloadKind;

mod decode;
mod devices;
mod load;
mod tuning;
pub use decode::{Decoded, DecoderStats, FrameDecoder, Rejection};
pub use devices::{virtio_kind, DeviceFacts, ModuleLoad, VirtioDevice};
pub use load::{per_second, LoadKind, LoadResult, NetCounts, OpKind, OpStats, NET_LOST_AFTER_NS};
pub use tuning::{
    kernel_cpu_list, GuestIrq, GuestTuning, SysctlReadBack, CPUIDLE_DRIVER_PATH,
    CPUIDLE_GOVERNOR_PATH, CPUIDLE_GOVERNOR_RO_PATH, MAX_IRQS, NOHZ_FULL_PATH, PROC_IRQ_DIR,
    SCHED_RT_RUNTIME_PATH, TIMER_MIGRATION_PATH,
};

/// Frame magic, first bytes of a frame line (followed by a space).
pub const MAGIC: &[u8; 4] = b"PLF1";
/// Version of the message schema in this file.
pub const SCHEMA_VERSION: u32 = 1;
/// Default cap on a frame's JSON body, bytes (4 MiB).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 4 << 20;
/// Longest header accepted before the body: `PLF1 ` + 10 digits + space + 8 hex + space.
const MAX_HEADER_BYTES: usize = 5 + 10 + 1 + 8 + 1;

/// Which clock timed a measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClockSource {
    /// `rdtsc`, converted with a frequency calibrated against `CLOCK_MONOTONIC`.
    Tsc,
    /// `clock_gettime(CLOCK_MONOTONIC)`.
    Monotonic,
}

/// The clock a measurement used and what is known about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockInfo {
    /// The clock read in the measurement loop.
    pub source: ClockSource,
    /// TSC frequency measured against `CLOCK_MONOTONIC`, Hz (`None` when the TSC is not used).
    pub tsc_hz: Option<u64>,
    /// CPUID says the TSC is invariant (constant rate, runs in deep C-states).
    pub invariant_tsc: bool,
    /// Interquartile spread of the TSC calibration windows, ppm (`None`: not calibrated). A
    /// clock that fell back to `CLOCK_MONOTONIC` says here why.
    #[serde(default)]
    pub calibration_spread_ppm: Option<u32>,
}

/// Facts about the system the agent runs on (the guest, or the host in native mode).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemFacts {
    /// `uname -r`.
    pub kernel_release: String,
    /// `uname -v` (contains `PREEMPT_RT` on RT kernels).
    pub kernel_version: String,
    /// `/sys/kernel/realtime` is 1.
    pub preempt_rt: bool,
    /// `/sys/devices/system/clocksource/clocksource0/current_clocksource`.
    pub clocksource: String,
    /// `/proc/cmdline`, trimmed.
    pub cmdline: String,
    /// `/sys/devices/system/cpu/isolated` as the kernel prints it (CPU list, may be empty).
    pub isolated_cpus: String,
    /// Online CPUs (`sysconf(_SC_NPROCESSORS_ONLN)`).
    pub cpu_count: u32,
    /// The clock the busy-poll/ring workloads use in this run.
    pub clock: ClockInfo,
    /// Kernel modules the agent loaded and the virtio devices it found.
    #[serde(default)]
    pub devices: DeviceFacts,
    /// The guest's side of realtime readiness (cpuidle, effective isolation, RT sysctls, IRQ
    /// affinity, the run's sysctls read back); `None` from agents before these facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<GuestTuning>,
}

/// First message: who is talking and about what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`SCHEMA_VERSION`] of the sender.
    pub schema_version: u32,
    /// Agent crate version.
    pub agent_version: String,
    /// Guest facts.
    pub facts: SystemFacts,
    /// The config the agent is running.
    pub config: AgentConfig,
    /// The sender's `CLOCK_MONOTONIC` when it sent this hello, ns: the host maps the guest's
    /// clock to its own through the moment the hello arrives.
    #[serde(default)]
    pub sent_mono_ns: Option<u64>,
}

/// One interval's histogram for one CPU.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "host", derive(Deserialize))]
pub struct IntervalReport {
    /// CPU the samples were taken on.
    pub cpu: u32,
    /// WorkloadKind of the run.
    pub workload: WorkloadKind,
    /// 0-based interval number on this CPU.
    pub index: u64,
    /// Start of the interval, ns from the start of the measurement.
    pub start_offset_ns: u64,
    /// End of the interval, ns from the start of the measurement.
    pub end_offset_ns: u64,
    /// Samples in the interval, overflow included.
    pub samples: u64,
    /// Samples above the histogram's range (not in `histogram`).
    pub overflow: u64,
    /// Latencies of the interval, ns.
    pub histogram: Hist,
}

/// One of the largest samples of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopEvent {
    /// When it ended, ns from the start of the measurement.
    pub offset_ns: u64,
    /// The sample, ns.
    pub latency_ns: u64,
}

/// Whole-run result of one measuring CPU; the `final` message and the entries of
/// [`RunResult::results`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "host", derive(Deserialize))]
pub struct CpuResult {
    /// CPU the samples were taken on, as observed by the measuring thread (`sched_getcpu`).
    pub cpu: u32,
    /// The workload of the run.
    pub workload: WorkloadKind,
    /// Ring: the producer's CPU (this result is the consumer's). `None` otherwise.
    pub peer_cpu: Option<u32>,
    /// Clock that timed the samples.
    pub clock: ClockInfo,
    /// Measured duration of the recording phase, ns (by `clock`).
    pub duration_ns: u64,
    /// `CLOCK_MONOTONIC` of the measuring system when recording started, ns (mapped from
    /// `clock`). In native mode this is the host's own clock; in a guest, the guest's.
    #[serde(default)]
    pub start_mono_ns: Option<u64>,
    /// `CLOCK_MONOTONIC` when recording stopped, ns.
    #[serde(default)]
    pub end_mono_ns: Option<u64>,
    /// Whether the agent held `/dev/cpu_dma_latency` at 0 during the run, as cyclictest does
    /// (`Some(false)`: it could not, and deep C-states may add latency; `None`: not reported).
    #[serde(default)]
    pub cpu_dma_latency_held: Option<bool>,
    /// Number of samples, overflow included.
    pub samples: u64,
    /// Smallest sample, ns (exact; 0 when there are none).
    pub min_ns: u64,
    /// Largest sample, ns (exact, even if it overflowed the histogram).
    pub max_ns: u64,
    /// Samples the histogram could not record (above its range, ~60 s); in `max_ns`, not in
    /// `histogram`.
    pub overflow: u64,
    /// Times the clock read went backwards (not recorded as samples).
    pub backwards: u64,
    /// Timer: periods skipped because a wake-up came after the next deadline. 0 otherwise.
    pub missed_periods: u64,
    /// The largest samples, largest first.
    pub top: Vec<TopEvent>,
    /// Number of interval reports made.
    pub intervals: u64,
    /// Interval boundaries at which the reporter had not handed the spare histogram back; the
    /// interval then went on to the next boundary (its report has the true start and end).
    pub late_intervals: u64,
    /// All samples of the run, ns.
    pub histogram: Hist,
}

/// A failure the agent reports before powering off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    /// The error and its causes, `: `-joined.
    pub message: String,
    /// The measuring CPU it concerns, if any.
    pub cpu: Option<u32>,
}

/// Last frame of a successful run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// Number of `final` frames sent.
    pub finals: u32,
    /// The agent's peak resident memory (`VmHWM`), KiB, when it could read it: what a long
    /// run costs the guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rss_kib: Option<u64>,
}

/// Native mode's output: everything a guest run streams, in one JSON document.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "host", derive(Deserialize))]
pub struct RunResult {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Agent crate version.
    pub agent_version: String,
    /// Facts of the machine that ran it.
    pub facts: SystemFacts,
    /// The config that ran.
    pub config: AgentConfig,
    /// One result per measuring CPU.
    pub results: Vec<CpuResult>,
    /// One result per housekeeping load that measures itself (`io`, `net`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loads: Vec<LoadResult>,
}

/// A command from the host to the agent, framed as messages are, on the same serial port
/// (`ttyS1`, the host writing through QEMU's `input-path`).
///
/// In a shared boot (README "One boot, many measurements") the agent measures phase after
/// phase: the initramfs config is phase 0 (its [`AgentConfig::phase`] is `Some(0)`); after
/// that phase's `done` the agent waits for the next command: [`Command::Phase`] (it answers
/// with a `hello` echoing the phase's config, waits for `go`, measures, ends with `done`) or
/// [`Command::Quit`] (it powers off). An agent that predates phases reads `go` as before and
/// refuses the other commands as bad JSON, which it ignores.
// A command is built once per phase and sent at once; its size (a whole agent config) costs
// nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Start measuring now: every guest of a run is told at once, when all have said hello.
    Go,
    /// Measure the next phase of a shared boot with this config (its `phase` set).
    Phase {
        /// The phase's config, as the agent's hello must echo it.
        config: AgentConfig,
    },
    /// No more phases: power off.
    Quit,
}

/// The largest command frame the agent accepts, bytes: a phase's whole agent config is about
/// 1 KiB of JSON.
pub const MAX_COMMAND_BYTES: usize = 64 << 10;

/// Frame `cmd` as one line, `\n` included.
pub fn encode_command(cmd: &Command) -> Result<Vec<u8>, WireError> {
    let json = serde_json::to_vec(cmd).map_err(WireError::Json)?;
    Ok(encode_body(&json))
}

/// A message on the wire.
// A message is built once per frame and moved, never stored by the thousand: the hello's size
// (it carries the whole agent config) costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "host", derive(Deserialize))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// See [`Hello`].
    Hello(Hello),
    /// See [`IntervalReport`].
    Interval(IntervalReport),
    /// See [`LoadResult`].
    Load(LoadResult),
    /// See [`CpuResult`].
    Final(CpuResult),
    /// See [`ErrorReport`].
    Error(ErrorReport),
    /// See [`Done`].
    Done(Done),
}

impl CpuResult {
    /// The percentile summary of this result, as the report computes it
    /// ([`crate::histo::Summary`]): percentiles by rank with the overflow ranked above the
    /// histogram's range (a rank there is "overflow"), bounded by the exact `max_ns`; exact min
    /// and max; the measured duration.
    pub fn summary(&self) -> crate::histo::Summary {
        crate::histo::Summary::new(
            &self.histogram.0,
            self.overflow,
            self.min_ns,
            self.max_ns,
            self.duration_ns,
        )
    }
}

/// Errors of frame encoding.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The message does not serialise (a histogram failed to encode).
    #[error("Cannot serialise message")]
    Json(#[source] serde_json::Error),
    /// Writing the frame failed.
    #[error("Cannot write frame")]
    Io(#[source] std::io::Error),
}

/// Frame `msg` as one line, `\n` included.
pub fn encode(msg: &Message) -> Result<Vec<u8>, WireError> {
    let json = serde_json::to_vec(msg).map_err(WireError::Json)?;
    Ok(encode_body(&json))
}

/// Frame an already serialised body (must not contain `\n`) as one line.
pub fn encode_body(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + MAX_HEADER_BYTES + 1);
    out.extend_from_slice(MAGIC);
    // Writing to a Vec cannot fail.
    let _ = write!(out, " {} {:08x} ", json.len(), crc32fast::hash(json));
    out.extend_from_slice(json);
    out.push(b'\n');
    out
}

/// Writes frames to a byte sink, one `write_all` and `flush` per frame.
#[derive(Debug)]
pub struct FrameWriter<W: Write> {
    inner: W,
}

impl<W: Write> FrameWriter<W> {
    /// Wrap a sink (a raw-mode tty, a file, a `Vec`).
    pub fn new(inner: W) -> Self {
        FrameWriter { inner }
    }

    /// Frame and write `msg`, then flush.
    pub fn send(&mut self, msg: &Message) -> Result<(), WireError> {
        let frame = encode(msg)?;
        self.inner.write_all(&frame).map_err(WireError::Io)?;
        self.inner.flush().map_err(WireError::Io)
    }

    /// The sink back.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

/// A busy-poll result of CPU 1 on a 1 Hz invariant TSC, 1 ns long, with nothing recorded, for
/// tests to fill in.
#[cfg(test)]
pub(crate) fn test_cpu_result() -> CpuResult {
    CpuResult {
        cpu: 1,
        workload: WorkloadKind::BusyPoll,
        peer_cpu: None,
        clock: ClockInfo {
            source: ClockSource::Tsc,
            tsc_hz: Some(1),
            invariant_tsc: true,
            calibration_spread_ppm: None,
        },
        duration_ns: 1,
        start_mono_ns: None,
        end_mono_ns: None,
        cpu_dma_latency_held: None,
        samples: 0,
        min_ns: 0,
        max_ns: 0,
        overflow: 0,
        backwards: 0,
        missed_periods: 0,
        top: Vec::new(),
        intervals: 0,
        late_intervals: 0,
        histogram: Hist(crate::histo::new_histogram()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_layout_is_as_documented() {
        let f = encode(&Message::Done(Done {
            finals: 2,
            max_rss_kib: None,
        }))
        .unwrap();
        let json = br#"{"type":"done","finals":2}"#;
        let want = format!("PLF1 {} {:08x} ", json.len(), crc32fast::hash(json));
        assert!(
            f.starts_with(want.as_bytes()),
            "{}",
            String::from_utf8_lossy(&f)
        );
        assert!(f.ends_with(b"}\n"));
    }

    fn result(
        h: hdrhistogram::Histogram<u64>,
        overflow: u64,
        min_ns: u64,
        max_ns: u64,
    ) -> CpuResult {
        CpuResult {
            samples: h.len() + overflow,
            min_ns,
            max_ns,
            overflow,
            histogram: crate::histo::Hist(h),
            ..test_cpu_result()
        }
    }

    #[test]
    fn summary_is_bounded_by_the_exact_max() {
        let mut h = crate::histo::new_histogram();
        h.record_n(1_000_003, 10).unwrap();
        // HDR alone reports the bucket's top, above anything recorded.
        assert!(h.value_at_quantile(0.9999) > 1_000_003);
        let s = result(h, 0, 1_000_003, 1_000_003).summary();
        assert_eq!(
            (s.p9999_ns.value_ns, s.max_ns, s.min_ns),
            (Some(1_000_003), 1_000_003, 1_000_003)
        );
    }

    /// 990 samples of 1 µs and 10 overflowed (a 70 s stall): p99.9 is rank 999, in the
    /// overflow. Ignoring the overflow put it at 1 µs.
    #[test]
    fn summary_ranks_the_overflow_above_the_range() {
        let mut h = crate::histo::new_histogram();
        h.record_n(1_000, 990).unwrap();
        let s = result(h, 10, 1_000, 70_000_000_000).summary();
        assert_eq!(s.samples, 1_000);
        assert_eq!(s.p99_ns.value_ns, Some(1_000));
        assert_eq!(s.p999_ns.value_ns, None);
        assert_eq!(s.p9999_ns.value_ns, None);
        assert_eq!(s.p999_ns.to_string(), "overflow");
        assert_eq!(s.ns_or_max(crate::histo::Quantile::P999), 70_000_000_000);
    }
}
