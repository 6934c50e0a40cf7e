//! `plan.json`: the checked config (with command-line overrides applied), the resolved
//! placement of every layout, and the planned runs, as `pinlat run` executed them. The report
//! reads its budgets and the list of planned runs from here.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::plan::Plan;

/// File name of the plan in a results directory.
pub const PLAN_FILE: &str = "plan.json";
/// Version of [`PlanFile`].
pub const PLAN_SCHEMA_VERSION: u32 = 1;

/// `plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    /// [`PLAN_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The matrix id (`reports/<run_id>/`).
    pub run_id: String,
    /// The config file as given on the command line.
    pub config_path: String,
    /// The checked config, overrides applied.
    pub config: Config,
    /// The resolved placement.
    pub plan: Plan,
    /// Every run of the matrix by name (`layout.scenario.workload.rN`), in execution order.
    pub runs: Vec<String>,
}

impl super::Versioned for PlanFile {
    const NAME: &'static str = PLAN_FILE;
    const VERSION: u32 = PLAN_SCHEMA_VERSION;
}
