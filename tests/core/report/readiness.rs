//! The guest readiness section in every output of a report whose agents reported the guest's
//! tuning facts (the TCG fixture with facts added, and a doctor that passed): a golden file of
//! the Markdown section, the same in HTML, JSON (read back) and JUnit; and a report.json from
//! before the section still reads.

use std::path::Path;

use pinlat::report::readiness::Verdict;
use pinlat::report::{self, Report};
use pinlat::result::RunRecord;
use pinlat::wire::{GuestIrq, GuestTuning, SysctlReadBack};
use pinlat_test_infra::fixtures::copy_committed as copy_fixture;

use super::{golden, read};

/// A PREEMPT_RT guest as `guest.preset = "realtime-virtual-guest"`, `guest.idle = "poll"` left it, but
/// with the console's IRQ on RT vCPU 2 in run `irq_on_rt` (one fact that fails). The
/// fixture's unreadable run file is left as it is.
fn add_facts(dir: &Path, irq_on_rt: &str) {
    for e in std::fs::read_dir(dir.join("runs")).unwrap() {
        let path = e.unwrap().path();
        let Ok(mut rec) = serde_json::from_str::<RunRecord>(&read(&path)) else {
            continue;
        };
        let timer = rec.name == irq_on_rt;
        for g in &mut rec.guests {
            let Some(h) = &mut g.hello else { continue };
            // The TCG fixture's guest kernel is not PREEMPT_RT; this one is.
            h.facts.preempt_rt = true;
            h.facts.kernel_release = "6.1.0-fixture-rt-amd64".into();
            h.facts.kernel_version = "#1 SMP PREEMPT_RT fixture".into();
            h.facts.cmdline =
                "console=ttyS0 isolcpus=managed_irq,domain,1-2 nohz=on nohz_full=1-2 rcu_nocbs=1-2 irqaffinity=0 idle=poll"
                    .into();
            h.facts.tuning = Some(GuestTuning {
                cpuidle_driver: Some("none".into()),
                cpuidle_governor: Some("menu".into()),
                isolated: Some("1-2".into()),
                nohz_full: Some("1-2".into()),
                timer_migration: Some("0".into()),
                sched_rt_runtime_us: Some("-1".into()),
                irqs: Some(vec![GuestIrq {
                    irq: 4,
                    actions: vec!["ttyS0".into()],
                    effective: Some(if timer { "2" } else { "0" }.into()),
                    affinity: Some("0-2".into()),
                }]),
                sysctls: vec![SysctlReadBack {
                    key: "kernel.sched_rt_runtime_us".into(),
                    written: "-1".into(),
                    read: "-1".into(),
                }],
            });
        }
        std::fs::write(&path, serde_json::to_string(&rec).unwrap()).unwrap();
    }
    std::fs::write(
        dir.join("doctor.json"),
        r#"{"schema_version":1,"rt_cpus":"1-2","rt_cpus_source":"config","checks":[
            {"id":"kernel.preempt_rt","status":"pass","found":"PREEMPT_RT","fix":""},
            {"id":"sched.rt_throttling","status":"warn","found":"950000","fix":"set -1"}]}"#,
    )
    .unwrap();
}

fn section(md: &str) -> &str {
    let from = md.find("## Guest readiness").expect("the section");
    let to = md[from..].find("## Verdicts").unwrap() + from;
    &md[from..to]
}

#[test]
fn golden_readiness_section_in_every_format() {
    let dir = copy_fixture("runs-tcg");
    // Facts that differ between runs: the worst run is shown, whatever the order.
    add_facts(dir.path(), "vcpu0.idle.timer.r1");
    let r = report::write_all(dir.path()).unwrap();
    let rd = r.readiness.as_ref().expect("facts were reported");
    assert_eq!(rd.verdict, Verdict::HostOnly, "{}", rd.statement);
    assert_eq!(rd.guests.len(), 1);
    assert_eq!(rd.guests[0].from_run, "vcpu0.idle.timer.r1");
    assert_eq!(rd.guests[0].runs, 2, "one run failed before its hello");
    assert!(
        rd.tcg_note.is_some(),
        "TCG runs say what the verdict is about"
    );
    let md = read(&dir.path().join("report.md"));
    golden("readiness.section.md", section(&md));
    let html = read(&dir.path().join("report.html"));
    assert!(html.contains("<h2>Guest readiness</h2>"));
    assert!(html
        .contains("Verdict: host-only: the host is ready, the guest side is not (guest(s) rt)."));
    let junit = read(&dir.path().join("junit.xml"));
    assert!(junit.contains(r#"<property name="readiness" value="host-only"/>"#));
    let back = Report::read_json(&dir.path().join("report.json")).unwrap();
    assert_eq!(back.readiness, r.readiness);

    // The same facts without the stray IRQ, and a doctor that passed: full-stack RT.
    let dir = copy_fixture("runs-tcg");
    add_facts(dir.path(), "none");
    let rd = report::build(dir.path(), &mut |_| {})
        .unwrap()
        .readiness
        .unwrap();
    assert_eq!(rd.verdict, Verdict::FullStackRt, "{}", rd.statement);
    assert_eq!(rd.guests[0].from_run, "share.idle.timer.r1");
}

#[test]
fn reports_without_facts_have_no_section_and_old_report_json_reads() {
    let dir = copy_fixture("runs-tcg");
    let r = report::write_all(dir.path()).unwrap();
    assert_eq!(r.readiness, None);
    let json = read(&dir.path().join("report.json"));
    assert!(!json.contains("\"readiness\""));
    assert!(!read(&dir.path().join("report.md")).contains("Guest readiness"));
    // A report.json written before the section existed.
    add_facts(dir.path(), "none");
    let with = report::write_all(dir.path()).unwrap();
    let mut v = serde_json::to_value(&with).unwrap();
    v.as_object_mut().unwrap().remove("readiness");
    let old: Report = serde_json::from_value(v).unwrap();
    assert_eq!(old.readiness, None);
}
