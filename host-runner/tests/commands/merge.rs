//! `pinlat merge` end to end: exit codes (0 held, 1 a budget exceeded, 3 a failed host or run,
//! 2 bad usage), a failed host and a missing directory in every output while the others
//! merge, and the outputs written into --out. The hosts are copies of the committed fixture
//! results directories (`tests/fixtures/runs-*`).

use std::path::{Path, PathBuf};

use pinlat_test_infra::repo;

use crate::pinlat;

/// A copy of `tests/fixtures/<name>` at `dst`, keeping only the runs `keep` accepts (the plan
/// lists only those, so none is missing).
fn copy_fixture(name: &str, dst: &Path, keep: impl Fn(&str) -> bool) -> PathBuf {
    let src = repo().join("tests/fixtures").join(name);
    std::fs::create_dir_all(dst.join("runs")).unwrap();
    for f in ["host.json", "plan.json"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    for e in std::fs::read_dir(src.join("runs")).unwrap() {
        let e = e.unwrap();
        if keep(&e.file_name().to_string_lossy()) {
            std::fs::copy(e.path(), dst.join("runs").join(e.file_name())).unwrap();
        }
    }
    let plan_path = dst.join("plan.json");
    let mut plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&plan_path).unwrap()).unwrap();
    plan["runs"]
        .as_array_mut()
        .unwrap()
        .retain(|r| keep(&format!("{}.json", r.as_str().unwrap())));
    std::fs::write(&plan_path, serde_json::to_vec_pretty(&plan).unwrap()).unwrap();
    dst.to_path_buf()
}

fn arg(label: &str, dir: &Path) -> String {
    format!("{label}={}", dir.display())
}

fn merge(args: &[String]) -> (i32, String) {
    let a: Vec<&str> = std::iter::once("merge")
        .chain(args.iter().map(String::as_str))
        .collect();
    let out = pinlat(&a);
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn merge_exit_codes_and_a_failed_host_that_never_stops_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // isolate alone holds the basic budgets; share exceeds them.
    let a = copy_fixture("runs-basic", &t.join("a"), |f| f.starts_with("isolate."));
    let b = copy_fixture("runs-basic", &t.join("b"), |f| f.starts_with("isolate."));
    let c = copy_fixture("runs-basic", &t.join("c"), |_| true);
    let out = t.join("fleet");
    let outs = |name: &str| out.join(name);

    let (code, err) = merge(&[
        arg("lab1", &a),
        arg("lab2", &b),
        "--out".into(),
        out.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    for f in ["report.json", "report.md", "report.html", "junit.xml"] {
        assert!(outs(f).is_file(), "{f}");
    }
    assert!(err.contains("2 host(s) merged"), "{err}");

    let (code, err) = merge(&[
        arg("lab1", &a),
        arg("lab2", &b),
        arg("lab3", &c),
        "--out".into(),
        out.display().to_string(),
    ]);
    assert_eq!(code, 1, "a budget exceeded on lab3: {err}");

    // A host Ansible found unreachable and a directory never fetched: exit 3, both named in
    // every output, the others merged.
    let (code, err) = merge(&[
        arg("lab1", &a),
        arg("lab2", &b),
        arg("lab4", &t.join("never-fetched")),
        "--failed-host".into(),
        "lab9:unreachable (ssh: connect to host 127.0.0.4 port 22: Connection refused)".into(),
        "--out".into(),
        out.display().to_string(),
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("host lab9 failed: unreachable"), "{err}");
    assert!(err.contains("host lab4 failed"), "{err}");
    let md = std::fs::read_to_string(outs("report.md")).unwrap();
    assert!(md.contains("| ❌ lab9 | – | unreachable (ssh"), "{md}");
    assert!(md.contains("never-fetched does not exist"), "{md}");
    assert!(md.contains("| lab1 | ✅ held |"), "{md}");
    let junit = std::fs::read_to_string(outs("junit.xml")).unwrap();
    assert!(
        junit.contains("name=\"lab9\">\n      <failure type=\"host-failed\" message=\"unreachable"),
        "{junit}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(outs("report.json")).unwrap()).unwrap();
    assert_eq!(json["hosts"].as_array().unwrap().len(), 2);
    assert_eq!(json["failed_hosts"].as_array().unwrap().len(), 2);
    let html = std::fs::read_to_string(outs("report.html")).unwrap();
    assert!(
        html.contains("host failed: unreachable"),
        "failed host in the HTML"
    );

    // A host with an unreadable run file (the TCG fixture): exit 3 as well.
    let tcg = copy_fixture("runs-tcg", &t.join("tcg"), |_| true);
    let (code, err) = merge(&[
        arg("lab1", &a),
        arg("lab5", &tcg),
        "--out".into(),
        out.display().to_string(),
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("ran under TCG (lab5)"), "{err}");
}

#[test]
fn merge_refuses_bad_usage_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let a = copy_fixture("runs-basic", &t.join("a"), |f| f.starts_with("isolate."));
    let out = t.join("fleet").display().to_string();
    let file = t.join("file");
    std::fs::write(&file, "x").unwrap();
    for (args, says) in [
        (vec!["--out".to_string(), out.clone()], "required"),
        (vec![a.display().to_string()], "--out"),
        (
            vec![format!("={}", a.display()), "--out".into(), out.clone()],
            "no label before '='",
        ),
        (
            vec!["lab1=".into(), "--out".into(), out.clone()],
            "no directory: write DIR or LABEL=DIR",
        ),
        (
            vec![arg("x", &a), arg("x", &a), "--out".into(), out.clone()],
            "label 'x' is given to two directories",
        ),
        (
            vec![arg("x", &a), "--out".into(), file.display().to_string()],
            "is not a directory",
        ),
        (
            vec![arg("x", &a), "--out".into(), a.display().to_string()],
            "is a results directory",
        ),
        (
            vec![
                arg("x", &a),
                "--failed-host".into(),
                ":down".into(),
                "--out".into(),
                out.clone(),
            ],
            "no host name",
        ),
    ] {
        let (code, err) = merge(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(!t.join("fleet").exists(), "nothing written on bad usage");
}
