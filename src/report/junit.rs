//! `junit.xml` for CI test reporting: one `<testsuite>` per (scenario, workload), one `<testcase>`
//! per arm in it (the layout, or `layout/variant` with variants, and a `variant` property). A case
//! fails when a run's guest failed (`<failure type="guest-failed">`: a layout that kills its guest
//! has failed, [`super::failures`]; the message is the count and the cause, the text each cause's
//! sentence and evidence) or when the layout is over its budget (`<failure type="budget">`), and
//! errors (`<error type="run-failed">`) when a run failed on the host side. The numbers are
//! `<property>`s (µs, exact to the ns). `max_bound` lists the percentiles with fewer than 10
//! samples beyond them, each suite's `verdict_percentile` the one its verdict ranked at,
//! `stability` whether the layout's maxima agree across repetitions (`stable`, `unstable`, `1
//! rep`), `clock` the group's clock sources and `clock.<run>` each run's clock. Schema: the common
//! JUnit XML as Jenkins, GitLab and GitHub test reporters read it.

use super::clocks_text;
use super::failures::{self, CauseCount};
use super::verdict::clocks_label;
use super::{
    escape_xml as esc, us_opt, BudgetStatus, Exporter, Group, OutputFile, Report, ReportError,
};
use crate::histo::Quantile;

/// Writes `junit.xml`.
pub struct JunitExporter;

impl Exporter for JunitExporter {
    fn report_files(&self, report: &Report) -> Result<Vec<OutputFile>, ReportError> {
        Ok(vec![OutputFile {
            name: "junit.xml".to_string(),
            contents: render(report),
        }])
    }
}

/// A group's failure causes on the guest's side (`true`) or the host's (`false`).
fn causes(g: &Group, guest: bool) -> Vec<CauseCount> {
    g.failures
        .iter()
        .filter(|c| c.guest == guest)
        .cloned()
        .collect()
}

fn is_failure(g: &Group) -> bool {
    g.budget.status == BudgetStatus::Exceeded || g.failures.iter().any(|c| c.guest)
}

fn is_error(g: &Group) -> bool {
    g.failures.iter().any(|c| !c.guest) || g.budget.status == BudgetStatus::NoData
}

/// `2 of 2 runs failed: guest kernel panic during boot — timer check failed`.
fn failed_message(g: &Group, causes: &[CauseCount]) -> String {
    format!(
        "{} of {} runs failed: {}",
        causes.iter().map(|c| c.runs.len()).sum::<usize>(),
        failures::runs_read(g),
        failures::causes_text(causes)
    )
}

fn prop(out: &mut String, indent: &str, name: &str, value: &str) {
    out.push_str(&format!(
        "{indent}<property name=\"{}\" value=\"{}\"/>\n",
        esc(name),
        esc(value)
    ));
}

/// Seconds with 3 decimals of a ns duration (JUnit's `time`).
fn secs(ns: u64) -> String {
    format!("{}.{:03}", ns / 1_000_000_000, (ns / 1_000_000) % 1000)
}

