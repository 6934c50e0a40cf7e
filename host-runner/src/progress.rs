//! What `pinlat run` shows while it runs. The bar counts measured time, not runs, so its ETA
//! means something for one 12-hour soak as for 16 runs of 5 s: its length is the matrix's
//! planned measurement (runs × duration), its position the finished runs' plus how far the
//! current run has measured (the end of its latest interval frame), and indicatif's rate
//! estimate folds boots and report building into the ETA. Without a terminal (CI, `nohup`)
//! each run prints a line when it starts and ends, and a long run one line per `line_every`
//! with how far it has measured.
//!
//! [`Reading`] is what `pinlat merge` and `pinlat trend` show while they read many results
//! directories.

use std::cell::Cell;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use pinlat::duration::hms;
use pinlat::result::RunRecord;

use crate::engine;

/// How often a run prints its measured time without a terminal, when `--report-every` does not
/// say.
pub const LINE_EVERY: Duration = Duration::from_secs(600);

/// The progress of one matrix.
pub struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    run_s: u64,
    line_every: Duration,
    current: Cell<usize>,
    last_line: Cell<Instant>,
    started: Instant,
}

/// Seconds left at the rate so far: `elapsed` for `done` of `total` measured seconds.
fn eta_s(elapsed: Duration, done: u64, total: u64) -> Option<u64> {
    (done > 0).then(|| {
        (elapsed.as_secs_f64() * total.saturating_sub(done) as f64 / done as f64).round() as u64
    })
}

impl Progress {
    /// A matrix of `total` runs measuring `run_s` seconds each; without a terminal a run prints
    /// its measured time every `line_every`.
    pub fn new(total: usize, run_s: u64, line_every: Duration) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total as u64 * run_s.max(1));
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {percent:>3}% of the measurement, ETA {eta_precise}  {msg}",
                )
                .expect("valid template"),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress {
            bar,
            total,
            run_s: run_s.max(1),
            line_every,
            current: Cell::new(0),
            last_line: Cell::new(Instant::now()),
            started: Instant::now(),
        }
    }

    /// Run `i` (from 0) starts.
    pub fn start(&self, i: usize, name: &str) {
        self.current.set(i);
        self.last_line.set(Instant::now());
        match &self.bar {
            Some(b) => {
                b.set_position(i as u64 * self.run_s);
                b.set_message(format!("[{}/{}] {name}", i + 1, self.total));
            }
            None => eprintln!("[{}/{}] {name} ...", i + 1, self.total),
        }
    }

    /// The current run has measured `ns`.
    pub fn measured(&self, ns: u64) {
        let i = self.current.get();
        let s = (ns / 1_000_000_000).min(self.run_s);
        match &self.bar {
            Some(b) => b.set_position(i as u64 * self.run_s + s),
            None if self.last_line.get().elapsed() >= self.line_every => {
                self.last_line.set(Instant::now());
                let done = i as u64 * self.run_s + s;
                let eta = eta_s(self.started.elapsed(), done, self.total as u64 * self.run_s);
                eprintln!(
                    "[{}/{}] {} of {} measured, ETA {}",
                    i + 1,
                    self.total,
                    hms(s),
                    hms(self.run_s),
                    eta.map_or("unknown".into(), hms)
                );
            }
            None => {}
        }
    }

    /// Run `i` ended with `r`.
    pub fn done(&self, i: usize, r: &RunRecord) {
        let line = format!(
            "[{}/{}] {}: {}",
            i + 1,
            self.total,
            r.name,
            engine::summary_line(r)
        );
        match &self.bar {
            Some(b) => {
                b.println(line);
                b.set_position((i as u64 + 1) * self.run_s);
            }
            None => eprintln!("{line}"),
        }
    }

    /// The matrix is over.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// How long `pinlat merge` and `pinlat trend` read before they say how far they are, and how
/// often they say it after.
pub const READING_EVERY: Duration = Duration::from_secs(2);

/// How far `pinlat merge` or `pinlat trend` has read its results directories: a line on stderr
/// every [`READING_EVERY`], once reading has taken that long. A directory's `report.json` is
/// read in milliseconds, so the usual case prints nothing; aggregating `runs/` where there is
/// no usable `report.json` takes tens of ms a directory (13 s for 200 directories of 24 runs,
/// README "Scale"), and then the lines say how far it is and when it will be done.
pub struct Reading {
    total: usize,
    done: usize,
    started: Instant,
    last_line: Instant,
}

impl Reading {
    /// Reading `total` directories starts now.
    pub fn new(total: usize) -> Self {
        let now = Instant::now();
        Reading {
            total,
            done: 0,
            started: now,
            last_line: now,
        }
    }

    /// Directory `dir` is read next.
    pub fn next(&mut self, dir: &Path) {
        if let Some(line) = self.line(Instant::now(), dir) {
            eprintln!("{line}");
        }
        self.done += 1;
    }

    /// The line to print at `now`, before reading `dir`, if one is due.
    fn line(&mut self, now: Instant, dir: &Path) -> Option<String> {
        if now.duration_since(self.last_line) < READING_EVERY {
            return None;
        }
        self.last_line = now;
        let elapsed = now.duration_since(self.started);
        let eta = eta_s(elapsed, self.done as u64, self.total as u64);
        Some(format!(
            "pinlat: [{}/{}] reading {}; {} so far, ETA {}",
            self.done + 1,
            self.total,
            dir.display(),
            hms(elapsed.as_secs()),
            eta.map_or("unknown".into(), hms)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_says_nothing_when_fast_and_how_far_it_is_when_slow() {
        let t0 = Instant::now();
        let mut r = Reading {
            total: 200,
            done: 0,
            started: t0,
            last_line: t0,
        };
        let dir = Path::new("results/b057");
        assert_eq!(r.line(t0 + Duration::from_millis(1_999), dir), None);
        // 50 read in 2 s: 150 more take 6 s.
        r.done = 50;
        assert_eq!(
            r.line(t0 + Duration::from_secs(2), dir).as_deref(),
            Some("pinlat: [51/200] reading results/b057; 0:00:02 so far, ETA 0:00:06")
        );
        // Not again before another READING_EVERY.
        assert_eq!(r.line(t0 + Duration::from_secs(3), dir), None);
        assert!(r.line(t0 + Duration::from_secs(4), dir).is_some());
    }

    #[test]
    fn eta_follows_the_rate_so_far() {
        // 1 h of a 12 h soak measured in 1 h 6 min (boot, report): 11 × 66 min left.
        assert_eq!(
            eta_s(Duration::from_secs(3_960), 3_600, 43_200),
            Some(43_560)
        );
        assert_eq!(eta_s(Duration::from_secs(30), 0, 43_200), None);
        assert_eq!(eta_s(Duration::from_secs(30), 43_200, 43_200), Some(0));
    }
}
