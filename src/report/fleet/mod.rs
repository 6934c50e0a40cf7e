//! `pinlat merge`: one fleet report from many hosts' results directories (what Ansible or LAVA
//! fetched back from a lab), in every format: `report.json` ([`FleetReport`]), `report.md`,
//! `report.html` and `junit.xml`.
//!
//! Each host is read once and reduced at once to what the fleet report shows ([`FleetHost`]:
//! its facts, and per layout × scenario × workload its p99.9, max, budget and its own verdicts),
//! so memory grows with the number of hosts, not with their runs or histograms ([`load`]).
//! A host's `report.json` is used when it is of this pinlat's schema; otherwise the host is
//! aggregated from its `runs/` with [`super::build`], as `pinlat report` does.
//!
//! Across hosts the report derives three things, each with its rule stated in every output:
//! - outliers ([`outlier`]): a host whose value for a layout lies beyond the fleet's spread
//!   for that layout (median and MAD across hosts, with a floor);
//! - judgements ([`judge`]): a layout against its baseline across hosts, from each host's own
//!   verdict ("vcpu0 beat share on 9 of 10 hosts");
//! - differences ([`compat`]): what makes hosts not comparable (a layout placed differently,
//!   other scenarios, budgets, accelerators, a report of another schema), named, never hidden.
//!
//! Hosts that produced no results (given with `--failed-host`, or a directory that is missing
//! or not a results directory) are [`FailedHost`]s: in every output, never in the way of the
//! others.

pub mod compat;
pub mod html;
mod html_plot;
pub mod input;
pub mod judge;
pub mod junit;
pub mod load;
pub mod markdown;
mod merge;
pub mod outlier;
pub mod view;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::budget::{BudgetStatus, BudgetVerdict};
use super::failures::CauseCount;
use super::hostchecks::HostChecks;
use super::{OutputFile, Range, ReportError, SkippedFile, Verdict};
use crate::config::{Budget, LayoutKind, WorkloadKind};
use crate::histo::Percentile;
use crate::kinds::Accel;
use crate::schema::HostFacts;
use crate::wire::ClockSource;

pub use input::{FailedHostArg, HostArg, InputError};
pub use merge::merge;

/// Version of the fleet `report.json` ([`FleetReport`]).
pub const FLEET_SCHEMA_VERSION: u32 = 1;

/// The merged report of a fleet: what `pinlat merge` writes as `report.json` and renders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetReport {
    /// [`FLEET_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The hosts whose results were merged, by label (numbers by value: lab2 before lab10).
    pub hosts: Vec<FleetHost>,
    /// The hosts that produced no results, by label.
    pub failed_hosts: Vec<FailedHost>,
    /// Every layout of any host, in the order hosts first listed them.
    pub layouts: Vec<String>,
    /// Every (scenario, workload) of any host, sorted.
    pub cells: Vec<(String, WorkloadKind)>,
    /// Per layout, the placement most hosts have (the reference the others are compared
    /// with, [`load::placement_text`]).
    pub placements: BTreeMap<String, String>,
    /// Hosts flagged beyond the fleet's spread ([`outlier`]).
    pub outliers: Vec<outlier::Outlier>,
    /// Each layout against its baseline across hosts ([`judge`]).
    pub judgements: Vec<judge::Judgement>,
    /// What is not comparable between hosts, named ([`compat`]).
    pub differences: Vec<compat::Difference>,
}

/// How a host's label was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelSource {
    /// `LABEL=DIR` on the command line.
    Given,
    /// `host.json`'s hostname.
    Hostname,
    /// The directory's name (no hostname recorded).
    Directory,
    /// The hostname was shared with another directory: hostname and directory name.
    Disambiguated,
}

/// Where a host's numbers came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "kebab-case")]
pub enum Source {
    /// Its `report.json`, of this pinlat's schema.
    ReportJson,
    /// Aggregated from its `runs/`, and why `report.json` was not used.
    Runs {
        /// Why (no report.json, another schema version, unreadable).
        why: String,
    },
}

/// One host's run files, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCounts {
    /// Runs read (measured or failed).
    pub read: usize,
    /// Runs that measured to the end.
    pub ok: usize,
    /// Runs that failed.
    pub failed: usize,
    /// Run files that could not be read.
    pub skipped: usize,
    /// Runs planned in `plan.json` with no run file.
    pub missing: usize,
}

/// One layout of one host (one arm, layout × variant, with variants).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostLayout {
    /// Layout name; with variants the arm, `layout/variant` ([`super::arm_name`]).
    pub name: String,
    /// Layout rule.
    pub kind: LayoutKind,
    /// The planned placement with the host's pCPUs renamed in order of use
    /// ([`load::placement_text`]): equal texts are the same placement on different CPUs.
    pub placement: String,
    /// Budget verdict over the layout's groups on this host.
    pub budget: BudgetStatus,
}

