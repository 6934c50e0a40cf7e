//! Each readiness judgement on fixtures of facts, and the verdict's rules.

use super::*;
use crate::report::hostchecks::{CheckLine, DoctorSummary};
use crate::wire::{ClockInfo, ClockSource, GuestIrq, GuestTuning, SysctlReadBack, SystemFacts};

/// The facts of a guest tuned as the `realtime-virtual-guest` preset with `idle=poll` leaves
/// it: RT vCPUs 1-2, every check ok.
fn ready_facts() -> SystemFacts {
    SystemFacts {
        kernel_release: "6.1.0-rt-amd64".into(),
        kernel_version: "#1 SMP PREEMPT_RT".into(),
        preempt_rt: true,
        clocksource: "tsc".into(),
        cmdline: "console=ttyS0 isolcpus=managed_irq,domain,1-2 nohz=on nohz_full=1-2 rcu_nocbs=1-2 irqaffinity=0 idle=poll".into(),
        isolated_cpus: "1-2".into(),
        cpu_count: 3,
        clock: ClockInfo {
            source: ClockSource::Tsc,
            tsc_hz: Some(1),
            invariant_tsc: true,
            calibration_spread_ppm: None,
        },
        devices: Default::default(),
        tuning: Some(GuestTuning {
            cpuidle_driver: Some("none".into()),
            cpuidle_governor: Some("menu".into()),
            isolated: Some("1-2".into()),
            nohz_full: Some("1-2".into()),
            timer_migration: Some("0".into()),
            sched_rt_runtime_us: Some("-1".into()),
            irqs: Some(vec![
                GuestIrq {
                    irq: 4,
                    actions: vec!["ttyS0".into()],
                    effective: Some("0".into()),
                    affinity: Some("0".into()),
                },
                GuestIrq {
                    irq: 3,
                    actions: vec!["ttyS1".into()],
                    effective: Some("0".into()),
                    affinity: Some("0".into()),
                },
            ]),
            sysctls: vec![SysctlReadBack {
                key: "kernel.sched_rt_runtime_us".into(),
                written: "-1".into(),
                read: "-1".into(),
            }],
        }),
    }
}

fn rt() -> CpuSet {
    CpuSet::parse("1-2").unwrap()
}

fn tuning(f: &mut SystemFacts) -> &mut GuestTuning {
    f.tuning.as_mut().unwrap()
}

fn check(f: &SystemFacts, id: &str) -> Check {
    judge(f, &rt())
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

#[test]
fn a_tuned_guest_passes_every_check() {
    let checks = judge(&ready_facts(), &rt());
    let ids: Vec<&str> = checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "guest.preempt_rt",
            "guest.cmdline",
            "guest.clocksource",
            "guest.cpuidle",
            "guest.isolcpus",
            "guest.nohz_full",
            "guest.timer_migration",
            "guest.sched_rt_runtime_us",
            "guest.irqs",
            "guest.sysctls"
        ]
    );
    for c in &checks {
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert!(c.fix.is_empty(), "{c:?}");
    }
}

#[test]
fn preempt_rt() {
    let mut f = ready_facts();
    f.preempt_rt = false;
    let c = check(&f, "guest.preempt_rt");
    assert_eq!(c.status, Status::Fail);
    assert!(c.fix.contains("linux-image-rt-amd64"), "{c:?}");
}

#[test]
fn cmdline_names_what_is_missing_and_counts_nohz_full_as_rcu_nocbs() {
    let mut f = ready_facts();
    f.cmdline = "console=ttyS0 nohz_full=1-2 irqaffinity=0".into();
    let c = check(&f, "guest.cmdline");
    assert_eq!(c.status, Status::Fail);
    assert!(c.found.starts_with("isolcpus not covering"), "{c:?}");
    f.cmdline = "console=ttyS0 isolcpus=1 nohz_full=1 rcu_nocbs=1".into();
    let c = check(&f, "guest.cmdline");
    assert!(
        c.found.contains("isolcpus, nohz_full, rcu_nocbs"),
        "vCPU 2 is in none of them: {c:?}"
    );
    f.cmdline = String::new();
    assert_eq!(check(&f, "guest.cmdline").status, Status::Unknown);
}

#[test]
fn clocksource() {
    let mut f = ready_facts();
    f.clocksource = "kvm-clock".into();
    assert_eq!(check(&f, "guest.clocksource").status, Status::Ok);
    f.clocksource = "hpet".into();
    let c = check(&f, "guest.clocksource");
    assert_eq!(c.status, Status::Fail);
    assert!(c.fix.contains("tsc=reliable"), "{c:?}");
    f.clocksource = "tsc-early".into();
    let c = check(&f, "guest.clocksource");
    assert_eq!(
        c.status,
        Status::Warn,
        "the boot-time TSC clocksource is transient"
    );
    assert!(c.found.contains("about a second after boot"), "{}", c.found);
    f.clocksource = String::new();
    assert_eq!(check(&f, "guest.clocksource").status, Status::Unknown);
}

