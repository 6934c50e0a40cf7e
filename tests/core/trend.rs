//! `pinlat::report::trend` on results directories of one host across kernel builds
//! (`pinlat_test_infra::fixtures::Build`): version order, a failed point, change points, the
//! latest against the history, report.json preferred to runs/, and directories that cannot be
//! read. The Markdown is a golden file (`PINLAT_BLESS=1` rewrites it).

use std::path::{Path, PathBuf};

use pinlat::histo::Quantile;
use pinlat::report;
use pinlat::report::compare::Options;
use pinlat::report::trend::{self, Metric, PointStatus, SkipKind, TrendOrder, TrendReport};
use pinlat_test_infra::fixtures::{write_build, Build};

use crate::report::golden;

/// 2026-11-25 00:00 UTC.
const T0: u64 = 1_795_564_800_000;
const DAY: u64 = 86_400_000;

fn o() -> Options {
    Options::with_threshold(10.0)
}

/// Writes `builds` as `<root>/<name>` each and returns the paths, in the order given.
fn write(root: &Path, builds: &[(&str, Build)]) -> Vec<PathBuf> {
    builds
        .iter()
        .map(|(name, b)| {
            let d = root.join(name);
            write_build(&d, name, b).unwrap();
            d
        })
        .collect()
}

fn run(paths: &[PathBuf], order: TrendOrder) -> TrendReport {
    trend::trend(paths, order, &o(), &mut |_| {})
}

fn series<'a>(t: &'a TrendReport, name: &str) -> &'a trend::Series {
    t.series.iter().find(|s| s.name == name).unwrap()
}

/// Five Debian RT builds given out of order, the latest with a worse `share` timer tail and
/// one in the middle whose `share` runs all failed at boot.
fn debian_builds() -> Vec<(&'static str, Build)> {
    let b = |k: &str, day: u64| Build::new(k, T0 + day * DAY);
    let mut failed = b("6.1.0-11-rt-amd64", 2);
    failed.failed = &["share"];
    let mut worse = b("6.1.10-rt-amd64", 4);
    worse.share_timer_tail_ns = (40_000, 45_000);
    vec![
        ("c", b("6.1.0-10-rt-amd64", 1)),
        ("latest", worse),
        ("a", b("6.1.0-9-rt-amd64", 3)),
        ("d", failed),
        ("b", b("6.1.0-9-rt-amd64", 0)),
    ]
}

#[test]
fn builds_are_ordered_by_kernel_version_and_the_latest_regression_is_found() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = write(tmp.path(), &debian_builds());
    let t = run(&paths, TrendOrder::HostKernel);
    let order: Vec<String> = t
        .dirs
        .iter()
        .map(|d| d.host_kernel.as_ref().unwrap().0.clone())
        .collect();
    assert_eq!(
        order,
        [
            "6.1.0-9-rt-amd64",
            "6.1.0-9-rt-amd64",
            "6.1.0-10-rt-amd64",
            "6.1.0-11-rt-amd64",
            "6.1.10-rt-amd64"
        ]
    );
    // The two 6.1.0-9 builds in the order they ran.
    assert!(t.dirs[0].path.ends_with("/b") && t.dirs[1].path.ends_with("/a"));
    // The failed build shows as failed, with the cause, and no numbers.
    let share = series(&t, "share.idle.timer");
    let p = &share.points[3];
    assert!(
        matches!(&p.status, PointStatus::Failed { cause } if cause.contains("boot")),
        "{p:?}"
    );
    assert!(p.stats.is_none() && p.failed_runs == 2);
    // The latest: share's timer tail regressed at p99.99 against the median of the 3 measured
    // earlier builds; the others held.
    let l = share.latest.as_ref().unwrap();
    assert_eq!(l.history, 3);
    let p9999 = l
        .changes
        .iter()
        .find(|c| c.metric == Quantile::P9999)
        .unwrap();
    assert!(p9999.regression, "{p9999:?}");
    assert!(!l.changes[0].regression, "p50 did not move");
    let bad: Vec<&str> = t
        .series
        .iter()
        .filter(|s| s.regressed())
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(bad, ["share.idle.timer"]);
    assert!(t.has_regression() && !t.has_unreadable());
    let md = trend::markdown::render(&t, true).replace(tmp.path().to_str().unwrap(), "TMP");
    golden("trend.report.md", &md);
    assert!(md.contains(
        "| 4 | 6.1.0-11-rt-amd64 | **failed: no agent hello before the 60 s boot deadline** |"
    ));
}

#[test]
fn ordered_by_guest_kernel_or_time() {
    let tmp = tempfile::tempdir().unwrap();
    // The host kernel stays; the guest kernel is the build under test. Build d's guests
    // never said hello: its release comes from host.json's image name.
    let builds: Vec<(&str, Build)> = debian_builds()
        .into_iter()
        .map(|(n, mut b)| {
            b.host_kernel = "6.1.0-28-rt-amd64".into();
            if n == "d" {
                b.failed = &["share", "vcpu0"];
            }
            (n, b)
        })
        .collect();
    let paths = write(tmp.path(), &builds);
    let t = run(&paths, TrendOrder::GuestKernel);
    let names: Vec<&str> = t
        .dirs
        .iter()
        .map(|d| d.path.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names, ["b", "a", "c", "d", "latest"]);
    assert!(t.dirs[3].notes[0].contains("from host.json's image name"));
    let t = run(&paths, TrendOrder::Time);
    let names: Vec<&str> = t
        .dirs
        .iter()
        .map(|d| d.path.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names, ["b", "c", "d", "a", "latest"]);
    assert_eq!(t.dirs[0].label(TrendOrder::Time), "2026-11-25 00:00");
}

