//! rt-tests JSON (`<group>.oslat.json`, `<group>.cyclictest.json`): read the way Linaro
//! test-definitions' `automated/lib/parse_rt_tests_results.py` reads rt-tests JSON, shaped as
//! the files oslat and cyclictest wrote on this machine (`tests/fixtures/rt-tests/`), and
//! consistent with the report's numbers.

use std::collections::BTreeMap;
use std::path::Path;

use pinlat::config::WorkloadKind;
use pinlat::report::ci::{rt_tests, CiError};
use pinlat::report::{BudgetStatus, Report};
use serde_json::Value;

use super::{json, written};
use crate::report::{golden, read, root};

/// What `parse_rt_tests_results.py` prints for one rt-tests JSON document, line by line, from
/// the fields it reads: `num_threads` (an int), then for each thread number `0..num_threads`
/// the object `thread["<n>"]` (or its `receiver`, for pmqtest-like tools) and its `min`,
/// `avg` and `max` as `t<n>-<key>-latency pass <value> us`; `num_irqs` and `irq` likewise
/// (rtla); `inversion` (pi_stress); and last `<testname> pass` when `return_code` is 0, else
/// `<testname> fail`. A missing field is a failure, as the script's KeyError is.
fn parse_rt_tests(testname: &str, raw: &Value) -> Vec<String> {
    fn int(v: &Value, key: &str) -> i64 {
        v.get(key)
            .and_then(Value::as_i64)
            .unwrap_or_else(|| panic!("{key} is not an int in {v}"))
    }
    let mut out = Vec::new();
    let mut per = |prefix: &str, n: i64, table: &str| {
        for id in 0..n {
            let entry = &raw[table][id.to_string()];
            let data = entry.get("receiver").unwrap_or(entry);
            for key in ["min", "avg", "max"] {
                let v = data
                    .get(key)
                    .unwrap_or_else(|| panic!("{table}.{id} has no {key}"));
                out.push(format!("{prefix}{id}-{key}-latency pass {v} us"));
            }
        }
    };
    if raw.get("num_threads").is_some() {
        per("t", int(raw, "num_threads"), "thread");
    }
    if raw.get("num_irqs").is_some() {
        per("i", int(raw, "num_irqs"), "irq");
    } else if let Some(inv) = raw.get("inversion") {
        out.push(format!("inversion pass {inv} count\n"));
    }
    let verdict = if int(raw, "return_code") == 0 {
        "pass"
    } else {
        "fail"
    };
    out.push(format!("{testname} {verdict}"));
    out
}

/// The reader works on the tools' own files.
#[test]
fn the_reader_reads_the_tools_files() {
    let dir = root().join("tests/fixtures/rt-tests");
    let oslat = parse_rt_tests("oslat", &json(&dir.join("oslat.json")));
    assert_eq!(
        oslat,
        [
            "t0-min-latency pass 1 us",
            "t0-avg-latency pass 1.000406 us",
            "t0-max-latency pass 3597 us",
            "oslat pass"
        ]
    );
    let cyclictest = parse_rt_tests("cyclictest", &json(&dir.join("cyclictest.json")));
    assert_eq!(cyclictest[0], "t0-min-latency pass 6 us");
    assert_eq!(cyclictest.last().unwrap(), "cyclictest pass");
}

/// The rt-tests files of a written report, by group name.
fn files(dir: &Path) -> BTreeMap<String, (String, Value)> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        for tool in ["oslat", "cyclictest"] {
            if let Some(group) = name.strip_suffix(&format!(".{tool}.json")) {
                out.insert(
                    group.to_string(),
                    (tool.to_string(), json(&dir.join(&name))),
                );
            }
        }
    }
    out
}

