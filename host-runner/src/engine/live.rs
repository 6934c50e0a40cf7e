//! One guest while it runs: its agent channel decoded frame by frame, every message checked
//! for plausibility ([`crate::validate`]) before it enters the run record, the vCPU threads and
//! the CPU time of every QEMU thread sampled from the host side ([`crate::thread_cpu`]), and
//! the bound on what a flooding guest may write.

use std::time::Instant;

use pinlat::agentcfg::AgentConfig;
use pinlat::result::{CpuSeries, GuestRun};
use pinlat::wire::{Decoded, FrameDecoder, Message};

use super::backend::GuestBackend;
use super::drift::DriftTracker;
use crate::pin::VcpuSampler;
use crate::thread_cpu::ThreadCpuSampler;
use crate::validate::Expect;

/// Bytes read from one guest's agent channel per loop turn; bounds the work a flooding guest
/// can cause per turn.
pub const READ_CHUNK: usize = 1 << 20;
/// Largest frame the runner accepts from a guest, bytes. The largest legitimate frame (a final
/// result: one HDR histogram and the top-N events) is tens of KiB; anything longer is counted
/// as oversize and dropped without being buffered.
pub const MAX_FRAME_BYTES: usize = 1 << 20;
/// Largest console log or agent channel a guest may write in one run, bytes. A real run writes
/// a few MiB at most (an interval frame is ~1.5 KB per RT vCPU under TCG, README "Soak").
pub const MAX_OUTPUT_BYTES: u64 = 256 << 20;
/// Agent channel a long run may write per planned interval and RT vCPU beyond
/// [`MAX_OUTPUT_BYTES`], bytes: ten times a measured frame, so a 24 h soak is never taken for a
/// flood while a flood is still stopped at that rate.
pub const MAX_OUTPUT_PER_INTERVAL_BYTES: u64 = 16 << 10;
/// Reasons for refused guest messages kept per guest for the run's warnings; the rest are only
/// counted.
const MAX_REJECTION_REASONS: usize = 8;

/// A launched guest and what it has said so far.
pub struct LiveGuest {
    /// The guest.
    pub backend: Box<dyn GuestBackend>,
    /// Its record, filled as messages arrive.
    pub record: GuestRun,
    /// The agent's frames.
    pub decoder: FrameDecoder,
    /// Host-side statistics of the vCPU threads.
    pub sampler: VcpuSampler,
    /// CPU time of every QEMU thread, sampled with `sampler`.
    pub thread_cpu: ThreadCpuSampler,
    /// The agent sent `done`.
    pub done: bool,
    /// Final results the run needs from this guest.
    pub finals_expected: usize,
    /// Agent channel bytes this guest may write in this run (at least [`MAX_OUTPUT_BYTES`]).
    pub max_output_bytes: u64,
    /// Interval frames kept whole at most; 0: none are kept whole, only the series (a soak or
    /// a long run, [`pinlat::result::FULL_INTERVALS_MAX`]).
    pub max_intervals: usize,
    /// Interval frames beyond a non-zero `max_intervals`, dropped.
    pub dropped_intervals: u64,
    /// Points each RT vCPU's series keeps ([`pinlat::result::SERIES_MAX_POINTS`]).
    pub series_points: usize,
    /// Interval frames read since the run loop's last turn took them, for the tracer.
    pub arrived: Vec<ArrivedInterval>,
    /// What this run expects from the agent; messages that do not fit are refused.
    pub expect: Expect,
    /// Well-formed messages refused as implausible.
    pub refused: u64,
    /// The first reasons, for the warning.
    pub refused_reasons: Vec<String>,
    /// The run config put into the guest; its hello must echo it.
    pub sent: AgentConfig,
    /// When the hello arrived.
    pub hello_at: Option<Instant>,
    /// The host's `CLOCK_MONOTONIC` when the hello arrived, ns: maps the guest's clock to the
    /// host's.
    pub hello_mono_ns: Option<u64>,
    /// When the guest was released (`cont`).
    pub released: Option<Instant>,
    /// Every read-back of the placement, judged.
    pub drift: DriftTracker,
    /// Read-backs that failed, and the first failure.
    pub read_errors: (u64, Option<String>),
    /// How this guest ended the run, when it is why the run failed.
    pub end: Option<GuestEnd>,
    /// What the guest had written and echoed when this run began: in a shared boot the
    /// phases before it wrote the rest, which is theirs ([`PhaseStart`]); nothing for a guest
    /// launched for this run.
    pub from: PhaseStart,
}

/// The guest's output counters when a phase began, so a phase judges and keeps only its own
/// (the first phase of a boot starts from nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseStart {
    /// Console and agent channel bytes written before the phase.
    pub output: super::backend::OutputBytes,
    /// What the NIC echo had seen before the phase.
    pub echo: Option<pinlat::result::EchoStats>,
}

