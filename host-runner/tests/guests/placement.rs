//! Placement proven for the whole run: a thread moved off its planned CPUs in the middle of a
//! measurement fails the run, naming the thread, when and for how long, even when it is back in
//! place by the end; and so does a realtime vCPU moved onto the runner's own CPU, where the
//! runner cannot look while it is there.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pinlat::result::{NewThreadPlacement, RunStatus, ThreadRole};
use pinlat::sched;
use pinlat_test_infra::{load_runs, only_subdir, process_alive, repo, BootLock};

/// The QEMU child of `parent` and the tid of its thread named `comm`, once both exist and the
/// agent has sent its first interval (the measurement is running).
fn measuring_thread(parent: u32, out: &Path, comm: &str) -> Option<(i32, i32)> {
    let console = std::fs::read_dir(out)
        .ok()?
        .next()?
        .ok()?
        .path()
        .join("console");
    let measuring = std::fs::read_dir(console).ok()?.flatten().any(|e| {
        e.file_name().to_string_lossy().ends_with(".agent")
            && std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("\"type\":\"interval\""))
    });
    if !measuring {
        return None;
    }
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.split_once(") ") else {
            continue;
        };
        if rest.split(' ').nth(1) != Some(&parent.to_string()) {
            continue;
        }
        for t in std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .flatten()
        {
            let name = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if name.trim_end() == comm {
                return Some((pid, t.file_name().to_string_lossy().parse().ok()?));
            }
        }
    }
    None
}

#[test]
fn boot_threads_moved_mid_run_fail_the_run_and_are_named() {
    let _lock = BootLock::acquire().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("drift.toml");
    // scan: without a cpuset cgroup nothing stops another tool's sched_setaffinity, which is
    // what this test plays. Layout vcpu0 on CPUs 0-1: vCPU 1 (RT) alone on CPU 1.
    std::fs::write(
        &cfg,
        "[run]\nduration_s = 5\naccel = \"tcg\"\nthread_placement = \"scan\"\n\
         [host]\ncpus = \"0-1\"\n[[guests]]\nname = \"rt\"\nvcpus = 2\n\
         [[layouts]]\nkind = \"vcpu0\"\n\
         [[workloads]]\nkind = \"busy-poll\"\npreheat_ms = 200\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pinlat"))
        .arg("run")
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .current_dir(repo())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let (qemu, vcpu1) = loop {
        if let Some(found) = measuring_thread(child.id(), &out, "CPU 1/TCG") {
            break found;
        }
        assert!(Instant::now() < deadline, "no measuring guest within 120 s");
        assert!(child.try_wait().unwrap().is_none(), "runner ended early");
        std::thread::sleep(Duration::from_millis(50));
    };
    // Another tool moves QEMU's main thread (an emulator thread) onto the RT pCPU for ~400 ms,
    let planned = sched::get_affinity(vcpu1).unwrap();
    assert_eq!(planned, [1], "vCPU 1 planned alone on CPU 1");
    let main_planned = sched::get_affinity(qemu).unwrap();
    assert_eq!(main_planned, [0], "emulator threads planned on CPU 0");
    sched::set_affinity(qemu, &[1]).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    sched::set_affinity(qemu, &main_planned).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // then the RT vCPU thread onto the housekeeping CPU, where the runner runs, for ~300 ms.
    sched::set_affinity(vcpu1, &[0]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    sched::set_affinity(vcpu1, &planned).unwrap();

    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    let runs = load_runs(&only_subdir(&out));
    let r = &runs[0];
    let RunStatus::Failed { stage, reason } = &r.status else {
        panic!("the run must fail: {:?}", r.status);
    };
    assert_eq!(stage.as_str(), "verify", "{reason}");
    assert!(reason.contains("drifted"), "{reason}");
    assert!(
        reason.contains("qemu-system-x86") && reason.contains("emulator"),
        "the emulator thread is named: {reason}"
    );
    assert!(
        reason.contains(&format!("vCPU 1 thread {vcpu1} migrated")),
        "the vCPU's move is caught even if no read-back saw it: {reason}"
    );
    let g = &r.guests[0];
    assert!(
        matches!(
            g.new_thread_placement,
            Some(NewThreadPlacement::Scan { period_ms: 10, .. })
        ),
        "{:?}",
        g.new_thread_placement
    );
    let d: Vec<_> = g.drift.iter().filter(|d| d.tid == qemu).collect();
    assert_eq!(d.len(), 1, "one episode for the main thread: {:?}", g.drift);
    let d = d[0];
    assert_eq!(d.role, ThreadRole::Emulator);
    assert_eq!(d.observed_cpus.to_string(), "1");
    assert_eq!(d.planned_cpus.to_string(), "0");
    assert!(!d.unresolved, "it was put back: {d:?}");
    // Read back every 100 ms: seen drifted at least twice in the 400 ms; the upper bound only
    // catches an episode that never closed.
    assert!(
        d.duration_ms >= 100 && d.duration_ms < 5000,
        "{} ms",
        d.duration_ms
    );
    let rt = g.vcpu_stats.iter().find(|s| s.vcpu == 1).unwrap();
    assert!(rt.migrations.unwrap() >= 2, "{rt:?}");
    // Back in place by the end: the check at the end alone would have passed both.
    assert!(
        g.observed_end.iter().all(|t| t.matches()),
        "{:?}",
        g.observed_end
    );
    // The runner starved while the FIFO vCPU sat on its CPU, and says so (unless a read-back
    // happened to land around the move).
    eprintln!("warnings: {:?}", r.warnings);
    assert!(!process_alive(qemu));
}