/// Each busy-poll group is an oslat file, each timer group a cyclictest file, and the script's
/// reading of it gives each RT vCPU's min, avg and max in µs, rounded as the tool rounds
/// (oslat: ns / 1000 + 1, cyclictest: truncated), and the group's verdict.
#[test]
fn pinlat_files_read_as_linaro_reads_rt_tests() {
    for set in ["runs-basic", "runs-tcg", "runs-failures"] {
        let (dir, r) = written(set);
        let files = files(dir.path());
        let shaped: Vec<_> = r
            .groups
            .iter()
            .filter(|g| g.workload != WorkloadKind::Ring)
            .collect();
        assert_eq!(files.len(), shaped.len(), "{set}: one file per group");
        for g in shaped {
            let (tool, raw) = &files[&g.name()];
            let want_tool = match g.workload {
                WorkloadKind::BusyPoll => "oslat",
                _ => "cyclictest",
            };
            assert_eq!(tool, want_tool, "{set} {}", g.name());
            let lines = parse_rt_tests(tool, raw);
            let round = |ns: u64| match g.workload {
                WorkloadKind::BusyPoll => ns / 1000 + 1,
                _ => ns / 1000,
            };
            assert_eq!(lines.len(), 3 * g.per_vcpu.len() + 1, "{lines:?}");
            for (i, v) in g.per_vcpu.iter().enumerate() {
                assert_eq!(
                    lines[3 * i],
                    format!("t{i}-min-latency pass {} us", round(v.stats.min_ns))
                );
                assert_eq!(
                    lines[3 * i + 2],
                    format!("t{i}-max-latency pass {} us", round(v.stats.max_ns))
                );
                assert_eq!(raw["thread"][i.to_string()]["cpu"], v.vcpu.vcpu);
                assert_eq!(raw["pinlat"]["threads"][i], v.vcpu.to_string());
            }
            let held = g.failed_runs.is_empty()
                && matches!(g.budget.status, BudgetStatus::Held | BudgetStatus::NoBudget)
                && g.stats.samples > 0;
            let verdict = if held { "pass" } else { "fail" };
            assert_eq!(lines.last().unwrap(), &format!("{tool} {verdict}"));
        }
    }
}

/// The set's verdicts the script sees: basic's share.mgmt-poll.timer is over its budget
/// (return_code 1), the failures set's colocated layout measured nothing (no thread,
/// return_code 3), TCG says so.
#[test]
fn return_codes_and_notes() {
    let (dir, _) = written("runs-basic");
    let f = files(dir.path());
    assert_eq!(f["share.mgmt-poll.timer"].1["return_code"], 1);
    assert_eq!(f["share.idle.timer"].1["return_code"], 0);
    assert_eq!(f["share.idle.timer"].1["pinlat"]["note"], Value::Null);
    let (dir, _) = written("runs-failures");
    let colocated = &files(dir.path())["colocated.mgmt-poll.timer"].1;
    assert_eq!(colocated["return_code"], 3);
    assert_eq!(colocated["num_threads"], 0);
    assert_eq!(colocated["thread"], serde_json::json!({}));
    let (dir, _) = written("runs-tcg");
    let timer = &files(dir.path())["share.idle.timer"].1;
    assert_eq!(timer["pinlat"]["note"], pinlat::result::TCG_DISCLAIMER);
    assert_eq!(timer["pinlat"]["accel"], "tcg");
    assert_eq!(timer["sysinfo"]["nodename"], super::HOST);
}

/// The keys and value types of a document at each level. Objects keyed by data (`thread`'s
/// numbers, a histogram's buckets) become one entry `#` with the shape every value shares.
fn shape(v: &Value, key: &str) -> Value {
    match v {
        Value::Object(m) if key == "thread" || key == "histogram" => {
            let shapes: Vec<Value> = m
                .iter()
                .map(|(k, x)| {
                    assert!(k.parse::<u64>().is_ok(), "{key} key {k:?} is not a number");
                    shape(x, "#")
                })
                .collect();
            if let Some(first) = shapes.first() {
                assert!(
                    shapes.iter().all(|s| s == first),
                    "{key}: mixed shapes {shapes:?}"
                );
            }
            let mut o = serde_json::Map::new();
            if let Some(first) = shapes.into_iter().next() {
                o.insert("#".into(), first);
            }
            Value::Object(o)
        }
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, x)| (k.clone(), shape(x, k))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().take(1).map(|x| shape(x, "")).collect()),
        Value::Number(n) if n.is_f64() => "float".into(),
        Value::Number(_) => "int".into(),
        Value::String(_) => "string".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => "null".into(),
    }
}

