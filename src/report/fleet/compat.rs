//! What makes hosts not comparable, named. The fleet merges everything it can read; where two
//! hosts' numbers cannot be set side by side, the report says which hosts and why instead of
//! leaving them out quietly:
//!
//! - a layout placed differently on some hosts (same name, other placement, compared by
//!   [`super::load::placement_text`]): the placement most hosts have is the reference; the
//!   others' numbers are shown, marked, and left out of outliers and judgements of that layout;
//! - hosts that did not run a layout, scenario or workload that others ran;
//! - other budgets (each host's budget verdict is against its own budgets);
//! - another accelerator or clock than most hosts for a layout × scenario × workload: left out
//!   of that row's outliers (TCG numbers are not hardware latency);
//! - a host aggregated from `runs/` because its `report.json` is missing, of another schema or
//!   unreadable, and run files this pinlat cannot read (another run schema);
//! - different pinlat versions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{FleetHost, FleetReport, Source};
use crate::config::{Budget, WorkloadKind};
use crate::report::verdict::clocks_label;
use crate::report::{budget::percentile_label, us};

/// What kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DifferenceKind {
    /// A layout placed otherwise than on most hosts.
    Placement,
    /// A layout, scenario or workload some hosts did not run.
    Missing,
    /// Budgets differ between hosts.
    Budgets,
    /// Another accelerator or clock than most hosts.
    Accel,
    /// Read from `runs/`, not `report.json`.
    Source,
    /// Run files this pinlat could not read.
    RunFiles,
    /// Different pinlat versions.
    Version,
}

/// One difference between hosts, with the hosts it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    /// What kind.
    pub kind: DifferenceKind,
    /// The hosts it names.
    pub hosts: Vec<String>,
    /// The sentence.
    pub text: String,
}

/// The most common value of `items` (ties: the first seen).
fn majority<T: PartialEq + Clone>(items: impl Iterator<Item = T>) -> Option<T> {
    let mut counts: Vec<(T, usize)> = Vec::new();
    for x in items {
        match counts.iter_mut().find(|(y, _)| *y == x) {
            Some(c) => c.1 += 1,
            None => counts.push((x, 1)),
        }
    }
    let best = counts.iter().map(|c| c.1).max()?;
    counts.into_iter().find(|c| c.1 == best).map(|c| c.0)
}

/// Per layout, the placement most hosts have (ties: the first host's, in label order).
pub fn reference_placements(hosts: &[FleetHost], layouts: &[String]) -> BTreeMap<String, String> {
    layouts
        .iter()
        .filter_map(|name| {
            majority(
                hosts
                    .iter()
                    .filter_map(|h| h.layout(name).map(|l| l.placement.clone())),
            )
            .map(|p| (name.clone(), p))
        })
        .collect()
}

/// `tcg`, `kvm`, `kvm+tcg`: a host's accelerators.
fn accels_text(h: &FleetHost) -> String {
    h.accels
        .iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join("+")
}

/// The hosts whose (layout, scenario, workload) can be set side by side: measured, placed as
/// most hosts place the layout, and with the accelerator and clocks most of those have.
pub fn comparable<'a>(
    r: &'a FleetReport,
    layout: &str,
    scenario: &str,
    workload: WorkloadKind,
) -> Vec<&'a FleetHost> {
    let placed: Vec<&FleetHost> = r
        .hosts
        .iter()
        .filter(|h| {
            h.group(layout, scenario, workload)
                .is_some_and(|g| g.samples > 0)
        })
        .filter(|h| r.placed_as_fleet(h, layout))
        .collect();
    let key = |h: &FleetHost| {
        let g = h.group(layout, scenario, workload);
        (accels_text(h), g.map(|g| clocks_label(&g.clocks)))
    };
    let Some(common) = majority(placed.iter().map(|h| key(h))) else {
        return Vec::new();
    };
    placed.into_iter().filter(|h| key(h) == common).collect()
}

