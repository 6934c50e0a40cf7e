//! The SVG figures of `report.html`: latency histograms, percentile curves and latency over
//! time drawn with `plotters`' SVG backend, and the placement diagram written directly.
//!
//! Plot coordinates are µs as `f64` (drawing only; every number printed in tables stays integer
//! ns). The histogram figure re-bins the HDR counts into 20 logarithmic bins per decade so
//! layouts can be overlaid; counts are summed, never smoothed.

use hdrhistogram::Histogram;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::{escape_xml as esc, Group, LayoutView, ReportError};
use crate::cpuset::CpuSet;
use crate::result::ThreadRole;

/// One arm's series: colour index, label (the arm, [`super::arm_name`]), points.
type Series<P> = (usize, String, Vec<P>);

/// Width of every plot, px.
const W: u32 = 640;
/// Height of every plot, px.
const H: u32 = 360;
/// Logarithmic bins per decade of the histogram figure.
const BINS_PER_DECADE: f64 = 20.0;

/// Colour of the `i`-th arm (layout without variants), the same in every figure.
pub(super) fn colour(i: usize) -> RGBColor {
    const C: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
    ];
    C[i % C.len()]
}

fn perr(name: &str) -> impl Fn(String) -> ReportError + '_ {
    move |e| ReportError::Plot(name.to_string(), e)
}

/// Log bins of `h`: (lower µs, upper µs, count), in order, empty bins left out.
fn log_bins(h: &Histogram<u64>) -> Vec<(f64, f64, u64)> {
    let mut bins: std::collections::BTreeMap<i64, u64> = std::collections::BTreeMap::new();
    for v in h.iter_recorded() {
        let ns = v.value_iterated_to().max(1) as f64;
        let b = (ns.log10() * BINS_PER_DECADE).floor() as i64;
        *bins.entry(b).or_default() += v.count_at_value();
    }
    bins.into_iter()
        .map(|(b, c)| {
            let lo = 10f64.powf(b as f64 / BINS_PER_DECADE) / 1000.0;
            let hi = 10f64.powf((b + 1) as f64 / BINS_PER_DECADE) / 1000.0;
            (lo, hi, c)
        })
        .collect()
}

/// A log axis range around `[lo, hi]` with some room.
pub(super) fn log_range(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let lo = if lo > 0.0 { lo } else { 1e-3 };
    let hi = if hi > lo { hi } else { lo * 10.0 };
    (lo / 1.5)..(hi * 1.5)
}

pub(super) fn us_label(v: &f64) -> String {
    if *v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// Axis texts of a figure; formatters take the axis' value type.
pub(super) struct Axes<'a, XV, YV> {
    pub(super) x_desc: &'a str,
    pub(super) y_desc: &'a str,
    /// Number of x labels, when the default does not suit.
    pub(super) x_labels: Option<usize>,
    pub(super) x_format: Option<&'a dyn Fn(&XV) -> String>,
    pub(super) y_format: &'a dyn Fn(&YV) -> String,
}

/// The chart every figure is drawn on.
pub(super) type Chart<'a, X, Y> = ChartContext<
    'a,
    SVGBackend<'a>,
    Cartesian2d<<X as AsRangedCoord>::CoordDescType, <Y as AsRangedCoord>::CoordDescType>,
>;

/// Draws one figure as every figure of the report is drawn: white background, caption,
/// margins, label areas, mesh with `axes`, then `series` (given the chart and the error
/// constructor), then the legend at `legend`. Returns the SVG text.
pub(super) fn figure<X, Y>(
    title: &str,
    x: X,
    y: Y,
    axes: Axes<'_, X::Value, Y::Value>,
    legend: SeriesLabelPosition,
    series: impl FnOnce(&mut Chart<'_, X, Y>, &dyn Fn(String) -> ReportError) -> Result<(), ReportError>,
) -> Result<String, ReportError>
where
    X: AsRangedCoord,
    Y: AsRangedCoord,
    X::CoordDescType: ValueFormatter<X::Value>,
    Y::CoordDescType: ValueFormatter<Y::Value>,
{
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (W, H)).into_drawing_area();
        let e = perr(title);
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 15))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(x, y)
            .map_err(|x| e(x.to_string()))?;
        {
            let mut mesh = chart.configure_mesh();
            mesh.x_desc(axes.x_desc)
                .y_desc(axes.y_desc)
                .y_label_formatter(axes.y_format);
            if let Some(n) = axes.x_labels {
                mesh.x_labels(n);
            }
            if let Some(f) = axes.x_format {
                mesh.x_label_formatter(f);
            }
            mesh.draw().map_err(|x| e(x.to_string()))?;
        }
        series(&mut chart, &e)?;
        chart
            .configure_series_labels()
            .position(legend)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|x| e(x.to_string()))?;
        root.present().map_err(|x| e(x.to_string()))?;
    }
    Ok(buf)
}

