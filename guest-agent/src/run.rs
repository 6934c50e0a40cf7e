//! One measurement run: loads, measuring threads, the reporter, and the per-CPU results.
//!
//! Threads: one measuring thread per RT CPU (ring: producer + consumer), pinned and verified;
//! one reporter on the housekeeping CPUs that collects interval histograms through the
//! [`Exchange`]s, merges them into the whole-run histograms and streams `interval` frames; the
//! housekeeping loads. Every thread returns `Result` through its `JoinHandle`; a panic is an
//! error too.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use hdrhistogram::Histogram;
use nix::sys::mman::{mlockall, MlockAllFlags};
use pinlat::agentcfg::AgentConfig;
use pinlat::histo::{new_histogram, Hist};
use pinlat::kinds::WorkloadKind;
use pinlat::wire::{CpuResult, FrameWriter, IntervalReport, LoadResult, Message, TopEvent};

use crate::clock::{mono_ns, Clock};
use crate::opstats::Window;
use crate::recorder::{Exchange, IntervalData, Recorded};
use crate::thread::{StartGate, REPORTER_STACK_BYTES, STACK_BYTES};
use crate::{busy_poll, facts, loads, ring, timer};

/// Where frames go (the guest's `/dev/ttyS1`, or a file in native mode).
pub type Wire = Arc<Mutex<FrameWriter<Box<dyn Write + Send>>>>;

/// How often the reporter looks for finished intervals.
const REPORTER_POLL: Duration = Duration::from_millis(5);

/// Context of an error raised by the measuring thread of one CPU (for the wire's `cpu` field).
#[derive(Debug, Clone, Copy)]
pub struct OnCpu(pub u32);

impl std::fmt::Display for OnCpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Measuring thread on CPU {}", self.0)
    }
}

/// The agent's `hello`: who it is, the facts of its system, the config it runs, and its clock
/// now (the host maps the guest's clock through it).
pub fn hello(facts: &pinlat::wire::SystemFacts, cfg: &AgentConfig) -> Message {
    Message::Hello(pinlat::wire::Hello {
        schema_version: pinlat::wire::SCHEMA_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").into(),
        facts: facts.clone(),
        config: cfg.clone(),
        sent_mono_ns: Some(crate::clock::mono_ns()),
    })
}

/// Send one message if there is a wire.
pub fn send(wire: Option<&Wire>, msg: &Message) -> Result<()> {
    if let Some(w) = wire {
        w.lock()
            .map_err(|_| anyhow!("wire writer poisoned"))?
            .send(msg)
            .context("Cannot send frame")?;
    }
    Ok(())
}

/// Per measuring CPU, owned by the reporter.
struct Stream<'a> {
    cpu: u32,
    exchange: &'a Exchange,
    whole: Histogram<u64>,
    overflow: u64,
    intervals: u64,
}

struct Reporter<'a> {
    workload: WorkloadKind,
    clock: Clock,
    wire: Option<&'a Wire>,
    /// Swapped with the interval's histogram so that sending needs no copy.
    scratch: Option<Histogram<u64>>,
}

impl Reporter<'_> {
    fn process(&mut self, s: &mut Stream<'_>, d: &mut IntervalData) -> Result<()> {
        d.fold();
        s.whole.add(&d.hist).context("merging interval histogram")?;
        s.overflow += d.overflow;
        s.intervals += 1;
        if self.wire.is_some() {
            let start = s.exchange.start_ticks.load(Ordering::Acquire);
            let spare = self
                .scratch
                .take()
                .ok_or_else(|| anyhow!("reporter lost its spare histogram"))?;
            let full = std::mem::replace(&mut d.hist, spare);
            let msg = Message::Interval(IntervalReport {
                cpu: s.cpu,
                workload: self.workload,
                index: d.index,
                start_offset_ns: self.clock.to_ns(d.start_ticks.saturating_sub(start)),
                end_offset_ns: self.clock.to_ns(d.end_ticks.saturating_sub(start)),
                samples: full.len() + d.overflow,
                overflow: d.overflow,
                histogram: Hist(full),
            });
            let sent = send(self.wire, &msg);
            if let Message::Interval(r) = msg {
                let mut h = r.histogram.0;
                h.reset();
                self.scratch = Some(h);
            }
            sent?;
        }
        Ok(())
    }

    fn sweep(&mut self, streams: &mut [Stream<'_>]) -> Result<()> {
        for s in streams.iter_mut() {
            if let Some(mut d) = s.exchange.take_full() {
                let r = self.process(s, &mut d);
                d.reset();
                s.exchange.give_empty(d);
                r?;
            }
        }
        Ok(())
    }
}

/// What a run measured: one result per measuring CPU, one per housekeeping load that
/// measures itself.
#[derive(Debug)]
pub struct Measured {
    /// The `final`s.
    pub results: Vec<CpuResult>,
    /// The `load`s.
    pub loads: Vec<LoadResult>,
}

