//! `pinlat calibrate` on this machine: the agent sees every injected stall (exit 0), and a
//! sabotaged result (the test-only `PINLAT_CALIBRATE_SABOTAGE` knob) makes it exit 1. These
//! load a CPU for a few seconds, so they take the boot lock like `boot_*` tests.

use std::process::Command;

use pinlat_runner::calibrate::{CalibrationReport, CALIBRATE_FILE, SABOTAGE_ENV};
use pinlat_runner::follow::BootLock;

fn calibrate(sabotage: Option<&str>) -> (i32, CalibrationReport, tempfile::TempDir) {
    let _lock = BootLock::acquire().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pinlat"));
    cmd.args([
        "calibrate",
        "--cpu",
        "1",
        "--trials",
        "1",
        "--no-rt-tests",
        "--json",
    ])
    .arg("--out")
    .arg(dir.path());
    match sabotage {
        Some(s) => cmd.env(SABOTAGE_ENV, s),
        None => cmd.env_remove(SABOTAGE_ENV),
    };
    let out = cmd.output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: CalibrationReport = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "exit {code}, {e}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, report, dir)
}

#[test]
fn boot_calibrate_sees_every_stall_on_this_machine() {
    let (code, r, dir) = calibrate(None);
    assert_eq!(code, 0, "{}", r.to_table());
    // Three lengths, each injected twice.
    assert_eq!(r.detections.len(), 6);
    assert!(r.passed);
    for d in &r.detections {
        let err = d.error_ns.unwrap();
        assert!(err.unsigned_abs() <= d.tolerance_ns, "{d:?}");
        // The agent cannot see less than the spin itself.
        assert!(d.detected_ns.unwrap() >= d.spin_ns, "{d:?}");
    }
    // The stall lengths are well above the floor.
    assert!(r
        .stall_lengths_ns
        .iter()
        .all(|&l| l >= 5 * r.floor.p9999_ns));
    let saved: CalibrationReport =
        serde_json::from_slice(&std::fs::read(dir.path().join(CALIBRATE_FILE)).unwrap()).unwrap();
    assert_eq!(saved.detections.len(), 6);
}

#[test]
fn boot_calibrate_exits_1_when_the_agent_misses_or_mis_sizes_stalls() {
    // Without its largest events the agent's result cannot vouch for any stall: each is either
    // missed or, when the time shift lines it up with a lesser event, mis-sized.
    let (code, r, _dir) = calibrate(Some("drop-top"));
    assert_eq!(code, 1, "{}", r.to_table());
    assert!(r.missed() >= 1, "{}", r.to_table());
    assert_eq!(r.missed() + r.mis_sized(), 6, "{}", r.to_table());
    assert!(r.to_table().contains("MISSED"));

    let (code, r, _dir) = calibrate(Some("halve"));
    assert_eq!(code, 1, "{}", r.to_table());
    assert!(r.mis_sized() >= 4, "{}", r.to_table());
}
