//! The fleet's `junit.xml`: a suite `pinlat.fleet.hosts` with one case per host (a failed host
//! is a `<failure type="host-failed">` with the reason; a host whose runs failed or were
//! unreadable an `<error type="run-failed">`), then one suite per scenario × workload with one
//! case per host × layout (class `pinlat.<host>.<scenario>.<workload>`, name the layout): a
//! `<failure type="budget">` when over the host's budget or `type="guest-failed"` when a guest
//! did not survive, an `<error type="run-failed">` when a run failed on the host side. The
//! numbers, the outlier flags and the placement are `<property>`s; each suite carries the
//! layouts' judgements across hosts.

use super::outlier::Metric;
use super::view;
use super::{FleetHost, FleetReport, HostGroup};
use crate::config::WorkloadKind;
use crate::report::budget::BudgetStatus;
use crate::report::failures::causes_text;
use crate::report::{escape_xml as esc, us, us_opt};

fn prop(out: &mut String, indent: &str, name: &str, value: &str) {
    out.push_str(&format!(
        "{indent}<property name=\"{}\" value=\"{}\"/>\n",
        esc(name),
        esc(value)
    ));
}

fn is_failure(g: &HostGroup) -> bool {
    g.budget.status == BudgetStatus::Exceeded || g.failures.iter().any(|c| c.guest)
}

fn is_error(g: &HostGroup) -> bool {
    g.failures.iter().any(|c| !c.guest) || g.budget.status == BudgetStatus::NoData
}

fn host_case(out: &mut String, h: &FleetHost) {
    out.push_str(&format!(
        "    <testcase classname=\"pinlat.fleet.hosts\" name=\"{}\">\n      <properties>\n",
        esc(&h.label)
    ));
    let p = "        ";
    prop(out, p, "dir", &h.dir);
    prop(out, p, "run_id", &h.run_id);
    for (name, value) in view::FACT_HEADERS.iter().zip(view::facts(h)) {
        prop(out, p, name, &value);
    }
    prop(out, p, "runs", &view::runs_text(h));
    out.push_str("      </properties>\n");
    if h.failed() {
        out.push_str(&format!(
            "      <error type=\"run-failed\" message=\"{}\"/>\n",
            esc(&view::runs_text(h))
        ));
    }
    out.push_str("    </testcase>\n");
}

fn group_case(
    out: &mut String,
    r: &FleetReport,
    h: &FleetHost,
    g: &HostGroup,
    (scenario, workload): (&str, WorkloadKind),
) {
    out.push_str(&format!(
        "    <testcase classname=\"{}\" name=\"{}\">\n      <properties>\n",
        esc(&format!("pinlat.{}.{scenario}.{workload}", h.label)),
        esc(&g.layout)
    ));
    let p = "        ";
    prop(out, p, "host", &h.label);
    prop(out, p, "repetitions", &g.ok_runs.to_string());
    prop(out, p, "samples", &g.samples.to_string());
    if g.samples > 0 {
        prop(out, p, "p99_9_us", &us_opt(g.p999.value_ns));
        prop(out, p, "max_us", &us(g.max_ns));
    }
    prop(out, p, "budget", g.budget.status.as_str());
    prop(out, p, "accel", &view::facts(h)[5]);
    if !r.placed_as_fleet(h, &g.layout) {
        if let Some(l) = h.layout(&g.layout) {
            prop(out, p, "placement_differs", &l.placement);
        }
    }
    for m in Metric::ALL {
        if let Some(o) = view::outlier(r, &h.label, &g.layout, scenario, workload, m) {
            prop(out, p, &format!("outlier.{}", m.label()), &o.sentence());
        }
    }
    out.push_str("      </properties>\n");
    if is_failure(g) {
        let guest: Vec<_> = g.failures.iter().filter(|c| c.guest).cloned().collect();
        let (kind, msg) = if guest.is_empty() {
            let mut over = g.budget.exceeded();
            over.extend(g.budget.failed_text());
            ("budget", over.join("; "))
        } else {
            (
                "guest-failed",
                format!(
                    "{} of {} runs failed: {}",
                    guest.iter().map(|c| c.runs.len()).sum::<usize>(),
                    g.ok_runs + g.failed_runs,
                    causes_text(&guest)
                ),
            )
        };
        out.push_str(&format!(
            "      <failure type=\"{kind}\" message=\"{}\">{}</failure>\n",
            esc(&msg),
            esc(&g.budget.describe().join("\n"))
        ));
    }
    if is_error(g) {
        let host: Vec<_> = g.failures.iter().filter(|c| !c.guest).cloned().collect();
        let msg = if host.is_empty() {
            "no run measured: the budget could not be checked".to_string()
        } else {
            format!("runs failed on the host: {}", causes_text(&host))
        };
        out.push_str(&format!(
            "      <error type=\"run-failed\" message=\"{}\"/>\n",
            esc(&msg)
        ));
    }
    out.push_str("    </testcase>\n");
}

