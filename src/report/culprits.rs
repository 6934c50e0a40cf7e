//! "Who took the RT pCPUs": the host traces of the runs ([`crate::trace::record::RunTrace`])
//! per layout × scenario — stolen time by class with count, longest and top thread names, the
//! longest stolen intervals with their times, the guest's largest events next to their host
//! culprits (with the matching tolerance and how guest time was mapped), SMI counts — and, for
//! the HTML, a timeline strip of each run's RT pCPU around its largest event.
//!
//! Runs without a host trace add nothing: a report of such runs has no culprit section, and its
//! outputs are byte for byte what they were before tracing existed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::escape_xml as esc;
use crate::result::RunRecord;
use crate::trace::record::{EventMatch, SmiCount, Strip, TraceStatus};
use crate::trace::table::fmt_ns;
use crate::trace::{Class, ClassStats, Interval, NameStats};

/// Names kept per class in a group's table.
const TOP_NAMES: usize = 5;
/// Longest intervals listed per group.
const LONGEST: usize = 5;
/// Matched events listed per group.
const MATCHES: usize = 8;

/// One stolen interval of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInterval {
    /// Run name.
    pub run: String,
    /// The RT pCPU.
    pub pcpu: u32,
    /// Start, ns from the start of the run's window on that pCPU.
    pub at_ns: u64,
    /// The interval.
    pub interval: Interval,
}

/// A guest event of one run and its host culprit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMatch {
    /// Run name.
    pub run: String,
    /// Guest name.
    pub guest: String,
    /// The event and what overlaps it.
    pub event: EventMatch,
}

/// What one run's trace says, in short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCulprits {
    /// Run name.
    pub run: String,
    /// Whether it was traced (`recorded`, `off`, `unavailable`, `failed`).
    pub status: TraceStatus,
    /// Window length summed over the run's attributed pCPUs, ns.
    pub window_ns: u64,
    /// Stolen time summed over them, ns.
    pub stolen_ns: u64,
    /// The class and name that stole the most: (class, name, ns).
    pub top: Option<(Class, String, u64)>,
    /// How guest time was mapped, per guest (`guest: note`).
    pub mappings: Vec<String>,
    /// Events of the trace, lost events (markers and ring-buffer overruns), malformed lines.
    pub events: (u64, u64, u64),
    /// SMI counts of the RT pCPUs.
    pub smi: Vec<SmiCount>,
    /// `trace/<run>.txt`, when a capture was kept.
    pub capture_file: Option<String>,
    /// Per attributed pCPU, the stretch around its largest event: (guest, pCPU, strip).
    pub strips: Vec<(String, u32, Strip)>,
}

/// One layout × scenario (layout × variant × scenario with variants).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CulpritGroup {
    /// Layout name.
    pub layout: String,
    /// The tuning variant, `None` when the config has no variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Scenario name.
    pub scenario: String,
    /// Window length summed over the attributed pCPUs of every traced run, ns.
    pub window_ns: u64,
    /// Time the vCPU threads ran, ns.
    pub ran_ns: u64,
    /// Time they chose not to run (sleeping), ns.
    pub idle_ns: u64,
    /// Time stolen from them, ns.
    pub stolen_ns: u64,
    /// Time the trace does not account for, ns.
    pub unknown_ns: u64,
    /// Stolen time by class, most first.
    pub by_class: Vec<ClassStats>,
    /// The longest stolen intervals, longest first.
    pub longest: Vec<RunInterval>,
    /// The guests' largest events with their culprits, largest first.
    pub matches: Vec<RunMatch>,
    /// Per run.
    pub runs: Vec<RunCulprits>,
}

impl CulpritGroup {
    /// The arm it traced ([`super::arm_name`]).
    pub fn arm(&self) -> String {
        super::arm_name(&self.layout, self.variant.as_deref())
    }
}

/// (layout, variant, scenario).
type ArmScenario = (String, Option<String>, String);

/// Folds run records into [`CulpritGroup`]s.
#[derive(Debug, Default)]
pub struct Acc {
    groups: BTreeMap<ArmScenario, (CulpritGroup, BTreeMap<Class, ClassAcc>)>,
    order: Vec<ArmScenario>,
}

#[derive(Debug, Default)]
struct ClassAcc {
    total_ns: u64,
    count: u64,
    longest_ns: u64,
    names: BTreeMap<String, NameStats>,
}

