//! The trend as one self-contained page (inline CSS and SVG, no script): the directories, the
//! latest against the history, the change points, then per series a time-series figure in the
//! manner of OSADL's long-term latency plots — one line per metric (p50, p99, p99.9, p99.99,
//! max) over the directories in trend order, log-scale latency — drawn with the results report's
//! figure ([`crate::report::html_svg`]), with failed points as red crosses along the top and
//! change points as vertical lines in their metric's colour; the points' table below it.

use plotters::prelude::*;

use super::{markdown, Metric, PointStatus, Series, SkipKind, TrendReport};
use crate::histo::Quantile;
use crate::report::html::CSS;
use crate::report::html_svg::{colour, figure, log_range, us_label, Axes};
use crate::report::{escape_xml as esc, us, us_opt, us_pct, ReportError};

/// Runs of adjacent points of one metric, (directory index, µs): a gap stays a gap.
type Lines = Vec<Vec<(f64, f64)>>;

/// Longest x label, characters.
const LABEL_CHARS: usize = 18;

/// The time-series figure of one series.
pub fn series_svg(t: &TrendReport, s: &Series) -> Result<String, ReportError> {
    let n = s.points.len();
    let labels: Vec<String> = t
        .dirs
        .iter()
        .map(|d| d.label(t.order).chars().take(LABEL_CHARS).collect())
        .collect();
    // Per metric: runs of adjacent measured points (a gap stays a gap), x = directory index.
    let lines: Vec<(Metric, Lines)> = Metric::ALL
        .into_iter()
        .map(|m| {
            let mut runs: Lines = Vec::new();
            let mut last = None;
            for (i, p) in s.points.iter().enumerate() {
                let Some(v) = p.stats.as_ref().and_then(|st| m.value(st)) else {
                    continue;
                };
                if last != Some(i.wrapping_sub(1)) || runs.is_empty() {
                    runs.push(Vec::new());
                }
                runs.last_mut()
                    .expect("pushed above")
                    .push((i as f64, v.max(1) as f64 / 1000.0));
                last = Some(i);
            }
            (m, runs)
        })
        .collect();
    let all = || lines.iter().flat_map(|(_, r)| r.iter().flatten());
    let ylo = all().map(|p| p.1).fold(f64::MAX, f64::min);
    let yhi = all().map(|p| p.1).fold(0.0, f64::max);
    let yrange = log_range(if ylo == f64::MAX { 1.0 } else { ylo }, yhi);
    let top = yrange.end / 1.2;
    let failed: Vec<f64> = s
        .points
        .iter()
        .enumerate()
        .filter(|(_, p)| matches!(p.status, PointStatus::Failed { .. }))
        .map(|(i, _)| i as f64)
        .collect();
    let x_format = |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 0.01 && i >= 0.0 && (i as usize) < n {
            labels[i as usize].clone()
        } else {
            String::new()
        }
    };
    figure(
        &s.name,
        -0.5f64..(n as f64 - 0.5).max(0.5),
        yrange.clone().log_scale(),
        Axes {
            x_desc: &format!("directory, by {}", t.order.as_str()),
            y_desc: "latency (µs)",
            x_labels: Some(n.clamp(1, 6)),
            x_format: Some(&x_format),
            y_format: &us_label,
        },
        SeriesLabelPosition::UpperLeft,
        |chart, e| {
            for (k, (m, runs)) in lines.iter().enumerate() {
                let c = colour(k);
                let mut first = true;
                for r in runs {
                    let s = chart
                        .draw_series(LineSeries::new(r.clone(), c.stroke_width(2)))
                        .map_err(|x| e(x.to_string()))?;
                    if first {
                        s.label(m.label()).legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                        });
                        first = false;
                    }
                    chart
                        .draw_series(r.iter().map(|p| Circle::new(*p, 3, c.filled())))
                        .map_err(|x| e(x.to_string()))?;
                }
                for cp in s.change_points.iter().filter(|cp| cp.metric == *m) {
                    let x = cp.at as f64 - 0.5;
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(x, yrange.start), (x, yrange.end)],
                            c.mix(0.7).stroke_width(1),
                        )))
                        .map_err(|x| e(x.to_string()))?;
                }
            }
            if !failed.is_empty() {
                let red = RGBColor(200, 0, 0);
                chart
                    .draw_series(
                        failed
                            .iter()
                            .map(|x| Cross::new((*x, top), 6, red.stroke_width(2))),
                    )
                    .map_err(|x| e(x.to_string()))?
                    .label("failed (every run)")
                    .legend(move |(x, y)| Cross::new((x + 9, y), 5, red.stroke_width(2)));
            }
            Ok(())
        },
    )
}