/// Overlaid log-log latency histograms, one step line per arm.
pub fn histogram_svg(title: &str, groups: &[(usize, &Group)]) -> Result<String, ReportError> {
    let series: Vec<Series<(f64, f64, u64)>> = groups
        .iter()
        .map(|(i, g)| (*i, g.arm(), log_bins(&g.histogram.0)))
        .filter(|(_, _, b)| !b.is_empty())
        .collect();
    let lo = series
        .iter()
        .filter_map(|s| s.2.first())
        .map(|b| b.0)
        .fold(f64::MAX, f64::min);
    let hi = series
        .iter()
        .filter_map(|s| s.2.last())
        .map(|b| b.1)
        .fold(0.0, f64::max);
    let top = series
        .iter()
        .flat_map(|s| s.2.iter())
        .map(|b| b.2)
        .max()
        .unwrap_or(1) as f64;
    figure(
        title,
        log_range(lo, hi).log_scale(),
        (0.5f64..top * 2.0).log_scale(),
        Axes {
            x_desc: "latency (µs, 20 log bins per decade)",
            y_desc: "samples per bin",
            x_labels: None,
            x_format: Some(&us_label),
            y_format: &|v| format!("{v:.0e}"),
        },
        SeriesLabelPosition::MiddleRight,
        |chart, e| {
            for (i, name, bins) in &series {
                let c = colour(*i);
                // One step path per run of adjacent bins; a gap stays a gap (no zero on a log axis).
                let mut paths: Vec<Vec<(f64, f64)>> = Vec::new();
                let mut last_hi = f64::NAN;
                for (lo, hi, n) in bins {
                    let y = *n as f64;
                    if (lo / last_hi - 1.0).abs() > 1e-9 || paths.is_empty() {
                        paths.push(Vec::new());
                    }
                    let p = paths.last_mut().expect("pushed above");
                    p.push((*lo, y));
                    p.push((*hi, y));
                    last_hi = *hi;
                }
                let mut first = true;
                for p in paths {
                    let s = chart
                        .draw_series(std::iter::once(PathElement::new(p, c.stroke_width(2))))
                        .map_err(|x| e(x.to_string()))?;
                    if first {
                        s.label(name.as_str()).legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                        });
                        first = false;
                    }
                }
            }
            Ok(())
        },
    )
}

fn nines_label(v: &f64) -> String {
    let p = 100.0 - 100.0 / 10f64.powf(*v);
    let decimals = (v.ceil() as usize).saturating_sub(2) + 1;
    let s = format!("{p:.decimals$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// Percentile curves: latency against percentile on a "nines" axis, one line per arm.
pub fn percentile_svg(title: &str, groups: &[(usize, &Group)]) -> Result<String, ReportError> {
    let series: Vec<Series<(f64, f64)>> = groups
        .iter()
        .map(|(i, g)| {
            let h = &g.histogram.0;
            let pts: Vec<(f64, f64)> = if h.is_empty() {
                Vec::new()
            } else {
                h.iter_quantiles(2)
                    .map(|v| (v.quantile_iterated_to(), v.value_iterated_to()))
                    .filter(|(q, _)| *q < 1.0)
                    .map(|(q, v)| (-(1.0 - q).log10(), v.max(1) as f64 / 1000.0))
                    .collect()
            };
            (*i, g.arm(), pts)
        })
        .filter(|s| !s.2.is_empty())
        .collect();
    let xmax = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0))
        .fold(2.0, f64::max)
        .ceil();
    let ylo = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .fold(f64::MAX, f64::min);
    let yhi = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    figure(
        title,
        0f64..xmax,
        log_range(ylo, yhi).log_scale(),
        Axes {
            x_desc: "percentile",
            y_desc: "latency (µs)",
            x_labels: Some(xmax as usize + 1),
            x_format: Some(&nines_label),
            y_format: &us_label,
        },
        SeriesLabelPosition::UpperLeft,
        |chart, e| {
            for (i, name, pts) in series {
                let c = colour(i);
                chart
                    .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                    .map_err(|x| e(x.to_string()))?
                    .label(name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                    });
            }
            Ok(())
        },
    )
}

