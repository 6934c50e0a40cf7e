//! Integration tests of `pinlat merge`'s library side ([`pinlat::report::fleet`]) on results
//! directories written by the fixture builder, varied per host: golden files for the Markdown
//! and JUnit outputs, and the rules (outliers, judgements, labels, what is not comparable,
//! failed hosts) on a fleet that has one of each.
//!
//! `PINLAT_BLESS=1 cargo test -p pinlat --test core -- --test-threads=1` rewrites the golden
//! files.

mod merging;

use std::path::Path;

use pinlat::config::{LayoutKind, ScenarioKind, WorkloadKind};
use pinlat::kinds::Accel;
use pinlat::report::fleet::{self, FailedHostArg, FleetReport, HostArg};
use pinlat::report::{self, REPORT_SCHEMA_VERSION};
use pinlat::schema::HostFacts;
use pinlat_test_infra::fixtures::{self, Spec};

use crate::report::{golden, read};

/// A doctor.json with one failed and one warning check.
const DOCTOR: &str = r#"{"schema_version":1,"rt_cpus":"1-4","rt_cpus_source":"config","checks":[
    {"id":"kernel.preempt_rt","status":"pass","found":"PREEMPT_RT","fix":""},
    {"id":"cpu.governor","status":"warn","found":"powersave","fix":"set performance"},
    {"id":"irq.affinity","status":"fail","found":"eth0 on CPU 2","fix":"move it"}]}"#;

/// One host's directory: `specs` measured on `facts`, with the basic budgets unless told.
struct Host<'a> {
    dir: &'a str,
    specs: Vec<Spec>,
    budgets: &'a str,
    facts: HostFacts,
    /// Write report.json (as `pinlat run` does).
    report: bool,
}

impl<'a> Host<'a> {
    fn new(dir: &'a str, hostname: &'a str) -> Self {
        let mut facts = fixtures::host_facts();
        facts.local.hostname = Some(hostname.into());
        facts.local.kernel_release = format!("6.1.0-{dir}-rt-amd64");
        Host {
            dir,
            specs: fixtures::basic_specs(),
            budgets: fixtures::basic_budgets(),
            facts,
            report: true,
        }
    }

    fn write(self, root: &Path) -> HostArg {
        let dir = root.join(self.dir);
        fixtures::write_dir_on(
            &dir,
            &format!("run-{}", self.dir),
            &self.specs,
            self.budgets,
            &self.facts,
        )
        .unwrap();
        if self.report {
            write_report_json(&dir);
        }
        HostArg { label: None, dir }
    }
}

/// Writes `dir`'s report.json as `pinlat run` does (only that output: the fleet reads no
/// other).
fn write_report_json(dir: &Path) {
    use pinlat::report::Exporter as _;
    let r = report::build(dir, &mut |_| {}).unwrap();
    for f in report::json::JsonExporter.report_files(&r).unwrap() {
        std::fs::write(dir.join(f.name), f.contents).unwrap();
    }
}

