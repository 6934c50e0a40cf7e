//! Fault injection: guests that hang, crash, flood garbage or get SIGKILLed, a runner that gets
//! SIGINT, an unwritable results directory. Each asserts the outcome (what was recorded, the
//! exit code, no process left), not merely that nothing crashed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pinlat::result::RunStatus;
use pinlat_test_infra::BootLock;

use pinlat_test_infra::{load_runs, only_subdir, process_alive, repo};

/// A small config: one 2-vCPU guest, layout vcpu0, `n_workloads` runs of `duration_s`, each in
/// a guest of its own (what a fault costs in a shared boot: `boots.rs`).
fn write_config(dir: &Path, boot_timeout_s: u64, workloads: &[&str]) -> PathBuf {
    let mut s = format!(
        "[run]\nduration_s = 3\naccel = \"tcg\"\nboot_timeout_s = {boot_timeout_s}\n\
         boot_per = \"measurement\"\n\
         [host]\ncpus = \"0-1\"\n[[guests]]\nname = \"rt\"\nvcpus = 2\n\
         [[layouts]]\nkind = \"vcpu0\"\n"
    );
    for w in workloads {
        s += &format!("[[workloads]]\nkind = \"{w}\"\npreheat_ms = 200\n");
    }
    let p = dir.join("fault.toml");
    std::fs::write(&p, s).unwrap();
    p
}