impl Acc {
    /// Adds one run (a run without a host trace adds nothing).
    pub fn add(&mut self, rec: &RunRecord) {
        let Some(t) = &rec.host_trace else {
            return;
        };
        let key = (
            rec.layout.clone(),
            rec.variant.clone(),
            rec.scenario.clone(),
        );
        if !self.groups.contains_key(&key) {
            self.order.push(key.clone());
        }
        let (g, classes) = self.groups.entry(key).or_insert_with(|| {
            (
                CulpritGroup {
                    layout: rec.layout.clone(),
                    variant: rec.variant.clone(),
                    scenario: rec.scenario.clone(),
                    ..Default::default()
                },
                BTreeMap::new(),
            )
        });
        let mut rc = RunCulprits {
            run: rec.name.clone(),
            status: t.status.clone(),
            window_ns: 0,
            stolen_ns: 0,
            top: None,
            mappings: Vec::new(),
            events: (
                t.stats.events,
                t.stats.lost_events + t.stats.overrun,
                t.stats.malformed,
            ),
            smi: t.smi.clone(),
            capture_file: t.capture_file.clone(),
            strips: Vec::new(),
        };
        let mut run_names: BTreeMap<(Class, String), u64> = BTreeMap::new();
        for gt in &t.guests {
            if let Some(m) = &gt.mapping {
                rc.mappings.push(format!("{}: {}", gt.guest, m.note));
            }
            for p in &gt.pcpus {
                let a = &p.attribution;
                let w = a.window.len_ns();
                rc.window_ns += w;
                rc.stolen_ns += a.stolen_ns;
                g.window_ns += w;
                g.ran_ns += a.ran_ns;
                g.idle_ns += a.idle_ns;
                g.stolen_ns += a.stolen_ns;
                g.unknown_ns += a.unknown_ns + a.away_ns;
                for c in &a.by_class {
                    let acc = classes.entry(c.class).or_default();
                    acc.total_ns += c.total_ns;
                    acc.count += c.count;
                    acc.longest_ns = acc.longest_ns.max(c.longest_ns);
                    for n in &c.names {
                        *run_names.entry((c.class, n.name.clone())).or_default() += n.total_ns;
                        let e = acc.names.entry(n.name.clone()).or_insert(NameStats {
                            name: n.name.clone(),
                            total_ns: 0,
                            count: 0,
                            longest_ns: 0,
                        });
                        e.total_ns += n.total_ns;
                        e.count += n.count;
                        e.longest_ns = e.longest_ns.max(n.longest_ns);
                    }
                }
                for i in &a.longest {
                    g.longest.push(RunInterval {
                        run: rec.name.clone(),
                        pcpu: a.cpu,
                        at_ns: i.start_ns.saturating_sub(a.window.start_ns),
                        interval: i.clone(),
                    });
                }
                if let Some(s) = &p.strip {
                    rc.strips.push((gt.guest.clone(), a.cpu, s.clone()));
                }
            }
            for m in &gt.matches {
                g.matches.push(RunMatch {
                    run: rec.name.clone(),
                    guest: gt.guest.clone(),
                    event: m.clone(),
                });
            }
        }
        rc.top = run_names
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|((c, n), ns)| (c, n, ns));
        g.longest.sort_by(|a, b| {
            b.interval
                .len_ns()
                .cmp(&a.interval.len_ns())
                .then(a.run.cmp(&b.run))
                .then(a.at_ns.cmp(&b.at_ns))
        });
        g.longest.truncate(LONGEST);
        g.matches.sort_by(|a, b| {
            b.event
                .latency_ns
                .cmp(&a.event.latency_ns)
                .then(a.run.cmp(&b.run))
                .then(a.event.offset_ns.cmp(&b.event.offset_ns))
        });
        g.matches.truncate(MATCHES);
        g.runs.push(rc);
    }

    /// The groups, in the order their first run was read.
    pub fn finish(mut self) -> Vec<CulpritGroup> {
        let mut out = Vec::new();
        for key in self.order {
            let Some((mut g, classes)) = self.groups.remove(&key) else {
                continue;
            };
            g.by_class = classes
                .into_iter()
                .map(|(class, a)| {
                    let mut names: Vec<NameStats> = a.names.into_values().collect();
                    names.sort_by(|x, y| y.total_ns.cmp(&x.total_ns).then(x.name.cmp(&y.name)));
                    names.truncate(TOP_NAMES);
                    ClassStats {
                        class,
                        total_ns: a.total_ns,
                        count: a.count,
                        longest_ns: a.longest_ns,
                        names,
                    }
                })
                .collect();
            g.by_class
                .sort_by(|x, y| y.total_ns.cmp(&x.total_ns).then(x.class.cmp(&y.class)));
            out.push(g);
        }
        out
    }
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".into()
    } else {
        format!("{:.2} %", part as f64 * 100.0 / whole as f64)
    }
}

