//! The "who took the RT pCPUs" table of one pCPU, as Markdown: where the window went, stolen
//! time by class with count, longest segment and top names, and the longest stolen intervals
//! with their times. The report will embed it per layout × scenario.

use std::fmt::Write as _;

use super::attribute::CpuAttribution;

/// Formats ns for a table: `850 ns`, `12.3 µs`, `4.56 ms`, `1.234 s`.
pub fn fmt_ns(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.2} ms", ns as f64 / 1e6),
        _ => format!("{:.3} s", ns as f64 / 1e9),
    }
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.2} %", part as f64 * 100.0 / whole as f64)
    }
}

/// One Markdown row of the stolen-time-by-class table: class, stolen, count, longest, and the
/// top names with theirs (`|` in a name escaped), newline-terminated.
pub fn class_row(c: &super::ClassStats) -> String {
    let names: Vec<String> = c
        .names
        .iter()
        .map(|n| {
            format!(
                "`{}` {} ×{} ≤{}",
                n.name.replace('|', "\\|"),
                fmt_ns(n.total_ns),
                n.count,
                fmt_ns(n.longest_ns)
            )
        })
        .collect();
    format!(
        "| {} | {} | {} | {} | {} |\n",
        c.class,
        fmt_ns(c.total_ns),
        c.count,
        fmt_ns(c.longest_ns),
        names.join(", ")
    )
}

/// Renders `a` as Markdown; times of intervals are seconds from the window's start.
pub fn render(a: &CpuAttribution) -> String {
    let w = a.window.len_ns();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "#### pCPU {} (planned thread {}), window {}\n",
        a.cpu,
        a.planned_tid,
        fmt_ns(w)
    );
    let _ = writeln!(s, "| ran | voluntary idle | stolen | away | unknown |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    let _ = writeln!(
        s,
        "| {} ({}) | {} ({}) | {} ({}) | {} | {} |",
        fmt_ns(a.ran_ns),
        pct(a.ran_ns, w),
        fmt_ns(a.idle_ns),
        pct(a.idle_ns, w),
        fmt_ns(a.stolen_ns),
        pct(a.stolen_ns, w),
        fmt_ns(a.away_ns),
        fmt_ns(a.unknown_ns),
    );
    let _ = writeln!(
        s,
        "\n| class | stolen | count | longest | top names (stolen, count, longest) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for c in &a.by_class {
        s.push_str(&class_row(c));
    }
    if !a.longest.is_empty() {
        let _ = writeln!(s, "\n| longest stolen | at (s) | class | culprit | parts |");
        let _ = writeln!(s, "|---|---|---|---|---|");
        for i in &a.longest {
            let parts: Vec<String> = i
                .parts
                .iter()
                .map(|p| {
                    format!(
                        "{} `{}` {}",
                        p.class,
                        p.name.replace('|', "\\|"),
                        fmt_ns(p.ns)
                    )
                })
                .collect();
            let _ = writeln!(
                s,
                "| {} | {:.6} | {} | `{}` | {} |",
                fmt_ns(i.len_ns()),
                i.start_ns.saturating_sub(a.window.start_ns) as f64 / 1e9,
                i.class,
                i.name.replace('|', "\\|"),
                parts.join(", ")
            );
        }
    }
    let _ = writeln!(
        s,
        "\n{} throttle episode(s); {} lost-events marker(s), {} inferred switch(es), {} IRQ(s) without exit.",
        a.throttle_episodes, a.lost_markers, a.inferred_switches, a.unmatched_irqs
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(fmt_ns(850), "850 ns");
        assert_eq!(fmt_ns(12_345), "12.3 µs");
        assert_eq!(fmt_ns(4_560_000), "4.56 ms");
        assert_eq!(fmt_ns(1_234_000_000), "1.234 s");
        assert_eq!(pct(1, 0), "-");
    }
}
