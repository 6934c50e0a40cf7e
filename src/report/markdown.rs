//! `report.md`: the verdicts and the numbers in GitHub-flavoured Markdown, short enough for a
//! CI job summary (`$GITHUB_STEP_SUMMARY`, 1 MiB): no histograms, only tables of percentiles in
//! µs (exact to the ns), the budget verdict per layout, every run with its clock, failed runs
//! with their cause and evidence in their layout's section ([`super::failures`]) and the
//! largest events.

use super::{
    clocks_text, failures, max_bound_legend, us, us_pct, BudgetStatus, Exporter, Group, OutputFile,
    Report, ReportError,
};
use crate::histo::{Percentile, Quantile, Summary};

/// Writes `report.md`.
pub struct MarkdownExporter;

impl Exporter for MarkdownExporter {
    fn report_files(&self, report: &Report) -> Result<Vec<OutputFile>, ReportError> {
        Ok(vec![OutputFile {
            name: "report.md".to_string(),
            contents: render(report),
        }])
    }
}

/// Largest events listed per group.
const TOP_LISTED: usize = 3;

fn pct(s: &Summary, p: &Percentile) -> String {
    if s.samples == 0 {
        "–".to_string()
    } else {
        us_pct(p)
    }
}

fn spread(g: &Group, q: Quantile) -> String {
    if g.stats.samples == 0 {
        return "–".to_string();
    }
    match g.spread.of(q) {
        Some(r) => format!("{}–{}", us(r.min_ns), us(r.max_ns)),
        None if g.spread.repetitions < 2 => "1 rep".to_string(),
        None => "overflow".to_string(),
    }
}

fn stability(g: &Group) -> String {
    if failures::all_failed(g) {
        return format!(
            "❌ {} of {} runs failed",
            g.failed_runs.len(),
            failures::runs_read(g)
        );
    }
    if !g.failed_runs.is_empty() {
        return format!(
            "⚠️ unstable: {} of {} runs failed",
            g.failed_runs.len(),
            failures::runs_read(g)
        );
    }
    match g.stability.unstable {
        Some(true) => format!(
            "⚠️ unstable ({} of {})",
            g.stability.above, g.stability.repetitions
        ),
        _ => g.stability.label(),
    }
}

fn budget_cell(g: &Group) -> String {
    match g.budget.status {
        BudgetStatus::Exceeded => {
            let over: Vec<String> =
                g.budget
                    .checks
                    .iter()
                    .filter(|c| !c.held)
                    .map(|c| match c.exceeded_by_ns() {
                        Some(by) => format!("{} +{} µs", c.what, us(by)),
                        None => format!("{} overflow", c.what),
                    })
                    .chain((g.budget.failed_runs > 0).then(|| {
                        format!("{} of {} runs failed", g.budget.failed_runs, g.budget.runs)
                    }))
                    .collect();
            format!("❌ exceeded ({})", over.join(", "))
        }
        BudgetStatus::Held => "✅ held".to_string(),
        BudgetStatus::NoBudget => "–".to_string(),
        BudgetStatus::NoData => "⚠️ no data".to_string(),
    }
}