impl PhaseStart {
    /// The counters of `backend` now.
    pub fn of(backend: &dyn GuestBackend) -> Self {
        PhaseStart {
            output: backend.output_bytes(),
            echo: backend.net_echo(),
        }
    }
}

/// An interval frame as it arrived: what the tracer needs of it once the frame itself is only
/// in the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrivedInterval {
    /// The RT vCPU.
    pub cpu: u32,
    /// Its index on that vCPU.
    pub index: u64,
    /// Start, ns from the start of the measurement.
    pub start_offset_ns: u64,
    /// End, ns from the start of the measurement.
    pub end_offset_ns: u64,
    /// Its largest sample (HDR bucket top), ns; `u64::MAX` when a sample overflowed.
    pub max_ns: u64,
}

/// How a guest ended a run that failed because of it: what the host saw, to be explained by
/// the console ([`pinlat::console`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestEnd {
    /// QEMU exited by itself, with this status.
    QemuExited(String),
    /// No hello before the boot deadline, seconds.
    BootDeadline(u64),
    /// Hello, but not done before the run deadline, seconds after the go.
    RunDeadline(u64),
}

impl LiveGuest {
    /// Whether every final result this guest owes has arrived (or it said `done`).
    pub fn finished(&self) -> bool {
        self.done || self.record.results.len() >= self.finals_expected
    }

    /// Reads and handles everything the agent has written to its channel so far; the interval
    /// frames are added to `arrived` (the run loop takes them each turn).
    pub fn pump(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        let boot = self.backend.started();
        loop {
            buf.clear();
            if self.backend.read_channel(buf, READ_CHUNK)? == 0 {
                return Ok(());
            }
            for d in self.decoder.feed(buf) {
                let Decoded::Message(msg) = d else { continue };
                self.handle(*msg, boot);
            }
            if buf.len() < READ_CHUNK {
                return Ok(());
            }
        }
    }

    fn since_release_ms(&self) -> u64 {
        self.released.map_or(0, |r| r.elapsed().as_millis() as u64)
    }

    /// Reads the placement back and judges it ([`DriftTracker`]); a failed read is counted.
    pub fn check_placement(&mut self) {
        let at_ms = self.since_release_ms();
        let Some(p) = self.backend.pinner() else {
            return;
        };
        match p.observe() {
            Ok(t) => {
                self.drift.observe(at_ms, &t, |x| p.is_degraded_only(x));
                self.record.observed_end = t;
            }
            Err(e) => {
                self.read_errors.0 += 1;
                self.read_errors
                    .1
                    .get_or_insert_with(|| format!("{:#}", anyhow::Error::new(e)));
            }
        }
    }

    /// Samples the vCPU threads (context switches, CPUs seen) and every thread's CPU time if
    /// the placement is readable.
    pub fn sample_vcpus(&mut self) {
        if let Some(p) = self.backend.pinner() {
            if let Ok(t) = p.threads() {
                self.sampler.sample(&t, &p.vcpu_tids());
                let total = p.process_cpu_ticks().ok();
                self.thread_cpu
                    .sample(&t, total, pinlat::host::monotonic_ns(), |x| p.kind_of(x));
            }
        }
    }