/// Ten builds; from the sixth on `share`'s timer tail is 40–45 µs: a change point at the
/// sixth on p99.99 and the max, none elsewhere, and the latest holds the new level.
#[test]
fn a_level_shift_across_builds_is_a_change_point() {
    let tmp = tempfile::tempdir().unwrap();
    let builds: Vec<(String, Build)> = (0..10u64)
        .map(|i| {
            let mut b = Build::new(&format!("6.12.0-rt{}", i + 1), T0 + i * DAY);
            if i >= 5 {
                b.share_timer_tail_ns = (40_000, 45_000);
            }
            (format!("b{i}"), b)
        })
        .collect();
    let named: Vec<(&str, Build)> = builds
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    let t = run(&write(tmp.path(), &named), TrendOrder::GuestKernel);
    let share = series(&t, "share.idle.timer");
    let cps: Vec<(Metric, usize)> = share
        .change_points
        .iter()
        .map(|c| (c.metric, c.at))
        .collect();
    assert_eq!(cps, [(Metric::P9999, 5), (Metric::Max, 5)]);
    assert!(share.change_points[0].after_ns >= 40_000);
    for s in t.series.iter().filter(|s| s.name != share.name) {
        assert!(
            s.change_points.is_empty(),
            "{}: {:?}",
            s.name,
            s.change_points
        );
    }
    // The latest against all 9 earlier builds, 5 of them at the old level: the median is the
    // old level, so the latest regressed (the change point is 4 builds old, the gate still
    // sees it until the new level is the history's median).
    let l = share.latest.as_ref().unwrap();
    assert_eq!(l.history, 9);
    assert!(l.regression);
    let html = trend::html::render(&t).unwrap();
    assert_eq!(html.matches("<svg").count(), t.series.len());
    assert!(!html.contains("NaN"));
}

/// report.json is read when there is one (runs/ not at all), runs/ aggregated when not (and
/// when it is damaged, saying so); a
/// directory of another schema is named and left out, a damaged one too (and counts as
/// unreadable), and the others still trend.
#[test]
fn what_is_read_and_what_is_left_out() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = write(
        tmp.path(),
        &[
            ("one", Build::new("6.1.0-9-rt-amd64", T0)),
            ("two", Build::new("6.1.0-10-rt-amd64", T0 + DAY)),
        ],
    );
    report::write_all(&paths[0]).unwrap();
    std::fs::remove_dir_all(paths[0].join("runs")).unwrap();
    std::fs::write(paths[1].join("report.json"), "{ truncated").unwrap();
    let old = tmp.path().join("old");
    std::fs::create_dir(&old).unwrap();
    std::fs::write(old.join("report.json"), r#"{"schema_version": 1}"#).unwrap();
    let damaged = tmp.path().join("damaged");
    std::fs::create_dir_all(damaged.join("runs")).unwrap();
    std::fs::write(damaged.join("runs/x.json"), "{ truncated").unwrap();
    let all = [paths.clone(), vec![old.clone(), damaged.clone()]].concat();
    let t = run(&all, TrendOrder::HostKernel);
    assert_eq!(t.dirs.len(), 2);
    assert!(!t.dirs[0].aggregated, "read from report.json");
    assert!(t.dirs[1].aggregated, "aggregated from runs/");
    assert!(
        t.dirs[1].notes[0].starts_with("report.json is unusable (")
            && t.dirs[1].notes[0].ends_with("): aggregated from runs/"),
        "{:?}",
        t.dirs[1].notes
    );
    assert_eq!(t.dirs[0].runs, 8);
    let kinds: Vec<(&str, SkipKind)> = t
        .skipped
        .iter()
        .map(|s| (s.path.rsplit('/').next().unwrap(), s.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("old", SkipKind::OtherSchema),
            ("damaged", SkipKind::Unreadable)
        ]
    );
    assert!(
        t.skipped[0].reason.contains("schema version 1"),
        "{:?}",
        t.skipped[0]
    );
    assert!(t.has_unreadable());
    assert!(!t.has_regression());
    // Written out: every file, and report.json reads back as the same trend.
    let out = tmp.path().join("trend");
    t.write_all(&out).unwrap();
    let back: TrendReport = pinlat::schema::read_versioned(&out.join("report.json")).unwrap();
    assert_eq!(back, t);
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), t.series.len() + 1);
    assert!(junit.contains("<error type=\"unreadable\""));
}

#[test]
fn junit_fails_the_regressed_series_and_a_failed_latest_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let mut builds = debian_builds();
    let t = run(&write(tmp.path(), &builds), TrendOrder::HostKernel);
    let junit = trend::junit::render(&t);
    assert_eq!(junit.matches("<testcase ").count(), 4);
    assert_eq!(junit.matches("<failure type=\"regression\"").count(), 1);
    assert!(junit.contains("name=\"share.idle.timer\""));
    // A latest build whose share runs all failed: lost, a regression unless allowed.
    let tmp = tempfile::tempdir().unwrap();
    builds[1].1.failed = &["share"];
    let paths = write(tmp.path(), &builds);
    let t = run(&paths, TrendOrder::HostKernel);
    let l = series(&t, "share.idle.timer").latest.clone().unwrap();
    assert!(l.regression);
    assert!(l
        .lost
        .unwrap()
        .starts_with("2 of 2 runs failed in the latest directory"));
    assert!(trend::junit::render(&t).contains("<failure type=\"lost\""));
    let allowed = Options {
        allow_missing: true,
        ..o()
    };
    let t = trend::trend(&paths, TrendOrder::HostKernel, &allowed, &mut |_| {});
    assert!(!t.has_regression());
}
