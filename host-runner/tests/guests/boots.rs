//! Shared boots end to end (README "One boot, many measurements"): `pinlat run` with
//! `run.boot_per = "repetition"` on a real guest, whose agent measures phase after phase. Every
//! phase's record is complete and verified; a phase made to fail (the test hook
//! `PINLAT_TEST_PHASE_FAULT`) costs that phase and a reboot, never the phases after it; the
//! phase order is the seeded one, recorded, and differs between repetitions.

use std::path::{Path, PathBuf};
use std::process::Output;

use pinlat::config::Config;
use pinlat::kinds::BootPer;
use pinlat::plan::Plan;
use pinlat::result::{RunRecord, RunStatus, Stage};
use pinlat_runner::engine::boots::plan_boots;
use pinlat_test_infra::{load_runs, only_subdir, repo, BootLock};

/// One 2-vCPU guest under `vcpu0`, `scenarios` (all launching the same VM) × busy-poll and
/// timer, 1 s each after 200 ms of preheat, `repetitions` boots, phase orders from `seed`.
fn write_config(dir: &Path, scenarios: &[&str], repetitions: u32, seed: u64) -> PathBuf {
    let mut s = format!(
        "[run]\nduration_s = 1\naccel = \"tcg\"\nrepetitions = {repetitions}\n\
         boot_per = \"repetition\"\norder_seed = {seed}\n\
         [host]\ncpus = \"0-1\"\n[[guests]]\nname = \"rt\"\nvcpus = 2\n\
         [[layouts]]\nkind = \"vcpu0\"\n\
         [[workloads]]\nkind = \"busy-poll\"\npreheat_ms = 200\n\
         [[workloads]]\nkind = \"timer\"\npreheat_ms = 200\n"
    );
    for name in scenarios {
        s += &format!("[[scenarios]]\nname = \"{name}\"\nkind = \"idle\"\n");
    }
    let p = dir.join("boots.toml");
    std::fs::write(&p, s).unwrap();
    p
}

/// The planned order of the runs, as `pinlat run` draws it for this host.
fn planned(config: &Path) -> Vec<Vec<String>> {
    let c = Config::from_file(config).unwrap();
    let plan = Plan::new(&c, &pinlat::host::online_cpus().unwrap()).unwrap();
    plan_boots(&c, &plan, c.run.order_seed.unwrap())
        .iter()
        .map(|b| (0..b.phases.len()).map(|i| b.run_name(i)).collect())
        .collect()
}

fn run(config: &Path, out: &Path, fault: Option<&str>) -> (Output, PathBuf, Vec<RunRecord>) {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_pinlat"));
    c.arg("run")
        .arg(config)
        .arg("--out")
        .arg(out)
        .current_dir(repo());
    if let Some(name) = fault {
        c.env("PINLAT_TEST_PHASE_FAULT", name);
    }
    let o = c.output().unwrap();
    let dir = only_subdir(out);
    let runs = load_runs(&dir);
    (o, dir, runs)
}

fn dump(o: &Output, runs: &[RunRecord]) -> String {
    let mut s = format!(
        "exit {:?}\nstderr:\n{}\n",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    for r in runs {
        s += &format!("{}: {:?} boot {:?}\n", r.name, r.status, r.boot);
    }
    s
}

/// The records in the order they ran: by boot, then phase.
fn in_run_order(mut runs: Vec<RunRecord>) -> Vec<RunRecord> {
    runs.sort_by_key(|r| {
        let b = r.boot.as_ref().unwrap();
        (r.started_unix_ms, b.phase)
    });
    runs
}

/// Four phases in one guest: each a complete, verified run of its own — its own hello echoing
/// its phase, samples, interval histograms, window, placement read back at its start and end
/// and equal to the plan — all in the same QEMU process and console log.
#[test]
fn boot_one_boot_measures_every_phase_verified() {
    let _lock = BootLock::acquire().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &["quiet", "calm"], 1, 11);
    let order = planned(&config);
    let (o, _dir, runs) = run(&config, tmp.path(), None);
    let runs = in_run_order(runs);
    let dump = || dump(&o, &runs);
    assert_eq!(o.status.code(), Some(0), "{}", dump());
    let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(vec![names], order, "{}", dump());
    let pid = runs[0].guests[0].qemu_pid;
    for (k, r) in runs.iter().enumerate() {
        assert!(r.status.is_ok(), "{}", dump());
        let b = r.boot.as_ref().unwrap();
        assert_eq!(
            (b.boot_per, b.boot_id.as_str(), b.phase, b.phases),
            (BootPer::Repetition, runs[0].name.as_str(), k as u32, 4)
        );
        assert_eq!(b.order_seed, Some(11));
        let g = &r.guests[0];
        assert_eq!(g.qemu_pid, pid, "{}: another QEMU", r.name);
        assert_eq!(g.console_log, runs[0].guests[0].console_log);
        let hello = g.hello.as_ref().unwrap();
        assert_eq!(hello.config.phase, Some(k as u32));
        assert_eq!(hello.config.workload, r.workload);
        assert_eq!(g.results.len(), 1, "{}", r.name);
        assert!(
            g.results[0].samples > 0 && !g.intervals.is_empty(),
            "{}",
            r.name
        );
        assert!(g.window.is_some(), "{}", r.name);
        assert!(!g.observed_start.is_empty() && !g.observed_end.is_empty());
        assert!(
            r.placement_mismatches().is_empty(),
            "{}: {:?}",
            r.name,
            r.placement_mismatches()
        );
        assert!(g.drift.is_empty(), "{}: {:?}", r.name, g.drift);
        // Only the last phase saw the guest go.
        assert_eq!(g.boot_to_exit_ms.is_some(), k == 3, "{}", r.name);
        // A later phase's wall time is its own: no boot in it.
        if k > 0 {
            assert!(r.wall_ms < runs[0].wall_ms, "{}", dump());
        }
    }
}