/// The `report.md` text.
pub fn render(report: &Report) -> String {
    let mut o = String::new();
    o.push_str(&format!("# pinlat report `{}`\n\n", report.run_id));
    if let Some(d) = &report.disclaimer {
        o.push_str(&format!("> ⚠️ **Not hardware latency:** {d}.\n\n"));
    }
    if let Some(w) = report.guest_warning.as_ref() {
        o.push_str(&format!("> ❗ **Not a realtime guest:** {w}.\n\n"));
    }
    if let Some(p) = &report.in_progress {
        o.push_str(&format!("> ⏳ **In progress:** {}.\n\n", p.statement));
    }
    let ok = report.runs.iter().filter(|r| r.outcome.ok).count();
    let accels: Vec<&str> = report.accels.iter().map(|a| a.as_str()).collect();
    o.push_str(&format!(
        "{} run(s) read, {ok} measured, {} failed, {} unreadable, {} missing · accel {} · latencies in µs\n\n",
        report.runs.len(),
        report.runs.len() - ok,
        report.skipped.len(),
        report.missing_runs.len(),
        accels.join(", ")
    ));
    if let Some(line) = report.variants_sentence() {
        o.push_str(&format!("{line}\n\n"));
    }
    if let Some(b) = &report.boots {
        o.push_str(&format!("{}.\n\n", b.sentence()));
    }
    if !report.libvirt.is_empty() {
        o.push_str(&format!(
            "Launched by {}: libvirt applied the placement, pinlat read it back and compared it with the plan.\n\n",
            report.libvirt.join("; ")
        ));
    }
    if let Some(h) = &report.host {
        o.push_str(&format!(
            "Host: kernel `{}`, CPU {}, online CPUs `{}`, isolated `{}`, {}\n\n",
            h.local.kernel_release,
            h.local.cpu_model,
            h.local.online_cpus,
            h.local.isolated_cpus,
            h.qemu_version
        ));
    }

    o.push_str(&format!("{}\n\n", report.guest_kernels.sentence()));

    if let Some(d) = &report.host_checks.doctor {
        o.push_str(&format!("{}\n\n", report.host_checks.sentence()));
        if !d.problems.is_empty() {
            o.push_str("| check | status | found | fix |\n|---|---|---|---|\n");
            for c in &d.problems {
                o.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    c.id,
                    c.status,
                    c.found.replace('|', "\\|"),
                    c.fix.replace('|', "\\|")
                ));
            }
            o.push('\n');
        }
    } else if !report.host_checks.is_empty() {
        o.push_str(&format!("{}\n\n", report.host_checks.sentence()));
    }

    if let Some(r) = &report.readiness {
        o.push_str(&r.markdown());
    }

    o.push_str("## Verdicts\n\n");
    for v in &report.verdicts {
        o.push_str(&format!("- {}\n", v.statement));
    }
    o.push('\n');

    o.push_str("## Budgets per layout\n\n");
    o.push_str("| layout | kind | budget | detail |\n|---|---|---|---|\n");
    for l in &report.layouts {
        let detail: Vec<String> = report
            .groups
            .iter()
            .filter(|g| g.layout == l.name && !g.budget.describe().is_empty())
            .map(|g| format!("{}: {}", g.name_in_layout(), g.budget.describe().join(", ")))
            .collect();
        let status = match l.budget {
            BudgetStatus::Exceeded => "❌ exceeded",
            BudgetStatus::Held => "✅ held",
            BudgetStatus::NoBudget => "no budget set",
            BudgetStatus::NoData => "⚠️ no data",
        };
        o.push_str(&format!(
            "| {} | {} | {status} | {} |\n",
            l.name,
            l.kind.as_str(),
            if detail.is_empty() {
                "–".to_string()
            } else {
                detail.join("<br>")
            }
        ));
    }
    o.push('\n');

    for v in &report.verdicts {
        o.push_str(&format!("## {} × {}\n\n", v.scenario, v.workload));
        let q = v.percentile.unwrap_or(Quantile::P9999);
        o.push_str(&format!("| rank | {} | reps | samples | min | p50 | p90 | p99 | p99.9 | p99.99 | max | {q} spread | stability | budget |\n", report.arm_column()));
        o.push_str("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|\n");
        let gs = report.groups_of(&v.scenario, v.workload);
        let rows = report.table_rows(v);
        let marked = rows.iter().any(|(_, g)| {
            g.stats.samples > 0 && Quantile::ALL.iter().any(|&q| g.stats.at(q).max_bound)
        });
        for (rank, g) in rows {
            let rank = rank.map_or("–".to_string(), |r| r.to_string());
            let s = &g.stats;
            let reps = if g.failed_runs.is_empty() {
                g.ok_runs.len().to_string()
            } else {
                format!("{} of {}", g.ok_runs.len(), failures::runs_read(g))
            };
            o.push_str(&format!(
                "| {rank} | {} | {reps} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                g.arm(),
                s.samples,
                if s.samples == 0 {
                    "–".to_string()
                } else {
                    us(s.min_ns)
                },
                pct(s, &s.p50_ns),
                pct(s, &s.p90_ns),
                pct(s, &s.p99_ns),
                pct(s, &s.p999_ns),
                pct(s, &s.p9999_ns),
                if s.samples == 0 {
                    "–".to_string()
                } else {
                    us(s.max_ns)
                },
                spread(g, q),
                stability(g),
                budget_cell(g)
            ));
        }
        o.push('\n');
        if marked {
            o.push_str(&format!("{}\n\n", max_bound_legend()));
        }
        o.push_str(&failures::render::markdown(report, v));
        let tops: Vec<String> = gs
            .iter()
            .filter(|g| !g.top.is_empty())
            .map(|g| {
                let ev: Vec<String> = g
                    .top
                    .iter()
                    .take(TOP_LISTED)
                    .map(|e| {
                        format!(
                            "{} µs ({} {} at +{} ms)",
                            us(e.latency_ns),
                            e.run,
                            e.vcpu,
                            e.offset_ns / 1_000_000
                        )
                    })
                    .collect();
                format!("- {}: {}\n", g.arm(), ev.join(", "))
            })
            .collect();
        if !tops.is_empty() {
            o.push_str("Largest events:\n\n");
            o.push_str(&tops.concat());
            o.push('\n');
        }
    }

    o.push_str(&super::culprits::markdown(&report.culprits));
    o.push_str(&super::thread_cpu::markdown(report));
    o.push_str(&super::housekeeping::markdown(report));
    o.push_str(&super::soak::markdown(report));
    o.push_str("## Runs\n\n| run | status | clock | samples | max |\n|---|---|---|---:|---:|\n");
    for r in &report.runs {
        o.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.name,
            if r.outcome.ok { "ok" } else { "❌ failed" },
            clocks_text(&r.clocks),
            r.stats.samples,
            if r.stats.samples == 0 {
                "–".to_string()
            } else {
                us(r.stats.max_ns)
            }
        ));
    }
    o.push('\n');

    let failed: Vec<_> = report.runs.iter().filter(|r| !r.outcome.ok).collect();
    if !failed.is_empty() || !report.skipped.is_empty() || !report.missing_runs.is_empty() {
        o.push_str("## Failed, unreadable and missing runs\n\n");
        for r in failed {
            o.push_str(&format!(
                "- ❌ `{}` failed in stage {}: {}\n",
                r.name,
                r.outcome.stage.map_or("?", |s| s.as_str()),
                r.outcome.reason.as_deref().unwrap_or("?")
            ));
        }
        for s in &report.skipped {
            o.push_str(&format!(
                "- ⚠️ `runs/{}` unreadable: {}\n",
                s.file, s.reason
            ));
        }
        for m in &report.missing_runs {
            o.push_str(&format!("- ⚠️ `{m}` planned but no run file\n"));
        }
        o.push('\n');
    }
    if !report.notes.is_empty() {
        o.push_str("## Notes\n\n");
        for n in &report.notes {
            o.push_str(&format!("- {n}\n"));
        }
        o.push('\n');
    }
    o.push_str(&format!("Significance: each verdict ranks at the highest percentile that is not max-bound in any layout (at least {} samples beyond it) and names it; a difference there counts only when it exceeds the spread (max − min) of that percentile between repetitions (with few repetitions the spread is a weak estimate of the noise: use 5 or more before acting on a difference); percentiles are by rank, HDR histogram values (3 significant digits), min and max are exact. Stability (Linaro's cyclicdeadline rule): a layout is unstable when half or more of its repetitions have a max above 1.1 × the smallest max of its repetitions.\n", crate::histo::MAX_BOUND_BEYOND));
    o
}
