//! `kcidb.json`: the rules of KCIDB v5's schema (kcidb-io `kcidb_io/schema/v05_00.py`) checked
//! on every row, the rows' statuses and numbers against the report, a golden file, and — when
//! a Python with kcidb-io is at hand — kcidb-io's own validation.

use pinlat::report::ci::kcidb::{self, KcidbIds};
use serde_json::Value;

use super::{json, written, HOST};
use crate::report::{golden, read};

fn is_origin(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn is_origin_id(s: &str) -> bool {
    s.split_once(':').is_some_and(|(o, _)| is_origin(o))
}

/// `^([a-zA-Z0-9_-]+(\.[a-zA-Z0-9_-]+)*)?$`.
fn is_test_path(s: &str) -> bool {
    s.is_empty()
        || s.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `2026-11-18T11:07:40.000Z`-like RFC 3339 date-times.
fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (s.ends_with('Z') || s[19..].contains('+') || s[19..].contains('-'))
}

fn keys_within(v: &Value, allowed: &[&str], what: &str) {
    for k in v
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object"))
        .keys()
    {
        assert!(
            allowed.contains(&k.as_str()),
            "{what}: key {k} not in the schema"
        );
    }
}

fn no_nulls(v: &Value, at: &str) {
    match v {
        Value::Null => panic!("{at} is null: KCIDB allows no null"),
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| no_nulls(x, &format!("{at}.{k}"))),
        Value::Array(a) => a.iter().for_each(|x| no_nulls(x, at)),
        _ => {}
    }
}

/// The v5.0 schema's rules for a report with test rows.
fn check_v5(doc: &Value) {
    keys_within(
        doc,
        &[
            "version",
            "checkouts",
            "builds",
            "tests",
            "issues",
            "incidents",
        ],
        "report",
    );
    keys_within(&doc["version"], &["major", "minor"], "version");
    assert_eq!(doc["version"]["major"], 5);
    assert!(doc["version"]["minor"].as_u64().is_some());
    no_nulls(doc, "report");
    let mut ids = std::collections::BTreeSet::new();
    for t in doc["tests"].as_array().unwrap() {
        let id = t["id"].as_str().expect("id is required");
        keys_within(
            t,
            &[
                "_timestamp",
                "build_id",
                "id",
                "origin",
                "environment",
                "path",
                "comment",
                "log_url",
                "log_excerpt",
                "status",
                "number",
                "waived",
                "start_time",
                "duration",
                "output_files",
                "misc",
            ],
            id,
        );
        assert!(is_origin_id(id), "{id}");
        assert!(ids.insert(id.to_string()), "{id} twice");
        assert!(is_origin_id(
            t["build_id"].as_str().expect("build_id is required")
        ));
        assert!(is_origin(t["origin"].as_str().expect("origin is required")));
        assert!(
            is_test_path(t["path"].as_str().unwrap()),
            "{id}: path {}",
            t["path"]
        );
        let status = t["status"].as_str().unwrap();
        assert!(
            ["FAIL", "ERROR", "MISS", "PASS", "DONE", "SKIP"].contains(&status),
            "{status}"
        );
        if let Some(n) = t.get("number") {
            keys_within(n, &["value", "unit", "prefix"], id);
            assert!(n["value"].is_number(), "{id}: number.value is required");
        }
        let env = &t["environment"];
        keys_within(env, &["compatible", "comment", "misc"], id);
        assert!(env["misc"].is_object());
        if let Some(s) = t.get("start_time") {
            assert!(is_date_time(s.as_str().unwrap()), "{id}: {s}");
        }
        if let Some(d) = t.get("duration") {
            assert!(d.is_number());
        }
        if let Some(m) = t.get("misc") {
            assert!(m.is_object());
        }
    }
}

fn row<'a>(doc: &'a Value, path: &str) -> &'a Value {
    doc["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["path"] == path)
        .unwrap_or_else(|| panic!("no row {path}"))
}