impl Measured {
    /// Sends the `load`s, then the `final`s, then `done`: the loads come first, so a runner
    /// that stops reading once every final is in still has them.
    pub fn send(&self, wire: Option<&Wire>) -> Result<()> {
        for l in &self.loads {
            send(wire, &Message::Load(l.clone()))?;
        }
        for r in &self.results {
            send(wire, &Message::Final(r.clone()))?;
        }
        send(
            wire,
            &Message::Done(pinlat::wire::Done {
                finals: self.results.len() as u32,
                max_rss_kib: pinlat::host::peak_rss_kib(),
            }),
        )
    }
}

/// Run `cfg` with `clock`, streaming interval frames to `wire`. `guest` (guest mode) makes a
/// failed `mlockall` an error (a warning natively); as PID 1 of a guest it also gives the io
/// and net loads the guest's devices as defaults ([`loads::Place`]).
pub fn measure(
    cfg: &AgentConfig,
    clock: Clock,
    wire: Option<&Wire>,
    guest: bool,
) -> Result<Measured> {
    cfg.validate().context("Invalid agent config")?;
    let online = facts::online_cpus();
    let (producer, consumer) = match cfg.workload {
        WorkloadKind::Ring => cfg
            .ring_cpus()
            .ok_or_else(|| anyhow!("ring CPUs missing"))?,
        _ => (u32::MAX, u32::MAX),
    };
    let measuring: Vec<u32> = match cfg.workload {
        WorkloadKind::Ring => vec![consumer],
        _ => cfg.rt_cpus.clone(),
    };
    let busy: Vec<u32> = match cfg.workload {
        WorkloadKind::Ring => vec![producer, consumer],
        _ => cfg.rt_cpus.clone(),
    };
    for &c in busy.iter().chain(&cfg.housekeeping_cpus) {
        if !online.contains(c) {
            bail!("CPU {c} is not online (online: {online})");
        }
    }
    let housekeeping: Vec<u32> = if cfg.housekeeping_cpus.is_empty() {
        online.iter().filter(|c| !busy.contains(c)).collect()
    } else {
        cfg.housekeeping_cpus.clone()
    };

    if let Err(e) = mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE) {
        if guest {
            return Err(e).context("mlockall");
        }
        eprintln!("pinlat-agent: warning: mlockall failed ({e}): page faults may show as latency; run as root");
    }

    // As cyclictest does: keep the CPUs out of deep C-states for the run (PM QoS request held
    // while the file is open). Absent on kernels without PM QoS; then nothing to do.
    // Said in every result, as cyclictest warns when it cannot.
    let dma_latency = hold_cpu_dma_latency_zero();
    if dma_latency.is_none() && !guest {
        eprintln!("pinlat-agent: warning: could not hold /dev/cpu_dma_latency at 0 (no PM QoS, or not root): deep C-states may add exit latency");
    }
    let place = if guest && std::process::id() == 1 {
        loads::Place::Guest
    } else {
        loads::Place::Host
    };
    // The loads count their operations over the measurement, as the RT CPUs do: after the
    // preheat.
    let window = Window {
        from_ns: mono_ns().saturating_add(cfg.preheat_ms.saturating_mul(1_000_000)),
    };
    let load_set = loads::start(&cfg.loads, &housekeeping, place, window)?;
    let outcome = measure_threads(cfg, clock, wire, &measuring, &housekeeping, producer);
    let loads_result = load_set.stop();
    let mut results = outcome?;
    let loads = loads_result?;
    for r in &mut results {
        r.cpu_dma_latency_held = Some(dma_latency.is_some());
    }
    Ok(Measured { results, loads })
}

fn hold_cpu_dma_latency_zero() -> Option<std::fs::File> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/cpu_dma_latency")
        .ok()?;
    f.write_all(&0i32.to_ne_bytes()).ok()?;
    Some(f)
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, Result<T>>, what: &str) -> Result<T> {
    h.join()
        .map_err(|p| anyhow!("{what} panicked: {}", panic_message(&*p)))?
}

/// Text of a panic payload.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}

