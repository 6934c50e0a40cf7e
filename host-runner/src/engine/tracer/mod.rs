//! The host tracer of one run (DESIGN: "Who took the pCPU"): a tracefs instance of pinlat's own
//! on the run's RT pCPUs, created and started before the guests are released, read while they
//! measure, stopped when the measurement is over and always removed; then the trace is read
//! against the run's record ([`pinlat::trace::analyse`]) and kept in it.
//!
//! Lifecycle, driven by [`super::execute`]: [`RunTracer::start`] (paused guests, pinned),
//! [`RunTracer::tick`] every turn of the run loop (what the runner notes for the clock mapping,
//! the QEMU threads it reads back, intervals over the capture threshold), [`RunTracer::stop`]
//! when the loop ends, [`RunTracer::finish`] once the record is complete. The instance is also
//! removed when the tracer is dropped (a panic), and a crashed runner's instance by
//! [`crate::trace::cleanup::remove_stale`] at the next `pinlat run`.
//!
//! **Reading.** A reader thread drains the instance's `trace_pipe` (consuming: the ring buffers
//! never fill, so nothing is lost at the default 16 MiB per CPU unless the reader is starved
//! for seconds) every [`DRAIN_PERIOD`] into an unnamed temporary file (`O_TMPFILE`: nothing is
//! left behind whatever happens), at most [`MAX_RAW_BYTES`] ([`SOAK_MAX_RAW_BYTES`] in a soak). The runner is pinned to the
//! housekeeping pCPUs, and so is the reader: the formatting work is not on the RT pCPUs.
//!
//! **Markers.** The kernel takes a `trace_marker` write only from a traced CPU (EIO from
//! another, seen on 6.18), and the runner never runs on the RT pCPUs. A marker the kernel
//! refuses is kept by the runner and written into the capture file as a `# pinlat-marker`
//! comment line at its time.
//!
//! **Capture on threshold.** When an interval frame reports a max over the threshold, at most
//! [`MAX_CAPTURES`] per run, the trace of that interval (± the mapping's uncertainty and
//! [`CAPTURE_MARGIN_NS`]) is kept as `trace/<run>.txt`, at most [`MAX_CAPTURE_FILE_BYTES`] per
//! run and [`MAX_TRACE_DIR_BYTES`] per results directory.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use pinlat::config::Budget;
use pinlat::cpuset::CpuSet;
use pinlat::host::monotonic_ns;
use pinlat::kinds::Accel;
use pinlat::plan::LayoutPlan;
use pinlat::result::{RunRecord, Warning};
use pinlat::trace::analyse::{self, GuestNotes};
use pinlat::trace::parse::TraceParser;
use pinlat::trace::record::{Capture, RunTrace, TraceStats, TraceStatus};
use pinlat::trace::Options;

use super::live::LiveGuest;
use crate::trace::smi::{self, MsrRoot};
use crate::trace::{Instance, InstanceConfig, Tracefs};

mod text;

use text::{dir_bytes, feed, read_pipe, select};

/// How often the reader drains `trace_pipe`.
pub const DRAIN_PERIOD: Duration = Duration::from_millis(50);
/// Most trace text kept per run while it runs, bytes; beyond it the text is counted as
/// dropped (a run traces one or two pCPUs: ~100 bytes an event, ~10⁵ events a second at most).
pub const MAX_RAW_BYTES: u64 = 2 << 30;
/// [`MAX_RAW_BYTES`] of a soak (`pinlat run --soak`). The kept text is parsed into memory when
/// the run ends (~150 bytes an event), so a soak keeps the first 64 MiB: its first minutes,
/// attributed; the rest is counted as dropped and warned about (README "Soak").
pub const SOAK_MAX_RAW_BYTES: u64 = 64 << 20;
/// Interval frame arrivals noted per guest for the clock mapping (the fastest of them is what
/// counts): over an hour of frames at 1 s, and a bound on what a soak's tracer keeps.
pub const MAX_ARRIVALS: usize = 4096;
/// Threshold crossings captured per run; later ones are counted.
pub const MAX_CAPTURES: usize = 3;
/// Trace kept before and after a crossing interval, ns.
pub const CAPTURE_MARGIN_NS: u64 = 100_000_000;
/// Largest `trace/<run>.txt`, bytes.
pub const MAX_CAPTURE_FILE_BYTES: u64 = 64 << 20;
/// Largest `trace/` of a results directory, bytes: captures that would grow it beyond are not
/// written (the run records why).
pub const MAX_TRACE_DIR_BYTES: u64 = 512 << 20;

