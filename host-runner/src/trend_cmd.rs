//! `pinlat trend DIR...`: the command-line side of [`pinlat::report::trend`]. It prints the
//! Markdown summary on stdout and, with `--out`, writes `report.{json,md,html}` and `junit.xml`
//! there. Exit 3 when a directory could not be read or placed in the order (each is named on
//! stderr and in the outputs; the others are still trended), else 1 when the latest directory
//! regressed, else 0; 2 for a bad option or a path that is not a directory.

use std::path::{Path, PathBuf};

use pinlat::report::compare;
use pinlat::report::trend::{self, SkipKind, TrendOrder, TrendReport};

use crate::exit::{Exit, Failure, OptionError};

/// What `pinlat trend` was asked.
#[derive(Debug, Clone)]
pub struct TrendCommand {
    /// The results directories, in any order.
    pub dirs: Vec<PathBuf>,
    /// What orders them.
    pub order: TrendOrder,
    /// compare's threshold, floor and `--allow-missing`.
    pub options: compare::Options,
    /// Where to write the outputs (none: only the summary on stdout).
    pub out: Option<PathBuf>,
}

/// The path's canonical form, for telling two spellings of one directory apart.
fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The usage checks: every DIR a directory, none given twice, `--out` not a results directory.
fn check(c: &TrendCommand) -> Result<(), OptionError> {
    crate::report_cmd::check_threshold(c.options.threshold_pct)?;
    let mut seen: Vec<PathBuf> = Vec::new();
    for d in &c.dirs {
        if !d.is_dir() {
            return Err(OptionError {
                option: "DIR",
                problem: format!(
                    "{} is not a directory: give pinlat results directories (reports/<run-id>)",
                    d.display()
                ),
            });
        }
        let k = canonical(d);
        if seen.contains(&k) {
            return Err(OptionError {
                option: "DIR",
                problem: format!("{} is given twice", d.display()),
            });
        }
        seen.push(k);
    }
    if let Some(out) = &c.out {
        let results = out.join("runs").exists() || out.join("plan.json").exists();
        if results || seen.contains(&canonical(out)) {
            return Err(OptionError {
                option: "--out",
                problem: format!(
                    "{} is a results directory: the trend would overwrite its report; give another directory",
                    out.display()
                ),
            });
        }
    }
    Ok(())
}

/// The exit code of a trend: 3 when a directory could not be read or ordered (or none could),
/// else 1 when the latest regressed, else 0.
pub fn exit_of(t: &TrendReport) -> Exit {
    if t.has_unreadable() || t.dirs.is_empty() {
        Exit::Infrastructure
    } else if t.has_regression() {
        Exit::Regression
    } else {
        Exit::Ok
    }
}

/// Runs `pinlat trend`; returns the exit code and the summary to print.
pub fn trend(c: &TrendCommand) -> Result<(Exit, String), Failure> {
    check(c)?;
    let mut reading = crate::progress::Reading::new(c.dirs.len());
    let t = trend::trend(&c.dirs, c.order, &c.options, &mut |d| reading.next(d));
    for s in &t.skipped {
        let what = match s.kind {
            SkipKind::OtherSchema => "note: left out (another pinlat schema)",
            SkipKind::Unreadable => "error: left out (unreadable)",
            SkipKind::Unordered => "error: left out (cannot be ordered)",
        };
        eprintln!("pinlat: {what}: {}: {}", s.path, s.reason);
    }
    if t.dirs.is_empty() {
        eprintln!(
            "pinlat: error: none of the {} directories could be trended",
            c.dirs.len()
        );
    }
    if let Some(out) = &c.out {
        t.write_all(out)?;
        eprintln!(
            "pinlat: trend written to {}",
            out.join("report.html").display()
        );
    }
    Ok((exit_of(&t), trend::markdown::render(&t, false)))
}
