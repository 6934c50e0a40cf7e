//! The classifier on consoles recorded from the real guest kernel (`tests/fixtures/console/`,
//! see its README) and the precedence rules; `input.rs` feeds it hostile input.

mod input;

use super::*;
use crate::result::Stage;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/console/",
            $name
        ))
        .as_slice()
    };
}

pub(super) const TIMER_PANIC: &[u8] = fixture!("timer-check-panic.log");
const INIT_EXITS: &[u8] = fixture!("init-exits-panic.log");
const SYSRQ_CRASH: &[u8] = fixture!("sysrq-crash-panic.log");
const NO_ROOT_FS: &[u8] = fixture!("no-root-fs-panic.log");
const NO_WORKING_INIT: &[u8] = fixture!("no-working-init-panic.log");
pub(super) const OOPS_SURVIVED: &[u8] = fixture!("oops-survived.log");
pub(super) const OOPS_THEN_PANIC: &[u8] = fixture!("oops-then-panic.log");
pub(super) const HUNG_RCU_STARVED: &[u8] = fixture!("vcpu-frozen-hung-task-rcu-starved.log");
const RCU_SOFT_LOCKUP: &[u8] = fixture!("vcpu-frozen-rcu-stall-soft-lockup.log");
const ALL_THREE: &[u8] = fixture!("vcpu-frozen-all-three.log");
const VM_STOPPED: &[u8] = fixture!("vm-stopped-soft-lockup.log");
const HARD_LOCKUP: &[u8] = fixture!("hard-lockup.constructed.log");
const VERBOSE_OK: &[u8] = fixture!("verbose-boot-ok.log");

/// Facts of a guest that never said hello; QEMU still running at the 60 s boot deadline.
pub(super) fn no_hello() -> GuestFacts {
    GuestFacts {
        deadline_s: Some(60),
        ..GuestFacts::default()
    }
}

/// Facts of a guest that said hello and then QEMU exited.
fn exited_after_hello() -> GuestFacts {
    GuestFacts {
        hello: true,
        qemu_exit: Some("exit status 0".into()),
        ..GuestFacts::default()
    }
}

fn has(evidence: &[String], needle: &str) -> bool {
    evidence.iter().any(|l| l.contains(needle))
}

#[track_caller]
pub(super) fn panic_of(cause: &FailureCause) -> (&Phase, &str, Option<&str>, &[String]) {
    match cause {
        FailureCause::KernelPanic {
            phase,
            message,
            after_oops,
            evidence,
        } => (phase, message, after_oops.as_deref(), evidence),
        other => panic!("expected a kernel panic, got {other:?}"),
    }
}

#[test]
fn timer_check_panic_is_a_boot_failure_with_its_evidence() {
    // The case: emulator and SCHED_FIFO vCPU on one pCPU; QEMU exits on the panic.
    let facts = GuestFacts {
        qemu_exit: Some("exit status 0".into()),
        ..no_hello()
    };
    let cause = classify(TIMER_PANIC, &facts);
    let (phase, message, after, evidence) = panic_of(&cause);
    assert_eq!(*phase, Phase::Boot);
    assert!(message.starts_with("IO-APIC + timer doesn't work!  Boot with apic=debug"));
    assert_eq!(after, None);
    assert!(has(evidence, "..... failed :(."), "{evidence:#?}");
    assert!(has(evidence, "Comm: swapper/0"), "{evidence:#?}");
    assert!(has(evidence, "setup_IO_APIC+0x803/0x83b"), "{evidence:#?}");
    assert!(
        !has(evidence, "dump_stack_lvl"),
        "helpers are not evidence: {evidence:#?}"
    );
    assert_eq!(
        cause.to_string(),
        "guest kernel panic during boot: IO-APIC + timer doesn't work! \
         (timer check failed: no timer interrupt reached the guest)"
    );
    assert_eq!(cause.stage(), Some(Stage::Boot));
}