    fn handle(&mut self, msg: Message, boot: Instant) {
        let since_boot = || boot.elapsed().as_millis() as u64;
        match msg {
            Message::Hello(h) => {
                if let Err(why) =
                    self.expect
                        .check_hello(&h, &self.sent, self.record.hello.is_some())
                {
                    self.refuse(why);
                    return;
                }
                self.record.boot_to_hello_ms = Some(since_boot());
                self.hello_at = Some(Instant::now());
                self.hello_mono_ns = Some(pinlat::host::monotonic_ns());
                self.record.hello = Some(h);
            }
            Message::Interval(iv) => {
                if let Err(why) = self.expect.check_interval(&iv) {
                    self.refuse(why);
                    return;
                }
                if self.record.boot_to_first_sample_ms.is_none() {
                    self.record.boot_to_first_sample_ms = Some(since_boot());
                    // Host-side statistics cover the measurement, not boot and preheat.
                    self.sampler = VcpuSampler::default();
                    self.thread_cpu = ThreadCpuSampler::default();
                    self.sample_vcpus();
                }
                self.arrived.push(ArrivedInterval {
                    cpu: iv.cpu,
                    index: iv.index,
                    start_offset_ns: iv.start_offset_ns,
                    end_offset_ns: iv.end_offset_ns,
                    max_ns: if iv.overflow > 0 {
                        u64::MAX
                    } else {
                        iv.histogram.0.max()
                    },
                });
                let series = &mut self.record.series;
                let at = match series.iter().position(|s| s.cpu == iv.cpu) {
                    Some(at) => at,
                    None => {
                        series.push(CpuSeries::new(iv.cpu, self.series_points, true));
                        series.len() - 1
                    }
                };
                series[at].push(&iv);
                if self.record.intervals.len() < self.max_intervals {
                    self.record.intervals.push(iv);
                } else if self.max_intervals > 0 {
                    self.dropped_intervals += 1;
                }
            }
            Message::Load(l) => {
                let seen: Vec<_> = self.record.loads.iter().map(|l| l.load).collect();
                if let Err(why) = self.expect.check_load(&l, &self.sent, &seen) {
                    self.refuse(why);
                    return;
                }
                self.record.loads.push(l);
            }
            Message::Final(r) => {
                let seen: pinlat::cpuset::CpuSet =
                    self.record.results.iter().map(|r| r.cpu).collect();
                if let Err(why) = self.expect.check_final(&r, &seen) {
                    self.refuse(why);
                    return;
                }
                if self.record.results.is_empty() {
                    self.measurement_ended();
                }
                self.record.results.push(r);
            }
            Message::Error(e) => {
                if self.record.agent_errors.len() < 64 {
                    self.record.agent_errors.push(e);
                }
            }
            Message::Done(d) => {
                self.done = true;
                self.record.agent_max_rss_kib = d.max_rss_kib;
                self.record.boot_to_done_ms = Some(since_boot());
            }
        }
    }

    /// The measurement is over. QEMU may already be tearing down as the agent powers off, so a
    /// read-back now only replaces the last periodic one if it still sees every thread.
    fn measurement_ended(&mut self) {
        let at_ms = self.since_release_ms();
        let Some(p) = self.backend.pinner() else {
            return;
        };
        if let Ok(t) = p.observe() {
            self.drift.observe(at_ms, &t, |x| p.is_degraded_only(x));
            if t.len() >= self.record.observed_end.len() {
                self.record.observed_end = t;
            }
        }
        let tids = p.vcpu_tids();
        if let Ok(t) = p.threads() {
            self.sampler.sample(&t, &tids);
            let total = p.process_cpu_ticks().ok();
            self.thread_cpu
                .sample(&t, total, pinlat::host::monotonic_ns(), |x| p.kind_of(x));
        }
        self.record.vcpu_stats = self.sampler.finish(&tids, &self.record.planned);
        self.record.thread_cpu = self.thread_cpu.finish(crate::procfs::clock_ticks_per_s());
    }

    /// A reason to stop when the guest's output outgrows anything a run writes (a guest
    /// flooding the disk costs its run, never the results directory).
    pub fn output_too_large(&self) -> Option<String> {
        let all = self.backend.output_bytes();
        let out = super::backend::OutputBytes {
            console: all.console.saturating_sub(self.from.output.console),
            channel: all.channel.saturating_sub(self.from.output.channel),
        };
        let over = |what: &str, limit: u64, wrote: u64| {
            format!(
                "guest {} wrote more than {} MiB to its {what} ({wrote} bytes; console {} bytes, agent channel {} bytes): stopped",
                self.record.guest,
                limit >> 20,
                out.console,
                out.channel
            )
        };
        if out.console > MAX_OUTPUT_BYTES {
            return Some(over("console", MAX_OUTPUT_BYTES, out.console));
        }
        (out.channel > self.max_output_bytes)
            .then(|| over("agent channel", self.max_output_bytes, out.channel))
    }

    /// The console as this run wrote it: its last [`pinlat::console::SCAN_TAIL_BYTES`] without
    /// what earlier phases of the boot wrote (their warnings are in their records).
    pub fn console(&self) -> Vec<u8> {
        let mut c = self.backend.console();
        if self.from.output.console == 0 {
            return c;
        }
        let total = self.backend.output_bytes().console;
        let new = total.saturating_sub(self.from.output.console);
        if (new as usize) < c.len() {
            c.drain(..c.len() - new as usize);
        }
        c
    }

    /// What the NIC echo saw during this run: frames and bytes since it began (connections
    /// are the boot's).
    pub fn net_echo(&self) -> Option<pinlat::result::EchoStats> {
        let now = self.backend.net_echo()?;
        Some(match self.from.echo {
            Some(before) => pinlat::result::EchoStats {
                connections: now.connections,
                frames: now.frames.saturating_sub(before.frames),
                bytes: now.bytes.saturating_sub(before.bytes),
            },
            None => now,
        })
    }

    fn refuse(&mut self, reason: impl std::fmt::Display) {
        self.refused += 1;
        if self.refused_reasons.len() < MAX_REJECTION_REASONS {
            self.refused_reasons.push(reason.to_string());
        }
    }
}
