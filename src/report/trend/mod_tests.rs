use super::load::SeriesKey;
use super::*;
use crate::histo::Percentile;

fn summary(v: u64) -> Summary {
    let p = Percentile {
        value_ns: Some(v),
        samples_beyond: 100,
        max_bound: false,
    };
    Summary {
        samples: 1_000,
        p50_ns: p,
        p90_ns: p,
        p99_ns: p,
        p999_ns: p,
        p9999_ns: p,
        max_ns: v * 2,
        ..Summary::default()
    }
}

fn key(layout: &str) -> SeriesKey {
    SeriesKey {
        layout: layout.into(),
        variant: None,
        scenario: "idle".into(),
        workload: WorkloadKind::Timer,
    }
}

/// A directory `path` started at `t` ms, host kernel `host`, with `share` at `v` ns (`None`:
/// failed) and, when `vcpu0`, `vcpu0` at 1 µs.
fn dir(path: &str, t: u64, host: Option<&str>, v: Option<u64>, vcpu0: bool) -> DirInput {
    let share = match v {
        Some(v) => SeriesPoint {
            status: PointStatus::Measured,
            ok_runs: 1,
            failed_runs: 0,
            clocks: vec![ClockSource::Monotonic],
            stats: Some(summary(v)),
        },
        None => SeriesPoint {
            status: PointStatus::Failed {
                cause: "guest kernel panic during boot".into(),
            },
            ok_runs: 0,
            failed_runs: 1,
            clocks: Vec::new(),
            stats: None,
        },
    };
    let mut points = vec![(key("share"), share)];
    if vcpu0 {
        points.push((
            key("vcpu0"),
            SeriesPoint {
                stats: Some(summary(1_000)),
                clocks: vec![ClockSource::Monotonic],
                ..SeriesPoint::absent()
            },
        ));
        points[1].1.status = PointStatus::Measured;
    }
    DirInput {
        dir: TrendDir {
            path: path.into(),
            run_id: path.into(),
            started_unix_ms: Some(t),
            host_kernel: host.map(|h| KernelRelease(h.into())),
            host_preempt_rt: Some(true),
            hostname: None,
            cpu_model: Some("Fixture CPU".into()),
            guest_kernel: None,
            accels: vec![Accel::Kvm],
            runs: 1,
            failed_runs: usize::from(v.is_none()),
            aggregated: false,
            notes: Vec::new(),
        },
        points,
    }
}

fn o() -> Options {
    Options::with_threshold(10.0)
}

#[test]
fn directories_are_ordered_by_kernel_version_then_time() {
    let inputs = vec![
        dir("c", 3, Some("6.1.10"), Some(10_000), false),
        dir("a", 9, Some("6.1.0-9"), Some(10_000), false),
        dir("b2", 5, Some("6.1.0-10"), Some(10_000), false),
        dir("b1", 4, Some("6.1.0-10"), Some(10_000), false),
    ];
    let t = build(inputs.clone(), Vec::new(), TrendOrder::HostKernel, &o());
    let paths: Vec<&str> = t.dirs.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["a", "b1", "b2", "c"]);
    let t = build(inputs, Vec::new(), TrendOrder::Time, &o());
    let paths: Vec<&str> = t.dirs.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["c", "b1", "b2", "a"]);
    // No guest kernel known anywhere: each is named, none is trended.
    let t = build(
        vec![dir("x", 1, None, Some(1), false)],
        Vec::new(),
        TrendOrder::GuestKernel,
        &o(),
    );
    assert!(t.dirs.is_empty());
    assert_eq!(t.skipped[0].kind, SkipKind::Unordered);
    assert!(t.has_unreadable());
}

#[test]
fn series_line_up_with_failed_and_absent_points() {
    let t = build(
        vec![
            dir("1", 1, Some("6.1.0-1"), Some(10_000), true),
            dir("2", 2, Some("6.1.0-2"), None, false),
            dir("3", 3, Some("6.1.0-3"), Some(10_000), true),
        ],
        Vec::new(),
        TrendOrder::Time,
        &o(),
    );
    let names: Vec<&str> = t.series.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["share.idle.timer", "vcpu0.idle.timer"]);
    let share = &t.series[0];
    assert!(matches!(share.points[1].status, PointStatus::Failed { .. }));
    assert!(
        share.points[1].stats.is_none(),
        "a failed point has no numbers"
    );
    assert_eq!(t.series[1].points[1].status, PointStatus::Absent);
    assert!(!t.has_regression());
    assert_eq!(share.latest.as_ref().unwrap().history, 1);
}

