//! The failure block of each layout × scenario × workload section in `report.md` and
//! `report.html`: per layout with failed runs, the verdict's words, each cause with its stage,
//! runs and whole sentence, and the console lines that prove it; then the guest kernel warnings
//! of the runs that lived. Everything listed is bounded, so a matrix of a thousand failed runs
//! still fits a CI job summary.

use super::{all_failed, failure_of, kernel_warnings, partial, CauseCount, FailedLayout};
use crate::console::{EVIDENCE_LINES, EVIDENCE_LINE_CHARS};
use crate::report::{escape_xml as esc, Group, Report, Verdict};

/// Runs named per cause; the rest are counted.
const RUNS_LISTED: usize = 4;
/// Guest kernel warnings listed per section; the rest are counted.
const WARNINGS_LISTED: usize = 8;

/// One layout with failed runs, as the block lists it.
struct Entry<'a> {
    group: &'a Group,
    /// The verdict's entry, for a layout none of whose runs measured.
    failed: Option<&'a FailedLayout>,
    /// `1 of 2 runs failed (…)` for a layout that also measured.
    partial: Option<String>,
}

/// The layouts none of whose runs measured first (the verdict's first words), then those that
/// failed some runs, in table order.
fn entries<'a>(report: &'a Report, v: &'a Verdict) -> Vec<Entry<'a>> {
    let mut e: Vec<Entry<'a>> = report
        .table_rows(v)
        .into_iter()
        .filter(|(_, g)| !g.failed_runs.is_empty())
        .map(|(_, g)| Entry {
            group: g,
            failed: v
                .failed
                .iter()
                .find(|f| g.is_arm(&f.layout, f.variant.as_deref())),
            partial: partial(g),
        })
        .collect();
    e.sort_by_key(|e| e.failed.is_none());
    e
}

/// The heading words of a layout: the verdict's statement for a failed layout, with its rank.
fn headline(e: &Entry<'_>) -> (bool, String) {
    match (e.failed, &e.partial) {
        (Some(f), _) => {
            let rank = f
                .rank
                .map_or(String::new(), |r| format!(" (rank {r}, last)"));
            let (label, rest) = f.statement.split_once(": ").unwrap_or((&f.statement, ""));
            (true, format!("{label}{rank}: {rest}"))
        }
        (None, Some(p)) => (
            false,
            format!(
                "{}: unstable: {p}; its numbers are from the {} run(s) that measured",
                e.group.arm(),
                e.group.ok_runs.len()
            ),
        ),
        // Failed runs and no ok run but not in `failed`: cannot happen; say it plainly.
        (None, None) => (
            all_failed(e.group),
            format!(
                "{}: {} run(s) failed",
                e.group.arm(),
                e.group.failed_runs.len()
            ),
        ),
    }
}

/// `2 runs: `a`, `b`` or `5 runs: `a`, …, and 1 more`, with `quote` around each name.
fn runs_text(c: &CauseCount, quote: impl Fn(&str) -> String) -> String {
    let mut names: Vec<String> = c.runs.iter().take(RUNS_LISTED).map(|r| quote(r)).collect();
    if c.runs.len() > RUNS_LISTED {
        names.push(format!("and {} more", c.runs.len() - RUNS_LISTED));
    }
    format!(
        "{} run{}: {}",
        c.runs.len(),
        if c.runs.len() == 1 { "" } else { "s" },
        names.join(", ")
    )
}

/// The whole sentence of a cause, from its first run: the typed cause's, else the reason.
fn sentence(report: &Report, c: &CauseCount) -> String {
    let first = c.runs.first().map(String::as_str).unwrap_or("");
    match failure_of(report, first) {
        Some(f) => f.to_string(),
        None => report
            .runs
            .iter()
            .find(|r| r.name == first)
            .and_then(|r| r.outcome.reason.clone())
            .unwrap_or_else(|| c.cause.clone()),
    }
}

/// The console lines proving a cause, from its first run, bounded.
fn evidence<'a>(report: &Report, c: &'a CauseCount) -> (Option<&'a str>, Vec<String>) {
    let Some(first) = c.runs.first() else {
        return (None, Vec::new());
    };
    let lines = failure_of(report, first)
        .map(|f| {
            f.evidence()
                .iter()
                .take(EVIDENCE_LINES)
                .map(|l| l.chars().take(EVIDENCE_LINE_CHARS).collect())
                .collect()
        })
        .unwrap_or_default();
    (Some(first.as_str()), lines)
}

/// A Markdown code fence longer than any run of backticks in `lines`.
fn fence(lines: &[String]) -> String {
    let longest = lines
        .iter()
        .flat_map(|l| l.split(|c| c != '`').map(str::len))
        .max()
        .unwrap_or(0);
    "`".repeat((longest + 1).max(3))
}

