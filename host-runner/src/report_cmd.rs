//! `pinlat report DIR` and `pinlat compare BASE NEW`: the command-line side of
//! [`pinlat::report`]. `report` rebuilds every output from `runs/` alone; `compare` prints the
//! per-row change of the percentiles between two reports and flags regressions.

use std::path::Path;

use pinlat::report::{self, ci, compare, Outcome, Report};

use crate::exit::{Exit, Failure, OptionError};

/// Maps a report's outcome to the exit code: 0 held, 1 a budget exceeded, 3 a run failed,
/// was unreadable or is missing.
pub fn exit_of(r: &Report) -> Exit {
    match r.outcome() {
        Outcome::Held => Exit::Ok,
        Outcome::BudgetExceeded => Exit::BudgetExceeded,
        Outcome::RunFailed => Exit::Infrastructure,
    }
}

/// One line per verdict and budget, for the terminal.
pub fn summary(r: &Report, dir: &Path) -> String {
    let mut s = String::new();
    if let Some(d) = &r.disclaimer {
        s.push_str(&format!("pinlat: note: {d}\n"));
    }
    if let Some(p) = &r.in_progress {
        s.push_str(&format!("pinlat: in progress: {}\n", p.statement));
    }
    for v in &r.verdicts {
        s.push_str(&format!("pinlat: {}\n", v.statement));
    }
    for l in &r.layouts {
        let budget = match l.budget {
            pinlat::report::BudgetStatus::NoBudget => {
                "no budget set (add [budgets.<workload>] to the config)".to_string()
            }
            ref b => format!("budget {}", b.as_str()),
        };
        s.push_str(&format!("pinlat: layout {}: {budget}\n", l.name));
    }
    if !r.skipped.is_empty() {
        s.push_str(&format!(
            "pinlat: warning: {} run file(s) unreadable and skipped\n",
            r.skipped.len()
        ));
    }
    s.push_str(&format!(
        "pinlat: report written to {}\n",
        dir.join("report.html").display()
    ));
    s
}

/// `pinlat report DIR`: rebuilds report.{json,md,html}, junit.xml, the .hlog and histogram
/// texts and the CI formats from `DIR/runs/`.
pub fn report(dir: &Path, ci: &ci::Options) -> Result<Exit, Failure> {
    let r = report::write_all_with(dir, ci)?;
    eprint!("{}", summary(&r, dir));
    Ok(exit_of(&r))
}

/// `pinlat report DIR --format F [--group G]`: the text to print, built from `DIR/runs/`
/// without writing anything, and the exit code of the report.
pub fn print_format(
    dir: &Path,
    format: ci::CiFormat,
    options: &ci::Options,
    group: Option<&str>,
) -> Result<(Exit, String), Failure> {
    let r = report::build(dir, &mut |_| {})?;
    let text = ci::render(format, &r, options, group)?;
    Ok((exit_of(&r), text))
}

/// Loads a report from a results directory (aggregating its `runs/`) or a `report.json`.
pub fn load(path: &Path) -> Result<Report, Failure> {
    let res = if path.is_dir() {
        report::build(path, &mut |_| {})
    } else {
        Report::read_json(path)
    };
    // For `compare`, an input it cannot read is a bad argument, whatever the reason.
    res.map_err(|e| Failure {
        exit: Exit::Usage,
        error: anyhow::Error::new(e).context(format!("reading {}", path.display())),
    })
}

/// `--min-delta` is not a duration with a unit.
#[derive(Debug, thiserror::Error)]
pub enum MinDeltaError {
    /// A bare number, which the duration parser would read as seconds.
    #[error("'{0}' has no unit: write it with one, e.g. 500ns or 2us")]
    NoUnit(String),
    /// Not a duration.
    #[error(transparent)]
    Duration(#[from] pinlat::duration::DurationError),
}

/// Parses `--min-delta` into ns with [`pinlat::duration`] (`500ns`, `2us`, `0`). A bare number
/// other than 0 is refused: the duration parser reads it as seconds, which would switch the
/// gate off without a word.
pub fn parse_min_delta_ns(s: &str) -> Result<u64, MinDeltaError> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) && t.bytes().any(|b| b != b'0') {
        return Err(MinDeltaError::NoUnit(t.to_string()));
    }
    Ok(pinlat::duration::parse_ns(t)?)
}

/// `--threshold` of `compare` and `trend`: a finite percentage ≥ 0.
pub fn check_threshold(threshold_pct: f64) -> Result<(), OptionError> {
    if threshold_pct.is_finite() && threshold_pct >= 0.0 {
        Ok(())
    } else {
        Err(OptionError {
            option: "--threshold",
            problem: format!("{threshold_pct} is not a percentage ≥ 0"),
        })
    }
}

