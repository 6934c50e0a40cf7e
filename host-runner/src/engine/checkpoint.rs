//! The report of a run still measuring (`pinlat run --report-every D`, README "Soak"): every
//! `D` the run loop writes the run so far as `checkpoint.json` ([`pinlat::schema::Checkpoint`],
//! atomically) and the report is rebuilt from `runs/` and it on a thread of its own, so a lab
//! can look at a 12-hour soak before it ends. The run loop never waits for a rebuild: one that
//! is still going when the next checkpoint is due is left to finish, and that checkpoint only
//! replaces the file. When the run ends, its final record replaces the checkpoint
//! ([`Checkpoints::run_ended`]); the final report waits for a rebuild in flight
//! ([`Checkpoints::finish`]) so an older report never overwrites it.

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
    written: AtomicU64,
    rebuilt: Arc<AtomicU64>,
}

struct State {
    last: Instant,
    rebuild: Option<JoinHandle<()>>,
    /// A checkpoint of the current run is on disk.
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
                rebuild: None,
                pending: false,
            }),
            written: AtomicU64::new(0),
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

    /// Whether a checkpoint is due.
    pub fn due(&self) -> bool {
        self.lock().last.elapsed() >= self.every
    }

    /// Checkpoints written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Reports rebuilt from a checkpoint so far.
    pub fn rebuilt(&self) -> u64 {
        self.rebuilt.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the run so far (`record` with each guest's record as `live` holds it) and starts
    /// a rebuild of the report unless one is still going. A failure to write is printed and
    /// the run goes on: the final record is written the same way and fails loudly.
    pub fn write(&self, record: &RunRecord, live: &[LiveGuest], started: Instant) {
        let mut run = record.clone();
        for (i, g) in live.iter().enumerate() {
            if let Some(slot) = run.guests.get_mut(i) {
                *slot = g.record.clone();
            }
        }
        run.wall_ms = started.elapsed().as_millis() as u64;
        let measured_ns = measured_ns(live);
        let cp = Checkpoint {
            schema_version: CHECKPOINT_SCHEMA_VERSION,
            written_unix_ms: unix_ms(),
            runner_pid: std::process::id(),
            measured_ns,
            run,
        };
        let mut st = self.lock();
        st.last = Instant::now();
        if let Err(e) = self.dir.write_json(CHECKPOINT_FILE, &cp) {
            eprintln!(
                "pinlat: warning: checkpoint of {} not written: {:#}",
                record.name,
                anyhow::Error::new(e)
            );
            return;
        }
        self.written.fetch_add(1, Ordering::Relaxed);
        st.pending = true;
        if st.rebuild.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        self.rebuild(&mut st);
    }

    /// Starts a rebuild of the report, after the one before it.
    fn rebuild(&self, st: &mut State) {
        if let Some(h) = st.rebuild.take() {
            let _ = h.join();
        }
        let dir = self.dir.root().to_path_buf();
        let rebuilt = self.rebuilt.clone();
        // The thread inherits the runner's CPUs: the housekeeping pCPUs.
        let spawned = std::thread::Builder::new()
            .name("report-rebuild".into())
            .spawn(move || match pinlat::report::write_all(&dir) {
                Ok(_) => {
                    rebuilt.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => eprintln!(
                    "pinlat: warning: rebuilding the report from the checkpoint failed: {:#}",
                    anyhow::Error::new(e)
                ),
            });
        match spawned {
            Ok(h) => st.rebuild = Some(h),
            Err(e) => eprintln!("pinlat: warning: cannot start the report rebuild: {e}"),
        }
    }

    /// The run's final record is written: its checkpoint goes, and a report that showed it in
    /// progress is rebuilt (the rebuild before it done first, so it cannot overwrite it).
    pub fn run_ended(&self) {
        let mut st = self.lock();
        if !st.pending {
            return;
        }
        st.pending = false;
        if let Err(e) = std::fs::remove_file(self.path()) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!(
                    "pinlat: warning: cannot remove {}: {e}; pinlat report ignores it since the run has its record",
                    self.path().display()
                );
            }
        }
        self.rebuild(&mut st);
    }

    /// Waits for a rebuild in flight, before the final report is built.
    pub fn finish(&self) {
        let _ = self.finish_rebuild();
    }

    fn finish_rebuild(&self) -> Option<()> {
        let h = self.lock().rebuild.take()?;
        h.join().ok()
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
