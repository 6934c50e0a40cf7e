//! How every output writes numbers and clocks: latencies in µs exact to the ns, percentiles
//! with their overflow and max-bound marks, clocks, XML/HTML escaping, and the tables that
//! Markdown and HTML both show ([`Table`]: one model, two renderings).

use super::verdict;
use crate::histo::Percentile;
use crate::wire::{ClockInfo, ClockSource};

/// Formats ns as µs with three decimals, exactly (`12345` → `12.345`).
pub fn us(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

/// Formats an optional percentile: µs, or `overflow` when it lies above the histogram's range.
pub fn us_opt(ns: Option<u64>) -> String {
    match ns {
        Some(v) => us(v),
        None => "overflow".to_string(),
    }
}

/// The mark of a max-bound percentile in the Markdown and HTML tables.
pub const MAX_BOUND_MARK: &str = "†";

/// The legend of [`MAX_BOUND_MARK`].
pub fn max_bound_legend() -> String {
    format!(
        "{MAX_BOUND_MARK} max-bound: fewer than {} samples lie beyond this percentile, so the few largest samples decide it, as they decide the max; no verdict, comparison or regression rests on it alone",
        crate::histo::MAX_BOUND_BEYOND
    )
}

/// A percentile in µs as the tables show it: `overflow` above the histogram's range, and
/// [`MAX_BOUND_MARK`] after a max-bound one.
pub fn us_pct(p: &Percentile) -> String {
    let mark = if p.max_bound { MAX_BOUND_MARK } else { "" };
    format!("{}{mark}", us_opt(p.value_ns))
}

/// `tsc 2.000 GHz ±12 ppm`, `monotonic`: one clock as the run tables show it.
pub fn clock_text(c: &ClockInfo) -> String {
    let mut s = verdict::clock_name(c.source).to_string();
    if let (ClockSource::Tsc, Some(hz)) = (c.source, c.tsc_hz) {
        s.push_str(&format!(
            " {}.{:03} GHz",
            hz / 1_000_000_000,
            hz / 1_000_000 % 1000
        ));
    }
    if let Some(ppm) = c.calibration_spread_ppm {
        s.push_str(&format!(" ±{ppm} ppm"));
    }
    s
}

/// The clocks of a run, `, `-joined (`unknown` when none is known).
pub fn clocks_text(c: &[ClockInfo]) -> String {
    if c.is_empty() {
        return "unknown".to_string();
    }
    c.iter().map(clock_text).collect::<Vec<_>>().join(", ")
}

/// Escapes text for XML and HTML content and attribute values.
pub(crate) fn escape_xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

/// How a column's cells align.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    /// Names and words: left everywhere.
    Left,
    /// Numbers: right everywhere (Markdown `---:`, HTML `class=n`).
    Right,
    /// Figures with words (`200 ms · 20.0 % · pCPU 0`): left in Markdown, numeric in HTML.
    Figures,
}

/// One cell: its text, and where HTML shows more (a tooltip, a class) the markup it shows
/// instead of the escaped text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cell {
    text: String,
    html: Option<String>,
}

impl Cell {
    /// A cell whose HTML is `html` (already escaped) rather than the escaped text.
    pub(crate) fn with_html(text: impl std::fmt::Display, html: String) -> Cell {
        Cell {
            text: text.to_string(),
            html: Some(html),
        }
    }
}

impl<T: std::fmt::Display> From<T> for Cell {
    fn from(text: T) -> Cell {
        Cell {
            text: text.to_string(),
            html: None,
        }
    }
}

/// A table as the report's views show it: titled, aligned columns and rows of cells, written
/// the same way by [`Table::markdown`] and [`Table::html`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Table {
    columns: Vec<(String, Align)>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// A table with these columns and no rows.
    pub(crate) fn new<S: Into<String>>(columns: impl IntoIterator<Item = (S, Align)>) -> Table {
        Table {
            columns: columns.into_iter().map(|(t, a)| (t.into(), a)).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row: one cell per column.
    pub(crate) fn row(&mut self, cells: impl IntoIterator<Item = Cell>) {
        let row: Vec<Cell> = cells.into_iter().collect();
        debug_assert_eq!(row.len(), self.columns.len(), "one cell per column");
        self.rows.push(row);
    }

    /// GitHub-flavoured Markdown: header, alignment line, a line per row; cells as they are.
    pub(crate) fn markdown(&self) -> String {
        let line = |cells: Vec<&str>| format!("| {} |\n", cells.join(" | "));
        let mut o = line(self.columns.iter().map(|(t, _)| t.as_str()).collect());
        o.push('|');
        for (_, align) in &self.columns {
            o.push_str(if *align == Align::Right {
                "---:|"
            } else {
                "---|"
            });
        }
        o.push('\n');
        for row in &self.rows {
            o.push_str(&line(row.iter().map(|c| c.text.as_str()).collect()));
        }
        o
    }

    /// An HTML `<table>`, a line per row; text escaped, numeric cells `class=n`.
    pub(crate) fn html(&self) -> String {
        let mut o = String::from("<table><tr>");
        for (title, _) in &self.columns {
            o.push_str(&format!("<th>{}</th>", escape_xml(title)));
        }
        o.push_str("</tr>\n");
        for row in &self.rows {
            o.push_str("<tr>");
            for ((_, align), cell) in self.columns.iter().zip(row) {
                let class = if *align == Align::Left {
                    ""
                } else {
                    " class=n"
                };
                let content = match &cell.html {
                    Some(html) => html.clone(),
                    None => escape_xml(&cell.text),
                };
                o.push_str(&format!("<td{class}>{content}</td>"));
            }
            o.push_str("</tr>\n");
        }
        o.push_str("</table>\n");
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_two_renderings() {
        let mut t = Table::new([
            ("layout", Align::Left),
            ("ops", Align::Right),
            ("time", Align::Figures),
        ]);
        t.row([Cell::from("a<b"), Cell::from(3), Cell::from("2 ms · 1.0 %")]);
        t.row([
            Cell::from("c"),
            Cell::with_html("4", "<b>4</b>".into()),
            Cell::from("–"),
        ]);
        assert_eq!(
            t.markdown(),
            "| layout | ops | time |\n|---|---:|---|\n| a<b | 3 | 2 ms · 1.0 % |\n| c | 4 | – |\n"
        );
        assert_eq!(
            t.html(),
            "<table><tr><th>layout</th><th>ops</th><th>time</th></tr>\n\
             <tr><td>a&lt;b</td><td class=n>3</td><td class=n>2 ms · 1.0 %</td></tr>\n\
             <tr><td>c</td><td class=n><b>4</b></td><td class=n>–</td></tr>\n</table>\n"
        );
    }
}