/// How `pinlat run` traces (`--no-trace`, `--trace-threshold`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSettings {
    /// Trace the RT pCPUs (the default; `--no-trace` turns it off).
    pub enabled: bool,
    /// Capture the trace when an interval's max exceeds this, ns; else the workload's budget
    /// `max`, when the config sets one.
    pub threshold_ns: Option<u64>,
    /// tracefs mount point; `None`: found in `/proc/mounts`.
    pub tracefs: Option<PathBuf>,
    /// Ring buffer per traced CPU, KiB.
    pub buffer_kb: u32,
    /// Where `/dev/cpu/N/msr` is read for SMI counts.
    pub msr: MsrRoot,
    /// Most trace text kept per run, bytes ([`MAX_RAW_BYTES`], a soak's
    /// [`SOAK_MAX_RAW_BYTES`]).
    pub max_raw_bytes: u64,
}

impl TraceSettings {
    /// Tracing on, found tracefs, default buffers.
    pub fn on() -> Self {
        TraceSettings {
            enabled: true,
            threshold_ns: None,
            tracefs: None,
            buffer_kb: crate::trace::instance::DEFAULT_BUFFER_KB,
            msr: MsrRoot::default(),
            max_raw_bytes: MAX_RAW_BYTES,
        }
    }

    /// Tracing off (SMI counts are still read).
    pub fn off() -> Self {
        TraceSettings {
            enabled: false,
            ..Self::on()
        }
    }
}

/// What the reader thread read.
struct ReaderOut {
    file: File,
    bytes: u64,
    dropped: u64,
    error: Option<String>,
}

/// A live recording: the instance and its reader.
struct Active {
    instance: Option<Instance>,
    reader: Option<JoinHandle<ReaderOut>>,
    stop: Arc<AtomicBool>,
}

impl Active {
    /// Stops recording, drains the pipe, closes it; returns what was read.
    fn stop(&mut self) -> Option<ReaderOut> {
        if let Some(i) = &self.instance {
            let _ = i.stop();
        }
        self.stop.store(true, Ordering::SeqCst);
        self.reader.take().and_then(|h| h.join().ok())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        // The reader must close trace_pipe before the instance can go (EBUSY otherwise).
        let _ = self.stop();
        self.instance.take();
    }
}

/// The tracer of one run.
pub struct RunTracer {
    rec: RunTrace,
    run: String,
    accel: Accel,
    active: Option<Active>,
    out: Option<ReaderOut>,
    notes: Vec<GuestNotes>,
    /// Per capture, the span of its interval (start, end offsets, ns): a soak keeps no
    /// interval frame to look it up in afterwards.
    capture_spans: Vec<(u64, u64)>,
    seen_tids: Vec<BTreeSet<i32>>,
    markers: Vec<(u64, String)>,
    smi_before: Vec<(u32, smi::Reading)>,
    msr: MsrRoot,
}

/// The CPUs the RT vCPUs of a layout may run on.
pub fn rt_cpus(layout: &LayoutPlan) -> CpuSet {
    layout
        .guests
        .iter()
        .flat_map(|g| g.vcpus.iter().filter(|v| v.realtime))
        .fold(CpuSet::new(), |a, v| a.union(&v.cpus))
}

