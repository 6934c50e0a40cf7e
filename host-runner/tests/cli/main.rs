//! Integration tests of the `pinlat` binary that need no guest: config checks, plan exports.
//! One test binary, a module per topic (as ripgrep's `tests/tests.rs`).

mod badinput;
mod golden;
mod invalid;
mod security;

use std::path::PathBuf;
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host-runner sits in the repo root")
        .to_path_buf()
}

/// Runs the `pinlat` binary with `args` from the repository root.
pub fn pinlat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pinlat"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("running pinlat")
}
