//! `pinlat doctor` checks on snapshots of the procfs/sysfs files they read: a PREEMPT_RT lab
//! host tuned as tuned's realtime-virtual-host profile leaves it, this 2-CPU development VM,
//! and a misconfigured host where specific checks must fail.

use std::path::PathBuf;
use std::process::Command;

use pinlat::config::Config;
use pinlat::cpuset::CpuSet;
use pinlat::report::hostchecks::CalibrationSummary;
use pinlat_runner::doctor::instrument::CalibrationFact;
use pinlat_runner::doctor::{
    run_checks, DoctorReport, Env, ExternalFacts, Found, KvmProbe, Status, SysRoot,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/doctor")
        .join(name)
}

fn config(name: &str) -> Config {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../configs")
        .join(name);
    Config::from_file(&p).unwrap()
}

fn report(name: &str, cfg: Option<&Config>, external: ExternalFacts) -> DoctorReport {
    let mut env = Env::new(SysRoot::at(fixture(name)), cfg).unwrap();
    env.external = external;
    run_checks(&env)
}

fn status(r: &DoctorReport, id: &str) -> Status {
    r.get(id).unwrap_or_else(|| panic!("no check {id}")).status
}

fn probes_ok() -> ExternalFacts {
    ExternalFacts {
        libvirt: None,
        kvm_probe: Some(KvmProbe::Booted),
        qemu: Some(Found::Yes {
            what: "QEMU emulator version 8.2.0".into(),
        }),
        guest_kernel: Some(Found::Yes {
            what: "/boot/vmlinuz (host /boot)".into(),
        }),
        calibration: Some(CalibrationFact::Found {
            summary: CalibrationSummary {
                verdict: "trusted".into(),
                reasons: Vec::new(),
                cpu: 7,
                judged: 12,
                detected_ok: 12,
            },
        }),
    }
}

#[test]
fn rt_lab_host_passes_with_the_8cpu_lab_config() {
    let cfg = config("lab-8cpu.toml");
    let r = report("rt-lab-host", Some(&cfg), probes_ok());
    // The RT pCPUs come from the plan: every pinned layout's RT vCPUs, never housekeeping 0-1.
    assert!(!r.rt_cpus.is_empty());
    assert!(
        r.rt_cpus.is_disjoint(&CpuSet::parse("0-1").unwrap()),
        "{}",
        r.rt_cpus
    );
    for c in &r.checks {
        assert!(
            matches!(c.status, Status::Pass),
            "{} is {}: {}",
            c.id,
            c.status,
            c.found
        );
    }
    assert!(!r.failed());
    assert!(r
        .get("kernel.preempt_rt")
        .unwrap()
        .found
        .contains("6.1.0-41-rt-amd64"));
    // C1E and C6 are disabled and /dev/cpu_dma_latency is held at 0, which also rules out C1
    // (2 µs): only POLL is usable.
    let cs = &r.get("cpu.cstates").unwrap().found;
    assert!(cs.contains("POLL") && cs.contains("0 µs exit"), "{cs}");
    assert!(r.get("cpu.cstates").unwrap().found.contains("held at 0"));
}

#[test]
fn misconfigured_host_fails_exactly_the_broken_checks() {
    let mut env = Env::new(SysRoot::at(fixture("misconfigured")), None).unwrap();
    env.rt_cpus = CpuSet::parse("2-5").unwrap();
    env.external = ExternalFacts {
        libvirt: None,
        kvm_probe: Some(KvmProbe::DoesNotBoot {
            reason: "no agent hello within 15 s under -accel kvm".into(),
        }),
        qemu: Some(Found::No {
            reason: "qemu-system-x86_64 not found on $PATH".into(),
        }),
        guest_kernel: Some(Found::No {
            reason: "no kernel".into(),
        }),
        calibration: Some(CalibrationFact::Found {
            summary: CalibrationSummary {
                verdict: "inconclusive".into(),
                reasons: vec!["trial 1: 30 ms steal time on the measured CPU".into()],
                cpu: 1,
                judged: 0,
                detected_ok: 0,
            },
        }),
    };
    let r = run_checks(&env);
    let expect = [
        ("kernel.preempt_rt", Status::Fail),
        ("kernel.isolcpus", Status::Fail),
        ("kernel.nohz_full", Status::Fail),
        ("kernel.rcu_nocbs", Status::Fail),
        ("sched.rt_throttling", Status::Warn),
        ("irq.device_affinity", Status::Fail),
        ("irq.default_affinity", Status::Warn),
        ("cpu.governor", Status::Warn),
        ("cpu.cstates", Status::Warn),
        ("cpu.smt_siblings", Status::Warn),
        ("mem.thp", Status::Warn),
        ("mem.ksm", Status::Warn),
        ("kvm.kvmclock_periodic_sync", Status::Warn),
        ("kvm.nx_huge_pages", Status::Warn),
        ("kvm.ple_gap", Status::Warn),
        ("kvm.usable", Status::Fail),
        ("qemu.version", Status::Fail),
        ("guest.kernel", Status::Warn),
        ("instrument.calibration", Status::Warn),
    ];
    for (id, want) in expect {
        assert_eq!(status(&r, id), want, "{id}: {:?}", r.get(id));
        if want != Status::Pass {
            assert!(!r.get(id).unwrap().fix.is_empty(), "{id} has no fix");
        }
    }
    assert!(r.failed());
    assert!(
        r.get("instrument.calibration")
            .unwrap()
            .found
            .contains("too noisy to judge the instrument: trial 1: 30 ms steal"),
        "{:?}",
        r.get("instrument.calibration")
    );
    // The fixes name the CPUs to add, merged with what is there.
    assert_eq!(
        r.get("kernel.isolcpus").unwrap().fix,
        "add isolcpus=2-5 to the host kernel command line"
    );
    assert!(r
        .get("kernel.isolcpus")
        .unwrap()
        .found
        .contains("RT pCPUs 2-3,5"));
    // rcu_nocbs=2-3 on the command line covers 2-3 but not 4-5.
    assert!(r
        .get("kernel.rcu_nocbs")
        .unwrap()
        .found
        .contains("RT pCPUs 4-5"));
    // Only the NIC (IRQ 24, routed to CPU 3) is on an RT pCPU; the nvme IRQ routed to 0 with
    // 7 historical interrupts on CPU 2 is not "routed".
    let irq = r.get("irq.device_affinity").unwrap();
    assert!(irq.found.contains("24 (eno1) -> 3"), "{}", irq.found);
    assert!(!irq.found.contains("nvme"), "{}", irq.found);
    assert!(r.get("cpu.cstates").unwrap().found.contains("C6"));
    assert!(r
        .get("cpu.smt_siblings")
        .unwrap()
        .found
        .contains("cpu2 shares a core with 6"));
}

