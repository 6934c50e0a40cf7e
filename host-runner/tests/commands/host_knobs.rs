//! `pinlat doctor` and `pinlat doctor --restore` on a copy of the lab host's snapshot where a
//! crashed `pinlat run` left a host knob changed and its journal behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use pinlat::config::variant::HostKnob;
use pinlat::schema::{
    DoctorReport, HostKnobsJournal, KnobChange, HOST_KNOBS_JOURNAL,
    HOST_KNOBS_JOURNAL_SCHEMA_VERSION,
};

use super::pinlat;

/// The lab host's snapshot, copied so its files can change.
fn lab_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/doctor/rt-lab-host");
    let st = Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(tmp.path().join("root"))
        .status()
        .unwrap();
    assert!(st.success());
    let root = tmp.path().join("root");
    (tmp, root)
}

/// A pid no process has any more: that of a child already reaped.
fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

/// What a pinlat killed while variant `rt` ran leaves: RT throttling off, and the journal.
fn crash(root: &Path) {
    let knob = HostKnob::SchedRtRuntimeUs;
    std::fs::write(root.join(knob.path()), "-1\n").unwrap();
    let j = HostKnobsJournal {
        schema_version: HOST_KNOBS_JOURNAL_SCHEMA_VERSION,
        runner_pid: dead_pid(),
        variant: "rt".into(),
        created_unix_ms: 1,
        changes: vec![KnobChange {
            knob,
            path: knob.path().into(),
            old: "950000".into(),
            new: "-1".into(),
        }],
    };
    let p = root.join(HOST_KNOBS_JOURNAL);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, serde_json::to_vec(&j).unwrap()).unwrap();
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn doctor_warns_of_a_left_journal_and_restore_puts_the_knob_back() {
    let (_t, root) = lab_copy();
    let r = root.to_str().unwrap();
    crash(&root);

    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/lab-8cpu.toml");
    let cfg = cfg.to_str().unwrap();
    // The lab host passes every check with this config: the journal is a warning only.
    let o = pinlat(&["doctor", cfg, "--json", "--root", r]);
    assert_eq!(o.status.code(), Some(0), "a warning, not a failure");
    let report: DoctorReport = serde_json::from_slice(&o.stdout).unwrap();
    let c = report.get("host.knobs_journal").expect("the journal check");
    assert_eq!(c.status, pinlat::schema::CheckStatus::Warn);
    assert!(
        c.found.contains(
            "left variant 'rt' host knobs changed: sched_rt_runtime_us was 950000, pinlat wrote -1"
        ),
        "{}",
        c.found
    );
    assert_eq!(c.fix, "pinlat doctor --restore");

    let o = pinlat(&["doctor", "--restore", "--root", r]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("variant 'rt': sched_rt_runtime_us -1 -> 950000; journal removed"),
        "{out}"
    );
    let now = std::fs::read_to_string(root.join(HostKnob::SchedRtRuntimeUs.path())).unwrap();
    assert_eq!(now.trim(), "950000");
    assert!(!root.join(HOST_KNOBS_JOURNAL).exists());

    // Nothing left: still 0, and the doctor no longer mentions it.
    let o = pinlat(&["doctor", "--restore", "--root", r]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).contains("nothing to restore"));
    let o = pinlat(&["doctor", cfg, "--json", "--root", r]);
    let report: DoctorReport = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report.get("host.knobs_journal").is_none());
}

#[test]
fn a_knob_that_cannot_be_written_back_is_exit_3_and_keeps_the_journal() {
    let (_t, root) = lab_copy();
    crash(&root);
    let file = root.join(HostKnob::SchedRtRuntimeUs.path());
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    let o = pinlat(&["doctor", "--restore", "--root", root.to_str().unwrap()]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("1 of 1 host knobs could not be restored"),
        "{err}"
    );
    assert!(err.contains("sched_rt_runtime_us"), "{err}");
    assert!(
        root.join(HOST_KNOBS_JOURNAL).exists(),
        "kept for another try"
    );
}

#[test]
fn restore_takes_no_checking_options() {
    let o = pinlat(&["doctor", "--restore", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("cannot be used with"),
        "{}",
        text(&o.stderr)
    );
}