#[test]
fn a_level_shift_is_a_change_point_and_a_worse_latest_a_regression() {
    let mut inputs: Vec<DirInput> = (0..12)
        .map(|i| {
            let v = if i < 6 { 10_000 } else { 20_000 };
            dir(&format!("d{i:02}"), i, Some("6.1.0"), Some(v), false)
        })
        .collect();
    // One spike: not a change point.
    inputs[3].points[0].1.stats = Some(summary(80_000));
    let t = build(inputs, Vec::new(), TrendOrder::Time, &o());
    let s = &t.series[0];
    let at: Vec<(Metric, usize)> = s.change_points.iter().map(|c| (c.metric, c.at)).collect();
    assert_eq!(
        at,
        Metric::ALL.iter().map(|m| (*m, 6)).collect::<Vec<_>>(),
        "{:?}",
        s.change_points
    );
    assert_eq!(s.change_points[0].change_pct, Some(100.0));
    // The latest against the median of all 11 earlier points: 6 at the old level (one a
    // spike), 5 at the new one, so the median is the new level, and the latest holds it.
    let l = s.latest.as_ref().unwrap();
    assert_eq!(l.changes[0].base_ns, Some(20_000));
    assert!(!t.has_regression());
    inputs_last_worse();
}

/// Twelve directories at 10 µs, the last at 12 µs: a regression of the latest, not yet a
/// change point.
fn inputs_last_worse() {
    let inputs: Vec<DirInput> = (0..12)
        .map(|i| {
            dir(
                &format!("d{i:02}"),
                i,
                Some("6.1.0"),
                Some(if i < 11 { 10_000 } else { 12_000 }),
                false,
            )
        })
        .collect();
    let t = build(inputs, Vec::new(), TrendOrder::Time, &o());
    let s = &t.series[0];
    assert!(s.change_points.is_empty());
    let l = s.latest.as_ref().unwrap();
    assert_eq!(
        (l.changes[0].base_ns, l.changes[0].new_ns),
        (Some(10_000), Some(12_000))
    );
    assert!(l.regression && t.has_regression());
}

#[test]
fn the_report_round_trips_as_its_versioned_json() {
    let t = build(
        vec![
            dir("1", 1, Some("6.1.0-1"), Some(10_000), true),
            dir("2", 2, Some("6.1.0-2"), None, true),
        ],
        vec![SkippedDir {
            path: "old".into(),
            kind: SkipKind::OtherSchema,
            reason: "report.json has schema version 1".into(),
        }],
        TrendOrder::HostKernel,
        &o(),
    );
    assert!(
        !t.has_unreadable(),
        "another schema is named, not a failure"
    );
    let json = &t.files().unwrap()[0];
    assert_eq!(json.name, "report.json");
    let back: TrendReport =
        crate::schema::parse_versioned(Path::new("report.json"), json.contents.as_bytes()).unwrap();
    assert_eq!(back, t);
    assert!(json.contents.contains("\"status\": \"failed\""));
}

#[test]
fn directories_of_other_hosts_or_accelerators_are_noted() {
    let mut a = dir("1", 1, Some("6.1.0-1"), Some(10_000), false);
    let mut b = dir("2", 2, Some("6.1.0-2"), Some(10_000), false);
    assert!(build(
        vec![a.clone(), b.clone()],
        Vec::new(),
        TrendOrder::Time,
        &o()
    )
    .notes
    .is_empty());
    a.dir.hostname = Some("rt-lab-01".into());
    b.dir.hostname = Some("rt-lab-02".into());
    b.dir.accels = vec![Accel::Tcg];
    let notes = build(vec![a, b], Vec::new(), TrendOrder::Time, &o()).notes;
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(notes[0].contains("TCG"));
    assert!(notes[1].contains("different accelerators (kvm, tcg)"));
    assert!(notes[2].contains("different host names (rt-lab-01; rt-lab-02)"));
}

#[test]
fn orders_parse_by_their_names() {
    for (o, name, _) in TrendOrder::ALL {
        assert_eq!(name.parse::<TrendOrder>().unwrap(), o);
        assert_eq!(o.as_str(), name);
    }
    let e = "kernel".parse::<TrendOrder>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "Unknown trend order 'kernel': use time, guest-kernel or host-kernel"
    );
}