#[test]
fn init_exiting_panics_the_kernel() {
    let cause = classify(INIT_EXITS, &exited_after_hello());
    let (phase, message, _, evidence) = panic_of(&cause);
    assert_eq!(*phase, Phase::Run);
    assert_eq!(message, "Attempted to kill init! exitcode=0x00000100");
    assert!(has(evidence, "__x64_sys_exit_group"), "{evidence:#?}");
    assert_eq!(
        cause.to_string(),
        "guest kernel panic during the run: Attempted to kill init! exitcode=0x00000100 \
         (PID 1, the agent, exited or was killed)"
    );
    assert_eq!(cause.stage(), Some(Stage::Measure));
}

#[test]
fn sysrq_crash_panics_the_kernel() {
    let cause = classify(SYSRQ_CRASH, &no_hello());
    let (_, message, _, evidence) = panic_of(&cause);
    assert_eq!(message, "sysrq triggered crash");
    assert!(has(evidence, "sysrq: Trigger a crash"), "{evidence:#?}");
    assert!(has(evidence, "sysrq_handle_crash"), "{evidence:#?}");
}

#[test]
fn missing_init_panics_the_kernel() {
    let cause = classify(NO_ROOT_FS, &no_hello());
    let (_, message, _, evidence) = panic_of(&cause);
    assert_eq!(
        message,
        "VFS: Unable to mount root fs on unknown-block(0,0)"
    );
    assert!(
        has(evidence, "No filesystem could mount root"),
        "{evidence:#?}"
    );
    assert!(cause.to_string().contains("no /init in the initramfs"));

    let cause = classify(NO_WORKING_INIT, &no_hello());
    let (_, message, _, evidence) = panic_of(&cause);
    assert!(message.starts_with("No working init found.  Try passing init="));
    assert!(
        has(evidence, "Failed to execute /init (error -8)"),
        "{evidence:#?}"
    );
    assert_eq!(
        cause.to_string(),
        "guest kernel panic during boot: No working init found. (/init could not be executed)"
    );
}

#[test]
fn an_oops_followed_by_a_panic_is_a_panic_after_an_oops() {
    let cause = classify(OOPS_THEN_PANIC, &exited_after_hello());
    let (phase, message, after, evidence) = panic_of(&cause);
    assert_eq!(*phase, Phase::Run);
    assert_eq!(message, "Attempted to kill init! exitcode=0x00000009");
    assert_eq!(
        after,
        Some("BUG: kernel NULL pointer dereference, address: 0000000000000000")
    );
    assert!(
        has(evidence, "Oops: 0000 [#1] PREEMPT_RT SMP NOPTI"),
        "{evidence:#?}"
    );
    assert!(
        has(evidence, "RIP: __x64_sys_sysinfo+0x0/0x10"),
        "{evidence:#?}"
    );
    assert!(
        has(evidence, "CPU: 0 PID: 1 Comm: init Not tainted"),
        "{evidence:#?}"
    );
    assert!(evidence
        .last()
        .unwrap()
        .starts_with("Kernel panic - not syncing: Attempted"));
    assert!(cause.to_string().ends_with(
        "(after an oops: BUG: kernel NULL pointer dereference, address: 0000000000000000)"
    ));
    // The oops killed the guest: it is no warning.
    assert!(scan_warnings(OOPS_THEN_PANIC).is_empty());
}

