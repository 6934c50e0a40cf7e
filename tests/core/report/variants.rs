//! Tuning variants in the report: arms (layout × variant) ranked with the layouts' spread
//! rule, each compared with its layout's baseline variant; the variant in every output's names
//! so that variants never merge (golden files for report.md, junit.xml and the verdicts of
//! report.json). Without variants the outputs are unchanged: the other golden files are that
//! test.

use pinlat::report::fleet::{self, input::HostArg};
use pinlat::report::trend::{self, TrendOrder};
use pinlat::report::verdict::{Comparison, Significance};

use super::ci::{json, written};
use super::*;

fn variants() -> (tempfile::TempDir, Report) {
    written("runs-variants")
}

fn cmp<'a>(r: &'a Report, arm: &str, against: &str) -> &'a Comparison {
    r.verdicts[0]
        .comparisons
        .iter()
        .find(|c| c.arm() == arm && c.against_arm() == against)
        .unwrap_or_else(|| panic!("no comparison {arm} against {against}: {:?}", r.verdicts))
}

#[test]
fn golden_variants() {
    let (dir, r) = variants();
    golden("variants.report.md", &read(&dir.path().join("report.md")));
    golden("variants.junit.xml", &read(&dir.path().join("junit.xml")));
    let back = json(&dir.path().join("report.json"));
    golden(
        "variants.verdicts.json",
        &(serde_json::to_string_pretty(&back["verdicts"]).unwrap() + "\n"),
    );
    assert_eq!(
        r.variants,
        ["base", "mlock"],
        "the config's order, baseline first"
    );
    assert_eq!(
        Report::read_json(&dir.path().join("report.json")).unwrap(),
        r
    );
}

/// Four arms ranked by one rule; a variant that cuts the tail beyond the spread is
/// significant, one whose difference is within the spread is not, and the sentence says which.
#[test]
fn variants_are_ranked_like_layouts_with_the_spread_rule() {
    let (_dir, r) = variants();
    assert_eq!(r.verdicts.len(), 1);
    let v = &r.verdicts[0];
    assert_eq!(v.percentile, Some(Quantile::P9999));
    let arms: Vec<String> = v.ranking.iter().map(|x| x.arm()).collect();
    assert_eq!(arms.len(), 4);
    assert_eq!(arms.last().unwrap(), "share/base", "{arms:?}");
    assert!(
        arms[..2].iter().all(|a| a.starts_with("vcpu0/")),
        "{arms:?}"
    );
    // What the variant buys on each layout, against the same layout's baseline variant.
    let share = cmp(&r, "share/mlock", "share/base");
    assert_eq!(share.significance, Significance::Significant);
    assert!(share.to_ns < share.from_ns);
    assert!(
        share
            .statement
            .starts_with("on share, mlock against base: p99.99 -"),
        "{}",
        share.statement
    );
    assert!(share.statement.contains("beyond the spread"));
    let vcpu0 = cmp(&r, "vcpu0/mlock", "vcpu0/base");
    assert_eq!(vcpu0.significance, Significance::NotSignificant);
    assert!(
        vcpu0.statement.contains("no significant difference"),
        "{}",
        vcpu0.statement
    );
    assert!(
        vcpu0.from_ns != vcpu0.to_ns,
        "a real difference, judged within the spread"
    );
    // The layouts, within each variant, against the base layout of that variant.
    let base = cmp(&r, "vcpu0/base", "share/base");
    assert_eq!(base.significance, Significance::Significant);
    assert!(
        base.statement.starts_with("vcpu0/base cut p99.99"),
        "{}",
        base.statement
    );
    cmp(&r, "vcpu0/mlock", "share/mlock");
    assert_eq!(v.comparisons.len(), 4);
    assert!(
        v.statement.contains("lowest p99.99 vcpu0/"),
        "{}",
        v.statement
    );
    // Budgets per arm; the layout's row is over budget when any of its arms is.
    let g = |arm: &str| r.groups.iter().find(|g| g.arm() == arm).unwrap();
    assert_eq!(g("share/base").budget.status, BudgetStatus::Exceeded);
    assert_eq!(g("vcpu0/mlock").budget.status, BudgetStatus::Held);
    assert_eq!(r.layouts.len(), 2, "placement stays per layout");
    assert_eq!(r.layouts[0].budget, BudgetStatus::Exceeded);
}

/// Every file name, case name and label carries the variant: no two variants in one series.
#[test]
fn every_output_names_the_variant() {
    let (dir, r) = variants();
    let p = |f: &str| dir.path().join(f);
    for arm in ["share.base", "share.mlock", "vcpu0.base", "vcpu0.mlock"] {
        for f in [
            format!("{arm}.mgmt-poll.timer.histogram.txt"),
            format!("{arm}.mgmt-poll.timer.cyclictest.json"),
            format!("{arm}.mgmt-poll.timer.r1.hlog"),
        ] {
            assert!(p(&f).is_file(), "{f}");
        }
    }
    let prom = read(&p("pinlat.prom"));
    assert!(
        prom.contains("layout=\"share\",variant=\"mlock\",scenario=\"mgmt-poll\""),
        "{prom}"
    );
    let kcidb = read(&p("kcidb.json"));
    assert!(kcidb.contains("\"pinlat.share.mlock.mgmt-poll.timer\""));
    assert!(kcidb.contains("\"variant\": \"mlock\""));
    let lava = pinlat::report::ci::render(
        pinlat::report::ci::CiFormat::Lava,
        &r,
        &Default::default(),
        None,
    )
    .unwrap();
    assert!(lava.contains("share.mlock.mgmt-poll.timer"), "{lava}");
    let html = read(&p("report.html"));
    assert!(html.contains("<td>share/mlock</td>"), "a table row per arm");
    let legends = html.lines().filter(|l| l.trim() == "share/mlock").count();
    assert_eq!(legends, 3, "a legend entry in each of the three figures");
    let junit = read(&p("junit.xml"));
    assert!(junit.contains("name=\"vcpu0/mlock\""));
    // The series of pinlat trend and the rows of compare are per variant.
    let t = trend::trend(
        &[dir.path().to_path_buf()],
        TrendOrder::Time,
        &opts(10.0),
        &mut |_| {},
    );
    let names: Vec<&str> = t.series.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "share.base.mgmt-poll.timer",
            "share.mlock.mgmt-poll.timer",
            "vcpu0.base.mgmt-poll.timer",
            "vcpu0.mlock.mgmt-poll.timer"
        ]
    );
    let c = compare::compare(&r, &r, &opts(10.0));
    assert_eq!(c.rows.len(), 4);
}

/// `pinlat merge`: each arm is judged across hosts as a layout is, the variants apart.
#[test]
fn merge_judges_the_variants_across_hosts() {
    let tmp = tempfile::tempdir().unwrap();
    let args: Vec<HostArg> = ["a", "b"]
        .iter()
        .map(|name| {
            let dir = tmp.path().join(name);
            fixtures::write_variants(&dir);
            HostArg {
                label: Some(name.to_string()),
                dir,
            }
        })
        .collect();
    let f = fleet::merge(&args, &[], &mut |_| {});
    assert_eq!(
        f.layouts,
        ["share/base", "share/mlock", "vcpu0/base", "vcpu0/mlock"]
    );
    let j = f
        .judgements
        .iter()
        .find(|j| j.layout == "share/mlock" && j.against == "share/base")
        .expect("the variant judged against its baseline");
    assert_eq!((j.won, j.of), (2, 2), "{}", j.statement);
}