/// One layout × scenario × workload of one host, as the fleet report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostGroup {
    /// Layout name; with variants the arm, `layout/variant` ([`super::arm_name`]), so that
    /// variants are compared across hosts as layouts are and never merge.
    pub layout: String,
    /// The scenario.
    pub scenario: String,
    /// The workload.
    pub workload: WorkloadKind,
    /// Runs that measured.
    pub ok_runs: usize,
    /// Runs that failed.
    pub failed_runs: usize,
    /// Why they failed, each cause once.
    pub failures: Vec<CauseCount>,
    /// Clock sources of the measured runs.
    pub clocks: Vec<ClockSource>,
    /// Samples merged over the measured runs.
    pub samples: u64,
    /// p99.9 over every RT vCPU of every measured repetition.
    pub p999: Percentile,
    /// Largest sample, ns.
    pub max_ns: u64,
    /// Spread of p99.9 between repetitions (`None` with fewer than 2).
    pub p999_spread: Option<Range>,
    /// Whether the repetitions' maxima agree (`None`: fewer than 2 repetitions).
    pub unstable: Option<bool>,
    /// The host's budget verdict on it.
    pub budget: BudgetVerdict,
}

impl HostGroup {
    /// The value of `metric`: `None` without samples; `Some(None)` in the overflow.
    pub fn value(&self, metric: outlier::Metric) -> Option<Option<u64>> {
        (self.samples > 0).then_some(match metric {
            outlier::Metric::P999 => self.p999.value_ns,
            outlier::Metric::Max => Some(self.max_ns),
        })
    }
}

/// A host whose results were merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetHost {
    /// Its name in every output.
    pub label: String,
    /// How the label was chosen.
    pub label_source: LabelSource,
    /// The results directory, as given.
    pub dir: String,
    /// Where the numbers came from.
    pub source: Source,
    /// The matrix id of its runs.
    pub run_id: String,
    /// `host.json` (from the report when `host.json` is missing; `None` when neither has it).
    pub facts: Option<HostFacts>,
    /// `doctor.json` and `calibrate.json`, summarized.
    pub checks: HostChecks,
    /// Accelerators its runs used (TCG: not hardware latency).
    pub accels: Vec<Accel>,
    /// Whether its guest kernels were PREEMPT_RT (`None`: unknown or mixed).
    pub guest_preempt_rt: Option<bool>,
    /// Its run files, counted.
    pub runs: RunCounts,
    /// Run files that could not be read, with why.
    pub skipped: Vec<SkippedFile>,
    /// Its budgets, by workload.
    pub budgets: BTreeMap<WorkloadKind, Budget>,
    /// Its layouts, in its order.
    pub layouts: Vec<HostLayout>,
    /// Its groups, in its order.
    pub groups: Vec<HostGroup>,
    /// Its own verdicts, per (scenario, workload).
    pub verdicts: Vec<Verdict>,
    /// Given as failed with `--failed-host` although its directory was merged: the reason.
    pub reported_failed: Option<String>,
}

impl FleetHost {
    /// The group of (layout, scenario, workload), if the host ran it.
    pub fn group(
        &self,
        layout: &str,
        scenario: &str,
        workload: WorkloadKind,
    ) -> Option<&HostGroup> {
        self.groups
            .iter()
            .find(|g| g.layout == layout && g.scenario == scenario && g.workload == workload)
    }

    /// Its layout named `name`, if it ran it.
    pub fn layout(&self, name: &str) -> Option<&HostLayout> {
        self.layouts.iter().find(|l| l.name == name)
    }

    /// Its verdict on (scenario, workload), if it ran it.
    pub fn verdict(&self, scenario: &str, workload: WorkloadKind) -> Option<&Verdict> {
        self.verdicts
            .iter()
            .find(|v| v.scenario == scenario && v.workload == workload)
    }

    /// Whether any run used TCG.
    pub fn is_tcg(&self) -> bool {
        self.accels.contains(&Accel::Tcg)
    }

    /// Whether a run failed, a run file was unreadable or missing, or the host was given as
    /// failed.
    pub fn failed(&self) -> bool {
        self.runs.failed > 0
            || self.runs.skipped > 0
            || self.runs.missing > 0
            || self.reported_failed.is_some()
    }

    /// Whether a budget was exceeded on the host.
    pub fn budget_exceeded(&self) -> bool {
        self.layouts
            .iter()
            .any(|l| l.budget == BudgetStatus::Exceeded)
    }
}

/// Who said a host failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailedBy {
    /// `--failed-host` (e.g. Ansible found it unreachable).
    Option,
    /// Its directory is missing or is not a readable results directory.
    Directory,
}

