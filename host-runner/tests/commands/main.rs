//! Integration tests of `pinlat` that boot no guest: config checks and plan exports, bad
//! input, the doctor on host snapshots, calibrate's verdicts on recorded calibrations, and
//! `pinlat merge` on copies of the fixture results directories.
//! One test binary, a module per topic (as ripgrep's `tests/tests.rs`); the tests that boot
//! guests are in `tests/guests/`.

mod badinput;
mod calibrate;
mod doctor;
mod formats;
mod golden;
mod host_knobs;
mod invalid;
mod lava;
mod libvirt_schema;
mod merge;
mod security;
mod trend;

use std::process::{Command, Output};

use pinlat_test_infra::repo;

/// Runs the `pinlat` binary with `args` from the repository root.
pub fn pinlat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pinlat"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("running pinlat")
}

/// Runs `pinlat` with `args`, which must exit 0, and returns its standard output.
pub fn pinlat_stdout(args: &[&str]) -> String {
    let out = pinlat(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "pinlat {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}