#[test]
fn an_oops_without_a_panic_is_the_likely_cause() {
    let facts = GuestFacts {
        hello: true,
        deadline_s: Some(90),
        ..GuestFacts::default()
    };
    let cause = classify(OOPS_SURVIVED, &facts);
    let FailureCause::Oops {
        phase,
        headline,
        location,
        task,
        count,
        outcome,
        evidence,
    } = &cause
    else {
        panic!("expected an oops, got {cause:?}");
    };
    assert_eq!(*phase, Phase::Run);
    assert_eq!(
        headline,
        "BUG: kernel NULL pointer dereference, address: 0000000000000000"
    );
    assert_eq!(location.as_deref(), Some("__x64_sys_sysinfo+0x0/0x10"));
    assert_eq!(task.as_deref(), Some("init (PID 103)"));
    assert_eq!(*count, 1, "the BUG line and its Oops line are one report");
    assert_eq!(
        *outcome,
        Outcome::RunDeadline {
            deadline_s: Some(90)
        }
    );
    assert!(has(evidence, "#PF: supervisor read access in kernel mode"));
    assert!(has(evidence, "do_syscall_64+0x5d/0xb0"));
    assert_eq!(
        cause.to_string(),
        "guest kernel oops during the run: BUG: kernel NULL pointer dereference, address: \
         0000000000000000 at __x64_sys_sysinfo+0x0/0x10 in init (PID 103); the likely reason \
         the run did not finish before its 90 s deadline"
    );
}

#[test]
fn an_oops_the_guest_survived_is_a_warning() {
    let w = scan_warnings(OOPS_SURVIVED);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(w[0].kind, WarningKind::Oops);
    assert_eq!(w[0].count, 1);
    assert_eq!(w[0].first_at_us, Some(8_957_996));
    assert!(has(&w[0].evidence, "Oops: 0000 [#1]"));
    assert!(w[0].to_string().starts_with(
        "guest kernel oops (first 8.95 s after boot): BUG: kernel NULL pointer dereference"
    ));
}

#[test]
fn an_rcu_stall_before_a_boot_deadline_is_its_likely_cause() {
    let cause = classify(HUNG_RCU_STARVED, &no_hello());
    let FailureCause::Stall {
        phase,
        kind,
        headline,
        count,
        outcome,
        evidence,
    } = &cause
    else {
        panic!("expected a stall, got {cause:?}");
    };
    assert_eq!(*phase, Phase::Boot);
    assert_eq!(
        *kind,
        StallKind::RcuStall,
        "an RCU stall outranks the hung task it causes"
    );
    assert_eq!(
        headline,
        "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:"
    );
    assert_eq!(*count, 1);
    assert_eq!(
        *outcome,
        Outcome::NoHello {
            deadline_s: Some(60)
        }
    );
    assert!(
        has(evidence, "rcu_preempt kthread starved for 5248 jiffies!"),
        "{evidence:#?}"
    );
    assert!(has(
        evidence,
        "INFO: task init:102 blocked for more than 10 seconds."
    ));
    assert_eq!(
        cause.to_string(),
        "guest RCU stall during boot: rcu: INFO: rcu_preempt detected stalls on CPUs/tasks; \
         the likely reason the agent never said hello before the 60 s boot deadline"
    );
    assert_eq!(cause.stage(), Some(Stage::Boot));
}

#[test]
fn rcu_stall_and_hung_task_warnings_are_counted() {
    let w = scan_warnings(HUNG_RCU_STARVED);
    let kinds: Vec<_> = w.iter().map(|w| (w.kind, w.count)).collect();
    assert_eq!(
        kinds,
        vec![(WarningKind::RcuStall, 1), (WarningKind::HungTask, 2)]
    );
    let hung = &w[1];
    assert_eq!(
        hung.headline,
        "INFO: task init:102 blocked for more than 10 seconds."
    );
    assert_eq!(hung.first_at_us, Some(21_425_487));
    assert_eq!(
        hung.evidence,
        vec![
            "INFO: task init:102 blocked for more than 10 seconds.".to_owned(),
            "INFO: task init:102 blocked for more than 37 seconds.".to_owned(),
        ]
    );
    assert!(hung
        .to_string()
        .starts_with("guest hung task ×2 (first 21.42 s after boot): INFO: task init:102 blocked"));
    let rcu = &w[0];
    assert!(has(
        &rcu.evidence,
        "All QSes seen, last rcu_preempt kthread activity"
    ));
    assert!(has(&rcu.evidence, "->cpu=1"));
    assert!(!has(&rcu.evidence, "INFO: task"), "{:#?}", rcu.evidence);
}

