//! `pinlat.prom`: read back with a small parser of the Prometheus text exposition format
//! (0.0.4: `# HELP`/`# TYPE` before a metric's samples, a summary's `_count` and `_sum` in its
//! family, samples of a metric together, label values with `\\`, `\"` and `\n` escapes, no
//! series twice), its values against the report, label escaping under arbitrary values, and a
//! golden file. `promtool check metrics` (Debian's `prometheus` package, 96 MB installed: run
//! by hand, not in the suite) finds no error in the golden file; its one lint is the `_ns` unit
//! in the names, which the issue asks for.

use std::collections::{BTreeMap, BTreeSet};

use pinlat::histo::Quantile;
use pinlat::report::ci::prometheus::{self, Exposition, Family, MetricType, Sample, Value};
use proptest::prelude::*;

use super::{written, HOST};
use crate::report::{golden, read};

/// One metric as read back: its samples with their names (a summary's `name_count` too).
#[derive(Debug, Default)]
struct Metric {
    help: String,
    kind: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || (colon && f == ':'))
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || (colon && x == ':'))
}

fn unescape(s: &str, quote: bool, at: usize) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quote => out.push('"'),
            other => panic!("line {at}: bad escape \\{other:?}"),
        }
    }
    out
}

/// `{a="x",b="y"}` → labels and the rest of the line.
fn labels(s: &str, at: usize) -> (BTreeMap<String, String>, &str) {
    let mut out = BTreeMap::new();
    let Some(mut rest) = s.strip_prefix('{') else {
        return (out, s);
    };
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('}') {
            return (out, r);
        }
        let eq = rest
            .find('=')
            .unwrap_or_else(|| panic!("line {at}: no '='"));
        let name = rest[..eq].trim();
        assert!(is_name(name, false), "line {at}: label name {name:?}");
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .unwrap_or_else(|| panic!("line {at}: label value not quoted"));
        let mut end = None;
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let end = end.unwrap_or_else(|| panic!("line {at}: unterminated label value"));
        let value = unescape(&rest[..end], true, at);
        assert!(
            out.insert(name.to_string(), value).is_none(),
            "line {at}: {name} twice"
        );
        rest = &rest[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

fn value(s: &str, at: usize) -> f64 {
    match s {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse()
            .unwrap_or_else(|e| panic!("line {at}: value {v:?}: {e}")),
    }
}

/// Parses an exposition text, panicking with the line at the first departure from the format.
fn parse(text: &str) -> BTreeMap<String, Metric> {
    let mut out: BTreeMap<String, Metric> = BTreeMap::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut series = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let at = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            let mut w = c.trim_start().splitn(3, ' ');
            match (w.next(), w.next(), w.next()) {
                (Some("HELP"), Some(name), help) => {
                    assert!(is_name(name, true), "line {at}: {name}");
                    let m = out.entry(name.to_string()).or_default();
                    assert!(
                        m.help.is_empty() && m.samples.is_empty(),
                        "line {at}: late HELP"
                    );
                    m.help = unescape(help.unwrap_or(""), false, at);
                }
                (Some("TYPE"), Some(name), Some(kind)) => {
                    let kinds = ["counter", "gauge", "histogram", "summary", "untyped"];
                    assert!(kinds.contains(&kind), "line {at}: type {kind}");
                    let m = out.entry(name.to_string()).or_default();
                    assert!(
                        m.kind.is_empty() && m.samples.is_empty(),
                        "line {at}: late TYPE"
                    );
                    m.kind = kind.to_string();
                }
                _ => {}
            }
            continue;
        }
        let end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("line {at}: no value"));
        let name = &line[..end];
        assert!(is_name(name, true), "line {at}: metric name {name:?}");
        let (labels, rest) = labels(&line[end..], at);
        let mut fields = rest.split_whitespace();
        let v = value(
            fields
                .next()
                .unwrap_or_else(|| panic!("line {at}: no value")),
            at,
        );
        assert!(
            fields.next().is_none(),
            "line {at}: pinlat writes no timestamps"
        );
        // A summary's or histogram's _count, _sum and _bucket belong to its family.
        let family = ["_count", "_sum", "_bucket"]
            .iter()
            .filter_map(|s| name.strip_suffix(s))
            .find(|base| {
                out.get(*base)
                    .is_some_and(|m| m.kind == "summary" || m.kind == "histogram")
            })
            .unwrap_or(name);
        if current.as_deref() != Some(family) {
            assert!(
                done.insert(family.to_string()),
                "line {at}: {family}'s samples are split"
            );
            current = Some(family.to_string());
        }
        assert!(
            series.insert(format!("{name}{labels:?}")),
            "line {at}: series twice"
        );
        let m = out.entry(family.to_string()).or_default();
        assert!(
            !m.kind.is_empty() && !m.help.is_empty(),
            "line {at}: {name} before its HELP/TYPE"
        );
        m.samples.push((name.to_string(), labels, v));
    }
    out
}