/// Latency over time from the interval histograms: interval max (thick) and p99 (thin) per
/// repetition, one colour per arm.
pub fn timeline_svg(title: &str, groups: &[(usize, &Group)]) -> Result<String, ReportError> {
    type Series = (usize, String, Vec<(f64, f64)>, Vec<(f64, f64)>);
    let mut series: Vec<Series> = Vec::new();
    for (i, g) in groups {
        for t in &g.timeline {
            let mid = |p: &super::IntervalPoint| p.end_offset_ns as f64 / 1e9;
            let max: Vec<(f64, f64)> = t
                .points
                .iter()
                .filter_map(|p| p.max_ns.map(|v| (mid(p), v.max(1) as f64 / 1000.0)))
                .collect();
            let p99: Vec<(f64, f64)> = t
                .points
                .iter()
                .filter_map(|p| p.p99_ns.map(|v| (mid(p), v.max(1) as f64 / 1000.0)))
                .collect();
            if !max.is_empty() {
                series.push((*i, format!("{} r{}", g.arm(), t.repetition), max, p99));
            }
        }
    }
    let all = || series.iter().flat_map(|s| s.2.iter().chain(s.3.iter()));
    let xmax = all().map(|p| p.0).fold(1.0, f64::max);
    let ylo = all().map(|p| p.1).fold(f64::MAX, f64::min);
    let yhi = all().map(|p| p.1).fold(0.0, f64::max);
    figure(
        title,
        0f64..xmax * 1.02,
        log_range(ylo, yhi).log_scale(),
        Axes {
            x_desc: "end of interval (s into the measurement)",
            y_desc: "latency (µs): max thick, p99 thin",
            x_labels: None,
            x_format: None,
            y_format: &us_label,
        },
        SeriesLabelPosition::MiddleRight,
        |chart, e| {
            let mut labelled = Vec::new();
            for (i, name, max, p99) in series {
                let c = colour(i);
                let s = chart
                    .draw_series(LineSeries::new(max, c.stroke_width(2)))
                    .map_err(|x| e(x.to_string()))?;
                if !labelled.contains(&i) {
                    labelled.push(i);
                    let layout = name
                        .rsplit_once(' ')
                        .map_or(name.clone(), |x| x.0.to_string());
                    s.label(layout).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                    });
                }
                chart
                    .draw_series(LineSeries::new(p99, c.mix(0.6).stroke_width(1)))
                    .map_err(|x| e(x.to_string()))?;
            }
            Ok(())
        },
    )
}

fn role_label(role: &ThreadRole, realtime: &dyn Fn(u32) -> bool) -> (String, &'static str) {
    match role {
        ThreadRole::Vcpu { vcpu } if realtime(*vcpu) => (format!("vCPU {vcpu} (RT)"), "#d62728"),
        ThreadRole::Vcpu { vcpu } => (format!("vCPU {vcpu}"), "#1f77b4"),
        ThreadRole::Iothread { id } => (format!("iothread {id}"), "#2ca02c"),
        ThreadRole::Emulator => ("emulator".to_string(), "#7f7f7f"),
    }
}

/// The placement diagram of one layout: a row per QEMU thread, a column per host pCPU; a
/// filled cell is a pCPU the thread may run on (observed `Cpus_allowed_list`), a dot a pCPU a
/// vCPU thread was seen running on.
pub fn placement_svg(view: &LayoutView, host_cpus: &CpuSet) -> String {
    const ROW: u32 = 20;
    const COL: u32 = 34;
    const LABEL: u32 = 330;
    let mut cpus = host_cpus.clone();
    for g in &view.guests {
        for t in &g.threads {
            cpus = cpus.union(&t.cpus);
        }
    }
    let cpus: Vec<u32> = cpus.iter().collect();
    let rows: usize = view.guests.iter().map(|g| g.threads.len() + 1).sum();
    let width = LABEL + COL * cpus.len() as u32 + 10;
    let height = ROW * (rows as u32 + 1) + 10;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n"
    );
    s.push_str(&format!(
        "<text x=\"{}\" y=\"14\" text-anchor=\"end\">host pCPU</text>\n",
        LABEL - 6
    ));
    for (j, c) in cpus.iter().enumerate() {
        s.push_str(&format!(
            "<text x=\"{}\" y=\"14\" text-anchor=\"middle\">{c}</text>\n",
            LABEL + COL * j as u32 + COL / 2
        ));
    }
    let mut y = ROW;
    for g in &view.guests {
        s.push_str(&format!(
            "<text x=\"4\" y=\"{}\" font-weight=\"bold\">guest {}</text>\n",
            y + 14,
            esc(&g.guest)
        ));
        y += ROW;
        let rt = |v: u32| g.planned.vcpus.iter().any(|p| p.vcpu == v && p.realtime);
        for t in &g.threads {
            let (label, fill) = role_label(&t.role, &rt);
            let mism = if t.matches() { "" } else { " ≠ plan" };
            s.push_str(&format!(
                "<text x=\"4\" y=\"{}\">{} · {} [{}] {}{}</text>\n",
                y + 14,
                esc(&label),
                esc(&t.comm),
                t.tid,
                esc(&format!("{}:{}", t.policy, t.priority)),
                mism
            ));
            let seen = match &t.role {
                ThreadRole::Vcpu { vcpu } => g
                    .vcpu_cpus_seen
                    .iter()
                    .find(|(v, _)| v == vcpu)
                    .map(|(_, c)| c.clone()),
                _ => None,
            };
            for (j, c) in cpus.iter().enumerate() {
                let x = LABEL + COL * j as u32;
                let on = t.cpus.contains(*c);
                s.push_str(&format!(
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" stroke=\"#ccc\"/>\n",
                    x + 1,
                    y + 2,
                    COL - 2,
                    ROW - 4,
                    if on { fill } else { "#fff" }
                ));
                if seen.as_ref().is_some_and(|s| s.contains(*c)) {
                    s.push_str(&format!(
                        "<circle cx=\"{}\" cy=\"{}\" r=\"4\" fill=\"#000\"/>\n",
                        x + COL / 2,
                        y + ROW / 2
                    ));
                }
            }
            y += ROW;
        }
    }
    s.push_str("</svg>\n");
    s
}