/// The `junit.xml` text.
pub fn render(r: &FleetReport) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    if let Some(t) = r.tcg_note() {
        out.push_str(&format!("<!-- NOTE: {} -->\n", esc(&t)));
    }
    let cases: Vec<(&FleetHost, &HostGroup)> = r
        .cells
        .iter()
        .flat_map(|(s, w)| {
            r.hosts.iter().flat_map(move |h| {
                h.groups
                    .iter()
                    .filter(move |g| &g.scenario == s && g.workload == *w)
                    .map(move |g| (h, g))
            })
        })
        .collect();
    let hosts_failing = r.hosts.iter().filter(|h| h.failed()).count();
    out.push_str(&format!(
        "<testsuites name=\"pinlat fleet\" tests=\"{}\" failures=\"{}\" errors=\"{}\">\n",
        r.hosts.len() + r.failed_hosts.len() + cases.len(),
        r.failed_hosts.len() + cases.iter().filter(|(_, g)| is_failure(g)).count(),
        hosts_failing + cases.iter().filter(|(_, g)| is_error(g)).count()
    ));
    out.push_str(&format!(
        "  <testsuite name=\"pinlat.fleet.hosts\" tests=\"{}\" failures=\"{}\" errors=\"{hosts_failing}\">\n",
        r.hosts.len() + r.failed_hosts.len(),
        r.failed_hosts.len()
    ));
    out.push_str("    <properties>\n");
    prop(&mut out, "      ", "summary", &view::summary(r));
    if let Some(t) = r.tcg_note() {
        prop(&mut out, "      ", "disclaimer", &t);
    }
    for d in &r.differences {
        prop(&mut out, "      ", "not_comparable", &d.text);
    }
    out.push_str("    </properties>\n");
    for h in &r.hosts {
        host_case(&mut out, h);
    }
    for f in &r.failed_hosts {
        out.push_str(&format!(
            "    <testcase classname=\"pinlat.fleet.hosts\" name=\"{}\">\n      <failure type=\"host-failed\" message=\"{}\"/>\n    </testcase>\n",
            esc(&f.label),
            esc(&f.reason)
        ));
    }
    out.push_str("  </testsuite>\n");
    for (scenario, workload) in &r.cells {
        let mine: Vec<&(&FleetHost, &HostGroup)> = cases
            .iter()
            .filter(|(_, g)| &g.scenario == scenario && g.workload == *workload)
            .collect();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\">\n    <properties>\n",
            esc(&format!("pinlat.fleet.{scenario}.{workload}")),
            mine.len(),
            mine.iter().filter(|(_, g)| is_failure(g)).count(),
            mine.iter().filter(|(_, g)| is_error(g)).count()
        ));
        for j in r
            .judgements
            .iter()
            .filter(|j| &j.scenario == scenario && j.workload == *workload)
        {
            prop(
                &mut out,
                "      ",
                &format!("judgement.{}.{}", j.layout, j.against),
                &j.statement,
            );
        }
        out.push_str("    </properties>\n");
        for (h, g) in mine {
            group_case(&mut out, r, h, g, (scenario, *workload));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