/// pinlat's files have the structure of the tools' own, key for key and type for type, plus
/// the one `pinlat` object at the top.
#[test]
fn pinlat_files_have_the_tools_structure() {
    let (dir, _) = written("runs-basic");
    let f = files(dir.path());
    for (group, tool) in [
        ("share.idle.busy-poll", "oslat"),
        ("share.idle.timer", "cyclictest"),
    ] {
        let real = json(&root().join(format!("tests/fixtures/rt-tests/{tool}.json")));
        let mut ours = f[group].1.clone();
        assert!(ours.as_object_mut().unwrap().remove("pinlat").is_some());
        let (a, b) = (shape(&real, ""), shape(&ours, ""));
        assert_eq!(a, b, "{tool}:\n real {a:#}\n ours {b:#}");
        // Non-empty histograms, so their value type was compared.
        assert!(b["thread"]["#"]["histogram"]["#"] == "int");
    }
}

/// Every sample below the histogram's range is in exactly one bucket, within [min, max].
#[test]
fn histograms_hold_every_sample_between_min_and_max() {
    let (dir, r) = written("runs-tcg");
    let f = files(dir.path());
    for g in r.groups.iter().filter(|g| g.stats.samples > 0) {
        let raw = &f[&g.name()].1;
        for (i, v) in g.per_vcpu.iter().enumerate() {
            let t = &raw["thread"][i.to_string()];
            let h = t["histogram"].as_object().unwrap();
            let total: u64 = h.values().map(|c| c.as_u64().unwrap()).sum();
            assert_eq!(total, v.stats.samples - v.stats.overflow, "{}", g.name());
            let keys: Vec<u64> = h.keys().map(|k| k.parse().unwrap()).collect();
            let (min, max) = (t["min"].as_u64().unwrap(), t["max"].as_u64().unwrap());
            assert!(
                keys.iter().all(|k| (min..=max).contains(k)),
                "{keys:?} {min} {max}"
            );
        }
    }
}

fn report_of(dir: &Path) -> Report {
    pinlat::report::build(dir, &mut |_| {}).unwrap()
}

/// One group printed: by name, or the only one; more than one needs --group.
#[test]
fn one_group_is_chosen_by_name() {
    let (dir, r) = written("runs-tcg");
    let text = rt_tests::render_one(&r, Some("share.idle.timer")).unwrap();
    assert_eq!(
        text,
        read(&dir.path().join("share.idle.timer.cyclictest.json"))
    );
    assert!(matches!(
        rt_tests::render_one(&r, None),
        Err(CiError::GroupNeeded(names)) if names == ["share.idle.timer", "vcpu0.idle.timer"]
    ));
    let e = rt_tests::render_one(&r, Some("share.idle.ring")).unwrap_err();
    assert!(
        e.to_string()
            .contains("use one of share.idle.timer, vcpu0.idle.timer"),
        "{e}"
    );
    assert_eq!(report_of(dir.path()).groups.len(), r.groups.len());
    let mut ring_only = r.clone();
    ring_only
        .groups
        .retain(|g| g.workload == WorkloadKind::Ring);
    for group in [None, Some("share.idle.ring")] {
        assert_eq!(
            rt_tests::render_one(&ring_only, group),
            Err(CiError::NoRtTestsGroup),
            "{group:?}"
        );
    }
}

#[test]
fn golden_rt_tests() {
    let (dir, _) = written("runs-basic");
    golden(
        "ci/basic.share.idle.busy-poll.oslat.json",
        &read(&dir.path().join("share.idle.busy-poll.oslat.json")),
    );
    let (dir, _) = written("runs-tcg");
    golden(
        "ci/tcg.share.idle.timer.cyclictest.json",
        &read(&dir.path().join("share.idle.timer.cyclictest.json")),
    );
}
