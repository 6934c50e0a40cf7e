//! `pinlat trend`'s exit codes on results directories of kernel builds
//! (`pinlat_test_infra::fixtures::Build`): 0 held, 1 the latest regressed, 3 a directory could
//! not be read (named; the others still trend and `--out` is still written), 2 bad usage.

use std::path::{Path, PathBuf};

use pinlat_test_infra::fixtures::{write_build, Build};

use super::pinlat;

const T0: u64 = 1_795_564_800_000;
const DAY: u64 = 86_400_000;

/// Three builds of 6.12.0-rtN; the third's `share` timer tail is `tail` ns.
fn builds(root: &Path, tail: (u64, u64)) -> Vec<String> {
    (0..3u64)
        .map(|i| {
            let mut b = Build::new(&format!("6.12.0-rt{}", i + 1), T0 + i * DAY);
            if i == 2 {
                b.share_timer_tail_ns = tail;
            }
            let d = root.join(format!("b{i}"));
            write_build(&d, &format!("b{i}"), &b).unwrap();
            d.display().to_string()
        })
        .collect()
}

fn trend(args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["trend"];
    all.extend_from_slice(args);
    let out = pinlat(&all);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn trend_exits_0_when_the_latest_held_and_1_when_it_regressed() {
    let tmp = tempfile::tempdir().unwrap();
    let held = builds(&tmp.path().join("held"), (12_000, 20_000));
    let (code, out, err) = trend(&refs(&held));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with("# pinlat trend: 4 series over 3 directories, by time"),
        "{out}"
    );
    assert!(out.contains("**0 of 4 series regressed"), "{out}");
    let worse = builds(&tmp.path().join("worse"), (40_000, 45_000));
    let mut args = refs(&worse);
    args.extend(["--by", "guest-kernel"]);
    let (code, out, err) = trend(&args);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("| share.idle.timer | 2 |"), "{out}");
    assert!(out.contains("**REGRESSION** |"), "{out}");
    // A threshold above the growth lets it pass.
    args.extend(["--threshold", "200"]);
    assert_eq!(trend(&args).0, Some(0));
}

#[test]
fn an_unreadable_directory_exits_3_and_the_others_still_trend() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs = builds(tmp.path(), (40_000, 45_000));
    let damaged = tmp.path().join("damaged");
    std::fs::create_dir_all(damaged.join("runs")).unwrap();
    std::fs::write(damaged.join("runs/x.json"), "{").unwrap();
    dirs.push(damaged.display().to_string());
    let out_dir = tmp.path().join("trend-out");
    let mut args = refs(&dirs);
    args.extend(["--out", out_dir.to_str().unwrap()]);
    let (code, out, err) = trend(&args);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(
        err.contains(&format!("left out (unreadable): {}", damaged.display())),
        "{err}"
    );
    assert!(out.contains("series over 3 directories"), "{out}");
    assert!(
        out.contains("**REGRESSION**"),
        "the regression is still reported: {out}"
    );
    for f in ["report.md", "report.html", "report.json", "junit.xml"] {
        assert!(out_dir.join(f).is_file(), "{f}");
    }
}

#[test]
fn bad_usage_exits_2_naming_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = builds(tmp.path(), (12_000, 20_000));
    let missing = tmp.path().join("nope").display().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![dirs[0].clone(), missing.clone()], "is not a directory"),
        (
            vec![dirs[0].clone(), "--by".into(), "kernel".into()],
            "invalid value 'kernel'",
        ),
        (
            vec![dirs[0].clone(), "--threshold=-5".into()],
            "not a percentage",
        ),
        (
            vec![dirs[0].clone(), "--min-delta".into(), "500".into()],
            "has no unit",
        ),
        (vec![dirs[0].clone(), dirs[0].clone()], "is given twice"),
        (
            vec![dirs[0].clone(), "--out".into(), dirs[1].clone()],
            "is a results directory",
        ),
        (vec![], "required"),
    ];
    for (args, says) in cases {
        let (code, out, err) = trend(&refs(&args));
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // Nothing was written into the results directory refused as --out.
    assert!(!PathBuf::from(&dirs[1]).join("report.md").exists());
}