/// The second phase of the first boot is made to fail (its agent is asked to measure on a CPU
/// the guest does not have): that record fails in `agent` with the agent's message, and the two
/// phases left run in a new guest whose records name the failure. Nothing is dropped; the run
/// exits 3 for the failed phase.
#[test]
fn boot_a_failed_phase_reboots_for_the_rest() {
    let _lock = BootLock::acquire().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &["quiet", "calm"], 1, 5);
    let order = planned(&config).concat();
    let bad = order[1].clone();
    let (o, _dir, runs) = run(&config, tmp.path(), Some(&bad));
    let runs = in_run_order(runs);
    let dump = || dump(&o, &runs);
    assert_eq!(o.status.code(), Some(3), "{}", dump());
    assert_eq!(runs.len(), 4, "{}", dump());
    let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, order, "{}", dump());
    match &runs[1].status {
        RunStatus::Failed { stage, reason } => {
            assert_eq!(*stage, Stage::Agent, "{}", dump());
            assert!(reason.contains("not online"), "{reason}");
        }
        RunStatus::Ok => panic!("the faulty phase passed: {}", dump()),
    }
    for i in [0, 2, 3] {
        assert!(runs[i].status.is_ok(), "{}", dump());
    }
    let first_pid = runs[0].guests[0].qemu_pid;
    assert_eq!(runs[1].guests[0].qemu_pid, first_pid);
    for r in &runs[2..] {
        let b = r.boot.as_ref().unwrap();
        assert_eq!(b.boot_id, order[2]);
        assert_eq!(b.reboot_after.as_deref(), Some(bad.as_str()));
        assert_eq!(b.phases, 2);
        assert_ne!(r.guests[0].qemu_pid, first_pid, "{}: not rebooted", r.name);
    }
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("PINLAT_TEST_PHASE_FAULT is set"),
        "{stderr}"
    );
}

/// Two repetitions, two boots: each measured its phases in the order drawn from the seed,
/// recorded in every record and in plan.json's config, and the two orders differ (the seed is
/// chosen so they do).
#[test]
fn boot_phase_order_is_seeded_recorded_and_differs_between_repetitions() {
    let _lock = BootLock::acquire().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let seed = (0..64)
        .find(|&s| {
            let c = write_config(tmp.path(), &["quiet"], 2, s);
            let o = planned(&c);
            let strip = |b: &Vec<String>| -> Vec<String> {
                b.iter().map(|n| n.replace(".r2", ".r1")).collect()
            };
            strip(&o[0]) != strip(&o[1])
        })
        .expect("a seed whose two orders differ");
    let config = write_config(tmp.path(), &["quiet"], 2, seed);
    let order = planned(&config);
    let out = tmp.path().join("out");
    let (o, dir, runs) = run(&config, &out, None);
    let runs = in_run_order(runs);
    let dump = || dump(&o, &runs);
    assert_eq!(o.status.code(), Some(0), "{}", dump());
    let got: Vec<Vec<String>> = runs
        .chunks(2)
        .map(|b| b.iter().map(|r| r.name.clone()).collect())
        .collect();
    assert_eq!(got, order, "{}", dump());
    for r in &runs {
        assert_eq!(r.boot.as_ref().unwrap().order_seed, Some(seed));
    }
    assert_ne!(runs[0].guests[0].qemu_pid, runs[2].guests[0].qemu_pid);
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["config"]["run"]["order_seed"], seed);
    assert_eq!(plan["config"]["run"]["boot_per"], "repetition");
}
