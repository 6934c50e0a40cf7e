//! The fleet's `report.html`: one self-contained page (inline CSS and SVG, no script) with what
//! `report.md` has, and per scenario × workload a figure of every host's p99.9 and max per
//! layout with the outliers ringed ([`super::html_plot`]). The page looks like a host's
//! report: same style, same colours.

use super::html_plot::spread_svg;
use super::outlier::rule_text;
use super::view::{self, Cell, Value};
use super::{FleetReport, LabelSource};
use crate::report::html::page_head;
use crate::report::{escape_xml as esc, max_bound_legend, ReportError, MAX_BOUND_MARK};

fn value(v: &Value) -> String {
    match v.outlier {
        Some(d) => format!(
            "<span class=\"bad\" title=\"beyond the fleet's spread\">{} {}</span>",
            esc(&v.text),
            view::direction_mark(d)
        ),
        None => esc(&v.text),
    }
}

/// The `report.html` text.
pub fn render(r: &FleetReport) -> Result<String, ReportError> {
    let mut o = page_head("pinlat fleet report");
    o.push_str("<h1>pinlat fleet report</h1>\n");
    if let Some(t) = r.tcg_note() {
        o.push_str(&format!(
            "<div class=\"warn\"><b>Not hardware latency:</b> {}.</div>\n",
            esc(&t)
        ));
    }
    o.push_str(&format!("<p>{}.</p>\n", esc(&view::summary(r))));

    if !r.failed_hosts.is_empty() {
        o.push_str(
            "<h2>Failed hosts</h2>\n<table><tr><th>host</th><th>directory</th><th>why</th></tr>\n",
        );
        for f in &r.failed_hosts {
            o.push_str(&format!(
                "<tr><td class=\"bad\">{}</td><td>{}</td><td>{}{}</td></tr>\n",
                esc(&f.label),
                f.dir.as_deref().map_or("–".into(), esc),
                esc(&f.reason),
                view::failed_by(f)
            ));
        }
        o.push_str("</table>\n");
    }

    o.push_str("<h2>Hosts × layouts</h2>\n<p>Each host's budget verdict per layout, against its own budgets; ▲n/▼n: n values of the layout above/below the fleet's spread; ≠: placed otherwise than on most hosts.</p>\n<table><tr><th>host</th>");
    for l in &r.layouts {
        o.push_str(&format!("<th>{}</th>", esc(l)));
    }
    o.push_str("<th>runs</th></tr>\n");
    for h in &r.hosts {
        o.push_str(&format!("<tr><td>{}</td>", esc(&h.label)));
        for l in &r.layouts {
            let (text, class) = view::layout_status(r, h, l);
            o.push_str(&format!("<td class=\"{class}\">{}</td>", esc(&text)));
        }
        o.push_str(&format!("<td>{}</td></tr>\n", esc(&view::runs_text(h))));
    }
    for f in &r.failed_hosts {
        o.push_str(&format!(
            "<tr><td class=\"bad\">{}</td><td class=\"bad\" colspan=\"{}\">host failed: {}</td></tr>\n",
            esc(&f.label),
            r.layouts.len() + 1,
            esc(&f.reason)
        ));
    }
    o.push_str("</table>\n");

    if !r.judgements.is_empty() {
        o.push_str("<h2>Layouts across hosts</h2>\n<ul>\n");
        for j in &r.judgements {
            o.push_str(&format!("<li>{}</li>\n", esc(&j.statement)));
        }
        o.push_str("</ul>\n");
    }

    let mut marked = false;
    for (scenario, workload) in &r.cells {
        o.push_str(&format!(
            "<h2>{} × {workload}</h2>\n<table><tr><th>host</th>",
            esc(scenario)
        ));
        for l in &r.layouts {
            o.push_str(&format!("<th>{} p99.9 / max</th>", esc(l)));
        }
        o.push_str("</tr>\n");
        for h in &r.hosts {
            o.push_str(&format!("<tr><td>{}</td>", esc(&h.label)));
            for l in &r.layouts {
                let td = match view::cell(r, h, l, scenario, *workload) {
                    Cell::NotRun => "<td>–</td>".to_string(),
                    Cell::NoSamples => "<td>no samples</td>".to_string(),
                    Cell::Failed(why) => {
                        format!("<td class=\"bad\">failed: {}</td>", esc(&why))
                    }
                    Cell::Measured { p999, max, notes } => {
                        marked |= p999.text.ends_with(MAX_BOUND_MARK);
                        let notes = if notes.is_empty() {
                            String::new()
                        } else {
                            format!(" <small>({})</small>", esc(&notes.join(", ")))
                        };
                        format!("<td class=n>{} / {}{notes}</td>", value(&p999), value(&max))
                    }
                };
                o.push_str(&td);
            }
            o.push_str("</tr>\n");
        }
        o.push_str("</table>\n");
        if let Some(svg) = spread_svg(r, scenario, *workload)? {
            o.push_str(&format!("<div class=\"figs\">{svg}</div>\n"));
        }
        let outliers: Vec<_> = r
            .outliers
            .iter()
            .filter(|x| &x.scenario == scenario && x.workload == *workload)
            .collect();
        if !outliers.is_empty() {
            o.push_str("<p>Outliers:</p>\n<ul>\n");
            for x in outliers {
                o.push_str(&format!(
                    "<li>{} {}</li>\n",
                    view::direction_mark(x.direction),
                    esc(&x.sentence())
                ));
            }
            o.push_str("</ul>\n");
        }
    }
    if marked {
        o.push_str(&format!(
            "<p class=\"legend\">{}</p>\n",
            esc(&max_bound_legend())
        ));
    }

    o.push_str("<h2>Host facts</h2>\n<table><tr><th>host</th>");
    for hd in view::FACT_HEADERS {
        o.push_str(&format!("<th>{hd}</th>"));
    }
    o.push_str("<th>directory</th></tr>\n");
    for h in &r.hosts {
        o.push_str(&format!("<tr><td>{}</td>", esc(&h.label)));
        for (i, f) in view::facts(h).iter().enumerate() {
            let bad = (i == 5 && h.is_tcg()) || (i == 1 && f == "no");
            o.push_str(&format!(
                "<td{}>{}</td>",
                if bad { " class=\"bad\"" } else { "" },
                esc(f)
            ));
        }
        let renamed = if h.label_source == LabelSource::Disambiguated {
            " (hostname shared: labelled by hostname and directory)"
        } else {
            ""
        };
        o.push_str(&format!("<td>{}{renamed}</td></tr>\n", esc(&h.dir)));
    }
    o.push_str("</table>\n");

    if !r.differences.is_empty() {
        o.push_str("<h2>Not comparable</h2>\n<ul>\n");
        for d in &r.differences {
            o.push_str(&format!("<li>{}</li>\n", esc(&d.text)));
        }
        o.push_str("</ul>\n");
    }
    o.push_str(&format!(
        "<h2>How hosts are judged</h2>\n<ul>\n<li>{}</li>\n<li>{}</li>\n</ul>\n</body></html>\n",
        esc(&rule_text()),
        esc(view::JUDGE_RULE)
    ));
    Ok(o)
}
