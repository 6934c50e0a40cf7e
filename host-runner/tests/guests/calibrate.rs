//! `pinlat calibrate` run for real on this machine. Its verdict depends on the host's noise of
//! the moment, so this asserts only what noise cannot break: the agent measured, the injector
//! ran every planned stall, each has its row, the exit code is the verdict's, and the report is
//! saved. The verdict logic is tested on recorded calibrations in `tests/commands/calibrate.rs`.

use std::process::Command;

use pinlat::calibration::{CalibrationReport, Verdict, CALIBRATE_FILE};
use pinlat_test_infra::BootLock;

#[test]
fn boot_calibrate_runs_for_real() {
    let _lock = BootLock::acquire().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pinlat"))
        .args([
            "calibrate",
            "--cpu",
            "1",
            "--trials",
            "1",
            "--no-rt-tests",
            "--json",
        ])
        .arg("--out")
        .arg(dir.path().join("results"))
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: CalibrationReport = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "exit {code}, {e}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // Whatever the host's noise: the exit code is the verdict's...
    let want = match r.verdict {
        Verdict::Trusted => 0,
        Verdict::Failed => 1,
        Verdict::Inconclusive { .. } => 4,
    };
    assert_eq!(code, want, "{}", r.to_table());
    // ...the agent measured, the injector ran every planned stall, and each has its row.
    assert!(r.floor.samples > 0);
    assert!(!r.trials.is_empty());
    for t in &r.trials {
        assert!(t.window.is_some(), "the agent reports its window");
        assert_eq!(t.injections.len(), 6);
        assert_eq!(t.detections.len(), 6);
        for i in &t.injections {
            assert!(i.end_ns >= i.start_ns + i.spin_ns, "{i:?}");
        }
    }
    // It is saved where asked and as this host's last calibration.
    for p in [
        dir.path().join("results").join(CALIBRATE_FILE),
        dir.path().join("cache/pinlat").join(CALIBRATE_FILE),
    ] {
        let saved: CalibrationReport = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(saved, r);
    }
}