fn dirs_table(t: &TrendReport, o: &mut String) {
    o.push_str(&format!("<h2>Directories, by {}</h2>\n", t.order.as_str()));
    o.push_str("<table><tr><th>#</th><th>directory</th><th>started (UTC)</th><th>host kernel</th><th>guest kernel</th><th>runs</th><th>failed</th><th>notes</th></tr>\n");
    let k = |k: &Option<super::KernelRelease>| k.as_ref().map_or("?".into(), |k| esc(&k.0));
    for (i, d) in t.dirs.iter().enumerate() {
        let mut notes = d.notes.clone();
        if d.aggregated {
            notes.insert(0, "aggregated from runs/".into());
        }
        o.push_str(&format!(
            "<tr><td class=\"n\">{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>\n",
            i + 1,
            esc(&d.path),
            d.label(super::TrendOrder::Time),
            k(&d.host_kernel),
            k(&d.guest_kernel),
            d.runs,
            d.failed_runs,
            esc(&notes.join("; "))
        ));
    }
    o.push_str("</table>\n");
    if !t.skipped.is_empty() {
        o.push_str("<h3>Left out</h3>\n<table><tr><th>directory</th><th>why</th><th></th></tr>\n");
        for s in &t.skipped {
            let (class, kind) = match s.kind {
                SkipKind::OtherSchema => ("", "another pinlat schema"),
                SkipKind::Unreadable => ("bad", "unreadable"),
                SkipKind::Unordered => ("bad", "cannot be ordered"),
            };
            o.push_str(&format!(
                "<tr><td><code>{}</code></td><td class=\"{class}\">{kind}</td><td>{}</td></tr>\n",
                esc(&s.path),
                esc(&s.reason)
            ));
        }
        o.push_str("</table>\n");
    }
}

fn latest_table(t: &TrendReport, o: &mut String) {
    o.push_str("<h2>The latest against the history</h2>\n<p>Each cell: the median of the earlier directories → the latest (change); bold red: a regression, † max-bound (not judged).</p>\n<table><tr><th>series</th><th>history</th>");
    for q in Quantile::ALL {
        o.push_str(&format!("<th>{}</th>", q.label()));
    }
    o.push_str("<th>max</th><th>verdict</th></tr>\n");
    for s in &t.series {
        let Some(l) = &s.latest else { continue };
        o.push_str(&format!(
            "<tr><td>{}</td><td class=\"n\">{}</td>",
            esc(&s.name),
            l.history
        ));
        for i in 0..Quantile::ALL.len() {
            let cell = l.changes.get(i).map_or(String::new(), |c| {
                let pct = c
                    .change_pct
                    .map_or("n/a".to_string(), |p| format!("{p:+.1}%"));
                let text = format!("{} → {} ({pct})", us_opt(c.base_ns), us_opt(c.new_ns));
                match (&c.not_judged, c.regression) {
                    (Some(why), _) => format!("<span title=\"{}\">{text} †</span>", esc(why)),
                    (None, true) => format!("<span class=\"bad\">{text}</span>"),
                    (None, false) => text,
                }
            });
            o.push_str(&format!("<td class=\"n\">{cell}</td>"));
        }
        let max = l
            .max_ns
            .map_or(String::new(), |(h, n)| format!("{} → {}", us(h), us(n)));
        let verdict = match (&l.lost, l.regression, &l.not_judged) {
            (Some(lost), true, _) => {
                format!("<span class=\"bad\">REGRESSION</span>: {}", esc(lost))
            }
            (Some(lost), false, _) => format!("{} (allowed)", esc(lost)),
            (None, true, _) => "<span class=\"bad\">REGRESSION</span>".into(),
            (None, false, Some(why)) => format!("not judged: {}", esc(why)),
            (None, false, None) => "<span class=\"good\">ok</span>".into(),
        };
        o.push_str(&format!(
            "<td class=\"n\">{max}</td><td>{verdict}</td></tr>\n"
        ));
    }
    o.push_str("</table>\n");
}

