//! The trend as Markdown: `pinlat trend` prints the summary (directories, the latest against the
//! history, change points); `report.md` adds each series' points.

use super::{changepoint, tables, TrendReport};
use crate::report::{max_bound_legend, us};

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

/// What a regression is, in one paragraph (both views).
pub fn rule(t: &TrendReport) -> String {
    format!(
        "A series regresses when a percentile of the latest directory grew beyond the median of the earlier ones by more than {}% and by at least {} µs (`pinlat compare`'s rule, `--threshold` and `--min-delta`), or when it failed or is absent in the latest{}. Max-bound percentiles (†) and the max are shown, never judged. Latencies in µs.",
        t.threshold_pct,
        us(t.min_delta_ns),
        if t.allow_missing {
            " (shown, not counted: --allow-missing)"
        } else {
            ""
        },
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
        "**{}.** {} {}\n\n",
        headline(t),
        rule(t),
        max_bound_legend()
    ));
    o.push_str(&format!("## Directories, by {}\n\n", t.order.as_str()));
    o.push_str(&tables::dirs(t).markdown());
    if let Some(s) = tables::skipped(t) {
        o.push_str("\n## Directories left out\n\n");
        o.push_str(&s.markdown());
    }
    o.push_str("\n## The latest against the history\n\nEach cell: the median of the earlier directories → the latest (change).\n\n");
    o.push_str(&tables::latest(t).markdown());
    let cps: usize = t.series.iter().map(|s| s.change_points.len()).sum();
    o.push_str(&format!(
        "\n## Change points\n\n{cps} level shift(s) where {}.\n",
        changepoint::rule_text()
    ));
    if cps > 0 {
        o.push('\n');
        o.push_str(&tables::change_points(t).markdown());
    }
    if full {
        o.push_str("\n## Series\n");
        for s in &t.series {
            o.push_str(&format!("\n### {}\n\n", s.name));
            o.push_str(&tables::points(t, s).markdown());
        }
    }
    o
}