#[test]
fn cpuidle_poll_haltpoll_halt_and_unknown() {
    let mut f = ready_facts();
    assert!(check(&f, "guest.cpuidle").found.starts_with("idle=poll"));
    f.cmdline = f.cmdline.replace(" idle=poll", "");
    let c = check(&f, "guest.cpuidle");
    assert_eq!(c.status, Status::Warn, "halting on driver none: {c:?}");
    assert!(c.fix.contains("guest.idle"), "{c:?}");
    // guest.idle = "haltpoll" that did not register (TCG, a modular driver) did not apply.
    f.cmdline += " cpuidle_haltpoll.force=1";
    let c = check(&f, "guest.cpuidle");
    assert_eq!(c.status, Status::Fail, "{c:?}");
    assert!(c.found.contains("haltpoll did not register"), "{c:?}");
    tuning(&mut f).cpuidle_driver = Some("haltpoll".into());
    assert_eq!(check(&f, "guest.cpuidle").status, Status::Ok);
    f.cmdline = f.cmdline.replace(" cpuidle_haltpoll.force=1", "");
    tuning(&mut f).cpuidle_driver = None;
    assert_eq!(check(&f, "guest.cpuidle").status, Status::Unknown);
}

#[test]
fn isolcpus_and_nohz_full_as_the_kernel_applied_them() {
    let mut f = ready_facts();
    tuning(&mut f).isolated = Some(String::new());
    let c = check(&f, "guest.isolcpus");
    assert_eq!(c.status, Status::Fail);
    assert_eq!(c.found, "RT vCPUs 1-2 not in isolated (none)");
    tuning(&mut f).nohz_full = Some("(null)".into());
    assert_eq!(check(&f, "guest.nohz_full").status, Status::Fail);
    tuning(&mut f).nohz_full = Some("1".into());
    assert!(check(&f, "guest.nohz_full")
        .found
        .starts_with("RT vCPUs 2 not in nohz_full"));
    // A kernel without CONFIG_NO_HZ_FULL has no file: unknown, never ok.
    tuning(&mut f).nohz_full = None;
    assert_eq!(check(&f, "guest.nohz_full").status, Status::Unknown);
    tuning(&mut f).isolated = Some("garbage".into());
    assert_eq!(check(&f, "guest.isolcpus").status, Status::Unknown);
}

#[test]
fn timer_migration_and_rt_throttling_warn() {
    let mut f = ready_facts();
    tuning(&mut f).timer_migration = Some("1".into());
    tuning(&mut f).sched_rt_runtime_us = Some("950000".into());
    assert_eq!(check(&f, "guest.timer_migration").status, Status::Warn);
    let c = check(&f, "guest.sched_rt_runtime_us");
    assert_eq!(c.status, Status::Warn);
    assert!(c.fix.contains("kernel.sched_rt_runtime_us"), "{c:?}");
    tuning(&mut f).timer_migration = None;
    tuning(&mut f).sched_rt_runtime_us = None;
    assert_eq!(check(&f, "guest.timer_migration").status, Status::Unknown);
    assert_eq!(
        check(&f, "guest.sched_rt_runtime_us").status,
        Status::Unknown
    );
}

#[test]
fn irqs_on_rt_vcpus_fail_by_effective_affinity() {
    let mut f = ready_facts();
    // Allowed everywhere, delivered to vCPU 0: fine.
    tuning(&mut f).irqs.as_mut().unwrap()[0].affinity = Some("0-2".into());
    assert_eq!(check(&f, "guest.irqs").status, Status::Ok);
    // Delivered to vCPU 2.
    tuning(&mut f).irqs.as_mut().unwrap()[1].effective = Some("2".into());
    let c = check(&f, "guest.irqs");
    assert_eq!(c.status, Status::Fail);
    assert_eq!(c.found, "IRQ 3 (ttyS1) on vCPU 2");
    assert!(c.fix.contains("irqaffinity"), "{c:?}");
    // Without an effective affinity, the allowed one counts.
    tuning(&mut f).irqs.as_mut().unwrap()[1].effective = None;
    tuning(&mut f).irqs.as_mut().unwrap()[1].affinity = Some("0-2".into());
    assert_eq!(check(&f, "guest.irqs").found, "IRQ 3 (ttyS1) on vCPU 1-2");
    tuning(&mut f).irqs = None;
    assert_eq!(check(&f, "guest.irqs").status, Status::Unknown);
}

#[test]
fn sysctls_read_back_otherwise_fail_and_none_means_no_check() {
    let mut f = ready_facts();
    tuning(&mut f).sysctls[0].read = "950000".into();
    assert_eq!(check(&f, "guest.sysctls").status, Status::Fail);
    tuning(&mut f).sysctls.clear();
    assert!(!judge(&f, &rt()).iter().any(|c| c.id == "guest.sysctls"));
}