/// The test fleet, in `root`:
/// - `lab1`, `lab3`: the basic set (share, vcpu0, isolate × idle, mgmt-poll × busy-poll, timer ×
///   2 repetitions) on a PREEMPT_RT host; lab1 with a doctor.json; lab3 also given as failed
///   (`--failed-host lab3:fetch incomplete`), so its results stay;
/// - `lab2`: the same, but vcpu0's second idle timer run failed (guest never said hello);
/// - `lab4`: vcpu0 under mgmt-poll has a far worse timer tail (p99.9 in it): an outlier above,
///   and a loss against share on that host;
/// - `lab5`: every run under TCG, a non-RT host kernel, another CPU, no report.json (read from
///   runs/);
/// - `lab6`: ran idle only, and its `vcpu0` is placed as `isolate` places (same name, other
///   placement);
/// - `lab1-rerun`: hostname lab1 too, one repetition, other budgets, and a report.json of a
///   schema version this pinlat does not know;
/// - `missing` (no such directory), `empty` (a directory without runs/), and `lab9` given as
///   failed (`--failed-host lab9:unreachable`).
pub fn write_fleet(root: &Path) -> (Vec<HostArg>, Vec<FailedHostArg>) {
    let mut args = Vec::new();
    let lab1 = Host::new("lab1", "lab1");
    args.push(lab1.write(root));
    std::fs::write(root.join("lab1/doctor.json"), DOCTOR).unwrap();
    write_report_json(&root.join("lab1"));

    let mut lab2 = Host::new("lab2", "lab2");
    for s in &mut lab2.specs {
        if s.layout == "vcpu0"
            && s.scenario == ScenarioKind::Idle
            && s.workload == WorkloadKind::Timer
            && s.rep == 2
        {
            s.failed = true;
        }
    }
    args.push(lab2.write(root));
    args.push(Host::new("lab3", "lab3").write(root));

    let mut lab4 = Host::new("lab4", "lab4");
    for s in &mut lab4.specs {
        if s.layout == "vcpu0"
            && s.scenario == ScenarioKind::MgmtPoll
            && s.workload == WorkloadKind::Timer
        {
            s.tail_ns = (200_000, 260_000);
            s.tail_every = 500;
        }
    }
    args.push(lab4.write(root));

    let mut lab5 = Host::new("lab5", "lab5");
    for s in &mut lab5.specs {
        s.accel = Accel::Tcg;
    }
    lab5.facts.accel = Accel::Tcg;
    lab5.facts.accel_note = Some("auto: KVM not usable, fell back to TCG".into());
    lab5.facts.local.preempt_rt = false;
    lab5.facts.local.kernel_version = "#1 SMP PREEMPT_DYNAMIC".into();
    lab5.facts.local.cpu_model = "Other CPU".into();
    lab5.report = false;
    args.push(lab5.write(root));

    let mut lab6 = Host::new("lab6", "lab6");
    lab6.specs.retain(|s| s.scenario == ScenarioKind::Idle);
    for s in &mut lab6.specs {
        if s.layout == "vcpu0" {
            s.kind = LayoutKind::Isolate;
        }
    }
    args.push(lab6.write(root));

    let mut rerun = Host::new("lab1-rerun", "lab1");
    rerun.specs.retain(|s| s.rep == 1);
    rerun.budgets = "[budgets.timer]\nmax_us = 100\n";
    args.push(rerun.write(root));
    let path = root.join("lab1-rerun/report.json");
    let text = read(&path).replacen(
        &format!("\"schema_version\": {REPORT_SCHEMA_VERSION}"),
        "\"schema_version\": 99",
        1,
    );
    std::fs::write(&path, text).unwrap();

    std::fs::create_dir(root.join("empty")).unwrap();
    args.push(HostArg::parse(&root.join("missing").display().to_string()).unwrap());
    args.push(HostArg::parse(&root.join("empty").display().to_string()).unwrap());
    let failed = ["lab9:unreachable", "lab3:fetch incomplete"]
        .iter()
        .map(|f| FailedHostArg::parse(f).unwrap())
        .collect();
    (args, failed)
}

/// The test fleet merged.
pub fn merged() -> (tempfile::TempDir, FleetReport) {
    let tmp = tempfile::tempdir().unwrap();
    let (args, failed) = write_fleet(tmp.path());
    let r = fleet::merge(&args, &failed, &mut |_| {});
    (tmp, r)
}

/// An output with the temporary directory's path replaced, for golden files.
fn portable(text: &str, root: &Path) -> String {
    text.replace(&root.display().to_string(), "$FLEET")
}

#[test]
fn golden_fleet() {
    let (tmp, r) = merged();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    fleet::write_all(&r, &out).unwrap();
    golden(
        "fleet.report.md",
        &portable(&read(&out.join("report.md")), tmp.path()),
    );
    golden(
        "fleet.junit.xml",
        &portable(&read(&out.join("junit.xml")), tmp.path()),
    );
    let back = FleetReport::read_json(&out.join("report.json")).unwrap();
    assert_eq!(back, r);
    assert_eq!(back.schema_version, fleet::FLEET_SCHEMA_VERSION);
}