/// `a, b, c` with at most `n` names, then `and 4 more`.
pub fn names(hosts: &[String], n: usize) -> String {
    if hosts.len() <= n {
        return hosts.join(", ");
    }
    format!("{} and {} more", hosts[..n].join(", "), hosts.len() - n)
}

/// `timer: p99.99 ≤ 50 µs, max ≤ 200 µs; busy-poll: max ≤ 10 µs`, or `none`.
fn budgets_text(b: &BTreeMap<WorkloadKind, Budget>) -> String {
    if b.is_empty() {
        return "none".into();
    }
    b.iter()
        .map(|(w, b)| {
            let mut c = Vec::new();
            if let Some((p, ns)) = b.percentile {
                c.push(format!("{} ≤ {} µs", percentile_label(p), us(ns)));
            }
            if let Some(ns) = b.max_ns {
                c.push(format!("max ≤ {} µs", us(ns)));
            }
            format!("{w}: {}", c.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Groups hosts by a text, in order of first appearance.
fn by_text<'a>(
    hosts: impl IntoIterator<Item = &'a FleetHost>,
    f: impl Fn(&FleetHost) -> String,
) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for h in hosts {
        let t = f(h);
        match out.iter_mut().find(|(x, _)| *x == t) {
            Some(e) => e.1.push(h.label.clone()),
            None => out.push((t, vec![h.label.clone()])),
        }
    }
    out
}

/// Every difference between the hosts of `r`.
pub fn differences(r: &FleetReport) -> Vec<Difference> {
    let mut out = Vec::new();
    // Placements.
    for (layout, reference) in &r.placements {
        let with: Vec<&FleetHost> = r
            .hosts
            .iter()
            .filter(|h| h.layout(layout).is_some())
            .collect();
        for (placement, hosts) in by_text(with.iter().copied(), |h| {
            h.layout(layout)
                .map(|l| l.placement.clone())
                .unwrap_or_default()
        }) {
            if &placement == reference {
                continue;
            }
            let others = with.len() - hosts.len();
            out.push(Difference {
                kind: DifferenceKind::Placement,
                text: format!(
                    "layout {layout} is placed differently on {} ({placement}) than on {others} other host(s) ({reference}): its numbers there are shown, marked ≠, and left out of the outliers and judgements of {layout}",
                    names(&hosts, 10)
                ),
                hosts,
            });
        }
    }
    // What some hosts did not run.
    let scenarios: Vec<&String> = {
        let mut s: Vec<&String> = r.cells.iter().map(|c| &c.0).collect();
        s.dedup();
        s
    };
    let mut workloads: Vec<WorkloadKind> = r.cells.iter().map(|c| c.1).collect();
    workloads.sort();
    workloads.dedup();
    for h in &r.hosts {
        let mut lacks = Vec::new();
        let layouts: Vec<&str> = r
            .layouts
            .iter()
            .filter(|l| h.layout(l).is_none())
            .map(String::as_str)
            .collect();
        if !layouts.is_empty() {
            lacks.push(format!("layout(s) {}", layouts.join(", ")));
        }
        let sc: Vec<&str> = scenarios
            .iter()
            .filter(|s| !h.groups.iter().any(|g| g.scenario.as_str() == s.as_str()))
            .map(|s| s.as_str())
            .collect();
        if !sc.is_empty() {
            lacks.push(format!("scenario(s) {}", sc.join(", ")));
        }
        let wl: Vec<String> = workloads
            .iter()
            .filter(|w| !h.groups.iter().any(|g| g.workload == **w))
            .map(|w| w.to_string())
            .collect();
        if !wl.is_empty() {
            lacks.push(format!("workload(s) {}", wl.join(", ")));
        }
        if !lacks.is_empty() {
            out.push(Difference {
                kind: DifferenceKind::Missing,
                hosts: vec![h.label.clone()],
                text: format!(
                    "{} did not run {} that other hosts ran: its cells are empty",
                    h.label,
                    lacks.join("; ")
                ),
            });
        }
    }
    // Budgets.
    let budgets = by_text(&r.hosts, |h| budgets_text(&h.budgets));
    if budgets.len() > 1 {
        let each: Vec<String> = budgets
            .iter()
            .map(|(t, hs)| format!("{} ({t})", names(hs, 10)))
            .collect();
        out.push(Difference {
            kind: DifferenceKind::Budgets,
            hosts: budgets.iter().skip(1).flat_map(|b| b.1.clone()).collect(),
            text: format!(
                "budgets differ: {}; each host's budget verdict is against its own budgets",
                each.join(" vs ")
            ),
        });
    }
    // Accelerators and clocks: who is left out of a row's outliers.
    // (host, why) → the rows it is left out of.
    let mut left_out: Vec<((String, String), Vec<String>)> = Vec::new();
    for (scenario, workload) in &r.cells {
        for layout in &r.layouts {
            let kept = comparable(r, layout, scenario, *workload);
            let Some(first) = kept.first() else { continue };
            let key = |h: &FleetHost| {
                let g = h.group(layout, scenario, *workload);
                format!(
                    "accel {}, clock {}",
                    accels_text(h),
                    g.map_or("unknown".into(), |g| clocks_label(&g.clocks))
                )
            };
            let common = key(first);
            for h in r.hosts.iter().filter(|h| {
                r.placed_as_fleet(h, layout)
                    && h.group(layout, scenario, *workload)
                        .is_some_and(|g| g.samples > 0)
                    && !kept.iter().any(|k| k.label == h.label)
            }) {
                let what = (
                    h.label.clone(),
                    format!("{} while most hosts have {common}", key(h)),
                );
                let row = format!("{layout}.{scenario}.{workload}");
                match left_out.iter_mut().find(|(w, _)| *w == what) {
                    Some(e) => e.1.push(row),
                    None => left_out.push((what, vec![row])),
                }
            }
        }
    }
    for ((host, why), rows) in left_out {
        out.push(Difference {
            kind: DifferenceKind::Accel,
            text: format!(
                "{host}: {why}: not compared with them for outliers in {}",
                names(&rows, 4)
            ),
            hosts: vec![host],
        });
    }
    // Sources and run files.
    for h in &r.hosts {
        if let Source::Runs { why } = &h.source {
            out.push(Difference {
                kind: DifferenceKind::Source,
                hosts: vec![h.label.clone()],
                text: format!("{}: {why}: aggregated from its runs/", h.label),
            });
        }
        if !h.skipped.is_empty() {
            let mut reasons: Vec<&str> = h.skipped.iter().map(|s| s.reason.as_str()).collect();
            reasons.dedup();
            out.push(Difference {
                kind: DifferenceKind::RunFiles,
                hosts: vec![h.label.clone()],
                text: format!(
                    "{}: {} run file(s) this pinlat cannot read, not merged ({})",
                    h.label,
                    h.skipped.len(),
                    reasons.into_iter().take(3).collect::<Vec<_>>().join("; ")
                ),
            });
        }
    }
    let versions = by_text(&r.hosts, |h| {
        h.facts
            .as_ref()
            .map_or("unknown".into(), |f| f.pinlat_version.clone())
    });
    if versions.len() > 1 {
        out.push(Difference {
            kind: DifferenceKind::Version,
            hosts: versions.iter().skip(1).flat_map(|v| v.1.clone()).collect(),
            text: format!(
                "pinlat versions differ: {}",
                versions
                    .iter()
                    .map(|(v, hs)| format!("{v} on {}", names(hs, 10)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_takes_the_most_common_then_the_first() {
        assert_eq!(majority(["a", "b", "b"].into_iter()), Some("b"));
        assert_eq!(majority(["a", "b"].into_iter()), Some("a"));
        assert_eq!(majority(std::iter::empty::<&str>()), None);
    }

    #[test]
    fn long_name_lists_are_cut() {
        let hs: Vec<String> = (1..=5).map(|i| format!("h{i}")).collect();
        assert_eq!(names(&hs, 5), "h1, h2, h3, h4, h5");
        assert_eq!(names(&hs, 2), "h1, h2 and 3 more");
    }
}