impl RunTracer {
    /// Reads the RT pCPUs' SMI counts and, when tracing is on and possible, starts recording
    /// them. A host that cannot trace gets a warning in `warnings`, never a failure.
    pub fn start(
        settings: &TraceSettings,
        layout: &LayoutPlan,
        run: &str,
        budget: Option<&Budget>,
        accel: Accel,
        warnings: &mut Vec<Warning>,
    ) -> RunTracer {
        let cpus = rt_cpus(layout);
        let guests = layout.guests.len();
        let mut t = RunTracer {
            rec: RunTrace {
                cpus: cpus.clone(),
                threshold_ns: settings
                    .threshold_ns
                    .or_else(|| budget.and_then(|b| b.max_ns)),
                ..Default::default()
            },
            run: run.to_string(),
            accel,
            active: None,
            out: None,
            notes: vec![GuestNotes::default(); guests],
            capture_spans: Vec::new(),
            seen_tids: vec![BTreeSet::new(); guests],
            markers: Vec::new(),
            smi_before: smi::before(&settings.msr, cpus.iter()),
            msr: settings.msr.clone(),
        };
        if !settings.enabled {
            t.rec.status = TraceStatus::Off;
            return t;
        }
        match t.begin(settings, &cpus) {
            Ok(()) => t.rec.status = TraceStatus::Recorded,
            Err(e) => {
                let unavailable = e.is_unavailable();
                let reason = format!("{:#}", anyhow::Error::new(e));
                t.rec.status = if unavailable {
                    TraceStatus::Unavailable {
                        reason: reason.clone(),
                    }
                } else {
                    TraceStatus::Failed {
                        reason: reason.clone(),
                    }
                };
                warnings.push(Warning::Trace {
                    problem: format!(
                        "not recorded ({reason}); the run went on without naming the culprits of stolen time (--no-trace silences this)"
                    ),
                });
            }
        }
        t
    }