/// A host that produced no results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedHost {
    /// Its name.
    pub label: String,
    /// Its directory, when one was given.
    pub dir: Option<String>,
    /// Who said it failed.
    pub by: FailedBy,
    /// Why.
    pub reason: String,
}

/// What a fleet report says for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetOutcome {
    /// Every host merged and every budget held.
    Held,
    /// A budget was exceeded on some host; every host merged and every run measured.
    BudgetExceeded,
    /// A host failed or was unreadable, or a run failed, on some host.
    Failed,
}

impl FleetReport {
    /// The exit-code outcome: a failed host or run wins over a budget.
    pub fn outcome(&self) -> FleetOutcome {
        if !self.failed_hosts.is_empty() || self.hosts.iter().any(FleetHost::failed) {
            FleetOutcome::Failed
        } else if self.hosts.iter().any(FleetHost::budget_exceeded) {
            FleetOutcome::BudgetExceeded
        } else {
            FleetOutcome::Held
        }
    }

    /// Labels of the hosts that ran under TCG.
    pub fn tcg_hosts(&self) -> Vec<&str> {
        self.hosts
            .iter()
            .filter(|h| h.is_tcg())
            .map(|h| h.label.as_str())
            .collect()
    }

    /// The sentence every output's header carries when a host ran under TCG.
    pub fn tcg_note(&self) -> Option<String> {
        let tcg = self.tcg_hosts();
        (!tcg.is_empty()).then(|| {
            format!(
                "{} of {} hosts ran under TCG ({}): {}",
                tcg.len(),
                self.hosts.len(),
                tcg.join(", "),
                crate::result::TCG_DISCLAIMER
            )
        })
    }

    /// Assembles the fleet report from the merged and the failed hosts: sorts both by label,
    /// then derives the placements, outliers, judgements and differences.
    pub fn new(mut hosts: Vec<FleetHost>, mut failed_hosts: Vec<FailedHost>) -> FleetReport {
        hosts.sort_by(|a, b| input::label_order(&a.label, &b.label));
        failed_hosts.sort_by(|a, b| input::label_order(&a.label, &b.label));
        let mut layouts: Vec<String> = Vec::new();
        let mut cells: Vec<(String, WorkloadKind)> = Vec::new();
        for h in &hosts {
            for l in &h.layouts {
                if !layouts.contains(&l.name) {
                    layouts.push(l.name.clone());
                }
            }
            for g in &h.groups {
                let c = (g.scenario.clone(), g.workload);
                if !cells.contains(&c) {
                    cells.push(c);
                }
            }
        }
        cells.sort();
        let placements = compat::reference_placements(&hosts, &layouts);
        let mut r = FleetReport {
            schema_version: FLEET_SCHEMA_VERSION,
            hosts,
            failed_hosts,
            layouts,
            cells,
            placements,
            outliers: Vec::new(),
            judgements: Vec::new(),
            differences: Vec::new(),
        };
        r.outliers = outlier::find(&r);
        r.judgements = judge::judge(&r);
        r.differences = compat::differences(&r);
        r
    }

    /// Whether `host`'s layout `layout` is placed as most hosts place it.
    pub fn placed_as_fleet(&self, host: &FleetHost, layout: &str) -> bool {
        match (host.layout(layout), self.placements.get(layout)) {
            (Some(l), Some(p)) => &l.placement == p,
            _ => false,
        }
    }

    /// Reads a fleet `report.json` back.
    pub fn read_json(path: &Path) -> Result<FleetReport, ReportError> {
        Ok(crate::schema::read_versioned(path)?)
    }
}

impl crate::schema::Versioned for FleetReport {
    const NAME: &'static str = "fleet report.json";
    const VERSION: u32 = FLEET_SCHEMA_VERSION;
}

/// Every output of a fleet report: `report.json`, `report.md`, `report.html`, `junit.xml`.
pub fn outputs(r: &FleetReport) -> Result<Vec<OutputFile>, ReportError> {
    let mut json = serde_json::to_string_pretty(r)
        .map_err(|e| ReportError::Plot("report.json".into(), e.to_string()))?;
    json.push('\n');
    Ok(vec![
        OutputFile {
            name: "report.json".into(),
            contents: json,
        },
        OutputFile {
            name: "report.md".into(),
            contents: markdown::render(r),
        },
        OutputFile {
            name: "report.html".into(),
            contents: html::render(r)?,
        },
        OutputFile {
            name: "junit.xml".into(),
            contents: junit::render(r),
        },
    ])
}

/// Writes every output of `r` into `out` (which must exist), each file atomically.
pub fn write_all(r: &FleetReport, out: &Path) -> Result<(), ReportError> {
    for f in outputs(r)? {
        super::write_file(out, &f)?;
    }
    Ok(())
}
