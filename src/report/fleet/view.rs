//! The words and marks every fleet output shows for the same thing, so Markdown, HTML and
//! JUnit say one thing: a host × layout's status, a host × layout × scenario × workload's
//! numbers with their marks, and a host's facts.

use super::outlier::{Direction, Metric, Outlier};
use super::{FailedBy, FailedHost, FleetHost, FleetReport, HostGroup, Source};
use crate::config::WorkloadKind;
use crate::report::budget::BudgetStatus;
use crate::report::failures::causes_text;
use crate::report::{us, us_opt, MAX_BOUND_MARK};

/// The mark of a layout placed otherwise than on most hosts.
pub const OTHER_PLACEMENT_MARK: &str = "≠";

/// How a host × layout ended, in a word, with a class for colour (`good`, `bad`, `warn`, ``).
pub fn layout_status(r: &FleetReport, h: &FleetHost, layout: &str) -> (String, &'static str) {
    let Some(l) = h.layout(layout) else {
        return ("–".into(), "");
    };
    let groups: Vec<&HostGroup> = h.groups.iter().filter(|g| g.layout == layout).collect();
    let failed = groups.iter().map(|g| g.failed_runs).sum::<usize>();
    let read = groups
        .iter()
        .map(|g| g.failed_runs + g.ok_runs)
        .sum::<usize>();
    let (mut text, class) = if failed > 0 && failed == read {
        (format!("failed ({failed} of {read} runs)"), "bad")
    } else {
        match l.budget {
            BudgetStatus::Exceeded => ("exceeded".into(), "bad"),
            BudgetStatus::Held => ("held".into(), "good"),
            BudgetStatus::NoBudget => ("measured, no budget".into(), ""),
            BudgetStatus::NoData => ("no data".into(), "warn"),
        }
    };
    if failed > 0 && failed < read {
        text.push_str(&format!(", {failed} of {read} runs failed"));
    }
    if !r.placed_as_fleet(h, layout) {
        text.push_str(&format!(" {OTHER_PLACEMENT_MARK}"));
    }
    let outliers: Vec<&Outlier> = r
        .outliers
        .iter()
        .filter(|o| o.host == h.label && o.layout == layout)
        .collect();
    for (d, mark) in [(Direction::Above, "▲"), (Direction::Below, "▼")] {
        let n = outliers.iter().filter(|o| o.direction == d).count();
        if n > 0 {
            text.push_str(&format!(" {mark}{n}"));
        }
    }
    (text, class)
}

/// The outlier of (host, layout, scenario, workload, metric), if it is one.
pub fn outlier<'a>(
    r: &'a FleetReport,
    host: &str,
    layout: &str,
    scenario: &str,
    workload: WorkloadKind,
    metric: Metric,
) -> Option<&'a Outlier> {
    r.outliers.iter().find(|o| {
        o.host == host
            && o.layout == layout
            && o.scenario == scenario
            && o.workload == workload
            && o.metric == metric
    })
}

/// `▲` above the fleet, `▼` below.
pub fn direction_mark(d: Direction) -> &'static str {
    match d {
        Direction::Above => "▲",
        Direction::Below => "▼",
    }
}

/// One value of a cell: the number in µs with its marks.
pub struct Value {
    /// `12.345`, `overflow`, with `†` when max-bound.
    pub text: String,
    /// Beyond the fleet's spread.
    pub outlier: Option<Direction>,
}

/// What a host × layout × scenario × workload cell shows.
pub enum Cell {
    /// The host did not run it.
    NotRun,
    /// Every run failed: the cause.
    Failed(String),
    /// Runs that measured nothing, none failed.
    NoSamples,
    /// p99.9 and max, with what to know beside them (`≠`, `1 of 2 runs failed`).
    Measured {
        /// p99.9.
        p999: Value,
        /// max.
        max: Value,
        /// Notes in a few words.
        notes: Vec<String>,
    },
}

