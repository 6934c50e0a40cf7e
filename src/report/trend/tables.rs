//! The trend's tables, each made once and written by both views as Markdown and HTML
//! ([`Table`]): the directories, those left out, the latest against the history, the change
//! points, and one series' points.

use super::{KernelRelease, Metric, PointStatus, Series, SkipKind, TrendOrder, TrendReport};
use crate::histo::Quantile;
use crate::report::compare::{pct_text, Change};
use crate::report::text::{Align, Cell, Table};
use crate::report::{escape_xml as esc, us, us_opt, us_pct};

/// Bold in Markdown, the `bad` class in HTML.
fn bad(text: &str) -> Cell {
    Cell::with_html(
        format!("**{text}**"),
        format!("<span class=\"bad\">{}</span>", esc(text)),
    )
}

fn kernel(k: &Option<KernelRelease>) -> String {
    k.as_ref().map_or("?".to_string(), |k| k.0.clone())
}

/// `{history} → {latest} (+12.0%)`: bad when it regressed, † (why on hovering) when not judged.
fn change(c: &Change) -> Cell {
    let text = format!(
        "{} → {} ({})",
        us_opt(c.base_ns),
        us_opt(c.new_ns),
        pct_text(c.change_pct)
    );
    match (&c.not_judged, c.regression) {
        (Some(why), _) => Cell::with_html(
            format!("{text} †"),
            format!("<span title=\"{}\">{} †</span>", esc(why), esc(&text)),
        ),
        (None, true) => bad(&text),
        (None, false) => Cell::from(text),
    }
}

/// The directories read, in trend order.
pub(super) fn dirs(t: &TrendReport) -> Table {
    use Align::{Left, Right};
    let mut tab = Table::new([
        ("#", Right),
        ("directory", Left),
        ("started (UTC)", Left),
        ("host kernel", Left),
        ("guest kernel", Left),
        ("runs", Right),
        ("failed", Right),
        ("notes", Left),
    ]);
    for (i, d) in t.dirs.iter().enumerate() {
        let mut notes = d.notes.clone();
        if d.aggregated {
            notes.insert(0, "aggregated from runs/".to_string());
        }
        tab.row([
            Cell::from(i + 1),
            Cell::with_html(
                format!("`{}`", d.path),
                format!("<code>{}</code>", esc(&d.path)),
            ),
            Cell::from(d.label(TrendOrder::Time)),
            Cell::from(kernel(&d.host_kernel)),
            Cell::from(kernel(&d.guest_kernel)),
            Cell::from(d.runs),
            Cell::from(d.failed_runs),
            Cell::from(notes.join("; ")),
        ]);
    }
    tab
}

/// The directories left out, when there are any.
pub(super) fn skipped(t: &TrendReport) -> Option<Table> {
    if t.skipped.is_empty() {
        return None;
    }
    let mut tab = Table::new([
        ("directory", Align::Left),
        ("left out", Align::Left),
        ("why", Align::Left),
    ]);
    for s in &t.skipped {
        let kind = match s.kind {
            SkipKind::OtherSchema => Cell::from("another pinlat schema"),
            SkipKind::Unreadable => bad("unreadable"),
            SkipKind::Unordered => bad("cannot be ordered"),
        };
        tab.row([
            Cell::with_html(
                format!("`{}`", s.path),
                format!("<code>{}</code>", esc(&s.path)),
            ),
            kind,
            Cell::from(&s.reason),
        ]);
    }
    Some(tab)
}

/// Per series, the latest against the median of the earlier directories.
pub(super) fn latest(t: &TrendReport) -> Table {
    let mut cols = vec![("series", Align::Left), ("history", Align::Right)];
    cols.extend(Quantile::ALL.map(|q| (q.label(), Align::Figures)));
    cols.extend([("max", Align::Figures), ("verdict", Align::Left)]);
    let mut tab = Table::new(cols);
    for s in &t.series {
        let Some(l) = &s.latest else { continue };
        let mut row = vec![Cell::from(&s.name)];
        row.push(Cell::from(if l.other_clock > 0 {
            format!("{} ({} left out: another clock)", l.history, l.other_clock)
        } else {
            l.history.to_string()
        }));
        row.extend(
            (0..Quantile::ALL.len()).map(|i| l.changes.get(i).map_or(Cell::from(""), change)),
        );
        row.push(Cell::from(l.max_ns.map_or(String::new(), |(h, n)| {
            format!("{} → {}", us(h), us(n))
        })));
        row.push(match (&l.lost, l.regression, &l.not_judged) {
            (Some(lost), true, _) => Cell::with_html(
                format!("**REGRESSION**: {lost}"),
                format!("<span class=\"bad\">REGRESSION</span>: {}", esc(lost)),
            ),
            (Some(lost), false, _) => Cell::from(format!("{lost} (allowed)")),
            (None, true, _) => bad("REGRESSION"),
            (None, false, Some(why)) => Cell::from(format!("not judged: {why}")),
            (None, false, None) => Cell::with_html("ok", "<span class=\"good\">ok</span>".into()),
        });
        tab.row(row);
    }
    tab
}

/// Every change point, by series.
pub(super) fn change_points(t: &TrendReport) -> Table {
    use Align::{Left, Right};
    let mut tab = Table::new([
        ("series", Left),
        ("metric", Left),
        ("from directory", Left),
        ("before", Right),
        ("after", Right),
        ("change", Right),
    ]);
    for s in &t.series {
        for c in &s.change_points {
            tab.row([
                Cell::from(&s.name),
                Cell::from(c.metric.label()),
                Cell::from(format!("#{} {}", c.at + 1, t.dirs[c.at].label(t.order))),
                Cell::from(us(c.before_ns)),
                Cell::from(us(c.after_ns)),
                Cell::from(pct_text(c.change_pct)),
            ]);
        }
    }
    tab
}

/// One series' points, a row per directory.
pub(super) fn points(t: &TrendReport, s: &Series) -> Table {
    let mut cols = vec![("#", Align::Right), (t.order.as_str(), Align::Left)];
    cols.extend(Metric::ALL.map(|m| (m.label(), Align::Right)));
    cols.extend([("ok runs", Align::Right), ("failed runs", Align::Right)]);
    let mut tab = Table::new(cols);
    for (i, (p, d)) in s.points.iter().zip(&t.dirs).enumerate() {
        let mut row = vec![Cell::from(i + 1), Cell::from(d.label(t.order))];
        let values: Vec<Cell> = match (&p.status, &p.stats) {
            (PointStatus::Measured, Some(st)) => Metric::ALL
                .map(|m| Cell::from(m.quantile().map_or(us(st.max_ns), |q| us_pct(&st.at(q)))))
                .into(),
            (PointStatus::Failed { cause }, _) => {
                let mut v = vec![bad(&format!("failed: {cause}"))];
                v.resize(Metric::ALL.len(), Cell::from(""));
                v
            }
            _ => {
                let mut v = vec![Cell::from("absent")];
                v.resize(Metric::ALL.len(), Cell::from(""));
                v
            }
        };
        row.extend(values);
        row.extend([Cell::from(p.ok_runs), Cell::from(p.failed_runs)]);
        tab.row(row);
    }
    tab
}