#[test]
fn boot_threads_qemu_starts_during_the_run_stay_on_the_emulator_set() {
    let _lock = BootLock::acquire().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("workers.toml");
    // guest-io: the guest's disk I/O makes QEMU start thread-pool workers (aio=threads) while
    // the RT vCPU measures. Layout vcpu0 on CPUs 0-1: emulator threads on CPU 0 only.
    std::fs::write(
        &cfg,
        "[run]\nduration_s = 3\naccel = \"tcg\"\n\
         [host]\ncpus = \"0-1\"\n[[guests]]\nname = \"rt\"\nvcpus = 2\n\
         [[layouts]]\nkind = \"vcpu0\"\n\
         [[scenarios]]\nkind = \"guest-io\"\ndisk_mib = 64\n\
         [[workloads]]\nkind = \"busy-poll\"\npreheat_ms = 200\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_pinlat"))
        .arg("run")
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .current_dir(repo())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let runs = load_runs(&only_subdir(&out));
    let g = &runs[0].guests[0];
    let emulator = &g.planned.emulator_cpus;
    assert_eq!(emulator.to_string(), "0");
    eprintln!(
        "{:?}; new threads: {:?}",
        g.new_thread_placement, g.new_threads
    );
    assert!(
        g.new_threads.iter().any(|t| t.comm == "worker"),
        "disk I/O started no thread-pool worker: {:?}",
        g.new_threads
    );
    // Every thread that appeared was on the emulator set from the first look, and none ever
    // drifted onto the RT pCPU.
    for t in &g.new_threads {
        assert_eq!(&t.cpus_when_seen, emulator, "{t:?}");
        assert_eq!(t.placed_after_us, 0, "already in place: {t:?}");
    }
    assert!(g.drift.is_empty(), "{:?}", g.drift);
    // This machine has a cgroup v1 cpuset hierarchy: the guest had a group of its own, gone
    // with it.
    match &g.new_thread_placement {
        Some(
            NewThreadPlacement::CpusetV1 { group } | NewThreadPlacement::CgroupV2Threaded { group },
        ) => assert!(!Path::new(group).exists(), "{group} left behind"),
        other => panic!("no cpuset cgroup used: {other:?}"),
    }
}
