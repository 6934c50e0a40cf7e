//! Soaks for real (README "Soak"): `pinlat run --soak` rebuilds the report from a checkpoint
//! while the guest measures, keeps each RT vCPU's interval maxima over the whole run, and
//! keeps what an interrupted soak measured when it gets SIGINT.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pinlat::histo::new_histogram;
use pinlat::report::soak::SoakState;
use pinlat::report::Report;
use pinlat::result::{RunStatus, Stage};
use pinlat::schema::{read_versioned, Checkpoint, CHECKPOINT_FILE};
use pinlat_test_infra::{load_runs, only_subdir, process_alive, repo, BootLock};

/// One 2-vCPU guest, layout vcpu0, the timer on vCPU 1 under TCG.
fn config(dir: &Path) -> PathBuf {
    let p = dir.join("soak.toml");
    std::fs::write(
        &p,
        "[run]\naccel = \"tcg\"\nboot_timeout_s = 120\n\
         [host]\ncpus = \"0-1\"\n[[guests]]\nname = \"rt\"\nvcpus = 2\n\
         [[layouts]]\nkind = \"vcpu0\"\n[[workloads]]\nkind = \"timer\"\npreheat_ms = 200\n",
    )
    .unwrap();
    p
}

/// `pinlat run` of [`config`] with `args`, into a fresh `out/`: (its temporary directory,
/// `out/`, the process).
fn spawn(args: &[&str]) -> (tempfile::TempDir, PathBuf, Child) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let child = Command::new(env!("CARGO_BIN_EXE_pinlat"))
        .arg("run")
        .arg(config(tmp.path()))
        .args(args)
        .arg("--out")
        .arg(&out)
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (tmp, out, child)
}

/// Polls `f` every 200 ms while `child` runs; fails with its output if it ends first or
/// `timeout` passes.
fn while_running<T>(
    child: &mut Child,
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("pinlat ended ({status}) before {what}:\n{err}");
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `out`'s only results directory, once it exists.
fn results_dir(out: &Path) -> Option<PathBuf> {
    std::fs::read_dir(out)
        .ok()?
        .flatten()
        .next()
        .map(|e| e.path())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn boot_soak_rebuilds_the_report_while_it_runs_and_keeps_the_whole_run() {
    let _lock = BootLock::acquire().unwrap();
    let (_tmp, out, mut child) = spawn(&["--soak", "30s", "--report-every", "10s"]);

    // While the guest measures: a report built from the checkpoint, saying so.
    let live: Report = while_running(
        &mut child,
        "a report built from a checkpoint",
        Duration::from_secs(300),
        || {
            let r: Report = read_versioned(&results_dir(&out)?.join("report.json")).ok()?;
            r.in_progress.is_some().then_some(r)
        },
    );
    let p = live.in_progress.as_ref().unwrap();
    assert_eq!(p.run, "vcpu0.idle.timer.r1");
    assert!(p.measured_ns > 0 && p.measured_ns < 30_000_000_000, "{p:?}");
    assert_eq!(live.soak[0].state, SoakState::InProgress);
    assert!(live.soak[0].stats.samples > 0);
    let dir = results_dir(&out).unwrap();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("**In progress:** built from a checkpoint"),
        "{md}"
    );

    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("rebuilt every 0:00:10"),
        "{}",
        stderr(&o)
    );
    let dir = only_subdir(&out);
    assert!(
        !dir.join(CHECKPOINT_FILE).exists(),
        "the final record replaced it"
    );
    let report: Report = read_versioned(&dir.join("report.json")).unwrap();
    assert!(report.in_progress.is_none());
    assert_eq!(report.soak.len(), 1);
    assert_eq!(report.soak[0].state, SoakState::Measured);

    let runs = load_runs(&dir);
    let r = &runs[0];
    assert!(r.status.is_ok(), "{:?}", r.status);
    let g = &r.guests[0];
    assert!(
        g.intervals.is_empty(),
        "a soak keeps no interval histogram whole"
    );
    assert!(
        g.agent_max_rss_kib.is_some_and(|k| k > 0),
        "{:?}",
        g.agent_max_rss_kib
    );
    let fin = &g.results[0];
    let s = g.series.iter().find(|s| s.cpu == fin.cpu).unwrap();
    // The series covers the whole run: every interval, every sample, the run's largest one.
    assert!(
        s.points[0].start_offset_ns < 2_000_000_000,
        "{:?}",
        s.points[0]
    );
    assert!(
        s.end_offset_ns() >= 29_000_000_000,
        "series ends at {} ns of 30 s",
        s.end_offset_ns()
    );
    assert_eq!(s.intervals, fin.intervals);
    assert_eq!(s.samples(), fin.samples);
    assert_eq!(
        s.max_ns(),
        Some(new_histogram().highest_equivalent(fin.max_ns))
    );
    assert!(s.merged.is_none());
}

#[test]
fn boot_sigint_mid_soak_keeps_the_run_so_far_and_builds_the_report() {
    let _lock = BootLock::acquire().unwrap();
    let (_tmp, out, mut child) = spawn(&[
        "--soak",
        "20s",
        "--report-every",
        "5s",
        "--repetitions",
        "2",
    ]);
    let runner = child.id();
    // The first repetition ends; the second has measured long enough to checkpoint.
    let measured = while_running(
        &mut child,
        "a checkpoint of the second repetition",
        Duration::from_secs(400),
        || {
            let c: Checkpoint = read_versioned(&results_dir(&out)?.join(CHECKPOINT_FILE)).ok()?;
            (c.run.repetition == 2).then_some(c.measured_ns)
        },
    );
    assert!(measured > 0);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(runner as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let stopped = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert!(
        stopped.elapsed() < Duration::from_secs(120),
        "took {:?}",
        stopped.elapsed()
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("interrupted by SIGINT"), "{err}");

    let dir = only_subdir(&out);
    assert!(
        !dir.join(CHECKPOINT_FILE).exists(),
        "the interrupted record replaced it"
    );
    let runs = load_runs(&dir);
    assert_eq!(runs.len(), 2, "the earlier run and the interrupted one");
    assert!(runs[0].status.is_ok(), "{:?}", runs[0].status);
    let r = &runs[1];
    let RunStatus::Failed { stage, reason } = &r.status else {
        panic!("{:?}", r.status)
    };
    assert_eq!(*stage, Stage::Interrupted);
    assert!(reason.contains("what it measured is kept"), "{reason}");
    let g = &r.guests[0];
    assert!(g.results.is_empty(), "stopped before its final result");
    let s = &g.series[0];
    assert!(
        s.end_offset_ns() >= measured,
        "at least what the checkpoint had"
    );
    let merged = &s.merged.as_ref().expect("the samples so far").0;
    assert_eq!(merged.len() + s.overflow(), s.samples());
    assert!(s.samples() > 0);

    // The report is built and shows the interrupted run's numbers and series.
    let report: Report = read_versioned(&dir.join("report.json")).unwrap();
    assert!(report.in_progress.is_none());
    let row = report.runs.iter().find(|x| x.name == r.name).unwrap();
    assert_eq!(row.stats.samples, s.samples());
    let soak = report.soak.iter().find(|x| x.run == r.name).unwrap();
    assert_eq!(soak.state, SoakState::Interrupted);
    assert_eq!(soak.measured_ns, s.end_offset_ns());
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains(&format!("| {} | interrupted |", r.name)),
        "{md}"
    );
    assert!(!process_alive(g.qemu_pid.unwrap()), "QEMU survived SIGINT");
}