#[test]
fn an_agent_without_the_facts_leaves_them_unknown() {
    let mut f = ready_facts();
    f.tuning = None;
    // Without idle=poll on the command line, the cpuidle facts are all there is.
    f.cmdline = f.cmdline.replace(" idle=poll", "");
    let checks = judge(&f, &rt());
    for id in [
        "guest.cpuidle",
        "guest.isolcpus",
        "guest.nohz_full",
        "guest.timer_migration",
        "guest.sched_rt_runtime_us",
        "guest.irqs",
    ] {
        let c = checks.iter().find(|c| c.id == id).unwrap();
        assert_eq!(c.status, Status::Unknown, "{c:?}");
    }
}

/// A record of guest `rt` in `variant` whose hello carries `facts`.
fn record(variant: Option<&str>, facts: SystemFacts) -> RunRecord {
    let mut r = crate::result::test_record();
    r.variant = variant.map(String::from);
    r.name = format!("vcpu0.{}.idle.busy-poll.r1", variant.unwrap_or("-"));
    r.guests[0].hello = Some(crate::wire::Hello {
        schema_version: crate::wire::SCHEMA_VERSION,
        agent_version: "0".into(),
        facts,
        config: crate::agentcfg::AgentConfig::new(
            crate::kinds::WorkloadKind::BusyPoll,
            vec![1, 2],
            1000,
        ),
        sent_mono_ns: None,
    });
    r
}

fn doctor(fail: usize) -> HostChecks {
    HostChecks {
        doctor: Some(DoctorSummary {
            pass: 10,
            warn: 1,
            fail,
            skip: 0,
            rt_cpus: "1".into(),
            problems: (0..fail)
                .map(|i| CheckLine {
                    id: format!("kernel.check{i}"),
                    status: "fail".into(),
                    found: String::new(),
                    fix: String::new(),
                })
                .collect(),
        }),
        calibration: None,
    }
}

fn untuned() -> SystemFacts {
    let mut f = ready_facts();
    f.cmdline = "console=ttyS0 panic=-1".into();
    let t = tuning(&mut f);
    t.isolated = Some(String::new());
    t.nohz_full = Some("(null)".into());
    t.sysctls.clear();
    f
}

#[test]
fn the_verdict_is_the_best_variant_and_names_it() {
    let mut acc = Acc::default();
    acc.add(&record(Some("untuned"), untuned()));
    acc.add(&record(Some("rvg"), ready_facts()));
    acc.add(&record(Some("rvg"), ready_facts()));
    let r = acc.finish(&doctor(0), true).unwrap();
    assert!(r.host_ready, "{}", r.host);
    assert_eq!(r.guests.len(), 2);
    assert_eq!(r.guests[1].runs, 2);
    assert!(!r.guests[0].ready && r.guests[1].ready);
    assert_eq!(
        r.variants
            .iter()
            .map(|v| (v.variant.as_deref().unwrap(), v.verdict))
            .collect::<Vec<_>>(),
        [
            ("untuned", Verdict::HostOnly),
            ("rvg", Verdict::FullStackRt)
        ]
    );
    assert_eq!(r.verdict, Verdict::FullStackRt);
    assert!(r.statement.contains("variant(s) rvg"), "{}", r.statement);
    assert_eq!(r.tcg_note.as_deref(), Some(TCG_NOTE));
}

#[test]
fn host_only_not_ready_and_no_section() {
    let mut acc = Acc::default();
    acc.add(&record(None, untuned()));
    let r = acc.finish(&doctor(0), false).unwrap();
    assert_eq!(r.verdict, Verdict::HostOnly);
    assert!(r.statement.contains("guest(s) rt"), "{}", r.statement);
    assert_eq!(r.tcg_note, None);

    let mut acc = Acc::default();
    acc.add(&record(None, ready_facts()));
    let r = acc.finish(&doctor(2), false).unwrap();
    assert_eq!(r.verdict, Verdict::NotReady);
    assert!(
        r.statement.ends_with("the guest side is ready (the guest)"),
        "{}",
        r.statement
    );
    assert!(
        r.host.contains("kernel.check0, kernel.check1"),
        "{}",
        r.host
    );

    // No doctor.json: the host was not shown ready.
    let mut acc = Acc::default();
    acc.add(&record(None, ready_facts()));
    let r = acc.finish(&HostChecks::default(), false).unwrap();
    assert_eq!((r.host_ready, r.verdict), (false, Verdict::NotReady));

    // Agents before the facts: no section at all.
    let mut old = ready_facts();
    old.tuning = None;
    let mut acc = Acc::default();
    acc.add(&record(None, old));
    assert_eq!(acc.finish(&doctor(0), false), None);
}