    fn begin(
        &mut self,
        settings: &TraceSettings,
        cpus: &CpuSet,
    ) -> Result<(), crate::trace::TraceError> {
        let fs = match &settings.tracefs {
            Some(p) => Tracefs::at(p),
            None => Tracefs::locate()?,
        };
        let mut cfg = InstanceConfig::new(instance_name(&self.run), cpus.clone());
        cfg.buffer_kb = settings.buffer_kb;
        let instance = Instance::create(&fs, &cfg)?;
        let pipe = instance.open_pipe()?;
        let file = tempfile::tempfile_in(std::env::temp_dir()).map_err(|source| {
            crate::trace::TraceError::Write {
                path: std::env::temp_dir(),
                value: "(temporary trace file)".into(),
                source,
            }
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let max_bytes = settings.max_raw_bytes;
        let reader = std::thread::Builder::new()
            .name("trace-reader".into())
            .spawn(move || read_pipe(pipe, file, &flag, max_bytes))
            .map_err(|source| crate::trace::TraceError::Write {
                path: instance.path().to_path_buf(),
                value: "(reader thread)".into(),
                source,
            })?;
        self.rec.instance = instance
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        self.rec.events = instance.enabled_events().to_vec();
        self.rec.events_missing = instance.missing_events().to_vec();
        let start = instance.start();
        self.active = Some(Active {
            instance: Some(instance),
            reader: Some(reader),
            stop,
        });
        start
    }

    /// Notes what the run loop just read: when each hello and interval frame arrived (the
    /// clock mapping), the QEMU threads read back (the classes), and intervals whose max is
    /// over the threshold (a marker, and a capture at the end).
    /// Takes each guest's `arrived` intervals.
    pub fn tick(&mut self, live: &mut [LiveGuest]) {
        let now = monotonic_ns();
        for (i, g) in live.iter_mut().enumerate().take(self.notes.len()) {
            let arrived = std::mem::take(&mut g.arrived);
            let n = &mut self.notes[i];
            if n.hello_arrival_ns.is_none() {
                n.hello_arrival_ns = g.hello_mono_ns;
            }
            for t in &g.record.observed_end {
                if self.seen_tids[i].insert(t.tid) {
                    n.threads.push(t.clone());
                }
            }
            for iv in &arrived {
                if self.rec.status != TraceStatus::Recorded {
                    continue;
                }
                if n.interval_arrivals.len() < MAX_ARRIVALS {
                    n.interval_arrivals.push((iv.cpu, iv.end_offset_ns, now));
                }
                let max = iv.max_ns;
                let Some(thr) = self.rec.threshold_ns else {
                    continue;
                };
                if max <= thr {
                    continue;
                }
                if self.rec.captures.len() >= MAX_CAPTURES {
                    self.rec.captures_dropped += 1;
                    continue;
                }
                let text = format!(
                    "pinlat {}: guest {} vCPU {} interval {} max {} ns over the threshold {thr} ns",
                    self.run,
                    g.record.guest,
                    iv.cpu,
                    iv.index,
                    if max == u64::MAX {
                        "overflow".to_string()
                    } else {
                        max.to_string()
                    }
                );
                let in_kernel = self
                    .active
                    .as_ref()
                    .and_then(|a| a.instance.as_ref())
                    .is_some_and(|i| i.marker(&text).is_ok());
                if !in_kernel {
                    self.markers.push((now, text));
                }
                self.capture_spans
                    .push((iv.start_offset_ns, iv.end_offset_ns));
                self.rec.captures.push(Capture {
                    guest: g.record.guest.clone(),
                    vcpu: iv.cpu,
                    interval: iv.index,
                    max_ns: max,
                    marked_at_ns: now,
                    marker_in_kernel: in_kernel,
                    kept_ns: None,
                });
            }
        }
    }

    /// Stops recording and removes the instance (idempotent); what was read is kept for
    /// [`RunTracer::finish`].
    pub fn stop(&mut self, warnings: &mut Vec<Warning>) {
        let Some(mut a) = self.active.take() else {
            return;
        };
        if let Some(i) = &a.instance {
            for cpu in i.cpus().iter() {
                if let Ok(s) = i.buffer_stats(cpu) {
                    self.rec.stats.overrun += s.lost();
                }
            }
        }
        self.out = a.stop();
        if let Some(i) = a.instance.take() {
            if let Err(e) = i.remove() {
                warnings.push(Warning::Trace {
                    problem: format!(
                        "{:#} (remove it by hand, or the next pinlat run removes it)",
                        anyhow::Error::new(e)
                    ),
                });
            }
        }
        match &self.out {
            Some(o) => {
                if let Some(e) = &o.error {
                    self.rec.status = TraceStatus::Failed {
                        reason: format!("reading trace_pipe: {e}"),
                    };
                }
            }
            None => {
                self.rec.status = TraceStatus::Failed {
                    reason: "the trace reader thread panicked".into(),
                }
            }
        }
    }

    /// Reads the SMI counts again, attributes the trace against the finished `record`, writes
    /// the capture file under `result_dir` and puts it all into `record.host_trace`.
    pub fn finish(mut self, record: &mut RunRecord, result_dir: &Path) {
        let mut warnings = Vec::new();
        self.stop(&mut warnings);
        record.warnings.extend(warnings);
        self.rec.smi = smi::after(&self.msr, &self.smi_before);
        if let Some(mut out) = self.out.take() {
            self.rec.stats.bytes = out.bytes;
            self.rec.stats.bytes_dropped = out.dropped;
            self.analyse(&mut out.file, record);
            if !self.rec.captures.is_empty() {
                self.capture(&mut out.file, record, result_dir);
            }
            let s = &self.rec.stats;
            let lost = s.lost_events + s.overrun;
            if lost > 0 || s.lost_markers > 0 || s.bytes_dropped > 0 {
                record.warnings.push(Warning::Trace {
                    problem: format!(
                        "{lost} event(s) lost ({} lost-events marker(s), {} overwritten in the ring buffers, {} bytes over the run's bound): the attribution books that time as unknown",
                        s.lost_markers, s.overrun, s.bytes_dropped
                    ),
                });
            }
        }
        record.host_trace = Some(self.rec);
    }

    fn analyse(&mut self, file: &mut File, record: &RunRecord) {
        let guests: Vec<_> = record.guests.iter().zip(&self.notes).collect();
        let mappings: Vec<_> = guests
            .iter()
            .map(|(g, n)| analyse::mapping(g, n, self.accel))
            .collect();
        let windows = guests
            .iter()
            .zip(&mappings)
            .filter_map(|((g, _), m)| analyse::window(g, m.as_ref()?));
        let (lo, hi) = analyse::span(windows).unwrap_or((0, 0));
        let mut parser = TraceParser::keeping(lo, hi);
        if let Err(e) = feed(file, &mut parser) {
            self.rec.status = TraceStatus::Failed {
                reason: format!("reading the kept trace back: {e}"),
            };
        }
        let trace = parser.finish();
        let st = &trace.stats;
        self.rec.stats = TraceStats {
            events: st.events,
            malformed: st.malformed,
            lost_markers: st.lost_markers,
            lost_events: st.lost_events,
            resolution_ns: st.resolution_ns,
            ..self.rec.stats.clone()
        };
        self.rec.guests = analyse::analyse(&trace, &guests, &mappings, &Options::default());
    }

    /// Writes `trace/<run>.txt`: the text of every captured interval's span, with the markers
    /// the kernel refused as comment lines at their times.
    fn capture(&mut self, file: &mut File, record: &mut RunRecord, result_dir: &Path) {
        self.rec.dat_note = Some(dat_note());
        let margin = CAPTURE_MARGIN_NS;
        for (c, &(iv_start, iv_end)) in self.rec.captures.iter_mut().zip(&self.capture_spans) {
            let gi = record.guests.iter().position(|g| g.guest == c.guest);
            let span = gi.and_then(|gi| {
                let g = &record.guests[gi];
                let gt = self.rec.guests.get(gi)?;
                let m = gt.mapping.as_ref()?;
                let start = g.results.iter().find(|r| r.cpu == c.vcpu)?.start_mono_ns?;
                let at =
                    |off: u64| (start as i128 + off as i128 + m.offset_ns as i128).max(0) as u64;
                let widen = margin + m.uncertainty_ns;
                Some((at(iv_start).saturating_sub(widen), at(iv_end) + widen))
            });
            // Without a mapping: the interval ended before the runner saw its frame.
            c.kept_ns = Some(span.unwrap_or((
                c.marked_at_ns.saturating_sub(2_000_000_000 + margin),
                c.marked_at_ns + margin,
            )));
        }
        let used = dir_bytes(&result_dir.join("trace"));
        if used >= MAX_TRACE_DIR_BYTES {
            record.warnings.push(Warning::Trace {
                problem: format!(
                    "trace/ already holds {} MiB (the bound is {} MiB): the capture of this run was not written",
                    used >> 20,
                    MAX_TRACE_DIR_BYTES >> 20
                ),
            });
            return;
        }
        let bound = MAX_CAPTURE_FILE_BYTES.min(MAX_TRACE_DIR_BYTES - used);
        let spans: Vec<(u64, u64)> = self.rec.captures.iter().filter_map(|c| c.kept_ns).collect();
        let mut text = format!(
            "# pinlat capture of run {}: intervals over the threshold {} ns, their trace ± {} ms\n",
            self.run,
            self.rec.threshold_ns.unwrap_or(0),
            margin / 1_000_000
        );
        for c in &self.rec.captures {
            text += &format!(
                "# guest {} vCPU {} interval {}: max {} ns; marker {}\n",
                c.guest,
                c.vcpu,
                c.interval,
                c.max_ns,
                if c.marker_in_kernel {
                    "in the trace (tracing_mark_write)"
                } else {
                    "refused by the kernel (written from an untraced CPU): a # pinlat-marker line below"
                }
            );
        }
        let mut bytes = text.into_bytes();
        let cut = select(file, &spans, &self.markers, bound, &mut bytes);
        if cut {
            bytes.extend_from_slice(
                format!("# cut at {} MiB (MAX_CAPTURE_FILE_BYTES)\n", bound >> 20).as_bytes(),
            );
        }
        let rel = format!("trace/{}.txt", self.run);
        let written = std::fs::create_dir_all(result_dir.join("trace"))
            .map_err(|e| e.to_string())
            .and_then(|()| {
                pinlat::atomic_write::write_atomic(&result_dir.join(&rel), &bytes)
                    .map_err(|e| e.source.to_string())
            });
        match written {
            Ok(()) => self.rec.capture_file = Some(rel),
            Err(e) => record.warnings.push(Warning::Trace {
                problem: format!("cannot write {rel}: {e}"),
            }),
        }
    }
}

/// Why there is no `trace/<run>.dat`.
fn dat_note() -> String {
    let installed = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("trace-cmd").is_file()));
    if installed {
        "no trace/<run>.dat: trace-cmd is installed, but the runner reads the instance as text through trace_pipe (consuming it), which leaves nothing for trace-cmd extract; the .txt is the capture".into()
    } else {
        "no trace/<run>.dat: trace-cmd is not installed (and would need the raw buffers, which the runner consumes as text); the .txt is the capture".into()
    }
}

/// `pinlat-<pid>-<run>` with the run name made safe for tracefs.
fn instance_name(run: &str) -> String {
    run.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
