//! The `[[workloads]]` validator and the default workload.

use std::collections::BTreeSet;

use super::{only_for, priority};
use crate::config::raw::RawWorkload;
use crate::config::{ConfigError, Workload, WorkloadKind};

/// `[[workloads]]`; default `[busy-poll]`.
pub(super) fn workloads(raw: Option<&[RawWorkload]>) -> Result<Vec<Workload>, ConfigError> {
    let workloads = match raw {
        None => vec![default_workload(WorkloadKind::BusyPoll)],
        Some([]) => {
            return Err(ConfigError::new(
                "workloads",
                "empty: leave it out for the default [busy-poll], or list [[workloads]] with kind = busy-poll|timer|ring",
            ))
        }
        Some(v) => {
            let mut seen = BTreeSet::new();
            let mut out = Vec::new();
            for (i, w) in v.iter().enumerate() {
                let p = format!("workloads[{i}]");
                if !seen.insert(w.kind) {
                    return Err(ConfigError::new(
                        format!("{p}.kind"),
                        format!("\"{}\" is listed twice", w.kind),
                    ));
                }
                let d = default_workload(w.kind);
                if w.interval_us.is_some() && w.kind != WorkloadKind::Timer {
                    return Err(only_for(&format!("{p}.interval_us"), "kind = \"timer\""));
                }
                let interval_us = w.interval_us.unwrap_or(d.interval_us);
                if !(10..=1_000_000).contains(&interval_us) {
                    return Err(ConfigError::new(
                        format!("{p}.interval_us"),
                        format!("{interval_us}: must be 10..=1000000 microseconds"),
                    ));
                }
                let preheat_ms = w.preheat_ms.unwrap_or(d.preheat_ms);
                if preheat_ms > 600_000 {
                    return Err(ConfigError::new(
                        format!("{p}.preheat_ms"),
                        format!("{preheat_ms}: must be at most 600000 (10 minutes)"),
                    ));
                }
                out.push(Workload {
                    kind: w.kind,
                    preheat_ms,
                    interval_us,
                    priority: w
                        .priority
                        .or(d.priority)
                        .map(|v| priority(&format!("{p}.priority"), v))
                        .transpose()?,
                    housekeeping: w.housekeeping.iter().flatten().copied().collect(),
                });
            }
            out
        }
    };
    Ok(workloads)
}

fn default_workload(kind: WorkloadKind) -> Workload {
    Workload {
        kind,
        preheat_ms: 1000,
        interval_us: 1000,
        priority: (kind == WorkloadKind::Timer).then_some(95),
        housekeeping: BTreeSet::new(),
    }
}