/// The one value of sample `name` with the labels `want` (and maybe others) in `m`.
fn get(m: &Metric, name: &str, want: &[(&str, &str)]) -> f64 {
    let hits: Vec<f64> = m
        .samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
        .collect();
    assert_eq!(hits.len(), 1, "{name} {want:?}: {hits:?}");
    hits[0]
}

/// The textfile parses, and its values are the report's.
#[test]
fn textfile_parses_and_says_what_the_report_says() {
    let (dir, r) = written("runs-basic");
    let text = read(&dir.path().join(prometheus::FILE));
    let m = parse(&text);
    let latency = &m["pinlat_latency_ns"];
    assert_eq!(latency.kind, "summary");
    for g in &r.groups {
        let at = [
            ("layout", g.layout.as_str()),
            ("scenario", g.scenario.as_str()),
            ("workload", g.workload.as_str()),
            ("host", HOST),
            ("accel", "kvm"),
        ];
        for q in Quantile::ALL {
            let label = prometheus::quantile_label(q);
            let mut want = at.to_vec();
            want.push(("quantile", &label));
            let value = get(latency, "pinlat_latency_ns", &want);
            assert_eq!(value, g.stats.at(q).value_ns.unwrap() as f64);
        }
        let count = get(latency, "pinlat_latency_ns_count", &at);
        assert_eq!(count, g.stats.samples as f64);
        let max = get(&m["pinlat_latency_max_ns"], "pinlat_latency_max_ns", &at);
        assert_eq!(max, g.stats.max_ns as f64);
        let status = |s: &str| {
            let mut want = at.to_vec();
            want.push(("status", s));
            get(&m["pinlat_budget_status"], "pinlat_budget_status", &want)
        };
        let ones: f64 = ["held", "exceeded", "no-budget", "no-data"]
            .map(status)
            .iter()
            .sum();
        assert_eq!(ones, 1.0, "one verdict per group");
        let verdict = serde_json::to_value(g.budget.status).unwrap();
        assert_eq!(status(verdict.as_str().unwrap()), 1.0);
    }

    let (dir, _) = written("runs-tcg");
    let text = read(&dir.path().join(prometheus::FILE));
    assert!(text.starts_with("# pinlat fixture-tcg on lab-rt-01\n# NOTE: measured under QEMU TCG"));
    let m = parse(&text);
    let lost = |reason| {
        let name = "pinlat_runs_without_result";
        get(&m[name], name, &[("host", HOST), ("reason", reason)])
    };
    assert_eq!((lost("unreadable"), lost("missing")), (1.0, 0.0));
    let runs = |outcome| {
        let at = [
            ("layout", "vcpu0"),
            ("workload", "timer"),
            ("accel", "tcg"),
            ("outcome", outcome),
        ];
        get(&m["pinlat_runs"], "pinlat_runs", &at)
    };
    assert_eq!((runs("failed"), runs("measured")), (1.0, 1.0));
}

#[test]
fn golden_prometheus() {
    let (dir, _) = written("runs-tcg");
    golden(
        "ci/tcg.pinlat.prom",
        &read(&dir.path().join(prometheus::FILE)),
    );
}

proptest! {
    /// Any label value and help text comes back as written; +Inf stays +Inf.
    #[test]
    fn any_label_value_round_trips(v in "\\PC*|[\\\\\"\n{}=,# ]*", help in "\\PC*") {
        let e = Exposition {
            comments: vec![format!("NOTE: {help}")],
            families: vec![Family {
                name: "m_ns",
                help: "a help \\ with \n escapes",
                kind: MetricType::Summary,
                samples: vec![
                    Sample { suffix: "", labels: vec![("a", v.clone()), ("b", "x".into())], value: Value::Int(7) },
                    Sample { suffix: "", labels: vec![("a", format!("{v}2"))], value: Value::PosInf },
                    Sample { suffix: "_count", labels: vec![("a", v.clone())], value: Value::Int(9) },
                ],
            }],
        };
        let m = parse(&e.to_text());
        let f = &m["m_ns"];
        prop_assert_eq!(&f.help, "a help \\ with \n escapes");
        prop_assert_eq!(&f.samples[0].1["a"], &v);
        prop_assert_eq!(f.samples[0].2, 7.0);
        prop_assert_eq!(&f.samples[1].1["a"], &format!("{v}2"));
        prop_assert!(f.samples[1].2.is_infinite());
        prop_assert_eq!((f.samples[2].0.as_str(), f.samples[2].2), ("m_ns_count", 9.0));
    }
}
