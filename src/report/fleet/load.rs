//! Reading one host's results directory for the fleet report, and reducing it at once to a
//! [`FleetHost`], so the host's report (histograms, time series, per-run summaries) is dropped
//! before the next host is read.
//!
//! What is read: the host's report ([`crate::report::source::read`]: `report.json` when it is of
//! this pinlat's schema, else aggregated from `runs/` as `pinlat report` does, and why); then
//! `host.json` (the host's name and facts, newer than a report written before names were
//! recorded) and `doctor.json`/`calibrate.json`
//! ([`super::super::hostchecks::load`]). Nothing else: no run file when the report is there.

use std::path::{Path, PathBuf};

use super::{FleetHost, HostGroup, HostLayout, LabelSource, RunCounts, Source};
use crate::config::LayoutKind;
use crate::plan::GuestPlacement;
use crate::report::aggregate::error_chain;
use crate::report::source::{self, Origin};
use crate::report::{arm_name, budget, hostchecks, Report, ReportError};
use crate::schema::{read_versioned, HostFacts, HOST_FILE};

/// A directory that cannot be merged: the host is reported failed with this reason.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The directory does not exist.
    #[error("{} does not exist (the host's results were not fetched)", .0.display())]
    Missing(PathBuf),
    /// The path is not a directory.
    #[error("{} is not a directory", .0.display())]
    NotADir(PathBuf),
    /// Neither a report of this pinlat nor readable runs (the message is the whole chain).
    #[error("{}", error_chain(.0))]
    Report(ReportError),
}

/// Placement of a layout with the host's pCPUs renamed `0, 1, 2…` in the order the layout
/// first uses them (guests in order, each guest's vCPUs, then its emulator and iothread sets),
/// and each set printed as a CPU list in braces: `vcpu0: rt: vcpu0 {0} other, vcpu1 {1} fifo:1;
/// emulator {0}; iothreads {0}`. Two hosts whose layout pins the same threads together with the
/// same policies give the same text, whichever pCPU numbers they used; an unpinned guest is
/// `unpinned`.
pub fn placement_text(kind: LayoutKind, guests: &[&GuestPlacement]) -> String {
    let mut order: Vec<u32> = Vec::new();
    let mut rename = |set: &crate::cpuset::CpuSet| -> String {
        let mut out = crate::cpuset::CpuSet::new();
        for c in set.iter() {
            let i = order.iter().position(|&o| o == c).unwrap_or_else(|| {
                order.push(c);
                order.len() - 1
            });
            out.insert(u32::try_from(i).unwrap_or(u32::MAX));
        }
        format!("{{{out}}}")
    };
    let parts: Vec<String> = guests
        .iter()
        .map(|g| {
            if !g.pinned {
                return format!("{}: unpinned", g.guest);
            }
            let vcpus: Vec<String> = g
                .vcpus
                .iter()
                .map(|v| format!("vcpu{} {} {}", v.vcpu, rename(&v.cpus), v.sched))
                .collect();
            format!(
                "{}: {}; emulator {}; iothreads {}",
                g.guest,
                vcpus.join(", "),
                rename(&g.emulator_cpus),
                rename(&g.iothread_cpus)
            )
        })
        .collect();
    format!("{}: {}", kind.as_str(), parts.join(" | "))
}

/// The fleet's layouts of one host: each layout as it is without variants; with variants one
/// per arm (`layout/variant`, [`crate::report::arm_name`]), each with the layout's placement
/// and its own budget, so that variants are judged as layouts are and never merge.
fn host_layouts(r: &Report) -> Vec<HostLayout> {
    let mut out = Vec::new();
    for v in &r.layouts {
        let guests: Vec<&GuestPlacement> = v.guests.iter().map(|g| &g.planned).collect();
        let placement = placement_text(v.kind, &guests);
        let mut arms: Vec<Option<&str>> = Vec::new();
        for g in r.groups.iter().filter(|g| g.layout == v.name) {
            if !arms.contains(&g.variant.as_deref()) {
                arms.push(g.variant.as_deref());
            }
        }
        if arms.iter().all(Option::is_none) {
            out.push(HostLayout {
                name: v.name.clone(),
                kind: v.kind,
                placement,
                budget: v.budget,
            });
            continue;
        }
        for arm in arms {
            out.push(HostLayout {
                name: arm_name(&v.name, arm),
                kind: v.kind,
                placement: placement.clone(),
                budget: budget::layout_status(r.groups.iter().filter(|g| g.is_arm(&v.name, arm))),
            });
        }
    }
    out
}

