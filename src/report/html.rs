//! `report.html`: one self-contained page (inline CSS and SVG, no script, no network) with the
//! verdicts, the budgets, per (scenario, workload) a table and three figures — overlaid
//! log-scale latency histograms per layout, percentile curves, latency over time from the
//! interval histograms — a placement diagram per layout (which QEMU thread may run on which
//! pCPU, as observed), the host facts and every run. A layout's failed runs are in its section,
//! with their cause and evidence ([`super::failures`]).

use super::html_svg::{histogram_svg, percentile_svg, placement_svg, timeline_svg};
use super::{
    escape_xml as esc, failures, max_bound_legend, us, us_opt, BudgetStatus, Exporter, Group,
    OutputFile, Report, ReportError, MAX_BOUND_MARK,
};
use crate::histo::{Percentile, Quantile};

/// Writes `report.html`.
pub struct HtmlExporter;

impl Exporter for HtmlExporter {
    fn report_files(&self, report: &Report) -> Result<Vec<OutputFile>, ReportError> {
        Ok(vec![OutputFile {
            name: "report.html".to_string(),
            contents: render(report)?,
        }])
    }
}

pub(super) const CSS: &str = "body{font-family:sans-serif;margin:1.5em;max-width:1360px;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 7px;font-size:13px}\
th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.warn{background:#fff3cd;border:1px solid #e0c060;padding:.6em 1em;margin:1em 0}\
.bad{color:#b00;font-weight:bold}.good{color:#070}.figs{display:flex;flex-wrap:wrap;gap:8px}\
.figs svg{border:1px solid #ddd}code{background:#f4f4f4;padding:0 3px}.mb{color:#a60}";

/// A percentile cell: `–` without samples, the max-bound mark with its count as a tooltip.
fn pct(samples: u64, p: &Percentile) -> String {
    if samples == 0 {
        "–".into()
    } else if p.max_bound {
        format!(
            "{}<sup class=\"mb\" title=\"max-bound: {} sample(s) beyond it\">{MAX_BOUND_MARK}</sup>",
            us_opt(p.value_ns),
            p.samples_beyond
        )
    } else {
        us_opt(p.value_ns)
    }
}

fn stability_html(g: &Group) -> String {
    if let Some(p) = failures::partial(g) {
        return format!("<span class=\"bad\" title=\"{}\">unstable</span>", esc(&p));
    }
    let text = esc(&g.stability.describe());
    match g.stability.unstable {
        Some(true) => format!("<span class=\"bad\" title=\"{text}\">unstable</span>"),
        _ => format!(
            "<span title=\"{text}\">{}</span>",
            esc(&g.stability.label())
        ),
    }
}

fn budget_html(status: BudgetStatus) -> String {
    match status {
        BudgetStatus::Exceeded => "<span class=\"bad\">exceeded</span>".into(),
        BudgetStatus::Held => "<span class=\"good\">held</span>".into(),
        s => esc(s.as_str()),
    }
}

/// The start of every pinlat HTML page up to `<body>`: the document type, no favicon request,
/// `title` (already escaped) and the reports' one stylesheet, so a host's and a fleet's pages
/// look alike.
pub(super) fn page_head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <link rel=\"icon\" href=\"data:,\">\n\
         <title>{title}</title>\n<style>{CSS}</style></head><body>\n"
    )
}