fn signed_ms(ns: i64) -> String {
    format!("{:+.3} ms", ns as f64 / 1e6)
}

fn status_text(s: &TraceStatus) -> String {
    match s {
        TraceStatus::Recorded => "recorded".into(),
        TraceStatus::Off => "off (--no-trace)".into(),
        TraceStatus::Unavailable { reason } => format!("not available: {reason}"),
        TraceStatus::Failed { reason } => format!("failed: {reason}"),
    }
}

/// How a group's measurement windows were spent, the stolen part between `bold`'s two marks:
/// the line under each group's title in both views.
fn windows(g: &CulpritGroup, bold: (&str, &str)) -> String {
    format!(
        "Windows {}: ran {} ({}), voluntarily idle {} ({}), {}stolen {} ({}){}, unknown {}.",
        fmt_ns(g.window_ns),
        fmt_ns(g.ran_ns),
        pct(g.ran_ns, g.window_ns),
        fmt_ns(g.idle_ns),
        pct(g.idle_ns, g.window_ns),
        bold.0,
        fmt_ns(g.stolen_ns),
        pct(g.stolen_ns, g.window_ns),
        bold.1,
        fmt_ns(g.unknown_ns)
    )
}

/// A run's trace in a line: its status, events, and SMIs.
fn run_text(r: &RunCulprits) -> String {
    format!(
        "trace {}; {} events, {} lost, {} malformed; SMIs {}",
        status_text(&r.status),
        r.events.0,
        r.events.1,
        r.events.2,
        smi_text(&r.smi)
    )
}

