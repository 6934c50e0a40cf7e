//! The trend as one self-contained page (inline CSS and SVG, no script): the directories, the
//! latest against the history, the change points, then per series a time-series figure in the
//! manner of OSADL's long-term latency plots — one line per metric (p50, p99, p99.9, p99.99,
//! max) over the directories in trend order, log-scale latency — drawn with the results report's
//! figure ([`crate::report::html_svg`]), with failed points as red crosses along the top and
//! change points as vertical lines in their metric's colour; the points' table below it.

use plotters::prelude::*;

use super::{markdown, tables, Metric, PointStatus, Series, TrendReport};
use crate::report::html::CSS;
use crate::report::html_svg::{colour, figure, log_range, us_label, Axes};
use crate::report::{escape_xml as esc, ReportError};

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

fn series_section(t: &TrendReport, s: &Series, o: &mut String) -> Result<(), ReportError> {
    o.push_str(&format!("<h3 id=\"{0}\">{0}</h3>\n", esc(&s.name)));
    if s.regressed() {
        o.push_str("<p class=\"bad\">The latest directory regressed.</p>\n");
    }
    o.push_str(&format!(
        "<div class=\"figs\">{}</div>\n",
        series_svg(t, s)?
    ));
    o.push_str("<details><summary>points</summary>\n");
    o.push_str(&tables::points(t, s).html());
    o.push_str("</details>\n");
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
        "<p><b>{}.</b> {} Max-bound percentiles are not plotted.</p>\n",
        esc(&markdown::headline(t)),
        esc(&markdown::rule(t))
    ));
    o.push_str(&format!("<h2>Directories, by {}</h2>\n", t.order.as_str()));
    o.push_str(&tables::dirs(t).html());
    if let Some(s) = tables::skipped(t) {
        o.push_str("<h3>Left out</h3>\n");
        o.push_str(&s.html());
    }
    o.push_str("<h2>The latest against the history</h2>\n<p>Each cell: the median of the earlier directories → the latest (change).</p>\n");
    o.push_str(&tables::latest(t).html());
    let cps: usize = t.series.iter().map(|s| s.change_points.len()).sum();
    o.push_str(&format!(
        "<h2>Change points</h2>\n<p>{cps} level shift(s) where {}. In the figures: a vertical line in the metric's colour before the first point of the new level.</p>\n",
        esc(&super::changepoint::rule_text())
    ));
    if cps > 0 {
        o.push_str(&tables::change_points(t).html());
    }
    o.push_str("<h2>Series</h2>\n");
    for s in &t.series {
        series_section(t, s, &mut o)?;
    }
    o.push_str("</body></html>\n");
    Ok(o)
}
