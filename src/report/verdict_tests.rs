//! Arms (layout × variant) are ranked and compared by the layouts' rules: a variant's
//! difference counts only beyond the spread between repetitions.

use super::*;
use crate::histo::{new_histogram, Hist, Summary};
use crate::report::Spread;
use crate::wire::ClockSource;

/// A group of 2 repetitions whose p99.99 is about `tail_ns`, with `spread_ns` between the
/// repetitions' p99.99.
fn group(
    layout: &str,
    kind: LayoutKind,
    variant: Option<&str>,
    tail_ns: u64,
    spread_ns: u64,
) -> Group {
    let mut h = new_histogram();
    h.record_n(5_000, 199_800).unwrap();
    for i in 0..200 {
        h.record(tail_ns + i * 10).unwrap();
    }
    let stats = Summary::new(&h, 0, 5_000, tail_ns + 1_990, 20_000_000_000);
    let p = stats.at(Quantile::P9999).value_ns.unwrap();
    let range = Some(Range {
        min_ns: p - spread_ns / 2,
        max_ns: p - spread_ns / 2 + spread_ns,
    });
    Group {
        layout: layout.into(),
        layout_kind: kind,
        variant: variant.map(str::to_string),
        scenario: "idle".into(),
        workload: WorkloadKind::Timer,
        ok_runs: vec!["r1".into(), "r2".into()],
        failed_runs: Vec::new(),
        failures: Vec::new(),
        clocks: vec![ClockSource::Monotonic],
        stats,
        per_vcpu: Vec::new(),
        top: Vec::new(),
        spread: Spread {
            repetitions: 2,
            p50: range,
            p90: range,
            p99: range,
            p999: range,
            p9999: range,
            max: range,
        },
        stability: Stability::of(&[stats.max_ns, stats.max_ns]),
        timeline: Vec::new(),
        histogram: Hist(h),
        budget: Default::default(),
    }
}

fn find<'a>(v: &'a Verdict, arm: &str, against: &str) -> &'a Comparison {
    v.comparisons
        .iter()
        .find(|c| c.arm() == arm && c.against_arm() == against)
        .unwrap_or_else(|| panic!("no {arm} against {against}: {}", v.statement))
}

#[test]
fn a_variant_within_the_spread_is_not_significant_and_one_beyond_is() {
    let variants = ["base".to_string(), "tuned".to_string()];
    let groups = [
        group("share", LayoutKind::Share, Some("base"), 100_000, 2_000),
        // 1 µs better than base, with a 4 µs spread: within it.
        group("share", LayoutKind::Share, Some("tuned"), 99_000, 4_000),
        group("vcpu0", LayoutKind::Vcpu0, Some("base"), 60_000, 2_000),
        // 30 µs better than base, with a 2 µs spread: beyond it.
        group("vcpu0", LayoutKind::Vcpu0, Some("tuned"), 30_000, 2_000),
    ];
    let v = &verdicts(&groups, &variants)[0];
    let ranked: Vec<String> = v.ranking.iter().map(Ranked::arm).collect();
    assert_eq!(
        ranked,
        ["vcpu0/tuned", "vcpu0/base", "share/tuned", "share/base"]
    );
    let within = find(v, "share/tuned", "share/base");
    assert_eq!(within.significance, Significance::NotSignificant);
    assert_eq!(
        within.noise_ns,
        Some(4_000),
        "the larger of the two spreads"
    );
    assert!(
        within
            .statement
            .starts_with("on share, tuned against base: p99.99 -1.0% ("),
        "{}",
        within.statement
    );
    assert!(within.statement.ends_with("no significant difference)"));
    let beyond = find(v, "vcpu0/tuned", "vcpu0/base");
    assert_eq!(beyond.significance, Significance::Significant);
    assert!(
        beyond.statement.contains("beyond the spread"),
        "{}",
        beyond.statement
    );
    // Layouts are compared within each variant, against that variant's share.
    assert_eq!(
        find(v, "vcpu0/tuned", "share/tuned").significance,
        Significance::Significant
    );
    find(v, "vcpu0/base", "share/base");
    assert_eq!(v.comparisons.len(), 4);
    assert!(
        v.statement.contains("lowest p99.99 vcpu0/tuned"),
        "{}",
        v.statement
    );
}

#[test]
fn one_repetition_leaves_a_variant_unqualified() {
    let variants = ["base".to_string(), "tuned".to_string()];
    let mut tuned = group("share", LayoutKind::Share, Some("tuned"), 30_000, 0);
    tuned.spread = Spread {
        repetitions: 1,
        p50: None,
        p90: None,
        p99: None,
        p999: None,
        p9999: None,
        max: None,
    };
    let groups = [
        group("share", LayoutKind::Share, Some("base"), 100_000, 2_000),
        tuned,
    ];
    let v = &verdicts(&groups, &variants)[0];
    let c = find(v, "share/tuned", "share/base");
    assert_eq!(c.significance, Significance::Unqualified);
    assert!(
        c.statement.contains("fewer than 2 repetitions"),
        "{}",
        c.statement
    );
    assert!(!c.statement.contains("beyond"), "{}", c.statement);
}

#[test]
fn without_variants_arms_are_layouts() {
    let groups = [
        group("share", LayoutKind::Share, None, 100_000, 2_000),
        group("vcpu0", LayoutKind::Vcpu0, None, 30_000, 2_000),
    ];
    let v = &verdicts(&groups, &[])[0];
    assert_eq!(v.ranking[0].arm(), "vcpu0");
    assert_eq!(v.comparisons.len(), 1);
    let c = &v.comparisons[0];
    assert_eq!(
        (c.variant.as_deref(), c.against_variant.as_deref()),
        (None, None)
    );
    assert!(
        c.statement.starts_with("vcpu0 cut p99.99 from "),
        "{}",
        c.statement
    );
    let json = serde_json::to_string(v).unwrap();
    assert!(!json.contains("variant"), "{json}");
}