fn smi_text(smi: &[SmiCount]) -> String {
    if smi.is_empty() {
        return "–".into();
    }
    smi.iter()
        .map(|s| match s {
            SmiCount::Counted { cpu, .. } => {
                format!("pCPU {cpu}: {}", s.delta().unwrap_or(0))
            }
            SmiCount::NotAvailable { cpu, why } => format!("pCPU {cpu}: not available ({why})"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The first culprit of an event and whether it explains it: both ends within the tolerance
/// (as recorded) and a length that agrees (judged again here, so records written before the
/// length rule read the same).
fn first_culprit(e: &EventMatch) -> Option<(&crate::trace::Culprit, bool)> {
    e.host.culprits.first().map(|c| {
        let ok = c.matches
            && crate::trace::matcher::lengths_agree(c.interval.len_ns(), e.latency_ns, 1_000);
        (c, ok)
    })
}

fn md(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The sentence under the section title: what the numbers are.
const INTRO: &str = "The RT pCPUs of every run were traced (scheduling, IRQ, IPI and KVM-exit events in a tracefs instance of pinlat's own, removed after the run). Each ns of a guest's measurement window on its RT vCPU's pCPU is booked as ran, voluntarily idle (the vCPU thread slept), stolen (it wanted the pCPU and something else had it, named below) or unknown (lost events). The culprit of an interval is what held the pCPU longest in it; throttled is time the RT bandwidth limit (sched_rt_runtime_us) took, under the name of what ran meanwhile.";

/// The Markdown section; empty when no run has a host trace.
pub fn markdown(groups: &[CulpritGroup]) -> String {
    if groups.is_empty() {
        return String::new();
    }
    let mut o = String::new();
    let _ = writeln!(o, "## Who took the RT pCPUs\n\n{INTRO}\n");
    for g in groups {
        let _ = writeln!(o, "### {} × {}\n", g.arm(), g.scenario);
        let _ = writeln!(o, "{}\n", windows(g, ("**", "**")));
        if !g.by_class.is_empty() {
            o.push_str("| class | stolen | count | longest | top names (stolen, count, longest) |\n|---|---:|---:|---:|---|\n");
            for c in &g.by_class {
                o.push_str(&crate::trace::table::class_row(c));
            }
            o.push('\n');
        }
        if !g.longest.is_empty() {
            o.push_str("Longest stolen intervals:\n\n| length | run | pCPU | at (s into the window) | class | culprit | parts |\n|---:|---|---:|---:|---|---|---|\n");
            for l in &g.longest {
                let parts: Vec<String> = l
                    .interval
                    .parts
                    .iter()
                    .map(|p| format!("{} `{}` {}", p.class, md(&p.name), fmt_ns(p.ns)))
                    .collect();
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {:.6} | {} | `{}` | {} |",
                    fmt_ns(l.interval.len_ns()),
                    l.run,
                    l.pcpu,
                    l.at_ns as f64 / 1e9,
                    l.interval.class,
                    md(&l.interval.name),
                    parts.join(", ")
                );
            }
            o.push('\n');
        }
        if !g.matches.is_empty() {
            o.push_str("The guests' largest events and their host culprits (an interval matches when both its ends are within the tolerance of the event's and its length agrees; an event nothing matches was not stolen on the RT pCPU: its cause is elsewhere, e.g. the emulator delivering the guest's timer late):\n\n| event | run | vCPU → pCPU | at (ms) | host culprit | class | its length | Δstart / Δend | tolerance |\n|---:|---|---|---:|---|---|---:|---|---:|\n");
            for m in &g.matches {
                let e = &m.event;
                let (culprit, class, len, deltas) = match first_culprit(e) {
                    Some((c, false)) => (
                        format!(
                            "no interval of its length: host intervals cover {} of it (most `{}`)",
                            fmt_ns(e.host.covered_ns),
                            md(&c.interval.name)
                        ),
                        c.interval.class.to_string(),
                        fmt_ns(c.interval.len_ns()),
                        "–".into(),
                    ),
                    Some((c, true)) => (
                        format!("✅ `{}`", md(&c.interval.name)),
                        c.interval.class.to_string(),
                        fmt_ns(c.interval.len_ns()),
                        format!(
                            "{} / {}",
                            signed_ms(c.start_delta_ns),
                            signed_ms(c.end_delta_ns)
                        ),
                    ),
                    None => (
                        "none on the host".into(),
                        "–".into(),
                        "–".into(),
                        "–".into(),
                    ),
                };
                let _ = writeln!(
                    o,
                    "| {} | {} | {}/{} → {} | {:.1} | {culprit} | {class} | {len} | {deltas} | ±{} |",
                    fmt_ns(e.latency_ns),
                    m.run,
                    m.guest,
                    e.vcpu,
                    e.pcpu,
                    e.offset_ns as f64 / 1e6,
                    fmt_ns(e.host.tolerance_ns)
                );
            }
            o.push('\n');
        }
        for r in &g.runs {
            let _ = writeln!(
                o,
                "- `{}`: {}{}",
                r.run,
                run_text(r),
                r.capture_file
                    .as_ref()
                    .map(|f| format!("; captured in `{f}`"))
                    .unwrap_or_default()
            );
            for m in &r.mappings {
                let _ = writeln!(o, "  - time mapping, {m}");
            }
        }
        o.push('\n');
    }
    o
}

/// The HTML section with a timeline strip per run; empty when no run has a host trace.
pub fn html(groups: &[CulpritGroup]) -> Result<String, super::ReportError> {
    if groups.is_empty() {
        return Ok(String::new());
    }
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<h2 id=\"culprits\">Who took the RT pCPUs</h2>\n<p>{}</p>",
        esc(INTRO)
    );
    for g in groups {
        let _ = writeln!(
            o,
            "<h3>{} × {}</h3>\n<p>{}</p>",
            esc(&g.arm()),
            esc(&g.scenario),
            windows(g, ("<b>", "</b>"))
        );
        if !g.by_class.is_empty() {
            o.push_str("<table><tr><th>class</th><th>stolen</th><th>count</th><th>longest</th><th>top names (stolen, count, longest)</th></tr>\n");
            for c in &g.by_class {
                let names: Vec<String> = c
                    .names
                    .iter()
                    .map(|n| {
                        format!(
                            "<code>{}</code> {} ×{} ≤{}",
                            esc(&n.name),
                            fmt_ns(n.total_ns),
                            n.count,
                            fmt_ns(n.longest_ns)
                        )
                    })
                    .collect();
                let _ = writeln!(
                    o,
                    "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>",
                    c.class,
                    fmt_ns(c.total_ns),
                    c.count,
                    fmt_ns(c.longest_ns),
                    names.join(", ")
                );
            }
            o.push_str("</table>\n");
        }
        if !g.longest.is_empty() {
            o.push_str("<table><tr><th>longest stolen</th><th>run</th><th>pCPU</th><th>at (s)</th><th>class</th><th>culprit</th></tr>\n");
            for l in &g.longest {
                let _ = writeln!(
                    o,
                    "<tr><td class=n>{}</td><td>{}</td><td class=n>{}</td><td class=n>{:.6}</td><td>{}</td><td><code>{}</code></td></tr>",
                    fmt_ns(l.interval.len_ns()),
                    esc(&l.run),
                    l.pcpu,
                    l.at_ns as f64 / 1e9,
                    l.interval.class,
                    esc(&l.interval.name)
                );
            }
            o.push_str("</table>\n");
        }
        if !g.matches.is_empty() {
            o.push_str("<table><tr><th>guest event</th><th>run</th><th>vCPU → pCPU</th><th>at (ms)</th><th>host culprit</th><th>class</th><th>its length</th><th>Δstart / Δend</th><th>tolerance</th></tr>\n");
            for m in &g.matches {
                let e = &m.event;
                let cells = match first_culprit(e) {
                    Some((c, false)) => format!(
                        "<td>no interval of its length: host intervals cover {} of it (most <code>{}</code>)</td><td>{}</td><td class=n>{}</td><td>–</td>",
                        fmt_ns(e.host.covered_ns),
                        esc(&c.interval.name),
                        c.interval.class,
                        fmt_ns(c.interval.len_ns())
                    ),
                    Some((c, true)) => format!(
                        "<td>matches <code>{}</code></td><td>{}</td><td class=n>{}</td><td>{} / {}</td>",
                        esc(&c.interval.name),
                        c.interval.class,
                        fmt_ns(c.interval.len_ns()),
                        signed_ms(c.start_delta_ns),
                        signed_ms(c.end_delta_ns)
                    ),
                    None => "<td>nothing on the host pCPU: the vCPU thread was not kept off it</td><td>–</td><td>–</td><td>–</td>".into(),
                };
                let _ = writeln!(
                    o,
                    "<tr><td class=n>{}</td><td>{}</td><td>{}/{} → {}</td><td class=n>{:.1}</td>{cells}<td class=n>±{}</td></tr>",
                    fmt_ns(e.latency_ns),
                    esc(&m.run),
                    esc(&m.guest),
                    e.vcpu,
                    e.pcpu,
                    e.offset_ns as f64 / 1e6,
                    fmt_ns(e.host.tolerance_ns)
                );
            }
            o.push_str("</table>\n");
        }
        o.push_str("<ul>\n");
        for r in &g.runs {
            let _ = writeln!(
                o,
                "<li><code>{}</code>: {}{}{}</li>",
                esc(&r.run),
                esc(&run_text(r)),
                r.capture_file
                    .as_ref()
                    .map(|f| format!("; captured in <code>{}</code>", esc(f)))
                    .unwrap_or_default(),
                r.mappings
                    .iter()
                    .map(|m| format!("<br>time mapping, {}", esc(m)))
                    .collect::<String>()
            );
        }
        o.push_str("</ul>\n<div class=\"figs\">\n");
        for r in &g.runs {
            for (guest, pcpu, s) in &r.strips {
                o.push_str(&super::html_svg::strip_svg(
                    &format!("{} · {guest} · pCPU {pcpu} around the largest event", r.run),
                    s,
                )?);
            }
        }
        o.push_str("</div>\n");
    }
    Ok(o)
}

/// JUnit properties of one run: `culprit.<run>` (what stole the most) and `smi.<run>`.
pub fn junit_properties(groups: &[CulpritGroup], run: &str) -> Vec<(String, String)> {
    let Some(r) = groups.iter().flat_map(|g| &g.runs).find(|r| r.run == run) else {
        return Vec::new();
    };
    let top = match &r.top {
        Some((c, n, ns)) => format!(
            "stolen {} of {}; most by {c} '{n}' {}",
            fmt_ns(r.stolen_ns),
            fmt_ns(r.window_ns),
            fmt_ns(*ns)
        ),
        None => format!("trace {}", status_text(&r.status)),
    };
    vec![
        (format!("culprit.{run}"), top),
        (format!("smi.{run}"), smi_text(&r.smi)),
    ]
}

#[cfg(test)]
#[path = "culprits_tests.rs"]
mod tests;
