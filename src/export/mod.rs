//! Views of a [`Plan`](crate::plan::Plan) for people and for deployment tools: a table for
//! `pinlat check`, JSON, libvirt `<cputune>` and nova flavor extra specs + `nova.conf`.
//! One format per file; all of them read the same plan, none keeps state of its own.

pub mod libvirt;
pub mod nova;
pub mod table;

use crate::config::Config;
use crate::plan::Plan;

/// The formats `pinlat plan --format` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFormat {
    /// The plan as JSON (the same document the runner writes as `plan.json`).
    Json,
    /// libvirt domain XML `<cputune>` fragments, one per guest and layout.
    Libvirt,
    /// nova flavor extra specs and `nova.conf` lines, one block per layout.
    Nova,
    /// The readable table `pinlat check` prints.
    Table,
}

/// Renders `plan` (made from `config`) in `format`.
pub fn render(format: PlanFormat, plan: &Plan, config: &Config) -> String {
    match format {
        PlanFormat::Json => {
            let mut s = serde_json::to_string_pretty(plan).expect("a plan always serializes");
            s.push('\n');
            s
        }
        PlanFormat::Libvirt => libvirt::render(plan, config),
        PlanFormat::Nova => nova::render(plan, config),
        PlanFormat::Table => table::render(plan, config),
    }
}
