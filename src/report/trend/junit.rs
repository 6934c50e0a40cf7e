//! The trend's `junit.xml`: one `<testsuite name="pinlat.trend">`, one `<testcase>` per series.
//! A case fails (`<failure type="regression">`) when the latest directory regressed against the
//! history, listing the percentiles; (`<failure type="lost">`) when the series failed or is
//! absent in the latest; it is `<skipped>` when there is nothing to judge against (no history,
//! clocks differ). The latest's percentiles, the history's medians and the change points are
//! `<property>`s. Directories that could not be read are one `<error>` case each.

use super::{SkipKind, TrendReport};
use crate::report::compare::pct_text;
use crate::report::{escape_xml as esc, us, us_opt};

fn prop(o: &mut String, name: &str, value: &str) {
    o.push_str(&format!(
        "      <property name=\"{}\" value=\"{}\"/>\n",
        esc(name),
        esc(value)
    ));
}

/// The `junit.xml` text of a trend.
pub fn render(t: &TrendReport) -> String {
    let unreadable: Vec<_> = t
        .skipped
        .iter()
        .filter(|s| s.kind != SkipKind::OtherSchema)
        .collect();
    let failures = t.series.iter().filter(|s| s.regressed()).count();
    let skipped = t
        .series
        .iter()
        .filter(|s| !s.regressed() && s.latest.as_ref().map_or(true, |l| l.changes.is_empty()))
        .count();
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    for n in &t.notes {
        o.push_str(&format!("<!-- NOTE: {} -->\n", esc(n)));
    }
    let tests = t.series.len() + unreadable.len();
    o.push_str(&format!(
        "<testsuites name=\"pinlat trend\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{}\">\n  <testsuite name=\"pinlat.trend\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{}\" skipped=\"{skipped}\">\n",
        unreadable.len(),
        unreadable.len()
    ));
    o.push_str("    <properties>\n");
    prop(&mut o, "order", t.order.as_str());
    prop(&mut o, "threshold_pct", &t.threshold_pct.to_string());
    prop(&mut o, "min_delta_us", &us(t.min_delta_ns));
    prop(&mut o, "directories", &t.dirs.len().to_string());
    if let Some(d) = t.dirs.last() {
        prop(&mut o, "latest", &d.path);
        prop(&mut o, "latest_label", &d.label(t.order));
    }
    o.push_str("    </properties>\n");
    for s in &t.series {
        o.push_str(&format!(
            "    <testcase classname=\"pinlat.trend\" name=\"{}\">\n",
            esc(&s.name)
        ));
        o.push_str("      <properties>\n");
        let l = s.latest.as_ref();
        for c in l.map_or(&[][..], |l| &l.changes[..]) {
            prop(
                &mut o,
                &format!("{}.latest_us", c.metric.label()),
                &us_opt(c.new_ns),
            );
            prop(
                &mut o,
                &format!("{}.history_median_us", c.metric.label()),
                &us_opt(c.base_ns),
            );
        }
        if let Some((h, n)) = l.and_then(|l| l.max_ns) {
            prop(&mut o, "max.latest_us", &us(n));
            prop(&mut o, "max.history_median_us", &us(h));
        }
        prop(
            &mut o,
            "history_points",
            &l.map_or(0, |l| l.history).to_string(),
        );
        for c in &s.change_points {
            prop(
                &mut o,
                &format!("change_point.{}", c.metric.label()),
                &format!(
                    "{}: {} -> {} us",
                    t.dirs[c.at].label(t.order),
                    us(c.before_ns),
                    us(c.after_ns)
                ),
            );
        }
        o.push_str("      </properties>\n");
        if let Some(l) = l {
            let regressed: Vec<String> = l
                .changes
                .iter()
                .filter(|c| c.regression)
                .map(|c| {
                    format!(
                        "{} {} -> {} us ({})",
                        c.metric.label(),
                        us_opt(c.base_ns),
                        us_opt(c.new_ns),
                        pct_text(c.change_pct)
                    )
                })
                .collect();
            if let (Some(lost), true) = (&l.lost, l.regression) {
                o.push_str(&format!(
                    "      <failure type=\"lost\" message=\"{}\"/>\n",
                    esc(lost)
                ));
            } else if !regressed.is_empty() {
                o.push_str(&format!(
                    "      <failure type=\"regression\" message=\"{}\">against the median of {} earlier directories</failure>\n",
                    esc(&regressed.join(", ")),
                    l.history
                ));
            } else if l.changes.is_empty() {
                let why = l
                    .lost
                    .as_deref()
                    .or(l.not_judged.as_deref())
                    .unwrap_or("nothing to judge");
                o.push_str(&format!("      <skipped message=\"{}\"/>\n", esc(why)));
            }
        }
        o.push_str("    </testcase>\n");
    }
    for s in unreadable {
        o.push_str(&format!(
            "    <testcase classname=\"pinlat.trend.directories\" name=\"{}\">\n      <error type=\"unreadable\" message=\"{}\"/>\n    </testcase>\n",
            esc(&s.path),
            esc(&s.reason)
        ));
    }
    o.push_str("  </testsuite>\n</testsuites>\n");
    o
}