#[test]
fn soft_lockup_outranks_an_rcu_stall() {
    let w = scan_warnings(RCU_SOFT_LOCKUP);
    let kinds: Vec<_> = w.iter().map(|w| (w.kind, w.count)).collect();
    assert_eq!(
        kinds,
        vec![(WarningKind::SoftLockup, 1), (WarningKind::RcuStall, 1)]
    );
    assert!(
        has(&w[1].evidence, "1-...0: (27 ticks this GP)"),
        "{:#?}",
        w[1].evidence
    );

    let cause = classify(RCU_SOFT_LOCKUP, &exited_after_hello());
    let FailureCause::Stall { kind, evidence, .. } = &cause else {
        panic!("expected a stall, got {cause:?}");
    };
    assert_eq!(*kind, StallKind::SoftLockup);
    assert!(
        has(evidence, "detected stalls on CPUs/tasks"),
        "other kinds stay as evidence"
    );
    assert_eq!(
        cause.to_string(),
        "guest soft lockup during the run: watchdog: BUG: soft lockup - CPU#1 stuck for 39s! \
         [init:100]; the likely reason QEMU exited (exit status 0)"
    );
}

#[test]
fn all_three_kinds_in_one_run_are_three_warnings_in_severity_order() {
    let w = scan_warnings(ALL_THREE);
    let kinds: Vec<_> = w.iter().map(|w| (w.kind, w.count)).collect();
    assert_eq!(
        kinds,
        vec![
            (WarningKind::SoftLockup, 1),
            (WarningKind::RcuStall, 1),
            (WarningKind::HungTask, 2)
        ]
    );
    // Printed first, ranked last.
    assert_eq!(w[2].first_at_us, Some(21_185_815));
    let cause = classify(ALL_THREE, &no_hello());
    let FailureCause::Stall { kind, evidence, .. } = &cause else {
        panic!("expected a stall, got {cause:?}");
    };
    assert_eq!(*kind, StallKind::SoftLockup);
    assert_eq!(
        evidence,
        &[
            "watchdog: BUG: soft lockup - CPU#1 stuck for 38s! [init:101]",
            "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
            "INFO: task init:102 blocked for more than 10 seconds.",
        ]
    );
}

#[test]
fn a_stopped_vm_shows_a_soft_lockup_and_nothing_else() {
    let w = scan_warnings(VM_STOPPED);
    assert_eq!(w.len(), 1, "the MP-BIOS timer line is no warning: {w:#?}");
    assert_eq!(w[0].kind, WarningKind::SoftLockup);
    assert_eq!(w[0].first_at_us, Some(36_368_433));
    assert_eq!(
        w[0].headline,
        "watchdog: BUG: soft lockup - CPU#0 stuck for 29s! [swapper/0:0]"
    );
    assert!(w[0].to_string().contains("starved on the host"));
    assert!(matches!(
        classify(VM_STOPPED, &no_hello()),
        FailureCause::Stall {
            kind: StallKind::SoftLockup,
            ..
        }
    ));
}

#[test]
fn hard_lockup_from_the_kernel_format_string() {
    let w = scan_warnings(HARD_LOCKUP);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].kind, WarningKind::HardLockup);
    assert_eq!(
        w[0].headline,
        "NMI watchdog: Watchdog detected hard LOCKUP on cpu 1"
    );
}

