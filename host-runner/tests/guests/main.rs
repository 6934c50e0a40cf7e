//! Every test that boots a guest (or loads a CPU as a guest would): `pinlat run` end to end on
//! the Debian PREEMPT_RT kernel under TCG with the real static agent (this file), faults
//! (`faults`), the disturbances (`disturbances`), a layout that kills its guest (`failures`),
//! privileges (`privilege`), a host knob set by a variant and restored (`host_knobs`), guest
//! knobs and readiness (`guest_knobs`), the QEMU/QMP/pinning infrastructure (`infra`),
//! calibrate for real (`calibrate`), the host tracer (`trace`), soaks (`soak`) and shared
//! boots (`boots`). Names start with `boot_` (one at a time under
//! nextest, `.config/nextest.toml`) and each holds [`BootLock`]; the guests come from
//! [`pinlat_test_infra`].

mod boots;
mod calibrate;
mod devices;
mod disturbances;
mod failures;
mod faults;
mod guest_knobs;
mod host_knobs;
mod infra;
mod libvirt;
mod placement;
mod privilege;
mod soak;
mod trace;

use std::path::Path;
use std::process::Command;

use pinlat::histo;
use pinlat::result::{NewThreadPlacement, ThreadRole};
use pinlat_test_infra::{load_runs, only_subdir, process_alive, repo, BootLock};

/// `pinlat run CONFIG --accel tcg --duration DURATION --repetitions 1 --out OUT` from the
/// repository root (CONFIG relative to it): one short repetition of each run under TCG, with
/// no KVM probe. Callers add their own options.
fn short_tcg_run(config: &Path, duration: &str, out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pinlat"));
    c.arg("run")
        .arg(config)
        .args(["--accel", "tcg", "--duration", duration])
        .args(["--repetitions", "1", "--out"])
        .arg(out)
        .current_dir(repo());
    c
}