/// The `report.html` text.
pub fn render(r: &Report) -> Result<String, ReportError> {
    let mut o = page_head(&format!("pinlat report {}", esc(&r.run_id)));
    o.push_str(&format!(
        "<h1>pinlat report <code>{}</code></h1>\n",
        esc(&r.run_id)
    ));
    if let Some(d) = &r.disclaimer {
        o.push_str(&format!(
            "<div class=\"warn\"><b>Not hardware latency:</b> {}.</div>\n",
            esc(d)
        ));
    }
    if let Some(w) = r.guest_warning.as_ref() {
        o.push_str(&format!(
            "<div class=\"warn bad\"><b>Not a realtime guest:</b> {}.</div>\n",
            esc(w)
        ));
    }
    if let Some(p) = &r.in_progress {
        o.push_str(&format!(
            "<div class=\"warn\"><b>In progress:</b> {}.</div>\n",
            esc(&p.statement)
        ));
    }
    o.push_str(&format!("<p>{}</p>\n", esc(&r.guest_kernels.sentence())));
    let ok = r.runs.iter().filter(|x| x.outcome.ok).count();
    let accels: Vec<&str> = r.accels.iter().map(|a| a.as_str()).collect();
    o.push_str(&format!(
        "<p>{} run(s) read, {ok} measured, {} failed, {} unreadable, {} missing · accel {} · latencies in µs (percentiles at HDR 3-digit precision, min/max exact).</p>\n",
        r.runs.len(),
        r.runs.len() - ok,
        r.skipped.len(),
        r.missing_runs.len(),
        esc(&accels.join(", "))
    ));
    if let Some(line) = r.variants_sentence() {
        o.push_str(&format!("<p>{}</p>\n", esc(&line)));
    }
    if let Some(b) = &r.boots {
        o.push_str(&format!("<p>{}.</p>\n", esc(&b.sentence())));
    }

    o.push_str("<h2>Verdicts</h2>\n<ul>\n");
    for v in &r.verdicts {
        o.push_str(&format!("<li>{}</li>\n", esc(&v.statement)));
    }
    o.push_str(&format!("</ul>\n<p>Each verdict ranks at the highest percentile that is not max-bound in any layout (at least {} samples beyond it) and names it; a difference there counts only when it exceeds the spread (max − min) of that percentile between repetitions. Beside it, stability (Linaro's cyclicdeadline rule): a layout is unstable when half or more of its repetitions have a max above 1.1 × the smallest max of its repetitions.</p>\n", crate::histo::MAX_BOUND_BEYOND));

    o.push_str("<h2>Budgets per layout</h2>\n<table><tr><th>layout</th><th>kind</th><th>budget</th><th>checks</th></tr>\n");
    for l in &r.layouts {
        let checks: Vec<String> = r
            .groups
            .iter()
            .filter(|g| g.layout == l.name)
            .flat_map(|g| {
                g.budget
                    .describe()
                    .into_iter()
                    .map(move |c| format!("{}: {c}", g.name_in_layout()))
            })
            .collect();
        o.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&l.name),
            l.kind.as_str(),
            budget_html(l.budget),
            if checks.is_empty() {
                "–".to_string()
            } else {
                checks
                    .iter()
                    .map(|c| esc(c))
                    .collect::<Vec<_>>()
                    .join("<br>")
            }
        ));
    }
    o.push_str("</table>\n");

    // One colour per arm, in the groups' order (per layout without variants).
    let mut arms: Vec<String> = Vec::new();
    for g in &r.groups {
        if !arms.contains(&g.arm()) {
            arms.push(g.arm());
        }
    }
    let arm_index = |g: &Group| arms.iter().position(|a| *a == g.arm()).unwrap_or(0);
    for v in &r.verdicts {
        let gs = r.groups_of(&v.scenario, v.workload);
        o.push_str(&format!("<h2>{} × {}</h2>\n", v.scenario, v.workload));
        o.push_str(&format!("<p>{}</p>\n", esc(&v.statement)));
        let q = v.percentile.unwrap_or(Quantile::P9999);
        o.push_str(&format!("<table><tr><th>rank</th><th>{}</th><th>reps</th><th>samples</th><th>min</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>p99.99</th><th>max</th><th>mean</th><th>stddev</th><th>{q} spread</th><th>stability</th><th>budget</th></tr>\n", r.arm_column()));
        // Ranked layouts first, in rank order, then the others.
        let rows = r.table_rows(v);
        let mut marked = false;
        for (rank, g) in rows {
            let rank = rank.map_or("–".to_string(), |x| x.to_string());
            if let Some(f) = v
                .failed
                .iter()
                .find(|f| g.is_arm(&f.layout, f.variant.as_deref()))
            {
                // No numbers: the row says why, across them.
                o.push_str(&format!(
                    "<tr><td class=n>{rank}</td><td>{}</td><td class=n>0 of {}</td><td colspan=\"12\" class=\"bad\">{}</td><td>{}</td></tr>\n",
                    esc(&g.arm()),
                    f.runs,
                    esc(&f.statement),
                    budget_html(g.budget.status)
                ));
                continue;
            }
            let reps = if g.failed_runs.is_empty() {
                g.ok_runs.len().to_string()
            } else {
                format!("{} of {}", g.ok_runs.len(), failures::runs_read(g))
            };
            let s = &g.stats;
            marked |= s.samples > 0 && Quantile::ALL.iter().any(|&q| s.at(q).max_bound);
            let spread = match g.spread.of(q) {
                Some(x) => format!("{}–{}", us(x.min_ns), us(x.max_ns)),
                None => format!("{} rep(s)", g.spread.repetitions),
            };
            o.push_str(&format!(
                "<tr><td class=n>{rank}</td><td>{}</td><td class=n>{reps}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td>{spread}</td><td>{}</td><td>{}</td></tr>\n",
                esc(&g.arm()),
                s.samples,
                us(s.min_ns),
                pct(s.samples, &s.p50_ns),
                pct(s.samples, &s.p90_ns),
                pct(s.samples, &s.p99_ns),
                pct(s.samples, &s.p999_ns),
                pct(s.samples, &s.p9999_ns),
                us(s.max_ns),
                us(s.mean_ns),
                us(s.stddev_ns),
                stability_html(g),
                budget_html(g.budget.status)
            ));
        }
        o.push_str("</table>\n");
        if marked {
            o.push_str(&format!(
                "<p class=\"legend\">{}</p>\n",
                esc(&max_bound_legend())
            ));
        }
        o.push_str(&failures::render::html(r, v));
        let indexed: Vec<(usize, &Group)> = gs
            .iter()
            .filter(|g| g.stats.samples > 0)
            .map(|g| (arm_index(g), *g))
            .collect();
        if !indexed.is_empty() {
            let t = format!("{} × {}", v.scenario, v.workload);
            o.push_str("<div class=\"figs\">\n");
            o.push_str(&histogram_svg(
                &format!("Latency histogram, {t}"),
                &indexed,
            )?);
            o.push_str(&percentile_svg(&format!("Percentiles, {t}"), &indexed)?);
            // A soak keeps no interval frames whole: its maxima over time are in "Soak".
            if indexed
                .iter()
                .any(|(_, g)| !g.timeline.iter().all(|t| t.points.is_empty()))
            {
                o.push_str(&timeline_svg(&format!("Latency over time, {t}"), &indexed)?);
            }
            o.push_str("</div>\n");
        }
        let tops: Vec<String> = gs
            .iter()
            .flat_map(|g| g.top.iter().take(3))
            .map(|e| {
                format!(
                    "{} µs in {} {} at +{} ms",
                    us(e.latency_ns),
                    e.run,
                    e.vcpu,
                    e.offset_ns / 1_000_000
                )
            })
            .collect();
        if !tops.is_empty() {
            o.push_str(&format!(
                "<p>Largest events: {}</p>\n",
                esc(&tops.join(" · "))
            ));
        }
    }

    o.push_str(&super::culprits::html(&r.culprits)?);
    o.push_str(&super::thread_cpu::html(r));

    o.push_str("<h2 id=\"placement\">Placement per layout (observed)</h2>\n<p>Rows are QEMU threads, columns host pCPUs; a filled cell is a pCPU the thread may run on (<code>Cpus_allowed_list</code> read back from /proc at the end of the measurement), a dot a pCPU the vCPU thread was seen running on. Red: RT vCPU, blue: housekeeping vCPU, grey: emulator, green: iothread.</p>\n");
    let host_cpus = r
        .host
        .as_ref()
        .map(|h| h.local.online_cpus.clone())
        .unwrap_or_default();
    for l in &r.layouts {
        o.push_str(&format!(
            "<h3>{} ({}) — from run {}{}</h3>\n",
            esc(&l.name),
            l.kind.as_str(),
            esc(&l.from_run),
            if l.mismatches > 0 {
                format!(
                    " · <span class=\"bad\">{} thread placement(s) differ from the plan</span>",
                    l.mismatches
                )
            } else {
                String::new()
            }
        ));
        o.push_str(&placement_svg(l, &host_cpus));
    }

    if !r.host_checks.is_empty() {
        o.push_str("<h2>Host readiness</h2>\n");
        o.push_str(&format!("<p>{}</p>\n", esc(&r.host_checks.sentence())));
        if let Some(d) = &r.host_checks.doctor {
            if !d.problems.is_empty() {
                o.push_str(
                    "<table><tr><th>check</th><th>status</th><th>found</th><th>fix</th></tr>\n",
                );
                for c in &d.problems {
                    o.push_str(&format!(
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                        esc(&c.id),
                        esc(&c.status),
                        esc(&c.found),
                        esc(&c.fix)
                    ));
                }
                o.push_str("</table>\n");
            }
        }
    }

    if let Some(readiness) = &r.readiness {
        o.push_str(&readiness.html());
    }

    // Every field of host.json, in its own order.
    if let Some(serde_json::Value::Object(h)) =
        r.host.as_ref().and_then(|h| serde_json::to_value(h).ok())
    {
        o.push_str("<h2>Host</h2>\n<table>\n");
        for (k, v) in &h {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            o.push_str(&format!(
                "<tr><th>{}</th><td>{}</td></tr>\n",
                esc(k),
                esc(&text)
            ));
        }
        o.push_str("</table>\n");
    }

    o.push_str(&super::housekeeping::html(r));
    o.push_str(&super::soak::html(r)?);
    o.push_str("<h2>Runs</h2>\n<table><tr><th>run</th><th>status</th><th>clock</th><th>samples</th><th>p99.99</th><th>max</th><th>RT vCPU preemptions</th><th>placement mismatches</th></tr>\n");
    for x in &r.runs {
        let status = if x.outcome.ok {
            "ok".to_string()
        } else {
            format!(
                "<span class=\"bad\">failed in {}: {}</span>",
                esc(x.outcome.stage.map_or("?", |s| s.as_str())),
                esc(x.outcome.reason.as_deref().unwrap_or("?"))
            )
        };
        o.push_str(&format!(
            "<tr><td>{}</td><td>{status}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>\n",
            esc(&x.name),
            esc(&super::clocks_text(&x.clocks)),
            x.stats.samples,
            pct(x.stats.samples, &x.stats.p9999_ns),
            us(x.stats.max_ns),
            x.rt_vcpu_nonvoluntary_switches,
            x.placement_mismatches
        ));
    }
    o.push_str("</table>\n");
    if r.runs
        .iter()
        .any(|x| x.stats.samples > 0 && x.stats.p9999_ns.max_bound)
    {
        o.push_str(&format!(
            "<p class=\"legend\">{}</p>\n",
            esc(&max_bound_legend())
        ));
    }
    let mut notes: Vec<String> = r
        .skipped
        .iter()
        .map(|s| format!("runs/{} unreadable: {}", s.file, s.reason))
        .collect();
    notes.extend(
        r.missing_runs
            .iter()
            .map(|m| format!("{m}: planned but no run file")),
    );
    notes.extend(r.notes.iter().cloned());
    if !notes.is_empty() {
        o.push_str("<h2>Notes</h2>\n<ul>\n");
        for n in notes {
            o.push_str(&format!("<li>{}</li>\n", esc(&n)));
        }
        o.push_str("</ul>\n");
    }
    o.push_str("</body></html>\n");
    Ok(o)
}
