//! A host knob for real: a variant sets `kernel.sched_rt_runtime_us` on this host, the run
//! records it, and SIGINT in the middle of the run puts it back and removes the journal.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use pinlat::config::variant::HostKnob;
use pinlat::result::RunStatus;
use pinlat::schema::{read_versioned, AppliedKnob, HostKnobsJournal, HOST_KNOBS_JOURNAL};
use pinlat_test_infra::{load_runs, only_subdir, BootLock};

use crate::faults::{qemu_children, wait_for};

const KNOB: &str = "/proc/sys/kernel/sched_rt_runtime_us";

fn journal_path() -> std::path::PathBuf {
    Path::new("/").join(HOST_KNOBS_JOURNAL)
}

fn read_knob() -> String {
    std::fs::read_to_string(KNOB).unwrap().trim().to_string()
}

/// Puts the host's value back and removes a journal this test's pinlat left, whatever the
/// test's outcome: a failing assertion must not leave the host changed, nor block the next
/// `pinlat run` with a journal.
struct RestoreOnDrop {
    original: String,
}

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        if read_knob() != self.original {
            let _ = std::fs::write(KNOB, &self.original);
            eprintln!("test: put {KNOB} back to {}", self.original);
        }
        let _ = std::fs::remove_file(journal_path());
    }
}

#[test]
fn boot_host_knob_is_applied_recorded_and_restored_after_sigint() {
    let _lock = BootLock::acquire().unwrap();
    assert!(
        !journal_path().exists(),
        "a host-knobs journal is already on this host: run pinlat doctor --restore"
    );
    let original = read_knob();
    let _guard = RestoreOnDrop {
        original: original.clone(),
    };
    let wanted = if original == "980000" {
        "970000"
    } else {
        "980000"
    };

    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("knob.toml");
    std::fs::write(
        &cfg,
        format!(
            "[run]\nduration_s = 2\naccel = \"tcg\"\n[host]\ncpus = \"0-1\"\n\
             [[guests]]\nname = \"rt\"\nvcpus = 2\n[[layouts]]\nkind = \"vcpu0\"\n\
             [[workloads]]\nkind = \"busy-poll\"\npreheat_ms = 200\n\
             [[variants]]\nname = \"rt-runtime\"\nhost.sched_rt_runtime_us = {wanted}\n"
        ),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_pinlat"))
        .arg("run")
        .arg(&cfg)
        .args(["--accel", "tcg", "--duration", "2s", "--repetitions", "1"])
        .arg("--out")
        .arg(&out)
        .current_dir(pinlat_test_infra::repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let runner = child.id();

    // While the guest runs: the knob holds the variant's value and the journal says how to
    // put it back.
    wait_for("the guest's QEMU", Duration::from_secs(60), || {
        qemu_children(runner).first().copied()
    });
    assert_eq!(read_knob(), wanted);
    let j: HostKnobsJournal = read_versioned(&journal_path()).unwrap();
    assert_eq!(j.runner_pid, runner);
    assert_eq!(j.variant, "rt-runtime");
    assert_eq!(j.changes.len(), 1);
    assert_eq!(
        (j.changes[0].old.as_str(), j.changes[0].new.as_str()),
        (original.as_str(), wanted)
    );
    // Under TCG the guest boots for several seconds: SIGINT lands in the middle of the run.
    std::thread::sleep(Duration::from_secs(1));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(runner as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);

    assert_eq!(read_knob(), original, "not restored after SIGINT: {stderr}");
    assert!(!journal_path().exists(), "journal left: {stderr}");
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "host knobs restored: sched_rt_runtime_us {wanted} -> {original}"
        )),
        "{stderr}"
    );
    let runs = load_runs(&only_subdir(&out));
    assert_eq!(runs.len(), 1, "{stderr}");
    let r = &runs[0];
    assert!(
        matches!(&r.status, RunStatus::Failed { stage, .. } if stage.as_str() == "interrupted"),
        "{:?}",
        r.status
    );
    assert_eq!(r.variant.as_deref(), Some("rt-runtime"));
    assert_eq!(
        r.host_knobs,
        [AppliedKnob {
            knob: HostKnob::SchedRtRuntimeUs,
            before: original.clone(),
            wanted: wanted.into(),
            applied: wanted.into(),
        }]
    );
}