/// Markdown cell text: no line breaks, no column separators.
pub(crate) fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The Markdown block of a verdict's section (empty when no run failed and no guest kernel
/// warned).
pub(crate) fn markdown(report: &Report, v: &Verdict) -> String {
    let mut o = String::new();
    let entries = entries(report, v);
    if !entries.is_empty() {
        o.push_str("Failed runs, by layout:\n\n");
        for e in &entries {
            let (dead, head) = headline(e);
            o.push_str(&format!(
                "- {} **{}**\n",
                if dead { "❌" } else { "⚠️" },
                cell(&head)
            ));
            for c in &e.group.failures {
                o.push_str(&format!(
                    "  - stage {}, {} — {}\n",
                    c.stage.map_or("?", |s| s.as_str()),
                    runs_text(c, |r| format!("`{r}`")),
                    cell(&sentence(report, c))
                ));
                let (from, lines) = evidence(report, c);
                if let (Some(from), false) = (from, lines.is_empty()) {
                    let f = fence(&lines);
                    o.push_str(&format!("\n    Evidence from `{from}`:\n\n    {f}text\n"));
                    for l in &lines {
                        o.push_str(&format!("    {l}\n"));
                    }
                    o.push_str(&format!("    {f}\n"));
                }
            }
        }
        o.push('\n');
    }
    let warnings = section_warnings(report, v);
    if !warnings.is_empty() {
        o.push_str("Guest kernel warnings, by layout (the guest lived; these are what a starved vCPU or emulator prints before it kills a guest):\n\n");
        for w in &warnings {
            o.push_str(&format!("- ⚠️ {}\n", cell(w)));
        }
        o.push('\n');
    }
    o
}

/// `layout: `run` guest g: warning`, bounded, for every group of the verdict.
fn section_warnings(report: &Report, v: &Verdict) -> Vec<String> {
    let all: Vec<String> = report
        .table_rows(v)
        .into_iter()
        .flat_map(|(_, g)| {
            kernel_warnings(report, g)
                .into_iter()
                .map(move |(run, guest, w)| format!("{}: `{run}` guest {guest}: {w}", g.arm()))
        })
        .collect();
    let n = all.len();
    let mut shown: Vec<String> = all.into_iter().take(WARNINGS_LISTED).collect();
    if n > WARNINGS_LISTED {
        shown.push(format!(
            "and {} more (every run's warnings are in the Notes)",
            n - WARNINGS_LISTED
        ));
    }
    shown
}

/// The HTML block of a verdict's section (empty when no run failed and no guest kernel
/// warned).
pub(crate) fn html(report: &Report, v: &Verdict) -> String {
    let mut o = String::new();
    let entries = entries(report, v);
    if !entries.is_empty() {
        o.push_str("<div class=\"failed\"><p><b>Failed runs, by layout</b></p>\n<ul>\n");
        for e in &entries {
            let (dead, head) = headline(e);
            o.push_str(&format!(
                "<li><span class=\"{}\">{}</span>\n<ul>\n",
                if dead { "bad" } else { "mb" },
                esc(&head)
            ));
            for c in &e.group.failures {
                o.push_str(&format!(
                    "<li>stage {}, {} — {}",
                    esc(c.stage.map_or("?", |s| s.as_str())),
                    esc(&runs_text(c, str::to_string)),
                    esc(&sentence(report, c))
                ));
                let (from, lines) = evidence(report, c);
                if let (Some(from), false) = (from, lines.is_empty()) {
                    o.push_str(&format!(
                        "<br>Evidence from {}:<pre>{}</pre>",
                        esc(from),
                        esc(&lines.join("\n"))
                    ));
                }
                o.push_str("</li>\n");
            }
            o.push_str("</ul></li>\n");
        }
        o.push_str("</ul></div>\n");
    }
    let warnings = section_warnings(report, v);
    if !warnings.is_empty() {
        o.push_str("<p><b>Guest kernel warnings, by layout</b> (the guest lived; these are what a starved vCPU or emulator prints before it kills a guest):</p>\n<ul>\n");
        for w in &warnings {
            o.push_str(&format!("<li>{}</li>\n", esc(&w.replace('`', ""))));
        }
        o.push_str("</ul>\n");
    }
    o
}

/// JUnit's lines for failed runs: per cause its stage, runs and whole sentence, then its
/// evidence, indented.
pub(crate) fn junit_lines(report: &Report, causes: &[CauseCount]) -> Vec<String> {
    let mut lines = Vec::new();
    for c in causes {
        lines.push(format!(
            "stage {}, {}: {}",
            c.stage.map_or("?", |s| s.as_str()),
            runs_text(c, str::to_string),
            sentence(report, c)
        ));
        let (_, ev) = evidence(report, c);
        lines.extend(ev.into_iter().map(|l| format!("  {l}")));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fence_is_longer_than_any_backtick_run() {
        assert_eq!(fence(&["plain".into()]), "```");
        assert_eq!(fence(&["a ```` b".into(), "`".into()]), "`````");
    }
}
