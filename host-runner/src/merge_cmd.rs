//! `pinlat merge [LABEL=]DIR... --out DIR [--failed-host NAME[:REASON]]...`: the command-line
//! side of [`pinlat::report::fleet`]. Checks the arguments and `--out` (exit 2), merges, writes
//! `report.{json,md,html}` and `junit.xml` into `--out`, and exits 0 when every host merged and
//! every budget held, 1 when a budget was exceeded on some host, 3 when a host failed or was
//! unreadable or a run failed.

use std::path::Path;

use pinlat::report::fleet::{self, FailedHostArg, FleetOutcome, FleetReport, HostArg};

use crate::exit::{Exit, Failure, OptionError};

/// `--out` cannot take the fleet report.
fn out_error(problem: String) -> Failure {
    OptionError {
        option: "--out",
        problem,
    }
    .into()
}

/// Refuses an `--out` that is a results directory (its own report would be overwritten), one
/// of the merged directories, or not a writable directory; creates it when missing.
pub fn check_out(out: &Path, hosts: &[HostArg]) -> Result<(), Failure> {
    if out.exists() && !out.is_dir() {
        return Err(out_error(format!(
            "{} exists and is not a directory: give a new or empty directory",
            out.display()
        )));
    }
    if out.join("runs").exists() {
        return Err(out_error(format!(
            "{} is a results directory (it has runs/): its report would be overwritten; give another directory",
            out.display()
        )));
    }
    if let Ok(o) = out.canonicalize() {
        if let Some(a) = hosts
            .iter()
            .find(|a| a.dir.canonicalize().is_ok_and(|d| d == o))
        {
            return Err(out_error(format!(
                "{} is one of the merged directories; give another directory",
                a.dir.display()
            )));
        }
    }
    std::fs::create_dir_all(out)
        .map_err(|e| out_error(format!("cannot create {}: {e}", out.display())))?;
    tempfile::tempfile_in(out)
        .map_err(|e| out_error(format!("cannot write into {}: {e}", out.display())))?;
    Ok(())
}

/// The exit code of a fleet report.
pub fn exit_of(r: &FleetReport) -> Exit {
    match r.outcome() {
        FleetOutcome::Held => Exit::Ok,
        FleetOutcome::BudgetExceeded => Exit::BudgetExceeded,
        FleetOutcome::Failed => Exit::Infrastructure,
    }
}

/// The lines printed on stderr: hosts, failures, judgements, where the report is.
pub fn summary(r: &FleetReport, out: &Path) -> String {
    let mut s = String::new();
    if let Some(t) = r.tcg_note() {
        s.push_str(&format!("pinlat: note: {t}\n"));
    }
    s.push_str(&format!("pinlat: {}\n", fleet::view::summary(r)));
    for f in &r.failed_hosts {
        s.push_str(&format!("pinlat: host {} failed: {}\n", f.label, f.reason));
    }
    for j in &r.judgements {
        s.push_str(&format!("pinlat: {}\n", j.statement));
    }
    for o in &r.outliers {
        s.push_str(&format!("pinlat: outlier: {}\n", o.sentence()));
    }
    s.push_str(&format!(
        "pinlat: fleet report written to {}\n",
        out.join("report.html").display()
    ));
    s
}

/// `pinlat merge`.
pub fn merge(dirs: &[String], out: &Path, failed: &[String]) -> Result<Exit, Failure> {
    if dirs.is_empty() {
        return Err(Failure::usage(anyhow::anyhow!(
            "no results directory given: pinlat merge [LABEL=]DIR... --out DIR"
        )));
    }
    let hosts: Vec<HostArg> = dirs
        .iter()
        .map(|d| HostArg::parse(d))
        .collect::<Result<_, _>>()
        .map_err(Failure::usage)?;
    fleet::input::check_unique(&hosts).map_err(Failure::usage)?;
    let failed: Vec<FailedHostArg> = failed
        .iter()
        .map(|f| FailedHostArg::parse(f))
        .collect::<Result<_, _>>()
        .map_err(Failure::usage)?;
    check_out(out, &hosts)?;
    let mut reading = crate::progress::Reading::new(hosts.len());
    let r = fleet::merge(&hosts, &failed, &mut |d| reading.next(d));
    fleet::write_all(&r, out).map_err(Failure::infra)?;
    eprint!("{}", summary(&r, out));
    Ok(exit_of(&r))
}
