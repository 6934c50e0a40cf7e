//! The formats RT CI already parses (`pinlat::report::ci`), on the fixture result sets: rt-tests
//! JSON read as Linaro's parser reads it and shaped as the tools' own files, KCIDB rows against
//! the v5 schema's rules, the Prometheus textfile through an exposition-format parser, and the
//! LAVA case lines; golden files for each.

mod kcidb;
mod lava;
mod prometheus;
mod rt_tests;

use std::path::Path;

use pinlat::report::{self, Report};

use super::{copy_fixture, read};

/// The host name the fixture copies get (the committed fixtures record none).
pub const HOST: &str = "lab-rt-01";

/// A committed fixture set copied into a temporary directory, its `host.json` naming the
/// host [`HOST`], and every output written.
pub fn written(name: &str) -> (tempfile::TempDir, Report) {
    let dir = copy_fixture(name);
    name_host(dir.path(), HOST);
    let r = report::write_all(dir.path()).unwrap();
    (dir, r)
}

/// Sets `hostname` in a results directory's `host.json`.
pub fn name_host(dir: &Path, host: &str) {
    let p = dir.join("host.json");
    let mut v: serde_json::Value = serde_json::from_str(&read(&p)).unwrap();
    v["hostname"] = serde_json::Value::String(host.to_string());
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// A written file as JSON.
pub fn json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&read(p)).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