/// Every set's rows follow the v5 schema; statuses and numbers are the report's.
#[test]
fn rows_follow_v5_and_say_what_the_report_says() {
    for set in ["runs-basic", "runs-tcg", "runs-failures"] {
        let (dir, _) = written(set);
        check_v5(&json(&dir.path().join(kcidb::FILE)));
    }
    let (dir, r) = written("runs-basic");
    let doc = json(&dir.path().join(kcidb::FILE));
    let over = row(&doc, "pinlat.share.mgmt-poll.timer");
    let g = r
        .groups
        .iter()
        .find(|g| g.name() == "share.mgmt-poll.timer")
        .unwrap();
    assert_eq!(over["status"], "FAIL");
    assert_eq!(over["number"]["value"], g.stats.p9999_ns.value_ns.unwrap());
    assert_eq!(over["number"]["unit"], "ns");
    assert_eq!(over["misc"]["measured"], "p99.99");
    assert_eq!(row(&doc, "pinlat.share.idle.timer")["status"], "PASS");
    let p999 = row(&doc, "pinlat.share.mgmt-poll.timer.p99_9");
    assert_eq!(
        (&p999["status"], &p999["number"]["value"]),
        (&"DONE".into(), &g.stats.p999_ns.value_ns.unwrap().into())
    );
    assert_eq!(
        row(&doc, "pinlat.share.mgmt-poll.timer.max")["number"]["value"],
        g.stats.max_ns
    );
    let env = &over["environment"]["misc"];
    assert_eq!(
        (&env["host"], &env["layout"], &env["accel"]),
        (&HOST.into(), &"share".into(), &"kvm".into())
    );
    assert_eq!(
        over["id"],
        format!("pinlat:{HOST}:fixture-basic:share.mgmt-poll.timer")
    );

    let (dir, _) = written("runs-failures");
    let doc = json(&dir.path().join(kcidb::FILE));
    assert_eq!(
        row(&doc, "pinlat.colocated.mgmt-poll.timer")["status"],
        "FAIL"
    );
    assert!(row(&doc, "pinlat.colocated.mgmt-poll.timer")
        .get("number")
        .is_none());
    assert_eq!(
        row(&doc, "pinlat.isolate.mgmt-poll.timer")["status"],
        "PASS"
    );
    let r1 = row(&doc, "pinlat.colocated.mgmt-poll.timer.r1");
    assert_eq!(r1["status"], "FAIL");
    assert_eq!(
        r1["comment"],
        "guest kernel panic during boot — timer check failed"
    );

    let (dir, _) = written("runs-tcg");
    let doc = json(&dir.path().join(kcidb::FILE));
    assert_eq!(
        row(&doc, "pinlat.share.idle.timer")["status"],
        "DONE",
        "no budget"
    );
    assert_eq!(
        row(&doc, "pinlat.share.idle.busy-poll.r1")["status"],
        "ERROR",
        "unreadable"
    );
    let notes = row(&doc, "pinlat.share.idle.timer")["environment"]["comment"]
        .as_str()
        .unwrap()
        .to_string();
    let guest = pinlat::report::guest::NOT_RT_WARNING;
    assert!(notes.starts_with(pinlat::result::TCG_DISCLAIMER), "{notes}");
    assert!(notes.contains(&format!("; {guest}")), "{notes}");
}

/// The origin and build id given are on every row.
#[test]
fn origin_and_build_id_are_the_labs() {
    let (_dir, r) = written("runs-tcg");
    let ids = KcidbIds::new(Some("my_lab".into()), Some("my_lab:kernel-6.12-rt7".into())).unwrap();
    let doc: Value = serde_json::from_str(&kcidb::render(&r, &ids)).unwrap();
    check_v5(&doc);
    for t in doc["tests"].as_array().unwrap() {
        assert_eq!(t["origin"], "my_lab");
        assert_eq!(t["build_id"], "my_lab:kernel-6.12-rt7");
        assert!(t["id"]
            .as_str()
            .unwrap()
            .starts_with("my_lab:lab-rt-01:fixture-tcg:"));
    }
}

#[test]
fn golden_kcidb() {
    let (dir, _) = written("runs-tcg");
    golden("ci/tcg.kcidb.json", &read(&dir.path().join(kcidb::FILE)));
}

/// kcidb-io's own validation (`pip install kcidb-io`): run when `PINLAT_KCIDB_PYTHON` names a
/// Python that imports it, else skipped with a message.
#[test]
fn kcidb_io_accepts_the_rows() {
    let Some(python) = std::env::var_os("PINLAT_KCIDB_PYTHON") else {
        eprintln!("skipped: set PINLAT_KCIDB_PYTHON to a Python with kcidb-io (pip install kcidb-io) to validate kcidb.json with KCIDB's own schema");
        return;
    };
    for set in ["runs-basic", "runs-tcg", "runs-failures"] {
        let (dir, _) = written(set);
        let out = std::process::Command::new(&python)
            .args(["-c", "import json,sys,kcidb_io; kcidb_io.schema.V5_0.validate_exactly(json.load(open(sys.argv[1])))"])
            .arg(dir.path().join(kcidb::FILE))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{set}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