/// A timeline strip of one RT pCPU around a guest event: the vCPU thread's time (green), the
/// stolen intervals over it coloured by culprit class, and the guest's event above, on one
/// axis of ms from the event's start (host time, as the mapping placed it).
pub fn strip_svg(title: &str, s: &crate::trace::record::Strip) -> Result<String, ReportError> {
    use crate::trace::Class;
    let t0 = s.event_ns.0;
    let ms = |ns: u64| (ns as f64 - t0 as f64) / 1e6;
    let (x0, x1) = (ms(s.from_ns), ms(s.to_ns).max(ms(s.from_ns) + 1e-3));
    // One colour per class (Class::ALL order), none of them the green of the vCPU's time or
    // the grey of the guest event.
    const CLASS_COLOURS: [RGBColor; 14] = [
        RGBColor(214, 39, 40),   // emulator
        RGBColor(255, 127, 14),  // worker
        RGBColor(148, 103, 189), // iothread
        RGBColor(140, 86, 75),   // migration
        RGBColor(31, 119, 180),  // vcpu
        RGBColor(23, 190, 207),  // foreign-vcpu
        RGBColor(227, 119, 194), // kernel-thread
        RGBColor(188, 189, 34),  // hard-irq
        RGBColor(0, 0, 139),     // ipi
        RGBColor(255, 187, 120), // softirq
        RGBColor(128, 0, 0),     // kvm-exit
        RGBColor(90, 60, 30),    // throttled
        RGBColor(174, 199, 232), // idle
        RGBColor(0, 0, 0),       // other
    ];
    let class_colour =
        |c: Class| CLASS_COLOURS[Class::ALL.iter().position(|x| *x == c).unwrap_or(13)];
    figure(
        title,
        x0..x1,
        0f64..3.0,
        Axes {
            x_desc: "ms from the guest event's start (host time)",
            y_desc: "",
            x_labels: Some(8),
            x_format: Some(&|v: &f64| format!("{v:.1}")),
            y_format: &|v: &f64| {
                if (0.5..1.0).contains(v) {
                    "pCPU".into()
                } else if (1.5..2.0).contains(v) {
                    "guest".into()
                } else {
                    String::new()
                }
            },
        },
        SeriesLabelPosition::UpperRight,
        |chart, e| {
            let green = RGBColor(200, 230, 200);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.2), (x1, 1.0)],
                    green.filled(),
                )))
                .map_err(|x| e(x.to_string()))?
                .label("vCPU thread (ran or slept)")
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 4), (x + 14, y + 4)], green.filled())
                });
            let mut labelled: Vec<Class> = Vec::new();
            for iv in &s.intervals {
                let c = class_colour(iv.class);
                let a = ms(iv.start_ns).max(x0);
                // At least a hair wide, so a 2 µs IRQ is seen on a 100 ms strip.
                let b = ms(iv.end_ns).min(x1).max(a + (x1 - x0) / 600.0);
                let drawn = chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(a, 0.2), (b, 1.0)],
                        c.filled(),
                    )))
                    .map_err(|x| e(x.to_string()))?;
                if !labelled.contains(&iv.class) {
                    labelled.push(iv.class);
                    drawn
                        .label(format!("{} ({})", iv.class, iv.name))
                        .legend(move |(x, y)| {
                            Rectangle::new([(x, y - 4), (x + 14, y + 4)], c.filled())
                        });
                }
            }
            let grey = RGBColor(110, 110, 110);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(ms(s.event_ns.0), 1.4), (ms(s.event_ns.1), 2.2)],
                    grey.mix(0.6).filled(),
                )))
                .map_err(|x| e(x.to_string()))?
                .label("guest event (mapped)")
                .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 14, y + 4)], grey.filled()));
            Ok(())
        },
    )
}
