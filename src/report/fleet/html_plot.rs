//! The fleet's figure, one per scenario × workload: every host's p99.9 (filled) and max
//! (hollow) per layout, on a log latency axis with the hosts along x, and a red ring around each
//! value beyond the fleet's spread. Drawn with the report's own figure frame and colours
//! ([`crate::report::html_svg`]), a colour per layout in the fleet's layout order.

use plotters::prelude::*;

use super::outlier::Metric;
use super::{view, FleetReport};
use crate::config::WorkloadKind;
use crate::report::html_svg::{colour, figure, log_range, us_label, Axes};
use crate::report::ReportError;

/// Width of the x axis that host names may take, px (the figure's width less the y axis).
const X_AXIS_PX: usize = 540;
/// Width of one character of an axis label, px (sans-serif at the axis' size), and the gap
/// between two labels.
const CHAR_PX: usize = 7;
const GAP_PX: usize = 12;

/// One drawn point: x, µs, layout index, metric, beyond the spread.
type Point = (f64, f64, usize, Metric, bool);

/// The figure of (scenario, workload).
pub fn spread_svg(
    r: &FleetReport,
    scenario: &str,
    workload: WorkloadKind,
) -> Result<Option<String>, ReportError> {
    let n_layouts = r.layouts.len().max(1) as f64;
    let mut points: Vec<Point> = Vec::new();
    for (x, h) in r.hosts.iter().enumerate() {
        for (i, l) in r.layouts.iter().enumerate() {
            let Some(g) = h.group(l, scenario, workload).filter(|g| g.samples > 0) else {
                continue;
            };
            // Layouts side by side around the host's x.
            let dx = (i as f64 - (n_layouts - 1.0) / 2.0) * 0.6 / n_layouts;
            for m in Metric::ALL {
                if let Some(Some(ns)) = g.value(m) {
                    let beyond = view::outlier(r, &h.label, l, scenario, workload, m).is_some();
                    points.push((x as f64 + dx, ns.max(1) as f64 / 1000.0, i, m, beyond));
                }
            }
        }
    }
    if points.is_empty() {
        return Ok(None);
    }
    let lo = points.iter().map(|p| p.1).fold(f64::MAX, f64::min);
    let hi = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let n = r.hosts.len();
    let labels: Vec<&str> = r.hosts.iter().map(|h| h.label.as_str()).collect();
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1);
    let max_labels = X_AXIS_PX / (longest * CHAR_PX + GAP_PX);
    let x_format = |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 0.01 && i >= 0.0 {
            labels
                .get(i as usize)
                .map_or(String::new(), |s| s.to_string())
        } else {
            String::new()
        }
    };
    let title = format!("{scenario} × {workload}: p99.9 and max per host");
    let svg = figure(
        &title,
        // A quarter more on the right, where the legend goes, over no host.
        -0.5f64..(n as f64 * 1.25 + 0.5),
        log_range(lo, hi).log_scale(),
        Axes {
            x_desc: "host",
            y_desc: "latency (µs): p99.9 filled, max hollow",
            // One per integer of the range while the names fit side by side, so every host is
            // named; beyond, as many as fit (the tables name every host).
            x_labels: Some(((n as f64 * 1.25 + 1.0).ceil() as usize).min(max_labels.max(2))),
            x_format: Some(&x_format),
            y_format: &us_label,
        },
        SeriesLabelPosition::UpperRight,
        |chart, e| {
            for (i, name) in r.layouts.iter().enumerate() {
                let c = colour(i);
                let mine = || points.iter().filter(move |p| p.2 == i);
                let filled = mine()
                    .filter(|p| p.3 == Metric::P999)
                    .map(|p| Circle::new((p.0, p.1), 4, c.filled()));
                chart
                    .draw_series(filled)
                    .map_err(|x| e(x.to_string()))?
                    .label(name.as_str())
                    .legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
                let hollow = mine()
                    .filter(|p| p.3 == Metric::Max)
                    .map(|p| Circle::new((p.0, p.1), 4, c.stroke_width(2)));
                chart.draw_series(hollow).map_err(|x| e(x.to_string()))?;
            }
            if points.iter().any(|p| p.4) {
                let rings = points
                    .iter()
                    .filter(|p| p.4)
                    .map(|p| Circle::new((p.0, p.1), 8, RED.stroke_width(2)));
                chart
                    .draw_series(rings)
                    .map_err(|x| e(x.to_string()))?
                    .label("beyond the fleet's spread")
                    .legend(|(x, y)| Circle::new((x + 8, y), 6, RED.stroke_width(2)));
            }
            Ok(())
        },
    )?;
    Ok(Some(svg))
}