#[test]
fn this_machine_snapshot_fails_on_rt_kernel_isolation_and_irqs() {
    let cfg = config("quick.toml");
    let r = report("this-machine", Some(&cfg), ExternalFacts::default());
    assert_eq!(r.rt_cpus, CpuSet::parse("1").unwrap());
    assert_eq!(status(&r, "kernel.preempt_rt"), Status::Fail);
    assert_eq!(status(&r, "kernel.isolcpus"), Status::Fail);
    assert_eq!(status(&r, "kernel.nohz_full"), Status::Fail);
    assert_eq!(status(&r, "sched.rt_throttling"), Status::Warn);
    assert_eq!(status(&r, "irq.device_affinity"), Status::Fail);
    assert_eq!(status(&r, "cpu.governor"), Status::Pass);
    assert_eq!(status(&r, "mem.thp"), Status::Pass);
    assert_eq!(status(&r, "mem.ksm"), Status::Pass);
    assert_eq!(status(&r, "kvm.kvmclock_periodic_sync"), Status::Warn);
    assert_eq!(status(&r, "kvm.nx_huge_pages"), Status::Pass);
    // Not probed: skipped, never passed.
    assert_eq!(status(&r, "kvm.usable"), Status::Skip);
    assert_eq!(status(&r, "qemu.version"), Status::Skip);
    assert!(r.failed());
}

#[test]
fn a_config_that_does_not_fit_is_an_error_not_a_check() {
    // lab-8cpu.toml needs CPUs 0-7; this machine has 0-1.
    let e = Env::new(
        SysRoot::at(fixture("this-machine")),
        Some(&config("lab-8cpu.toml")),
    );
    assert!(e.is_err());
}

fn pinlat(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pinlat"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn cli_exit_codes_and_json_follow_the_checks() {
    let lab = fixture("rt-lab-host");
    let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/lab-8cpu.toml");
    let (code, out) = pinlat(&[
        "doctor",
        cfg.to_str().unwrap(),
        "--json",
        "--root",
        lab.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let r: DoctorReport = serde_json::from_str(&out).unwrap();
    // Probes are not run on a snapshot: skipped.
    assert_eq!(status(&r, "kvm.usable"), Status::Skip);
    assert!(!r.failed());

    let bad = fixture("misconfigured");
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = pinlat(&[
        "doctor",
        "--root",
        bad.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("kernel.preempt_rt") && out.contains("FAIL") && out.contains("fix: "));
    let saved: DoctorReport =
        serde_json::from_slice(&std::fs::read(dir.path().join("doctor.json")).unwrap()).unwrap();
    assert!(saved.failed());
    // Without a config, RT pCPUs are every online CPU but the first.
    assert_eq!(saved.rt_cpus, CpuSet::parse("1-7").unwrap());
}

#[test]
fn a_probe_that_cannot_run_names_its_cause_instead_of_failing_kvm() {
    // No agent (or no cached kernel) to probe with says nothing about KVM: a warning naming
    // what is missing, never "KVM does not boot a guest" (exit 1).
    let mut facts = probes_ok();
    facts.kvm_probe = Some(KvmProbe::CannotProbe {
        reason: "no agent to probe with: No usable static pinlat-agent".into(),
    });
    let r = report("rt-lab-host", Some(&config("lab-8cpu.toml")), facts);
    let c = r.get("kvm.usable").unwrap();
    assert_eq!(c.status, Status::Warn, "{c:?}");
    assert!(c.found.contains("no agent to probe with"), "{c:?}");
    assert!(!c.found.contains("does not boot"), "{c:?}");
    assert!(!r.failed());
}
