//! The text `pinlat compare` prints: per row the percentiles (µs), their change and judgement,
//! then the rows NEW lost, then a summary line.

use super::super::{us, us_opt};
use super::Comparison;

/// Human-readable table of a comparison (µs).
pub fn render_text(c: &Comparison, base_name: &str, new_name: &str) -> String {
    let mut o = String::new();
    for n in &c.notes {
        o.push_str(&format!("{n}\n"));
    }
    o.push_str(&format!(
        "Comparing {new_name} (NEW) against {base_name} (BASE); latencies in µs, regression = a percentile up by more than {}% and by at least {} µs (--min-delta), or a row absent, failed or missing in NEW{}\n\n",
        c.threshold_pct,
        us(c.min_delta_ns),
        if c.allow_missing {
            " (allowed: --allow-missing)"
        } else {
            ""
        }
    ));
    for r in &c.rows {
        if let Some(why) = &r.not_comparable {
            o.push_str(&format!("{}  not comparable: {why}\n", r.name));
            continue;
        }
        o.push_str(&format!(
            "{}{}\n",
            r.name,
            if r.regressed() { "  REGRESSION" } else { "" }
        ));
        for ch in &r.changes {
            let judged = match (&ch.not_judged, ch.regression) {
                (Some(why), _) => format!("  ({why})"),
                (None, true) => "  <- regression".to_string(),
                (None, false) => String::new(),
            };
            o.push_str(&format!(
                "  {:<7} {:>14} -> {:>14}  {:>8}{judged}\n",
                ch.metric.label(),
                us_opt(ch.base_ns),
                us_opt(ch.new_ns),
                super::pct_text(ch.change_pct),
            ));
        }
        o.push_str(&format!(
            "  {:<7} {:>14} -> {:>14}  (not judged)\n",
            "max",
            us(r.max_ns.0),
            us(r.max_ns.1)
        ));
        let sp = |v: Option<u64>| v.map_or("1 rep".to_string(), us);
        o.push_str(&format!(
            "  p99.99 spread between repetitions: {} -> {}\n",
            sp(r.spread_p9999_ns.0),
            sp(r.spread_p9999_ns.1)
        ));
    }
    for l in &c.lost {
        o.push_str(&format!(
            "{}: {}{}\n",
            l.name,
            l.cause,
            if l.regression {
                "  REGRESSION"
            } else {
                "  (allowed: --allow-missing)"
            }
        ));
    }
    for x in &c.only_new {
        o.push_str(&format!("{x}: only in {new_name}\n"));
    }
    let n = c.rows.iter().filter(|r| r.regressed()).count();
    let not_comparable = c.rows.iter().filter(|r| r.not_comparable.is_some()).count();
    o.push_str(&format!(
        "\n{n} of {} row(s) regressed beyond {}% and {} µs",
        c.rows.len(),
        c.threshold_pct,
        us(c.min_delta_ns)
    ));
    if not_comparable > 0 {
        o.push_str(&format!(", {not_comparable} not comparable"));
    }
    o.push_str(&format!(
        "; {} row(s) absent, failed or missing in NEW{}\n",
        c.lost.len(),
        if c.allow_missing && !c.lost.is_empty() {
            " (allowed)"
        } else {
            ""
        }
    ));
    o
}
