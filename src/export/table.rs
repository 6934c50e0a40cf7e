//! The readable placement table printed by `pinlat check`: per layout, per guest and thread
//! kind, the host CPU list, policy and priority.

use std::fmt::Write;

use crate::config::Config;
use crate::plan::{Plan, Sched};

fn dash(s: String) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s
    }
}

/// Renders the table.
pub fn render(plan: &Plan, config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "host: online {}, usable {}, housekeeping {}",
        dash(plan.online_cpus.to_string()),
        dash(plan.usable_cpus.to_string()),
        dash(plan.housekeeping_cpus.to_string()),
    );
    for l in &plan.layouts {
        let _ = writeln!(out);
        let mut head = format!("layout {} ({})", l.name, l.kind);
        if let Some(ps) = &l.pinset {
            let _ = write!(
                head,
                ": emulator pin set {}, overcommit ratio {}",
                ps.cpus, ps.overcommit_ratio
            );
        }
        let _ = writeln!(out, "{head}");
        let mut rows: Vec<[String; 4]> = vec![[
            "guest".into(),
            "thread".into(),
            "cpus".into(),
            "policy".into(),
        ]];
        for (g, gc) in l.guests.iter().zip(&config.guests) {
            for v in &g.vcpus {
                let kind = if v.realtime {
                    format!("vcpu{} (rt)", v.vcpu)
                } else {
                    format!("vcpu{}", v.vcpu)
                };
                rows.push([
                    g.guest.clone(),
                    kind,
                    v.cpus.to_string(),
                    v.sched.to_string(),
                ]);
            }
            rows.push([
                g.guest.clone(),
                "emulator".into(),
                g.emulator_cpus.to_string(),
                Sched::OTHER.to_string(),
            ]);
            if gc.iothreads > 0 {
                rows.push([
                    g.guest.clone(),
                    format!("iothreads x{}", gc.iothreads),
                    g.iothread_cpus.to_string(),
                    Sched::OTHER.to_string(),
                ]);
            }
        }
        let widths: Vec<usize> = (0..4)
            .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
            .collect();
        for r in &rows {
            let line = format!(
                "  {:w0$}  {:w1$}  {:w2$}  {}",
                r[0],
                r[1],
                r[2],
                r[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    out
}
