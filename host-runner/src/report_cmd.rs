//! `pinlat report DIR` and `pinlat compare BASE NEW`: the command-line side of
//! [`pinlat::report`]. `report` rebuilds every output from `runs/` alone; `compare` prints the
//! per-row change of the percentiles between two reports and flags regressions.

use std::path::Path;

use pinlat::report::{self, compare, Outcome, Report};

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
/// texts from `DIR/runs/`.
pub fn report(dir: &Path) -> Result<Exit, Failure> {
    let r = report::write_all(dir)?;
    eprint!("{}", summary(&r, dir));
    Ok(exit_of(&r))
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

/// `pinlat compare BASE NEW --threshold PCT`: exit 1 when a percentile regressed beyond the
/// threshold, 0 otherwise. Returns the printed text too (for tests).
pub fn compare(base: &Path, new: &Path, threshold_pct: f64) -> Result<(Exit, String), Failure> {
    if !(threshold_pct.is_finite() && threshold_pct >= 0.0) {
        return Err(OptionError {
            option: "--threshold",
            problem: format!("{threshold_pct} is not a percentage ≥ 0"),
        }
        .into());
    }
    let (b, n) = (load(base)?, load(new)?);
    let c = compare::compare(&b, &n, threshold_pct);
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

    #[test]
    fn compare_exit_codes() {
        let base = fixture("runs-basic");
        let (exit, text) = compare(&base, &base, 10.0).unwrap();
        assert_eq!(exit, Exit::Ok, "{text}");
        // Against the TCG set the shared row share.idle.timer has a far worse tail: exit 1.
        let (exit, text) = compare(&base, &fixture("runs-tcg"), 10.0).unwrap();
        assert_eq!(exit, Exit::Regression, "{text}");
        assert!(text.contains("share.idle.timer  REGRESSION"), "{text}");
        assert!(text.contains("different accelerators"), "{text}");
        let bad = compare(&base, Path::new("/nonexistent"), 10.0).unwrap_err();
        assert_eq!(bad.exit, Exit::Usage);
        assert_eq!(compare(&base, &base, -1.0).unwrap_err().exit, Exit::Usage);
    }

    #[test]
    fn report_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(report(dir.path()).unwrap_err().exit, Exit::Usage);
        // A results directory whose run files are all unreadable is damaged results (3), as
        // README says, not a bad argument (2).
        std::fs::create_dir(dir.path().join("runs")).unwrap();
        assert_eq!(report(dir.path()).unwrap_err().exit, Exit::Usage);
        std::fs::write(dir.path().join("runs/a.json"), b"{ not json").unwrap();
        assert_eq!(report(dir.path()).unwrap_err().exit, Exit::Infrastructure);
    }
}