/// Reads one results directory and keeps what the fleet report needs. The label is left
/// empty: labels are assigned once every host is read ([`super::input::assign`]).
pub fn load_host(dir: &Path) -> Result<FleetHost, LoadError> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LoadError::Missing(dir.to_path_buf()))
        }
        Ok(m) if !m.is_dir() => return Err(LoadError::NotADir(dir.to_path_buf())),
        _ => {}
    }
    let (r, origin) = source::read(dir).map_err(|e| LoadError::Report(e.runs))?;
    let source = match origin {
        Origin::ReportJson => Source::ReportJson,
        Origin::Runs(why) => Source::Runs {
            why: why.to_string(),
        },
    };
    let facts = read_versioned::<HostFacts>(&dir.join(HOST_FILE))
        .ok()
        .or_else(|| r.host.clone());
    let checks = match hostchecks::load(dir) {
        c if c.is_empty() => r.host_checks.clone(),
        c => c,
    };
    let ok = r.runs.iter().filter(|x| x.outcome.ok).count();
    Ok(FleetHost {
        label: String::new(),
        label_source: LabelSource::Directory,
        dir: dir.display().to_string(),
        source,
        run_id: r.run_id.clone(),
        facts,
        checks,
        accels: r.accels.clone(),
        guest_preempt_rt: r.guest_kernels.preempt_rt(),
        runs: RunCounts {
            read: r.runs.len(),
            ok,
            failed: r.runs.len() - ok,
            skipped: r.skipped.len(),
            missing: r.missing_runs.len(),
        },
        skipped: r.skipped.clone(),
        budgets: r.budgets.clone(),
        layouts: host_layouts(&r),
        groups: r
            .groups
            .iter()
            .map(|g| HostGroup {
                layout: g.arm(),
                scenario: g.scenario.clone(),
                workload: g.workload,
                ok_runs: g.ok_runs.len(),
                failed_runs: g.failed_runs.len(),
                failures: g.failures.clone(),
                clocks: g.clocks.clone(),
                samples: g.stats.samples,
                p999: g.stats.p999_ns,
                max_ns: g.stats.max_ns,
                p999_spread: g.spread.p999,
                unstable: g.stability.unstable,
                budget: g.budget.clone(),
            })
            .collect(),
        verdicts: r.verdicts.clone(),
        reported_failed: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpuset::CpuSet;
    use crate::plan::{Sched, VcpuPlacement};

    fn guest(vcpus: &[u32], emu: &str) -> GuestPlacement {
        GuestPlacement {
            guest: "rt".into(),
            pinned: true,
            vcpus: vcpus
                .iter()
                .enumerate()
                .map(|(i, &c)| VcpuPlacement {
                    vcpu: i as u32,
                    realtime: i > 0,
                    cpus: CpuSet::parse(&c.to_string()).unwrap(),
                    sched: if i > 0 { Sched::fifo(1) } else { Sched::OTHER },
                })
                .collect(),
            emulator_cpus: CpuSet::parse(emu).unwrap(),
            iothread_cpus: CpuSet::parse(emu).unwrap(),
        }
    }

    #[test]
    fn the_same_placement_on_other_pcpus_reads_the_same() {
        let a = guest(&[1, 2, 3], "1");
        let b = guest(&[5, 6, 7], "5");
        let t = placement_text(LayoutKind::Vcpu0, &[&a]);
        assert_eq!(
            t,
            "vcpu0: rt: vcpu0 {0} other, vcpu1 {1} fifo:1, vcpu2 {2} fifo:1; emulator {0}; iothreads {0}"
        );
        assert_eq!(t, placement_text(LayoutKind::Vcpu0, &[&b]));
        // The emulator beside an RT vCPU instead of vCPU0: another placement.
        let c = guest(&[5, 6, 7], "6");
        assert_ne!(t, placement_text(LayoutKind::Vcpu0, &[&c]));
        // A dedicated emulator pCPU, and floating over the guest's pCPUs.
        assert!(
            placement_text(LayoutKind::Isolate, &[&guest(&[1, 2, 3], "4")])
                .ends_with("emulator {3}; iothreads {3}")
        );
        assert!(
            placement_text(LayoutKind::Share, &[&guest(&[1, 2, 3], "1-3")])
                .ends_with("emulator {0-2}; iothreads {0-2}")
        );
        let mut f = guest(&[1, 2, 3], "0-7");
        f.pinned = false;
        assert_eq!(
            placement_text(LayoutKind::Float, &[&f]),
            "float: rt: unpinned"
        );
    }

    #[test]
    fn a_missing_or_plain_path_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let gone = tmp.path().join("gone");
        let e = load_host(&gone).unwrap_err();
        assert!(matches!(e, LoadError::Missing(_)), "{e}");
        assert!(e.to_string().contains("does not exist"), "{e}");
        let file = tmp.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(matches!(load_host(&file), Err(LoadError::NotADir(_))));
        let e = load_host(tmp.path()).unwrap_err();
        assert!(
            e.to_string().contains("not a pinlat results directory"),
            "{e}"
        );
    }
}
