//! The comparisons behind a verdict ([`super`]): one arm against another at the verdict's
//! percentile, judged by the spread between repetitions; layouts within a variant, and, with
//! variants, each arm against its layout's baseline variant.

use super::{Comparison, Significance};
use crate::config::LayoutKind;
use crate::histo::Quantile;
use crate::report::compare::{change_pct, pct_text};
use crate::report::{us, us_opt, Group};

/// What a comparison sets against each other: two layouts of one variant (or without
/// variants), or two variants of one layout.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Axis {
    Layout,
    Variant,
}

fn compare(g: &Group, base: &Group, q: Quantile, axis: Axis) -> Comparison {
    let (from, to) = (base.stats.at(q).value_ns, g.stats.at(q).value_ns);
    let noise = match (base.spread.of(q), g.spread.of(q)) {
        (Some(a), Some(b)) => Some(a.width_ns().max(b.width_ns())),
        _ => None,
    };
    let statement = |significance, s: String| Comparison {
        layout: g.layout.clone(),
        against: base.layout.clone(),
        variant: g.variant.clone(),
        against_variant: base.variant.clone(),
        percentile: q,
        from_ns: from,
        to_ns: to,
        noise_ns: noise,
        significance,
        statement: s,
    };
    if axis == Axis::Variant {
        let (significance, how) = variant_change(g, base, q, from, to, noise);
        let (l, v, b) = (
            &g.layout,
            g.variant.as_deref().unwrap_or_default(),
            base.variant.as_deref().unwrap_or_default(),
        );
        return statement(significance, format!("on {l}, {v} against {b}: {how}"));
    }
    let (l, b) = (&g.arm(), &base.arm());
    let (significance, text) = match (from, to, noise) {
        (Some(f), Some(t), Some(n)) if f.abs_diff(t) > n => (
            Significance::Significant,
            format!(
                "{l} {} {q} from {} µs to {} µs against {b} (beyond the spread between repetitions, {} µs)",
                if t < f { "cut" } else { "raised" },
                us(f),
                us(t),
                us(n)
            ),
        ),
        (Some(f), Some(t), Some(n)) => (
            Significance::NotSignificant,
            format!(
                "{l} against {b}: no significant difference ({q} {} µs vs {} µs, within the spread between repetitions, {} µs)",
                us(t),
                us(f),
                us(n)
            ),
        ),
        (Some(f), Some(t), None) => {
            let why = no_spread_why(g, base, q);
            (
                Significance::Unqualified,
                format!(
                    "{l} against {b}: {q} {} µs vs {} µs, unqualified ({why})",
                    us(t),
                    us(f)
                ),
            )
        }
        _ => (
            Significance::Unqualified,
            format!(
                "{l} against {b}: {q} {} µs vs {} µs, unqualified (a value lies in the histogram's overflow)",
                us_opt(to),
                us_opt(from)
            ),
        ),
    };
    statement(significance, text)
}

/// Why a difference cannot be judged: no spread, and whether for lack of repetitions.
fn no_spread_why(g: &Group, base: &Group, q: Quantile) -> String {
    if base.spread.repetitions < 2 || g.spread.repetitions < 2 {
        "fewer than 2 repetitions, no spread to judge significance: run with repetitions ≥ 2"
            .to_string()
    } else {
        format!("no spread between repetitions to judge significance: a repetition's {q} is in overflow or it has no samples")
    }
}

/// What a variant changed on one layout, by the same rule as layouts: `p99.99 −12.0% (20 µs
/// vs 22.7 µs, beyond the spread between repetitions, 1 µs)`.
fn variant_change(
    g: &Group,
    base: &Group,
    q: Quantile,
    from: Option<u64>,
    to: Option<u64>,
    noise: Option<u64>,
) -> (Significance, String) {
    let (Some(f), Some(t)) = (from, to) else {
        return (
            Significance::Unqualified,
            format!(
                "{q} {} µs vs {} µs, unqualified (a value lies in the histogram's overflow)",
                us_opt(to),
                us_opt(from)
            ),
        );
    };
    let pct = pct_text(change_pct(f, t));
    let (significance, judged) = match noise {
        Some(n) if f.abs_diff(t) > n => (
            Significance::Significant,
            format!("beyond the spread between repetitions, {} µs", us(n)),
        ),
        Some(n) => (
            Significance::NotSignificant,
            format!(
                "within the spread between repetitions, {} µs: no significant difference",
                us(n)
            ),
        ),
        None => (
            Significance::Unqualified,
            format!("unqualified: {}", no_spread_why(g, base, q)),
        ),
    };
    (
        significance,
        format!("{q} {pct} ({} µs vs {} µs, {judged})", us(t), us(f)),
    )
}

/// The comparisons of one (scenario, workload), `measured` in rank order: within each variant
/// (or without variants), every layout against the base layout (`share`, else `float`, else
/// the worst-ranked); then, with variants, every arm against its layout's baseline variant
/// (`variants[0]`, the config's first).
pub(super) fn comparisons(
    gs: &[&Group],
    measured: &[&Group],
    q: Quantile,
    variants: &[String],
) -> Vec<Comparison> {
    let axis: Vec<Option<&str>> = if variants.is_empty() {
        vec![None]
    } else {
        variants.iter().map(|v| Some(v.as_str())).collect()
    };
    let mut out = Vec::new();
    for v in axis {
        let of_v = |g: &Group| g.variant.as_deref() == v;
        let base = [LayoutKind::Share, LayoutKind::Float]
            .into_iter()
            .find_map(|k| {
                gs.iter()
                    .copied()
                    .find(|g| of_v(g) && g.stats.samples > 0 && g.layout_kind == k)
            })
            .or_else(|| measured.iter().copied().rfind(|g| of_v(g)));
        if let Some(b) = base {
            out.extend(
                measured
                    .iter()
                    .filter(|g| of_v(g) && g.layout != b.layout)
                    .map(|g| compare(g, b, q, Axis::Layout)),
            );
        }
    }
    if let Some(baseline) = variants.first() {
        for g in measured
            .iter()
            .filter(|g| g.variant.as_ref() != Some(baseline))
        {
            if let Some(b) = measured
                .iter()
                .find(|b| b.is_arm(&g.layout, Some(baseline)))
            {
                out.push(compare(g, b, q, Axis::Variant));
            }
        }
    }
    out
}