fn series_section(t: &TrendReport, s: &Series, o: &mut String) -> Result<(), ReportError> {
    o.push_str(&format!("<h3 id=\"{0}\">{0}</h3>\n", esc(&s.name)));
    if s.regressed() {
        o.push_str("<p class=\"bad\">The latest directory regressed.</p>\n");
    }
    o.push_str(&format!(
        "<div class=\"figs\">{}</div>\n",
        series_svg(t, s)?
    ));
    o.push_str("<details><summary>points</summary>\n<table><tr><th>#</th><th>label</th>");
    for m in Metric::ALL {
        o.push_str(&format!("<th>{}</th>", m.label()));
    }
    o.push_str("<th>ok runs</th><th>failed runs</th></tr>\n");
    for (i, (p, d)) in s.points.iter().zip(&t.dirs).enumerate() {
        o.push_str(&format!(
            "<tr><td class=\"n\">{}</td><td>{}</td>",
            i + 1,
            esc(&d.label(t.order))
        ));
        match (&p.status, &p.stats) {
            (PointStatus::Measured, Some(st)) => {
                for m in Metric::ALL {
                    let v = m.quantile().map_or(us(st.max_ns), |q| us_pct(&st.at(q)));
                    o.push_str(&format!("<td class=\"n\">{v}</td>"));
                }
            }
            (PointStatus::Failed { cause }, _) => o.push_str(&format!(
                "<td colspan=\"5\" class=\"bad\">failed: {}</td>",
                esc(cause)
            )),
            _ => o.push_str("<td colspan=\"5\">absent</td>"),
        }
        o.push_str(&format!(
            "<td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n",
            p.ok_runs, p.failed_runs
        ));
    }
    o.push_str("</table></details>\n");
    Ok(())
}

/// The `report.html` text of a trend.
pub fn render(t: &TrendReport) -> Result<String, ReportError> {
    let mut o = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<link rel=\"icon\" href=\"data:,\">\n");
    o.push_str(&format!(
        "<title>pinlat trend by {}</title>\n<style>{CSS}</style></head><body>\n<h1>pinlat trend: {} series over {} directories, by {}</h1>\n",
        t.order.as_str(),
        t.series.len(),
        t.dirs.len(),
        t.order.as_str()
    ));
    for n in &t.notes {
        o.push_str(&format!("<div class=\"warn\">{}</div>\n", esc(n)));
    }
    o.push_str(&format!(
        "<p><b>{}.</b> Latencies in µs. A series regresses when a percentile of the latest directory grew beyond the median of the earlier ones by more than {}% and by at least {} µs (<code>pinlat compare</code>'s rule), or when it failed or is absent in the latest{}. Max-bound percentiles and the max are shown, never judged, and max-bound percentiles are not plotted.</p>\n",
        esc(&markdown::headline(t)),
        t.threshold_pct,
        us(t.min_delta_ns),
        if t.allow_missing { " (shown, not counted: --allow-missing)" } else { "" },
    ));
    dirs_table(t, &mut o);
    latest_table(t, &mut o);
    let cps: usize = t.series.iter().map(|s| s.change_points.len()).sum();
    o.push_str(&format!(
        "<h2>Change points</h2>\n<p>{cps} level shift(s) where {}. In the figures: a vertical line in the metric's colour before the first point of the new level.</p>\n",
        esc(&super::changepoint::rule_text())
    ));
    if cps > 0 {
        o.push_str("<table><tr><th>series</th><th>metric</th><th>from directory</th><th>before</th><th>after</th><th>change</th></tr>\n");
        for s in &t.series {
            for c in &s.change_points {
                o.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>#{} {}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n",
                    esc(&s.name),
                    c.metric.label(),
                    c.at + 1,
                    esc(&t.dirs[c.at].label(t.order)),
                    us(c.before_ns),
                    us(c.after_ns),
                    c.change_pct.map_or("n/a".into(), |p| format!("{p:+.1}%"))
                ));
            }
        }
        o.push_str("</table>\n");
    }
    o.push_str("<h2>Series</h2>\n");
    for s in &t.series {
        series_section(t, s, &mut o)?;
    }
    o.push_str("</body></html>\n");
    Ok(o)
}
