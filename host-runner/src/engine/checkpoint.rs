//! The report of a run still measuring (`pinlat run --report-every D`, README "Soak"): every
//! `D` the run loop takes the run so far and hands it to a thread of its own, which writes it
//! as `checkpoint.json` ([`pinlat::schema::Checkpoint`], atomically) and then rebuilds the
//! report from `runs/` and it, so a lab can look at a 12-hour soak before it ends.
//!
//! The run loop never waits on the disk: it only copies the record (bounded: the series and
//! their merged histograms, ~0.5 MB for two RT vCPUs, never the whole interval frames a short
//! run keeps, which no report of a checkpoint reads), and a checkpoint that falls due while the
//! one before it is still being written and reported waits until that thread is done (the loop
//! looks again on its next turn), so two never overlap. When the run ends, its final record
//! replaces the checkpoint ([`Checkpoints::run_ended`]); the final report waits for the thread
//! ([`Checkpoints::finish`], also on drop) so an older report never overwrites it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pinlat::result::RunRecord;
use pinlat::schema::{Checkpoint, CHECKPOINT_FILE, CHECKPOINT_SCHEMA_VERSION};

use super::live::LiveGuest;
use crate::store::{unix_ms, ResultDir};

/// The default of `--report-every` with `--soak`.
pub const DEFAULT_REPORT_EVERY: Duration = Duration::from_secs(600);

/// Checkpoints and report rebuilds of one `pinlat run`.
pub struct Checkpoints {
    dir: ResultDir,
    every: Duration,
    state: Mutex<State>,
    written: Arc<AtomicU64>,
    rebuilt: Arc<AtomicU64>,
}

struct State {
    last: Instant,
    /// The thread writing the latest checkpoint and rebuilding the report.
    worker: Option<JoinHandle<()>>,
    /// A checkpoint of the current run was handed to the worker.
    pending: bool,
}

impl Checkpoints {
    /// Checkpoints into `dir` every `every` (the first one `every` after this call).
    pub fn new(dir: &Path, every: Duration) -> Self {
        Checkpoints {
            dir: ResultDir::open(dir),
            every,
            state: Mutex::new(State {
                last: Instant::now(),
                worker: None,
                pending: false,
            }),
            written: Arc::new(AtomicU64::new(0)),
            rebuilt: Arc::new(AtomicU64::new(0)),
        }
    }

    /// `checkpoint.json` of this results directory.
    pub fn path(&self) -> PathBuf {
        self.dir.root().join(CHECKPOINT_FILE)
    }

    /// A run started measuring: its first checkpoint is due `every` from now (one sooner would
    /// show nothing measured).
    pub fn measuring(&self) {
        self.lock().last = Instant::now();
    }

    /// Whether a checkpoint is due: `every` has passed since the last one and the thread that
    /// wrote it is done.
    pub fn due(&self) -> bool {
        let st = self.lock();
        st.last.elapsed() >= self.every && st.worker.as_ref().map_or(true, |h| h.is_finished())
    }

    /// Checkpoints written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Reports rebuilt so far (from a checkpoint, or when a checkpointed run ended).
    pub fn rebuilt(&self) -> u64 {
        self.rebuilt.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands the run so far (`record` with each guest's record as `live` holds it, without
    /// whole interval frames) to a thread that writes it and then rebuilds the report. Call it
    /// when [`Checkpoints::due`]. A failure to write is printed and the run goes on: the final
    /// record is written the same way and fails loudly.
    pub fn write(&self, record: &RunRecord, live: &mut [LiveGuest], started: Instant) {
        let mut run = record.clone();
        for (slot, g) in run.guests.iter_mut().zip(live.iter_mut()) {
            let whole = std::mem::take(&mut g.record.intervals);
            *slot = g.record.clone();
            g.record.intervals = whole;
        }
        run.wall_ms = started.elapsed().as_millis() as u64;
        let cp = Checkpoint {
            schema_version: CHECKPOINT_SCHEMA_VERSION,
            written_unix_ms: unix_ms(),
            runner_pid: std::process::id(),
            measured_ns: measured_ns(live),
            run,
        };
        let (dir, written) = (self.dir.clone(), self.written.clone());
        let mut st = self.lock();
        st.last = Instant::now();
        st.pending = true;
        self.spawn(&mut st, move || {
            match dir.write_json(CHECKPOINT_FILE, &cp) {
                Ok(_) => {
                    written.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(e) => {
                    eprintln!(
                        "pinlat: warning: checkpoint of {} not written: {:#}",
                        cp.run.name,
                        anyhow::Error::new(e)
                    );
                    false
                }
            }
        });
    }

    /// Starts the worker, after the one before it: `first`, then the report rebuilt when
    /// `first` says so.
    fn spawn(&self, st: &mut State, first: impl FnOnce() -> bool + Send + 'static) {
        if let Some(h) = st.worker.take() {
            let _ = h.join();
        }
        let dir = self.dir.root().to_path_buf();
        let rebuilt = self.rebuilt.clone();
        // The thread inherits the runner's CPUs: the housekeeping pCPUs.
        let spawned = std::thread::Builder::new()
            .name("report-rebuild".into())
            .spawn(move || {
                if !first() {
                    return;
                }
                match pinlat::report::write_all(&dir) {
                    Ok(_) => {
                        rebuilt.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => eprintln!(
                        "pinlat: warning: rebuilding the report from the checkpoint failed: {:#}",
                        anyhow::Error::new(e)
                    ),
                }
            });
        match spawned {
            Ok(h) => st.worker = Some(h),
            Err(e) => eprintln!("pinlat: warning: cannot start the report rebuild: {e}"),
        }
    }

    /// The run's final record is written: its checkpoint goes (once the thread writing it is
    /// done), and a report that showed it in progress is rebuilt.
    pub fn run_ended(&self) {
        let mut st = self.lock();
        if !st.pending {
            return;
        }
        st.pending = false;
        if let Some(h) = st.worker.take() {
            let _ = h.join();
        }
        if let Err(e) = std::fs::remove_file(self.path()) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!(
                    "pinlat: warning: cannot remove {}: {e}; pinlat report ignores it since the run has its record",
                    self.path().display()
                );
            }
        }
        self.spawn(&mut st, || true);
    }

    /// Waits for the thread in flight, before the final report is built.
    pub fn finish(&self) {
        if let Some(h) = self.lock().worker.take() {
            let _ = h.join();
        }
    }
}

/// A `pinlat run` that ends early (an error writing a record) still waits for the thread: it
/// never outlives the runner half-way through a file.
impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.finish();
    }
}

/// How far the guests have measured, ns: the end of the latest interval frame of any RT vCPU.
pub fn measured_ns(live: &[LiveGuest]) -> u64 {
    live.iter()
        .flat_map(|g| g.record.series.iter())
        .map(|s| s.end_offset_ns())
        .max()
        .unwrap_or(0)
}