#[test]
fn a_normal_verbose_boot_has_no_warnings_and_names_no_cause() {
    // Full of look-alikes: "panic=-1", "report a bug", "IRQ lockup detection disabled",
    // "NMI watchdog: Perf NMI watchdog permanently disabled", "rcu: ..." boot lines.
    assert_eq!(scan_warnings(VERBOSE_OK), vec![]);
    let cause = classify(VERBOSE_OK, &exited_after_hello());
    let FailureCause::QemuExited {
        phase,
        status,
        evidence,
    } = &cause
    else {
        panic!("expected a QEMU exit, got {cause:?}");
    };
    assert_eq!((*phase, status.as_str()), (Phase::Run, "exit status 0"));
    assert_eq!(
        evidence.last().map(String::as_str),
        Some("reboot: Power down")
    );
    assert_eq!(evidence.len(), EVIDENCE_LINES);
    assert_eq!(
        cause.to_string(),
        "QEMU exited during the run (exit status 0); the console shows no kernel panic, oops or stall"
    );
}

#[test]
fn without_console_evidence_the_facts_decide() {
    // `quiet` guest that never said hello: an empty console.
    let cause = classify(b"", &no_hello());
    assert_eq!(
        cause,
        FailureCause::NoHello {
            deadline_s: Some(60),
            evidence: vec![]
        }
    );
    assert_eq!(cause.stage(), Some(Stage::Boot));
    assert_eq!(
        cause.to_string(),
        "the agent never said hello before the 60 s boot deadline; the console shows no kernel panic, oops or stall"
    );
    let facts = GuestFacts {
        hello: true,
        deadline_s: Some(90),
        ..GuestFacts::default()
    };
    let cause = classify(b"", &facts);
    assert!(matches!(
        cause,
        FailureCause::RunDeadline {
            deadline_s: Some(90),
            ..
        }
    ));
    assert_eq!(cause.stage(), Some(Stage::Measure));
    // QEMU exiting before any hello is a boot failure.
    let facts = GuestFacts {
        qemu_exit: Some("signal 9 (SIGKILL)".into()),
        ..no_hello()
    };
    let cause = classify(b"", &facts);
    assert!(matches!(
        cause,
        FailureCause::QemuExited {
            phase: Phase::Boot,
            ..
        }
    ));
    assert_eq!(cause.stage(), Some(Stage::Boot));
}

#[test]
fn precedence_panic_beats_host_failure_agent_error_and_exit() {
    let facts = GuestFacts {
        hello: true,
        agent_errors: vec!["measurement thread: clock went backwards".into()],
        qemu_exit: Some("exit status 0".into()),
        host_failure: Some("QMP connection closed".into()),
        deadline_s: None,
    };
    assert!(matches!(
        classify(TIMER_PANIC, &facts),
        FailureCause::KernelPanic { .. }
    ));
}

#[test]
fn precedence_an_agent_error_explains_init_exiting() {
    let facts = GuestFacts {
        agent_errors: vec!["config: unknown workload 'x'".into()],
        ..exited_after_hello()
    };
    let cause = classify(INIT_EXITS, &facts);
    let FailureCause::AgentError { evidence, .. } = &cause else {
        panic!("expected an agent error, got {cause:?}");
    };
    assert!(has(evidence, "Attempted to kill init! exitcode=0x00000100"));
    // An oops that killed init is no agent exit: the panic stays the cause.
    assert!(matches!(
        classify(OOPS_THEN_PANIC, &facts),
        FailureCause::KernelPanic {
            after_oops: Some(_),
            ..
        }
    ));
    // Any other panic stays the cause too.
    assert!(matches!(
        classify(SYSRQ_CRASH, &facts),
        FailureCause::KernelPanic { .. }
    ));
}

#[test]
fn precedence_host_failure_beats_agent_error_and_guest_warnings() {
    let facts = GuestFacts {
        hello: true,
        agent_errors: vec!["boom".into()],
        host_failure: Some("pinning vCPU 0 (tid 4411): EPERM".into()),
        ..GuestFacts::default()
    };
    let cause = classify(HUNG_RCU_STARVED, &facts);
    assert_eq!(cause.stage(), None, "the caller knows the host-side stage");
    assert_eq!(
        cause.to_string(),
        "host-side failure: pinning vCPU 0 (tid 4411): EPERM"
    );
    assert_eq!(cause.evidence().last().unwrap(), "reboot: Power down");
}