fn fake_agent(dir: &Path, mode: &str) -> PathBuf {
    let out = dir.join(format!("fake-agent-{mode}"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests/fake_agent.c");
    let st = Command::new("cc")
        .args(["-static", "-O1", &format!("-DMODE_{mode}"), "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("cc (install gcc and libc6-dev)");
    assert!(st.success());
    out
}

fn pinlat(config: &Path, out: &Path, agent: Option<&Path>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pinlat"));
    c.arg("run")
        .arg(config)
        .arg("--out")
        .arg(out)
        .current_dir(repo());
    if let Some(a) = agent {
        c.env("PINLAT_AGENT", a);
    }
    c
}

fn failed(status: &RunStatus) -> (&str, &str) {
    match status {
        RunStatus::Failed { stage, reason } => (stage.as_str(), reason),
        RunStatus::Ok => panic!("run should have failed"),
    }
}

pub(crate) fn qemu_children(parent: u32) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((comm, rest)) = stat.split_once(") ") else {
            continue;
        };
        let ppid: u32 = rest
            .split(' ')
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if ppid == parent && comm.contains("qemu") && !rest.starts_with('Z') {
            v.push(pid);
        }
    }
    v
}

pub(crate) fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn finish(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

#[test]
fn boot_agent_that_hangs_hits_the_boot_deadline_and_keeps_the_console() {
    let _lock = BootLock::acquire().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let agent = fake_agent(tmp.path(), "HANG");
    // Long enough for the kernel to boot and the fake agent to say "up" on a loaded machine
    // (seen: nothing on the console after 12 s with other guests booting beside it).
    let cfg = write_config(tmp.path(), 25, &["busy-poll", "timer"]);
    let o = pinlat(&cfg, &tmp.path().join("out"), Some(&agent))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let dir = only_subdir(&tmp.path().join("out"));
    let runs = load_runs(&dir);
    assert_eq!(runs.len(), 2, "the matrix went on after the first failure");
    for r in &runs {
        let (stage, reason) = failed(&r.status);
        assert_eq!(stage, "boot", "{reason}");
        assert!(
            reason.contains("boot deadline") && reason.contains("25 s"),
            "{reason}"
        );
        assert!(
            reason.contains("fake-agent: up"),
            "the console's last lines: {reason}"
        );
        let log = dir.join(r.guests[0].console_log.as_ref().unwrap());
        assert!(std::fs::read_to_string(log)
            .unwrap()
            .contains("fake-agent: up"));
        assert!(!process_alive(r.guests[0].qemu_pid.unwrap()));
    }
}

#[test]
fn boot_guest_that_crashes_is_recorded_and_the_matrix_goes_on() {
    let _lock = BootLock::acquire().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let agent = fake_agent(tmp.path(), "CRASH");
    let cfg = write_config(tmp.path(), 60, &["busy-poll", "timer"]);
    let o = pinlat(&cfg, &tmp.path().join("out"), Some(&agent))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let runs = load_runs(&only_subdir(&tmp.path().join("out")));
    assert_eq!(runs.len(), 2);
    for r in &runs {
        let (stage, reason) = failed(&r.status);
        // The fake agent powers off before any hello: the guest never got past boot.
        assert_eq!(stage, "boot", "{reason}");
        assert!(
            reason.contains("exited") && reason.contains("before the agent finished"),
            "{reason}"
        );
        match &r.failure {
            Some(pinlat::console::FailureCause::QemuExited {
                phase, evidence, ..
            }) => {
                assert_eq!(*phase, pinlat::console::Phase::Boot);
                assert!(
                    evidence.iter().any(|l| l.contains("fake-agent: up")),
                    "the console's last lines: {evidence:?}"
                );
            }
            other => panic!("cause should be QEMU exiting at boot, got {other:?}"),
        }
    }
}

#[test]
fn boot_garbage_on_the_wire_is_counted_dropped_and_bounded() {
    let _lock = BootLock::acquire().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let agent = fake_agent(tmp.path(), "GARBAGE");
    let cfg = write_config(tmp.path(), 60, &["busy-poll"]);
    let o = pinlat(&cfg, &tmp.path().join("out"), Some(&agent))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let runs = load_runs(&only_subdir(&tmp.path().join("out")));
    let r = &runs[0];
    failed(&r.status);
    let f = &r.guests[0].frames;
    assert_eq!(f.frames, 0, "no garbage frame may pass: {f:?}");
    assert!(f.bad_crc >= 2000, "{f:?}");
    assert!(f.bad_length >= 2000, "{f:?}");
    assert!(f.bad_json >= 2000, "{f:?}");
    assert!(f.oversize >= 1, "{f:?}");
    assert!(
        r.warnings
            .iter()
            .any(|w| w.to_string().contains("malformed frames dropped")),
        "{:?}",
        r.warnings
    );
    // An over-long line is dropped, not buffered whole: the runner stays small.
    let rss = r.runner_max_rss_kib.unwrap();
    assert!(rss < 64 * 1024, "runner peak RSS {rss} KiB");
}

#[test]
fn boot_qemu_sigkilled_mid_run_keeps_partial_data_and_goes_on() {
    let _lock = BootLock::acquire().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), 60, &["busy-poll", "timer"]);
    // A longer first run, so there is time to kill it after its second interval.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("duration_s = 3", "duration_s = 8");
    std::fs::write(&cfg, text).unwrap();
    let out = tmp.path().join("out");
    let child = pinlat(&cfg, &out, None)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let runner = child.id();
    // The busy-poll run's QEMU, once its agent has sent two interval histograms: found by the
    // agent channel on its command line, which names the run.
    let qemu = wait_for(
        "two interval frames of the busy-poll run",
        Duration::from_secs(90),
        || {
            qemu_children(runner).into_iter().find(|pid| {
                let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                    return false;
                };
                let cmd = String::from_utf8_lossy(&cmd).into_owned();
                let Some(base) = cmd
                    .split('\0')
                    .find_map(|a| a.strip_prefix("pipe,id=agent,path="))
                else {
                    return false;
                };
                // The runner keeps what the agent wrote under the same name in the results.
                let Some(name) = Path::new(base).file_name() else {
                    return false;
                };
                let Some(results) = std::fs::read_dir(&out)
                    .ok()
                    .and_then(|mut d| d.next())
                    .and_then(|e| e.ok())
                else {
                    return false;
                };
                let path = results.path().join("console").join(name);
                // Complete frames only: the piece after the last newline may be a frame the
                // runner has not finished reading.
                base.contains(".busy-poll.")
                    && std::fs::read_to_string(path).is_ok_and(|t| {
                        let mut pieces: Vec<&str> = t.split('\n').collect();
                        pieces.pop();
                        pieces
                            .iter()
                            .filter(|l| l.contains("\"type\":\"interval\""))
                            .count()
                            >= 2
                    })
            })
        },
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(qemu),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let o = finish(child);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let dir = only_subdir(&out);
    let runs = load_runs(&dir);
    assert_eq!(runs.len(), 2, "the matrix went on");
    let killed = runs.iter().find(|r| r.name.contains("busy-poll")).unwrap();
    let (stage, reason) = failed(&killed.status);
    assert_eq!(stage, "measure", "{reason}");
    assert!(
        reason.contains("signal: 9") || reason.contains("SIGKILL"),
        "{reason}"
    );
    assert!(
        killed.guests[0].intervals.len() >= 2,
        "partial interval data kept"
    );
    let other = runs.iter().find(|r| r.name.contains("timer")).unwrap();
    assert!(other.status.is_ok(), "{:?}", other.status);
    assert!(qemu_children(runner).is_empty());
    assert!(!process_alive(qemu));
}

#[test]
fn boot_sigint_stops_every_qemu_and_keeps_finished_runs() {
    let _lock = BootLock::acquire().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let runtime = tmp.path().join("xdg");
    std::fs::create_dir(&runtime).unwrap();
    let cfg = write_config(tmp.path(), 60, &["busy-poll", "timer", "ring"]);
    // ring needs two RT vCPUs; use a 3-vCPU guest.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("vcpus = 2", "vcpus = 3")
        .replace("cpus = \"0-1\"", "cpus = \"0-1\"\n");
    std::fs::write(&cfg, text.replace("kind = \"vcpu0\"", "kind = \"float\"")).unwrap();
    let out = tmp.path().join("out");
    let child = pinlat(&cfg, &out, None)
        .env("XDG_RUNTIME_DIR", &runtime)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let runner = child.id();
    // Let the first run finish, then interrupt the second while it runs.
    wait_for("the first result", Duration::from_secs(90), || {
        let d = std::fs::read_dir(&out).ok()?.flatten().next()?.path();
        (std::fs::read_dir(d.join("runs")).ok()?.count() >= 1).then_some(())
    });
    let qemu = wait_for("the second QEMU", Duration::from_secs(60), || {
        qemu_children(runner).first().copied()
    });
    std::thread::sleep(Duration::from_secs(2));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(runner as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let started = Instant::now();
    let o = finish(child);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    let dir = only_subdir(&out);
    assert!(
        dir.join("report.md").is_file(),
        "the report is rebuilt after SIGINT"
    );
    assert!(!process_alive(qemu), "QEMU {qemu} survived SIGINT");
    assert!(qemu_children(runner).is_empty());
    // The interrupted run's tracefs instance went with it.
    let traces: Vec<String> = crate::trace::pinlat_instances()
        .into_iter()
        .filter(|n| n.starts_with(&format!("pinlat-{runner}-")))
        .collect();
    assert!(
        traces.is_empty(),
        "tracefs instances left after SIGINT: {traces:?}"
    );
    let left: Vec<_> = std::fs::read_dir(&runtime).unwrap().collect();
    assert!(left.is_empty(), "runtime dirs left behind: {left:?}");
    let runs = load_runs(&dir);
    assert_eq!(runs.len(), 2, "the finished run and the interrupted one");
    assert!(runs.iter().any(|r| r.status.is_ok()));
    let (stage, _) = failed(&runs.iter().find(|r| !r.status.is_ok()).unwrap().status);
    assert_eq!(stage, "interrupted");
}

#[test]
fn unwritable_results_dir_fails_before_any_guest_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), 60, &["busy-poll"]);
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, b"").unwrap();
    let started = Instant::now();
    let o = pinlat(&cfg, &blocker, None).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("not writable (nothing was started)"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no guest may have booted"
    );
}

#[test]
fn unusable_kernel_is_an_infrastructure_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), 60, &["busy-poll"]);
    let bad = tmp.path().join("vmlinuz-garbage");
    std::fs::write(&bad, vec![0u8; 4096]).unwrap();
    let o = pinlat(&cfg, &tmp.path().join("out"), None)
        .arg("--kernel")
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("vmlinuz-garbage"), "{stderr}");
}
