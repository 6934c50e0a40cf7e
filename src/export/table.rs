//! The readable placement table printed by `pinlat check`: per layout, per guest and thread
//! kind, the host CPU list, policy and priority; then the variants, if any, and the matrix the
//! config runs (layout × variant × scenario × workload × repetition) with its number of runs.

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
    let _ = writeln!(out);
    out.push_str(&matrix(plan, config));
    out
}

/// `matrix: 3 layout(s) × 2 variant(s) × … = N runs`, after the variants and their knobs, one a
/// line, the first named the baseline of the report's comparisons.
fn matrix(plan: &Plan, config: &Config) -> String {
    let mut out = String::new();
    for (i, v) in config.variants.iter().enumerate() {
        let knobs = v.knobs();
        let _ = writeln!(
            out,
            "variant {}{}: {}",
            v.name,
            if i == 0 {
                " (baseline: the report compares each variant with it)"
            } else {
                ""
            },
            if knobs.is_empty() {
                "no knob (QEMU, the guest and the host as pinlat starts them)".to_string()
            } else {
                knobs.join(", ")
            }
        );
    }
    let variants = config.variant_axis().len();
    let runs = plan.layouts.len()
        * variants
        * config.scenarios.len()
        * config.workloads.len()
        * config.run.repetitions as usize;
    let variant_factor = if config.variants.is_empty() {
        String::new()
    } else {
        format!(" × {variants} variant(s)")
    };
    let _ = writeln!(
        out,
        "matrix: {} layout(s){variant_factor} × {} scenario(s) × {} workload(s) × {} repetition(s) = {runs} run(s)",
        plan.layouts.len(),
        config.scenarios.len(),
        config.workloads.len(),
        config.run.repetitions
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpuset::CpuSet;

    fn table(variants: &str) -> String {
        let toml = format!(
            "[host]\ncpus = \"0-5\"\n[run]\nrepetitions = 3\n\
             [[guests]]\nname = \"rt\"\nvcpus = 3\nrealtime_mask = \"^0\"\n\
             [[layouts]]\nkind = \"share\"\n[[layouts]]\nkind = \"vcpu0\"\n\
             [[scenarios]]\nkind = \"idle\"\n\
             [[workloads]]\nkind = \"busy-poll\"\n[[workloads]]\nkind = \"timer\"\n{variants}"
        );
        let config = Config::from_toml_str(&toml).unwrap();
        let plan = Plan::new(&config, &CpuSet::parse("0-5").unwrap()).unwrap();
        render(&plan, &config)
    }

    #[test]
    fn the_matrix_counts_every_run_and_names_the_baseline_variant() {
        let plain = table("");
        assert!(
            plain.ends_with("\nmatrix: 2 layout(s) × 1 scenario(s) × 2 workload(s) × 3 repetition(s) = 12 run(s)\n"),
            "{plain}"
        );
        assert!(!plain.contains("variant"), "{plain}");
        let swept = table("[[variants]]\nname = \"base\"\n[[variants]]\nname = \"mlock\"\n[variants.qemu]\nmem_lock = \"on\"\n");
        assert!(
            swept.ends_with(
                "\nvariant base (baseline: the report compares each variant with it): no knob (QEMU, the guest and the host as pinlat starts them)\nvariant mlock: qemu.mem_lock = \"on\"\n\
                 matrix: 2 layout(s) × 2 variant(s) × 1 scenario(s) × 2 workload(s) × 3 repetition(s) = 24 run(s)\n"
            ),
            "{swept}"
        );
    }
}