#[test]
fn precedence_agent_error_beats_oops_stall_and_a_later_exit() {
    let facts = GuestFacts {
        agent_errors: vec!["mlockall: ENOMEM".into(), "second".into()],
        ..exited_after_hello()
    };
    let cause = classify(HUNG_RCU_STARVED, &facts);
    let FailureCause::AgentError {
        phase,
        message,
        evidence,
    } = &cause
    else {
        panic!("expected an agent error, got {cause:?}");
    };
    assert_eq!((*phase, message.as_str()), (Phase::Run, "mlockall: ENOMEM"));
    assert_eq!(evidence[..2], ["agent: mlockall: ENOMEM", "agent: second"]);
    assert!(
        has(evidence, "detected stalls on CPUs/tasks"),
        "console findings kept"
    );
    assert_eq!(
        cause.to_string(),
        "the guest agent reported an error during the run: mlockall: ENOMEM (and 1 more)"
    );
    assert_eq!(cause.stage(), Some(Stage::Agent));
    assert!(matches!(
        classify(OOPS_SURVIVED, &facts),
        FailureCause::AgentError { .. }
    ));
}

#[test]
fn precedence_oops_beats_stall_and_stall_beats_exit() {
    let mut both = RCU_SOFT_LOCKUP.to_vec();
    both.extend_from_slice(OOPS_SURVIVED);
    assert!(matches!(
        classify(&both, &exited_after_hello()),
        FailureCause::Oops {
            outcome: Outcome::QemuExited { .. },
            ..
        }
    ));
    assert!(matches!(
        classify(VM_STOPPED, &exited_after_hello()),
        FailureCause::Stall { .. }
    ));
}

#[test]
fn causes_and_warnings_serialize_with_kebab_case_tags() {
    let cause = classify(HUNG_RCU_STARVED, &no_hello());
    let json = serde_json::to_value(&cause).unwrap();
    assert_eq!(json["cause"], "stall");
    assert_eq!(json["kind"], "rcu-stall");
    assert_eq!(json["phase"], "boot");
    assert_eq!(json["outcome"]["outcome"], "no-hello");
    let back: FailureCause = serde_json::from_value(json).unwrap();
    assert_eq!(back, cause);
    let panic = serde_json::to_value(classify(TIMER_PANIC, &no_hello())).unwrap();
    assert_eq!(panic["cause"], "kernel-panic");
    let w = serde_json::to_value(scan_warnings(HUNG_RCU_STARVED)).unwrap();
    assert_eq!(w[1]["kind"], "hung-task");
    assert_eq!(w[1]["count"], 2);
}

/// The few words a verdict or a comparison quotes: the panic's meaning when the kernel's
/// message is a known one, else the message cut short; a stall by kind; a deadline by length.
#[test]
fn short_causes_name_the_kind_and_the_phase() {
    let panic = classify(TIMER_PANIC, &no_hello());
    assert_eq!(
        panic.short(),
        "guest kernel panic during boot — timer check failed"
    );
    assert!(panic.is_guest());
    let init = classify(NO_WORKING_INIT, &no_hello());
    assert!(
        init.short()
            .starts_with("guest kernel panic during boot — "),
        "{}",
        init.short()
    );
    assert_eq!(
        classify(HUNG_RCU_STARVED, &no_hello()).short(),
        "guest RCU stall during boot"
    );
    assert_eq!(
        classify(b"", &no_hello()).short(),
        "no agent hello before the 60 s boot deadline"
    );
    let host = classify(
        b"",
        &GuestFacts {
            host_failure: Some("x".repeat(100)),
            ..no_hello()
        },
    );
    assert!(!host.is_guest());
    // Free text is cut to 60 characters.
    assert_eq!(
        host.short(),
        format!("host-side failure — {}…", "x".repeat(60))
    );
}
