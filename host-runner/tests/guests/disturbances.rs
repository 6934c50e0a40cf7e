//! The disturbances that load the threads a layout places (issue 12), end to end under TCG:
//! `pinlat run` with one 2-vCPU guest (vCPU 1 realtime) in layout `vcpu0`, busy-poll on the
//! RT vCPU. Each test asserts the load was achieved, the guest kept running to its results,
//! and QEMU's CPU time went to the thread kind the load works in, on the pCPUs the layout
//! gave the emulator. No fixed timing is asserted; kinds are compared within one run.

use std::path::Path;
use std::process::Command;

use pinlat::result::{RunRecord, ThreadCpu, ThreadKind};
use pinlat_test_infra::{load_runs, only_subdir, process_alive, repo, BootLock};

/// Runs `pinlat run` on a 3 s `vcpu0` busy-poll config with one `scenario`; returns the run,
/// the results directory and a dump for failure messages.
fn run_scenario(out: &Path, scenario: &str) -> (RunRecord, std::path::PathBuf, String) {
    let cfg = out.join("cfg.toml");
    std::fs::write(
        &cfg,
        format!(
            "[run]\nduration_s = 3\naccel = \"tcg\"\nboot_timeout_s = 120\n\
             [host]\ncpus = \"0-1\"\n\
             [[guests]]\nname = \"rt\"\nvcpus = 2\nrealtime_mask = \"^0\"\n\
             [[layouts]]\nkind = \"vcpu0\"\n\
             [[scenarios]]\nkind = \"{scenario}\"\n\
             [[workloads]]\nkind = \"busy-poll\"\npreheat_ms = 200\n"
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_pinlat"))
        .arg("run")
        .arg(&cfg)
        .arg("--out")
        .arg(out.join("out"))
        .current_dir(repo())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let dir = only_subdir(&out.join("out"));
    let mut runs = load_runs(&dir);
    assert_eq!(runs.len(), 1, "{stderr}");
    let r = runs.remove(0);
    let console = r.guests[0]
        .console_log
        .as_ref()
        .and_then(|c| std::fs::read_to_string(dir.join(c)).ok())
        .unwrap_or_default();
    let dump = format!(
        "stderr:\n{stderr}\nstatus {:?}\nwarnings {:?}\nconsole:\n{console}",
        r.status, r.warnings
    );
    assert_eq!(o.status.code(), Some(0), "{dump}");
    (r, dir, dump)
}

/// The guest ran to its results and powered off by itself, and QEMU is gone.
fn kept_running(r: &RunRecord, dump: &str) {
    assert!(r.status.is_ok(), "{dump}");
    let g = &r.guests[0];
    assert_eq!(g.results.len(), 1, "{dump}");
    assert!(g.results[0].samples > 0, "{dump}");
    assert!(g.boot_to_done_ms.is_some(), "the agent said done: {dump}");
    assert!(!process_alive(g.qemu_pid.unwrap()));
}

fn time_of(tc: &ThreadCpu, kind: &ThreadKind) -> u64 {
    tc.kind(kind).map_or(0, |k| k.time_ns())
}

/// Emulator time: every kind but vCPUs and iothreads.
fn emulator_time(tc: &ThreadCpu) -> u64 {
    tc.kinds
        .iter()
        .filter(|k| k.kind.is_emulator())
        .map(|k| k.time_ns())
        .sum()
}

#[test]
fn boot_mgmt_storm_loads_the_main_loop_where_the_layout_put_it() {
    let _lock = BootLock::acquire().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (r, dir, dump) = run_scenario(tmp.path(), "mgmt-storm");
    kept_running(&r, &dump);
    let g = &r.guests[0];

    // The load was achieved: queries answered, every default query supported by this QEMU
    // or listed as not, latencies recorded for every answered call.
    let s = r.mgmt_storm.as_ref().expect("run total");
    let gs = g.mgmt_storm.as_ref().expect("guest's storm");
    assert!(s.calls > 0 && s.calls_per_s() > 0.0, "{s:?}");
    assert_eq!(gs.calls, s.calls);
    assert_eq!(gs.latency.samples, gs.calls);
    assert_eq!(
        gs.queries.len() + gs.unsupported.len(),
        8,
        "{:?} / {:?}",
        gs.queries,
        gs.unsupported
    );
    assert!(
        gs.per_query.iter().all(|q| q.calls > 0),
        "{:?}",
        gs.per_query
    );
    // The storm ran on the housekeeping pCPU, not beside the SCHED_FIFO RT vCPU.
    assert_eq!(gs.cpus.to_string(), "0");

    // QEMU's CPU time went to the threads that answer QMP: the main loop (dispatch) and the
    // monitor's I/O thread carry most of the emulator's time, on the emulator's pCPU.
    let tc = g.thread_cpu.as_ref().expect("thread CPU time");
    assert!(tc.samples >= 2 && tc.window_ns > 0, "{tc:?}");
    let main = time_of(tc, &ThreadKind::MainLoop);
    let qmp = main + time_of(tc, &ThreadKind::Monitor);
    assert!(main > 0, "{tc:?}");
    assert!(
        qmp * 2 > emulator_time(tc),
        "main loop + monitor I/O {qmp} ns of {} ns emulator time: {tc:?}",
        emulator_time(tc)
    );
    let planned = &g.planned.emulator_cpus;
    let seen = &tc.kind(&ThreadKind::MainLoop).unwrap().cpus_seen;
    assert!(
        !seen.is_empty() && seen.difference(planned).is_empty(),
        "main loop seen on {seen}, emulator set {planned}"
    );
    // The RT vCPU is the thread that ran most: the storm did not stop the measurement.
    let rt = time_of(tc, &ThreadKind::Vcpu { vcpu: 1 });
    assert!(rt > qmp, "{tc:?}");

    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("## Where the emulator's CPU time went"), "{md}");
    assert!(md.contains("calls/s"), "{md}");
}

#[test]
fn boot_migrate_loads_the_migration_thread_and_the_guest_keeps_running() {
    let _lock = BootLock::acquire().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (r, dir, dump) = run_scenario(tmp.path(), "migrate");
    // Through every pass the guest ran on to its results: no pass left it paused.
    kept_running(&r, &dump);
    let g = &r.guests[0];

    let m = g.migrate.as_ref().expect("guest's migrations");
    assert_eq!(m.failure, None, "{m:?}\n{dump}");
    assert!(m.passes_started >= 1 && m.bytes > 0, "{m:?}");
    assert!(m.achieved_mib_s() > 0.0, "{m:?}");
    assert_eq!(m.passes_completed + m.passes_failed, 0, "{m:?}");
    // Every pass but the last, cancelled at the end, ended cancelled.
    assert!(m.passes_cancelled + 1 >= m.passes_started, "{m:?}");
    assert_eq!(r.migrate.as_ref().unwrap().bytes, m.bytes);
    assert!(
        !r.warnings
            .iter()
            .any(|w| matches!(w, pinlat::result::Warning::ScenarioPartial { .. })),
        "{:?}",
        r.warnings
    );

    // QEMU's CPU time went to the migration thread (a new one per pass: those that ended
    // during the measurement are in `exited` past their last sample), more than to the main
    // loop, on the emulator's pCPU.
    let tc = g.thread_cpu.as_ref().expect("thread CPU time");
    let mig = tc
        .kind(&ThreadKind::Migration)
        .expect("a migration thread was seen");
    assert!(mig.threads >= 1 && mig.time_ns() > 0, "{tc:?}");
    let migration = mig.time_ns() + time_of(tc, &ThreadKind::Exited);
    let main = time_of(tc, &ThreadKind::MainLoop);
    assert!(
        migration > main,
        "migration {migration} ns vs main loop {main} ns: {tc:?}"
    );
    let planned = &g.planned.emulator_cpus;
    assert!(
        mig.cpus_seen.difference(planned).is_empty(),
        "migration seen on {}, emulator set {planned}",
        mig.cpus_seen
    );

    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("## Where the emulator's CPU time went"), "{md}");
    assert!(md.contains("MiB/s of 128"), "{md}");
}