/// `pinlat compare BASE NEW --threshold PCT --min-delta D [--allow-missing]`: exit 1 when a
/// percentile regressed beyond the threshold and the floor, or a row of BASE is absent, failed
/// or missing in NEW (unless allowed), 0 otherwise. Returns the printed text too (for tests).
pub fn compare(
    base: &Path,
    new: &Path,
    options: &compare::Options,
) -> Result<(Exit, String), Failure> {
    check_threshold(options.threshold_pct)?;
    let (b, n) = (load(base)?, load(new)?);
    let c = compare::compare(&b, &n, options);
    let text = compare::render_text(&c, &base.display().to_string(), &new.display().to_string());
    let exit = if c.has_regression() {
        Exit::Regression
    } else {
        Exit::Ok
    };
    Ok((exit, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(name)
    }

    fn opts(threshold: f64) -> compare::Options {
        compare::Options::with_threshold(threshold)
    }

    #[test]
    fn compare_exit_codes() {
        let base = fixture("runs-basic");
        let (exit, text) = compare(&base, &base, &opts(10.0)).unwrap();
        assert_eq!(exit, Exit::Ok, "{text}");
        // Against the TCG set the shared row share.idle.timer has a far worse tail: exit 1.
        let (exit, text) = compare(&base, &fixture("runs-tcg"), &opts(10.0)).unwrap();
        assert_eq!(exit, Exit::Regression, "{text}");
        assert!(text.contains("share.idle.timer  REGRESSION"), "{text}");
        assert!(text.contains("different accelerators"), "{text}");
        let bad = compare(&base, Path::new("/nonexistent"), &opts(10.0)).unwrap_err();
        assert_eq!(bad.exit, Exit::Usage);
        assert_eq!(
            compare(&base, &base, &opts(-1.0)).unwrap_err().exit,
            Exit::Usage
        );
    }

    /// Every run of one layout failed in NEW: exit 1 naming the row and the failure, exit 0
    /// with --allow-missing.
    #[test]
    fn a_layout_that_failed_in_new_exits_1_unless_allowed() {
        let base = fixture("runs-basic");
        let new = tempfile::tempdir().unwrap();
        std::fs::create_dir(new.path().join("runs")).unwrap();
        for e in std::fs::read_dir(base.join("runs")).unwrap() {
            let e = e.unwrap();
            let mut rec: serde_json::Value =
                serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
            if rec["name"]
                .as_str()
                .unwrap()
                .starts_with("vcpu0.idle.timer.")
            {
                rec["status"] = serde_json::json!({
                    "status": "failed", "stage": "boot", "reason": "boot deadline passed"
                });
                rec["guests"][0]["results"] = serde_json::json!([]);
            }
            std::fs::write(new.path().join("runs").join(e.file_name()), rec.to_string()).unwrap();
        }
        let (exit, text) = compare(&base, new.path(), &opts(10.0)).unwrap();
        assert_eq!(exit, Exit::Regression, "{text}");
        assert!(
            text.contains("vcpu0.idle.timer: 2 of 2 runs failed in NEW (boot: boot deadline passed)  REGRESSION"),
            "{text}"
        );
        let allowed = compare::Options {
            allow_missing: true,
            ..opts(10.0)
        };
        let (exit, text) = compare(&base, new.path(), &allowed).unwrap();
        assert_eq!(exit, Exit::Ok, "{text}");
    }

    #[test]
    fn min_delta_needs_a_unit() {
        assert_eq!(parse_min_delta_ns("500ns").unwrap(), 500);
        assert_eq!(parse_min_delta_ns("2us").unwrap(), 2_000);
        assert_eq!(parse_min_delta_ns("0").unwrap(), 0);
        let e = parse_min_delta_ns("500").unwrap_err();
        assert!(e.to_string().contains("no unit"), "{e}");
        assert!(parse_min_delta_ns("5 parsecs").is_err());
    }

    #[test]
    fn report_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        let ci = ci::Options::default();
        assert_eq!(report(dir.path(), &ci).unwrap_err().exit, Exit::Usage);
        // A results directory whose run files are all unreadable is damaged results (3), as
        // README says, not a bad argument (2).
        std::fs::create_dir(dir.path().join("runs")).unwrap();
        assert_eq!(report(dir.path(), &ci).unwrap_err().exit, Exit::Usage);
        std::fs::write(dir.path().join("runs/a.json"), b"{ not json").unwrap();
        assert_eq!(
            report(dir.path(), &ci).unwrap_err().exit,
            Exit::Infrastructure
        );
    }
}