/// The `junit.xml` text.
pub fn render(report: &Report) -> String {
    let gs = &report.groups;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    if let Some(d) = &report.disclaimer {
        out.push_str(&format!("<!-- NOTE: {} -->\n", esc(d)));
    }
    if let Some(w) = report.guest_warning.as_ref() {
        out.push_str(&format!("<!-- WARNING: {} -->\n", esc(w)));
    }
    if let Some(p) = &report.in_progress {
        out.push_str(&format!("<!-- IN PROGRESS: {} -->\n", esc(&p.statement)));
    }
    let file_problems = report.skipped.len() + report.missing_runs.len();
    // The totals are the sum of the suites', the run-files suite included.
    out.push_str(&format!(
        "<testsuites name=\"pinlat {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\">\n",
        esc(&report.run_id),
        gs.len() + file_problems,
        gs.iter().filter(|g| is_failure(g)).count(),
        gs.iter().filter(|g| is_error(g)).count() + file_problems
    ));
    for v in &report.verdicts {
        let cases = report.groups_of(&v.scenario, v.workload);
        let suite = format!("pinlat.{}.{}", v.scenario, v.workload);
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{}\">\n",
            esc(&suite),
            cases.len(),
            cases.iter().filter(|g| is_failure(g)).count(),
            cases.iter().filter(|g| is_error(g)).count(),
            secs(cases.iter().map(|g| g.stats.duration_ns).sum())
        ));
        out.push_str("    <properties>\n");
        prop(&mut out, "      ", "run_id", &report.run_id);
        let accels: Vec<&str> = report.accels.iter().map(|a| a.as_str()).collect();
        prop(&mut out, "      ", "accel", &accels.join(","));
        if let Some(d) = &report.disclaimer {
            prop(&mut out, "      ", "disclaimer", d);
        }
        prop(
            &mut out,
            "      ",
            "guest_preempt_rt",
            report.guest_kernels.preempt_rt_word(),
        );
        if let Some(w) = report.guest_warning.as_ref() {
            prop(&mut out, "      ", "guest_warning", w);
        }
        if let Some(r) = &report.readiness {
            prop(&mut out, "      ", "readiness", r.verdict.label());
            prop(&mut out, "      ", "readiness_statement", &r.statement);
        }
        prop(&mut out, "      ", "verdict", &v.statement);
        prop(
            &mut out,
            "      ",
            "verdict_percentile",
            v.percentile.map_or("none", |q| q.label()),
        );
        out.push_str("    </properties>\n");
        for g in cases {
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\">\n",
                esc(&suite),
                esc(&g.arm()),
                secs(g.stats.duration_ns)
            ));
            out.push_str("      <properties>\n");
            let s = &g.stats;
            let p = "        ";
            prop(&mut out, p, "layout_kind", g.layout_kind.as_str());
            if let Some(v) = &g.variant {
                prop(&mut out, p, "variant", v);
            }
            prop(&mut out, p, "repetitions", &g.ok_runs.len().to_string());
            prop(&mut out, p, "samples", &s.samples.to_string());
            prop(&mut out, p, "overflow", &s.overflow.to_string());
            prop(&mut out, p, "min_us", &super::us(s.min_ns));
            prop(&mut out, p, "p50_us", &us_opt(s.p50_ns.value_ns));
            prop(&mut out, p, "p90_us", &us_opt(s.p90_ns.value_ns));
            prop(&mut out, p, "p99_us", &us_opt(s.p99_ns.value_ns));
            prop(&mut out, p, "p99_9_us", &us_opt(s.p999_ns.value_ns));
            prop(&mut out, p, "p99_99_us", &us_opt(s.p9999_ns.value_ns));
            prop(&mut out, p, "max_us", &super::us(s.max_ns));
            prop(&mut out, p, "mean_us", &super::us(s.mean_ns));
            prop(&mut out, p, "stddev_us", &super::us(s.stddev_ns));
            let bound: Vec<&str> = Quantile::ALL
                .into_iter()
                .filter(|&q| s.samples > 0 && s.at(q).max_bound)
                .map(Quantile::label)
                .collect();
            prop(
                &mut out,
                p,
                "max_bound",
                &if bound.is_empty() {
                    "none".to_string()
                } else {
                    bound.join(",")
                },
            );
            if let Some(r) = g.spread.p9999 {
                prop(&mut out, p, "p99_99_spread_us", &super::us(r.width_ns()));
            }
            prop(&mut out, p, "stability", &g.stability.label());
            prop(&mut out, p, "clock", &clocks_label(&g.clocks));
            for run in g.ok_runs.iter().chain(&g.failed_runs) {
                if let Some(x) = report.runs.iter().find(|x| &x.name == run) {
                    prop(
                        &mut out,
                        p,
                        &format!("clock.{run}"),
                        &clocks_text(&x.clocks),
                    );
                }
            }
            for run in g.ok_runs.iter().chain(&g.failed_runs) {
                for (k, v) in super::culprits::junit_properties(&report.culprits, run) {
                    prop(&mut out, p, &k, &v);
                }
            }
            prop(&mut out, p, "budget", g.budget.status.as_str());
            for (name, value) in super::housekeeping::junit_properties(report, g) {
                prop(&mut out, p, &name, &value);
            }
            out.push_str("      </properties>\n");
            if is_failure(g) {
                // One <failure>: the guest's failed runs first, then the budget.
                let guest = causes(g, true);
                let over = g.budget.exceeded();
                let (kind, msg, mut text) = if guest.is_empty() {
                    ("budget", over.join("; "), Vec::new())
                } else {
                    (
                        "guest-failed",
                        failed_message(g, &guest),
                        failures::render::junit_lines(report, &guest),
                    )
                };
                text.extend(g.budget.describe());
                out.push_str(&format!(
                    "      <failure type=\"{kind}\" message=\"{}\">{}</failure>\n",
                    esc(&msg),
                    esc(&text.join("\n"))
                ));
            }
            if is_error(g) {
                let host = causes(g, false);
                let mut lines = Vec::new();
                if !host.is_empty() {
                    lines.push(failed_message(g, &host));
                    lines.extend(failures::render::junit_lines(report, &host));
                }
                if g.budget.status == BudgetStatus::NoData {
                    lines.push("no run measured: the budget could not be checked".to_string());
                }
                out.push_str(&format!(
                    "      <error type=\"run-failed\" message=\"{}\">{}</error>\n",
                    esc(lines.first().map(String::as_str).unwrap_or("")),
                    esc(&lines.join("\n"))
                ));
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    if file_problems > 0 {
        out.push_str(&format!(
            "  <testsuite name=\"pinlat.run-files\" tests=\"{file_problems}\" failures=\"0\" errors=\"{file_problems}\">\n"
        ));
        for s in &report.skipped {
            out.push_str(&format!(
                "    <testcase classname=\"pinlat.run-files\" name=\"{}\">\n      <error type=\"unreadable\" message=\"{}\"/>\n    </testcase>\n",
                esc(&s.file),
                esc(&s.reason)
            ));
        }
        for m in &report.missing_runs {
            out.push_str(&format!(
                "    <testcase classname=\"pinlat.run-files\" name=\"{}\">\n      <error type=\"missing\" message=\"planned in plan.json, no run file\"/>\n    </testcase>\n",
                esc(m)
            ));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
