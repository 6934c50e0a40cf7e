//! The fleet's `report.md`: short enough for a CI job summary. Failed hosts first, then the
//! hosts × layouts matrix of budget verdicts, the layouts judged across hosts, one table of
//! p99.9 / max per scenario × workload with its outliers, the hosts' facts side by side, what
//! is not comparable, and the rules.

use super::outlier::rule_text;
use super::view::{self, Cell, Value};
use super::FleetReport;
use crate::report::failures::render::cell as md;
use crate::report::max_bound_legend;

fn value(v: &Value) -> String {
    match v.outlier {
        Some(d) => format!("**{}** {}", v.text, view::direction_mark(d)),
        None => v.text.clone(),
    }
}

/// The `report.md` text.
pub fn render(r: &FleetReport) -> String {
    let mut o = String::from("# pinlat fleet report\n\n");
    if let Some(t) = r.tcg_note() {
        o.push_str(&format!("> ⚠️ **Not hardware latency:** {}.\n\n", md(&t)));
    }
    o.push_str(&format!("{}.\n\n", view::summary(r)));

    if !r.failed_hosts.is_empty() {
        o.push_str("## Failed hosts\n\n| host | directory | why |\n|---|---|---|\n");
        for f in &r.failed_hosts {
            o.push_str(&format!(
                "| ❌ {} | {} | {}{} |\n",
                md(&f.label),
                f.dir.as_deref().map_or("–".into(), md),
                md(&f.reason),
                view::failed_by(f)
            ));
        }
        o.push('\n');
    }

    o.push_str("## Hosts × layouts\n\n");
    o.push_str("Each host's budget verdict per layout, against its own budgets; ▲n/▼n: n values of the layout above/below the fleet's spread; ≠: placed otherwise than on most hosts.\n\n");
    o.push_str("| host |");
    for l in &r.layouts {
        o.push_str(&format!(" {} |", md(l)));
    }
    o.push_str(" runs |\n|---|");
    o.push_str(&"---|".repeat(r.layouts.len() + 1));
    o.push('\n');
    for h in &r.hosts {
        o.push_str(&format!("| {} |", md(&h.label)));
        for l in &r.layouts {
            let (text, class) = view::layout_status(r, h, l);
            let icon = match class {
                "good" => "✅ ",
                "bad" => "❌ ",
                "warn" => "⚠️ ",
                _ => "",
            };
            o.push_str(&format!(" {icon}{} |", md(&text)));
        }
        o.push_str(&format!(" {} |\n", md(&view::runs_text(h))));
    }
    for f in &r.failed_hosts {
        o.push_str(&format!("| ❌ {} |", md(&f.label)));
        o.push_str(&" host failed |".repeat(r.layouts.len()));
        o.push_str(&format!(" {} |\n", md(&f.reason)));
    }
    o.push('\n');

    if !r.judgements.is_empty() {
        o.push_str("## Layouts across hosts\n\n");
        for j in &r.judgements {
            o.push_str(&format!("- {}\n", md(&j.statement)));
        }
        o.push('\n');
    }

    let mut marked = false;
    for (scenario, workload) in &r.cells {
        o.push_str(&format!("## {scenario} × {workload}\n\n"));
        o.push_str("p99.9 / max, µs; **bold** ▲/▼ beyond the fleet's spread.\n\n| host |");
        for l in &r.layouts {
            o.push_str(&format!(" {} |", md(l)));
        }
        o.push_str("\n|---|");
        o.push_str(&"---:|".repeat(r.layouts.len()));
        o.push('\n');
        for h in &r.hosts {
            o.push_str(&format!("| {} |", md(&h.label)));
            for l in &r.layouts {
                let text = match view::cell(r, h, l, scenario, *workload) {
                    Cell::NotRun => "–".to_string(),
                    Cell::NoSamples => "no samples".to_string(),
                    Cell::Failed(why) => format!("❌ failed: {}", md(&why)),
                    Cell::Measured { p999, max, notes } => {
                        marked |= p999.text.ends_with(crate::report::MAX_BOUND_MARK);
                        let mut t = format!("{} / {}", value(&p999), value(&max));
                        if !notes.is_empty() {
                            t.push_str(&format!(" ({})", notes.join(", ")));
                        }
                        t
                    }
                };
                o.push_str(&format!(" {text} |"));
            }
            o.push('\n');
        }
        o.push('\n');
        let outliers: Vec<String> = r
            .outliers
            .iter()
            .filter(|x| &x.scenario == scenario && x.workload == *workload)
            .map(|x| {
                format!(
                    "- {} {}\n",
                    view::direction_mark(x.direction),
                    md(&x.sentence())
                )
            })
            .collect();
        if !outliers.is_empty() {
            o.push_str("Outliers:\n\n");
            o.push_str(&outliers.concat());
            o.push('\n');
        }
    }
    if marked {
        o.push_str(&format!("{}\n\n", max_bound_legend()));
    }

    o.push_str("## Host facts\n\n| host |");
    for hd in view::FACT_HEADERS {
        o.push_str(&format!(" {hd} |"));
    }
    o.push_str("\n|---|");
    o.push_str(&"---|".repeat(view::FACT_HEADERS.len()));
    o.push('\n');
    for h in &r.hosts {
        o.push_str(&format!("| {} |", md(&h.label)));
        for f in view::facts(h) {
            o.push_str(&format!(" {} |", md(&f)));
        }
        o.push('\n');
    }
    o.push('\n');
    let renamed: Vec<String> = r
        .hosts
        .iter()
        .filter(|h| h.label_source == super::LabelSource::Disambiguated)
        .map(|h| format!("`{}` ({})", md(&h.label), md(&h.dir)))
        .collect();
    if !renamed.is_empty() {
        o.push_str(&format!(
            "Hosts that share a hostname are labelled by hostname and directory: {}.\n\n",
            renamed.join(", ")
        ));
    }

    if !r.differences.is_empty() {
        o.push_str("## Not comparable\n\n");
        for d in &r.differences {
            o.push_str(&format!("- {}\n", md(&d.text)));
        }
        o.push('\n');
    }

    o.push_str("## How hosts are judged\n\n");
    o.push_str(&format!("- {}\n- {}\n", rule_text(), view::JUDGE_RULE));
    o
}
