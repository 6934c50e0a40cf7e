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

/// A report rebuilt from a checkpoint while a run measures (`pinlat run --report-every`) says
/// so in every CI format, as report.md and junit.xml do: the groups' verdicts leave that run
/// out.
#[test]
fn a_report_from_a_checkpoint_says_so_in_every_format() {
    let dir = copy_fixture("runs-basic");
    name_host(dir.path(), HOST);
    let run = "share.idle.timer.r2";
    let file = dir.path().join("runs").join(format!("{run}.json"));
    let rec: pinlat::result::RunRecord = serde_json::from_str(&read(&file)).unwrap();
    std::fs::remove_file(&file).unwrap();
    let cp = pinlat_test_infra::fixtures::soak::checkpoint(rec, 2, 16);
    std::fs::write(
        dir.path().join(pinlat::schema::CHECKPOINT_FILE),
        serde_json::to_vec(&cp).unwrap(),
    )
    .unwrap();
    let r = report::write_all(dir.path()).unwrap();
    let statement = &r.in_progress.as_ref().expect("in progress").statement;
    assert!(statement.contains(run), "{statement}");

    let prom = read(&dir.path().join(pinlat::report::ci::prometheus::FILE));
    assert!(
        prom.lines().nth(1) == Some(&format!("# IN PROGRESS: {statement}")),
        "{prom}"
    );
    let lava = pinlat::report::ci::lava::render(&r);
    assert!(lava.contains(&format!("\n# NOTE: {statement}\n")), "{lava}");
    let kcidb = json(&dir.path().join(pinlat::report::ci::kcidb::FILE));
    let rows = kcidb["tests"].as_array().unwrap();
    assert!(!rows.is_empty());
    for t in rows {
        assert_eq!(t["environment"]["comment"], statement.as_str(), "{t}");
    }
    let timer = json(&dir.path().join("share.idle.timer.cyclictest.json"));
    assert_eq!(timer["pinlat"]["in_progress"], statement.as_str());
    assert_eq!(
        timer["pinlat"]["runs"],
        serde_json::json!(["share.idle.timer.r1"])
    );
}