fn measure_threads(
    cfg: &AgentConfig,
    clock: Clock,
    wire: Option<&Wire>,
    measuring: &[u32],
    housekeeping: &[u32],
    producer: u32,
) -> Result<Vec<CpuResult>> {
    let exchanges: Vec<Exchange> = measuring.iter().map(|_| Exchange::new()).collect();
    let n_threads = measuring.len() + usize::from(cfg.workload == WorkloadKind::Ring);
    let gate = StartGate::new(n_threads);
    let done = AtomicBool::new(false);
    let pipe = ring::Pipe::new();
    let mut streams: Vec<Stream<'_>> = measuring
        .iter()
        .zip(&exchanges)
        .map(|(&cpu, exchange)| Stream {
            cpu,
            exchange,
            whole: new_histogram(),
            overflow: 0,
            intervals: 0,
        })
        .collect();
    let mut reporter = Reporter {
        workload: cfg.workload,
        clock: if cfg.workload == WorkloadKind::Timer {
            Clock::monotonic(clock.info.invariant_tsc)
        } else {
            clock
        },
        wire,
        scratch: Some(new_histogram()),
    };
    let rclock = reporter.clock;

    std::thread::scope(|s| -> Result<Vec<CpuResult>> {
        let spawn_err = |e: std::io::Error| anyhow::Error::new(e).context("Cannot spawn thread");
        let rep = std::thread::Builder::new()
            .name("pinlat-report".into())
            .stack_size(REPORTER_STACK_BYTES)
            .spawn_scoped(s, {
                let done = &done;
                move || -> Result<(Reporter<'_>, Vec<Stream<'_>>)> {
                    if !housekeeping.is_empty() {
                        pinlat::sched::set_affinity(0, housekeeping).with_context(|| {
                            format!("Cannot pin the reporter to CPUs {housekeeping:?}")
                        })?;
                    }
                    loop {
                        let finished = done.load(Ordering::Acquire);
                        reporter.sweep(&mut streams)?;
                        if finished {
                            return Ok((reporter, streams));
                        }
                        std::thread::sleep(REPORTER_POLL);
                    }
                }
            })
            .map_err(spawn_err)?;

        let mut workers = Vec::new();
        for (&cpu, ex) in measuring.iter().zip(&exchanges) {
            let name = format!("{}-cpu{cpu}", thread_prefix(cfg.workload));
            let (gate, pipe) = (&gate, &pipe);
            let h = std::thread::Builder::new()
                .name(name)
                .stack_size(STACK_BYTES)
                .spawn_scoped(s, move || match cfg.workload {
                    WorkloadKind::BusyPoll => busy_poll::run(cpu, cfg, clock, gate, ex),
                    WorkloadKind::Timer => timer::run(cpu, cfg, gate, ex),
                    WorkloadKind::Ring => ring::consume(cpu, cfg, clock, gate, pipe, ex),
                })
                .map_err(spawn_err)?;
            workers.push((cpu, h));
        }
        let prod = if cfg.workload == WorkloadKind::Ring {
            let (gate, pipe) = (&gate, &pipe);
            Some(
                std::thread::Builder::new()
                    .name(format!("ring-producer-cpu{producer}"))
                    .stack_size(STACK_BYTES)
                    .spawn_scoped(s, move || ring::produce(producer, cfg, clock, gate, pipe))
                    .map_err(spawn_err)?,
            )
        } else {
            None
        };

        let mut first_err: Option<anyhow::Error> = None;
        let mut recorded: Vec<Option<(u32, Recorded)>> = Vec::new();
        for (cpu, h) in workers {
            match join(h, "measuring thread").with_context(|| OnCpu(cpu)) {
                Ok(r) => recorded.push(r),
                Err(e) => {
                    gate.abort();
                    first_err.get_or_insert(e);
                    recorded.push(None);
                }
            }
        }
        pipe.stop();
        let peer = match prod {
            Some(h) => match join(h, "ring producer").with_context(|| OnCpu(producer)) {
                Ok(p) => p,
                Err(e) => {
                    first_err.get_or_insert(e);
                    None
                }
            },
            None => None,
        };
        done.store(true, Ordering::Release);
        let rep_result = join(rep, "reporter thread");
        if let Some(e) = first_err {
            return Err(e);
        }
        let (mut reporter, mut streams) = rep_result?;
        let mut out = Vec::new();
        for (stream, rec) in streams.iter_mut().zip(recorded) {
            let Some((observed_cpu, mut rec)) = rec else {
                bail!("Measuring thread on CPU {} did not start", stream.cpu);
            };
            reporter.process(stream, &mut rec.last)?;
            out.push(cpu_result(cfg, rclock, stream, observed_cpu, &rec, peer));
        }
        Ok(out)
    })
}

fn thread_prefix(w: WorkloadKind) -> &'static str {
    match w {
        WorkloadKind::BusyPoll => "poll",
        WorkloadKind::Timer => "timer",
        WorkloadKind::Ring => "ring-consumer",
    }
}

fn cpu_result(
    cfg: &AgentConfig,
    clock: Clock,
    s: &Stream<'_>,
    observed_cpu: u32,
    rec: &Recorded,
    peer: Option<u32>,
) -> CpuResult {
    let samples = s.whole.len() + s.overflow;
    CpuResult {
        cpu: observed_cpu,
        workload: cfg.workload,
        peer_cpu: peer,
        clock: clock.info,
        duration_ns: clock.to_ns(rec.stop_ticks.saturating_sub(rec.start_ticks)),
        start_mono_ns: Some(clock.mono_at(rec.start_ticks)),
        end_mono_ns: Some(clock.mono_at(rec.stop_ticks)),
        cpu_dma_latency_held: None,
        samples,
        min_ns: if samples == 0 { 0 } else { rec.min_ns },
        max_ns: rec.max_ns,
        overflow: s.overflow,
        backwards: rec.backwards,
        missed_periods: rec.missed_periods,
        top: rec
            .top
            .iter()
            .map(|&(ns, at)| TopEvent {
                offset_ns: clock.to_ns(at.saturating_sub(rec.start_ticks)),
                latency_ns: ns,
            })
            .collect(),
        intervals: s.intervals,
        late_intervals: rec.late_handoffs,
        histogram: Hist(s.whole.clone()),
    }
}