#[test]
fn boot_quick_config_two_layouts_verified() {
    let _lock = BootLock::acquire().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = short_tcg_run(Path::new("configs/quick.toml"), "2s", out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let dir = only_subdir(out.path());
    let runs = load_runs(&dir);
    let dump = || {
        let mut s = format!("stderr:\n{stderr}\n");
        for r in &runs {
            s += &format!("{}: {:?}\n", r.name, r.status);
            for g in &r.guests {
                if let Some(c) = &g.console_log {
                    s += &format!(
                        "console {}:\n{}\n",
                        c,
                        std::fs::read_to_string(dir.join(c)).unwrap_or_default()
                    );
                }
            }
        }
        s
    };
    assert_eq!(o.status.code(), Some(0), "{}", dump());
    assert!(stderr.contains("TCG"), "TCG runs must say so: {stderr}");

    // Both layouts, every scenario and workload of quick.toml (one repetition here).
    let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(runs.len(), 8, "{names:?}");
    for layout in ["share", "vcpu0"] {
        assert!(
            names.iter().any(|n| n.starts_with(&format!("{layout}."))),
            "{names:?}"
        );
    }
    assert!(dir.join("plan.json").is_file() && dir.join("host.json").is_file());

    for r in &runs {
        assert!(r.status.is_ok(), "{}: {:?}\n{}", r.name, r.status, dump());
        assert_eq!(r.accel, pinlat::kinds::Accel::Tcg);
        let g = &r.guests[0];

        // The default guest kernel is PREEMPT_RT (the guest's own preemption latency is not in
        // the numbers), and busy-poll reads the TSC under TCG: a robust calibration never
        // falls back to CLOCK_MONOTONIC, whose resolution there is ten times coarser.
        let hello = g.hello.as_ref().unwrap();
        assert!(hello.facts.preempt_rt, "{}: {:?}", r.name, hello.facts);
        if r.workload == pinlat::kinds::WorkloadKind::BusyPoll {
            let clock = g.results[0].clock;
            assert_eq!(
                clock.source,
                pinlat::wire::ClockSource::Tsc,
                "{}: {clock:?}",
                r.name
            );
        }

        // Non-empty histograms from the RT vCPU (1), as the agent recorded them.
        assert_eq!(g.results.len(), 1, "{}", r.name);
        let res = &g.results[0];
        assert_eq!(res.cpu, 1, "{}: measured on the wrong vCPU", r.name);
        assert!(res.samples > 0, "{}", r.name);
        let h = histo::decode_base64(&histo::encode_base64(&res.histogram.0).unwrap()).unwrap();
        assert_eq!(
            h.len(),
            res.samples,
            "{}: histogram count != samples",
            r.name
        );
        assert!(
            !g.intervals.is_empty(),
            "{}: no interval histograms",
            r.name
        );

        // Observed placement equals planned for every QEMU thread, after pinning and at the end.
        for (when, threads) in [("start", &g.observed_start), ("end", &g.observed_end)] {
            assert!(threads.len() >= 3, "{} {when}: {threads:?}", r.name);
            for t in threads.iter() {
                assert!(t.matches(), "{} {when}: {t:?}", r.name);
            }
            for v in 0..2 {
                let t = threads
                    .iter()
                    .find(|t| t.role == ThreadRole::Vcpu { vcpu: v })
                    .unwrap_or_else(|| panic!("{} {when}: vCPU {v} thread missing", r.name));
                assert_eq!(t.cpus.to_string(), v.to_string(), "{} {when}", r.name);
            }
        }
        let rt = g.vcpu_stats.iter().find(|s| s.vcpu == 1).unwrap();
        assert_eq!(
            rt.cpus_seen.to_string(),
            "1",
            "{}: RT vCPU ran elsewhere",
            r.name
        );

        // Harness overhead: wall time minus measured time is guest boot plus preheat plus a
        // little, plus at most the 10 s the runner gives a guest to power off after its
        // results. The slack is wide because CI runs on a noisy machine (seen there:
        // `vcpu0.mgmt-poll`, boot 10.4 s, overhead 26.2 s, the guest killed after its 10 s
        // power-off wait), but a run that waited out its run deadline (the 30 s slack on top
        // of twice preheat + duration) fails here.
        let boot = g.boot_to_hello_ms.unwrap();
        assert!(r.wall_ms > r.duration_ms);
        let overhead = r.wall_ms - r.duration_ms;
        assert!(
            overhead <= boot + 20_000,
            "{}: overhead {overhead} ms with boot {boot} ms (hello {:?}, first sample {:?}, done {:?}, exit {:?} ms after QEMU start)",
            r.name,
            g.boot_to_hello_ms,
            g.boot_to_first_sample_ms,
            g.boot_to_done_ms,
            g.boot_to_exit_ms
        );

        // The raw agent stream is kept beside the console log.
        let console = g.console_log.as_ref().unwrap();
        let raw = dir.join(console.replace(".log", ".agent"));
        let text = std::fs::read_to_string(&raw).unwrap_or_default();
        assert!(
            text.contains("PLF1 "),
            "{}: raw stream {} missing",
            r.name,
            raw.display()
        );

        // Threads QEMU starts later are held by a cpuset cgroup of the guest's own where the
        // host has one (this kind of machine has cgroup v1 cpuset), removed with the guest.
        match &g.new_thread_placement {
            Some(
                NewThreadPlacement::CpusetV1 { group }
                | NewThreadPlacement::CgroupV2Threaded { group },
            ) => assert!(
                !std::path::Path::new(group).exists(),
                "{}: {group} left",
                r.name
            ),
            Some(NewThreadPlacement::Scan { why, .. }) => eprintln!("{}: scanning: {why}", r.name),
            Some(NewThreadPlacement::Libvirt { group }) => {
                panic!("{}: QEMU launcher, yet libvirt's {group}", r.name)
            }
            None => panic!("{}: no new-thread placement recorded", r.name),
        }
        assert!(g.drift.is_empty(), "{}: {:?}", r.name, g.drift);

        // No QEMU left behind.
        let pid = g.qemu_pid.unwrap();
        assert!(!process_alive(pid), "{}: QEMU {pid} still running", r.name);
    }
    // Each disturbance achieved its load, and QEMU's CPU time is recorded by thread kind.
    for r in &runs {
        let g = &r.guests[0];
        if r.scenario == "mgmt-storm" {
            let storm = g.mgmt_storm.as_ref().unwrap();
            assert!(storm.calls > 10, "{}: {storm:?}", r.name);
        } else {
            assert_eq!(r.scenario, "migrate");
            let m = g.migrate.as_ref().unwrap();
            assert!(m.passes_started >= 1 && m.bytes > 0, "{}: {m:?}", r.name);
        }
        assert!(g.thread_cpu.is_some(), "{}: no thread CPU time", r.name);
    }
}

/// Two guests in one run (all guests of a config run together): both measured, both verified.
#[test]
fn boot_two_guests_share_a_run() {
    let _lock = BootLock::acquire().unwrap();
    let out = tempfile::tempdir().unwrap();
    let cfg = out.path().join("two.toml");
    std::fs::write(
        &cfg,
        "[run]\nduration_s = 2\naccel = \"tcg\"\n\
         [[guests]]\nname = \"a\"\nvcpus = 1\nrealtime_mask = \"0\"\n\
         [[guests]]\nname = \"b\"\nvcpus = 1\nrealtime_mask = \"0\"\n\
         [[layouts]]\nkind = \"float\"\n[[scenarios]]\nkind = \"mgmt-poll\"\n\
         [[workloads]]\nkind = \"timer\"\npreheat_ms = 200\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_pinlat"))
        .arg("run")
        .arg(&cfg)
        .arg("--out")
        .arg(out.path().join("out"))
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let runs = load_runs(&only_subdir(&out.path().join("out")));
    let r = &runs[0];
    assert!(r.status.is_ok(), "{:?}", r.status);
    let names: Vec<&str> = r.guests.iter().map(|g| g.guest.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    let pids: Vec<i32> = r.guests.iter().map(|g| g.qemu_pid.unwrap()).collect();
    assert_ne!(pids[0], pids[1], "one QEMU per guest");
    for g in &r.guests {
        assert_eq!(g.results.len(), 1, "{}", g.guest);
        assert!(g.results[0].samples > 0, "{}", g.guest);
        assert!(g.observed_end.iter().all(|t| t.matches()), "{}", g.guest);
        assert!(!process_alive(g.qemu_pid.unwrap()));
        // Every guest of the run is disturbed, each on its own monitor.
        let polled = g.mgmt_poll.as_ref().map_or(0, |m| m.rounds);
        assert!(polled > 5, "guest {} polled {polled} times", g.guest);
    }
    assert!(r.mgmt_poll.as_ref().unwrap().rounds > 10);
    // Released together: the guests' measurement windows overlap by at least 95 %.
    let w: Vec<_> = r
        .guests
        .iter()
        .map(|g| {
            g.window
                .unwrap_or_else(|| panic!("guest {} has no window", g.guest))
        })
        .collect();
    let overlap = w[0].end_unix_ms.min(w[1].end_unix_ms) as f64
        - w[0].start_unix_ms.max(w[1].start_unix_ms) as f64;
    let longest =
        (w[0].end_unix_ms - w[0].start_unix_ms).max(w[1].end_unix_ms - w[1].start_unix_ms);
    assert!(
        overlap >= 0.95 * longest as f64,
        "windows {w:?} overlap {overlap} ms of {longest} ms"
    );
}