/// The cell of (host, layout, scenario, workload).
pub fn cell(
    r: &FleetReport,
    h: &FleetHost,
    layout: &str,
    scenario: &str,
    workload: WorkloadKind,
) -> Cell {
    let Some(g) = h.group(layout, scenario, workload) else {
        return Cell::NotRun;
    };
    if g.samples == 0 {
        return if g.failed_runs > 0 {
            Cell::Failed(causes_text(&g.failures))
        } else {
            Cell::NoSamples
        };
    }
    let mark = |m| outlier(r, &h.label, layout, scenario, workload, m).map(|o| o.direction);
    let mut notes = Vec::new();
    if !r.placed_as_fleet(h, layout) {
        notes.push(format!("{OTHER_PLACEMENT_MARK} placement"));
    }
    if g.failed_runs > 0 {
        notes.push(format!(
            "{} of {} runs failed",
            g.failed_runs,
            g.failed_runs + g.ok_runs
        ));
    }
    if g.budget.status == BudgetStatus::Exceeded {
        notes.push("over budget".into());
    }
    Cell::Measured {
        p999: Value {
            text: format!(
                "{}{}",
                us_opt(g.p999.value_ns),
                if g.p999.max_bound { MAX_BOUND_MARK } else { "" }
            ),
            outlier: mark(Metric::P999),
        },
        max: Value {
            text: us(g.max_ns),
            outlier: mark(Metric::Max),
        },
        notes,
    }
}

/// A host's facts in table order: kernel, PREEMPT_RT, CPU model, isolcpus, nohz_full, accel,
/// doctor, source.
pub fn facts(h: &FleetHost) -> [String; 8] {
    let unknown = || "unknown".to_string();
    let f = h.facts.as_ref();
    let list = |s: &crate::cpuset::CpuSet| {
        if s.is_empty() {
            "none".to_string()
        } else {
            s.to_string()
        }
    };
    let accel = {
        let a: Vec<&str> = h.accels.iter().map(|a| a.as_str()).collect();
        let mut t = a.join(", ");
        if h.is_tcg() {
            t.push_str(" (TCG: not hardware latency)");
        }
        t
    };
    let doctor = match &h.checks.doctor {
        Some(d) => format!("{} failed, {} warned, {} passed", d.fail, d.warn, d.pass),
        None => "not run".into(),
    };
    let source = match &h.source {
        Source::ReportJson => "report.json".to_string(),
        Source::Runs { why } => format!("runs/ ({why})"),
    };
    [
        f.map_or_else(unknown, |f| f.local.kernel_release.clone()),
        f.map_or_else(unknown, |f| {
            if f.local.preempt_rt { "yes" } else { "no" }.to_string()
        }),
        f.map_or_else(unknown, |f| f.local.cpu_model.clone()),
        f.map_or_else(unknown, |f| list(&f.local.isolated_cpus)),
        f.map_or_else(unknown, |f| list(&f.local.nohz_full_cpus)),
        accel,
        doctor,
        source,
    ]
}

/// The headers of [`facts`].
pub const FACT_HEADERS: [&str; 8] = [
    "kernel",
    "PREEMPT_RT",
    "CPU",
    "isolcpus",
    "nohz_full",
    "accel",
    "doctor",
    "read from",
];

/// `24 measured`, `23 of 24 measured, 1 failed, 1 unreadable`.
pub fn runs_text(h: &FleetHost) -> String {
    let c = &h.runs;
    let mut s = if c.ok == c.read {
        format!("{} measured", c.ok)
    } else {
        format!("{} of {} measured, {} failed", c.ok, c.read, c.failed)
    };
    if c.skipped > 0 {
        s.push_str(&format!(", {} unreadable", c.skipped));
    }
    if c.missing > 0 {
        s.push_str(&format!(", {} missing", c.missing));
    }
    if let Some(why) = &h.reported_failed {
        s.push_str(&format!("; given as failed: {why}"));
    }
    s
}

/// ` (--failed-host)` after the reason of a host given as failed, else nothing.
pub fn failed_by(f: &FailedHost) -> &'static str {
    match f.by {
        FailedBy::Option => " (--failed-host)",
        FailedBy::Directory => "",
    }
}

/// The header sentence: hosts merged and failed.
pub fn summary(r: &FleetReport) -> String {
    let mut s = format!("{} host(s) merged", r.hosts.len());
    if !r.failed_hosts.is_empty() {
        let names: Vec<&str> = r.failed_hosts.iter().map(|f| f.label.as_str()).collect();
        s.push_str(&format!(
            ", {} failed ({})",
            r.failed_hosts.len(),
            names.join(", ")
        ));
    }
    let exceeded = r.hosts.iter().filter(|h| h.budget_exceeded()).count();
    let failed = r.hosts.iter().filter(|h| h.failed()).count();
    s.push_str(&format!(
        "; a budget exceeded on {exceeded}, a run failed or unreadable on {failed}; latencies in µs (p99.9 / max, exact to the ns)"
    ));
    s
}

/// The judgement rule, for every output.
pub const JUDGE_RULE: &str = "A layout against its baseline counts each host's own verdict: won or lost only where the difference at the host's verdict percentile exceeds the spread of that percentile between the host's repetitions; \"of N hosts\" counts the hosts that ran both layouts with the fleet's placement.";
