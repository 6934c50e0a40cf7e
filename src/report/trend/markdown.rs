//! The trend as Markdown: `pinlat trend` prints the summary (directories, the latest against the
//! history, change points); `report.md` adds each series' points.

use super::{Metric, PointStatus, SeriesPoint, SkipKind, TrendDir, TrendReport};
use crate::histo::Quantile;
use crate::report::compare::Change;
use crate::report::{max_bound_legend, us, us_opt, us_pct};

/// `share.idle.timer`-style cells must not break a table.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// `{history} → {latest} (+12.0%)`, bold when it regressed.
fn change_cell(c: &Change) -> String {
    let pct = c
        .change_pct
        .map_or("n/a".to_string(), |p| format!("{p:+.1}%"));
    let text = format!("{} → {} ({pct})", us_opt(c.base_ns), us_opt(c.new_ns));
    match (&c.not_judged, c.regression) {
        (Some(_), _) => format!("{text} †"),
        (None, true) => format!("**{text}**"),
        (None, false) => text,
    }
}

/// The one-line statement of the trend.
pub fn headline(t: &TrendReport) -> String {
    let bad = t.series.iter().filter(|s| s.regressed()).count();
    let latest = t.dirs.last().map_or("none".to_string(), |d| {
        format!("`{}` ({})", d.path, d.label(t.order))
    });
    format!(
        "{bad} of {} series regressed in the latest directory {latest}",
        t.series.len()
    )
}

fn dir_row(i: usize, d: &TrendDir) -> String {
    let k = |k: &Option<super::KernelRelease>| k.as_ref().map_or("?".to_string(), |k| k.0.clone());
    let mut notes = d.notes.clone();
    if d.aggregated {
        notes.insert(0, "aggregated from runs/".to_string());
    }
    format!(
        "| {} | `{}` | {} | {} | {} | {} | {} | {} |\n",
        i + 1,
        cell(&d.path),
        d.label(super::TrendOrder::Time),
        cell(&k(&d.host_kernel)),
        cell(&k(&d.guest_kernel)),
        d.runs,
        d.failed_runs,
        cell(&notes.join("; "))
    )
}

fn point_row(i: usize, label: &str, p: &SeriesPoint) -> String {
    let values = match (&p.status, &p.stats) {
        (PointStatus::Measured, Some(s)) => {
            let v: Vec<String> = Metric::ALL
                .into_iter()
                .map(|m| m.quantile().map_or(us(s.max_ns), |q| us_pct(&s.at(q))))
                .collect();
            v.join(" | ")
        }
        (PointStatus::Failed { cause }, _) => {
            format!("**failed**: {} | | | |", cell(cause))
        }
        _ => "absent | | | |".to_string(),
    };
    format!(
        "| {} | {} | {values} | {} | {} |\n",
        i + 1,
        cell(label),
        p.ok_runs,
        p.failed_runs
    )
}

/// The Markdown text; `full` adds every series' points (`report.md`), without it the summary
/// `pinlat trend` prints.
pub fn render(t: &TrendReport, full: bool) -> String {
    let mut o = format!(
        "# pinlat trend: {} series over {} directories, by {}\n\n",
        t.series.len(),
        t.dirs.len(),
        t.order.as_str()
    );
    for n in &t.notes {
        o.push_str(&format!("> {n}\n\n"));
    }
    o.push_str(&format!(
        "**{}.** Latencies in µs. A series regresses when a percentile of the latest directory grew beyond the median of the earlier ones by more than {}% and by at least {} µs (`pinlat compare`'s rule and `--threshold`/`--min-delta`), or when it failed or is absent in the latest{}. Max-bound percentiles (†) and the max are shown, never judged. {}\n\n",
        headline(t),
        t.threshold_pct,
        us(t.min_delta_ns),
        if t.allow_missing { " (shown, not counted: --allow-missing)" } else { "" },
        max_bound_legend()
    ));
    o.push_str(&format!(
        "## Directories, by {}\n\n| # | directory | started (UTC) | host kernel | guest kernel | runs | failed | notes |\n|---|---|---|---|---|---|---|---|\n",
        t.order.as_str()
    ));
    for (i, d) in t.dirs.iter().enumerate() {
        o.push_str(&dir_row(i, d));
    }
    if !t.skipped.is_empty() {
        o.push_str("\n## Directories left out\n\n| directory | why | |\n|---|---|---|\n");
        for s in &t.skipped {
            let kind = match s.kind {
                SkipKind::OtherSchema => "another pinlat schema",
                SkipKind::Unreadable => "unreadable",
                SkipKind::Unordered => "cannot be ordered",
            };
            o.push_str(&format!(
                "| `{}` | {kind} | {} |\n",
                cell(&s.path),
                cell(&s.reason)
            ));
        }
    }
    o.push_str("\n## The latest against the history\n\nEach cell: the median of the earlier directories → the latest (change).\n\n| series | history | ");
    for q in Quantile::ALL {
        o.push_str(&format!("{} | ", q.label()));
    }
    o.push_str("max | verdict |\n|---|---|---|---|---|---|---|---|---|\n");
    for s in &t.series {
        let Some(l) = &s.latest else { continue };
        let verdict = if let Some(lost) = &l.lost {
            if l.regression {
                format!("**REGRESSION**: {}", cell(lost))
            } else {
                format!("{} (allowed)", cell(lost))
            }
        } else if l.regression {
            "**REGRESSION**".to_string()
        } else if let Some(why) = &l.not_judged {
            format!("not judged: {}", cell(why))
        } else {
            "ok".to_string()
        };
        let mut cells: Vec<String> = l.changes.iter().map(change_cell).collect();
        cells.resize(Quantile::ALL.len(), String::new());
        let max = l
            .max_ns
            .map_or(String::new(), |(h, n)| format!("{} → {}", us(h), us(n)));
        let other = if l.other_clock > 0 {
            format!(" ({} left out: another clock)", l.other_clock)
        } else {
            String::new()
        };
        o.push_str(&format!(
            "| {} | {}{other} | {} | {max} | {verdict} |\n",
            s.name,
            l.history,
            cells.join(" | ")
        ));
    }
    let cps: usize = t.series.iter().map(|s| s.change_points.len()).sum();
    o.push_str(&format!(
        "\n## Change points\n\n{cps} level shift(s) where {}.\n\n",
        super::changepoint::rule_text()
    ));
    if cps > 0 {
        o.push_str("| series | metric | from directory | before | after | change |\n|---|---|---|---|---|---|\n");
        for s in &t.series {
            for c in &s.change_points {
                let d = &t.dirs[c.at];
                o.push_str(&format!(
                    "| {} | {} | #{} {} | {} | {} | {} |\n",
                    s.name,
                    c.metric.label(),
                    c.at + 1,
                    cell(&d.label(t.order)),
                    us(c.before_ns),
                    us(c.after_ns),
                    c.change_pct.map_or("n/a".into(), |p| format!("{p:+.1}%"))
                ));
            }
        }
    }
    if full {
        o.push_str("\n## Series\n");
        for s in &t.series {
            o.push_str(&format!(
                "\n### {}\n\n| # | {} | ",
                s.name,
                t.order.as_str()
            ));
            for m in Metric::ALL {
                o.push_str(&format!("{} | ", m.label()));
            }
            o.push_str("ok runs | failed runs |\n|---|---|---|---|---|---|---|---|---|\n");
            for (i, (p, d)) in s.points.iter().zip(&t.dirs).enumerate() {
                o.push_str(&point_row(i, &d.label(t.order), p));
            }
        }
    }
    o
}
