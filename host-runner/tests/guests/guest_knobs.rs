//! Guest knobs for real (`configs/guest-knobs.toml`): an untuned variant (`guest.preset =
//! "none"`) and tuned's realtime-virtual-guest set with `idle=poll` and two sysctls, on the
//! Debian PREEMPT_RT guest kernel under TCG. The records must show the kernel took the command
//! line and the agent's sysctls, and the report's readiness must tell the two apart.

use std::path::Path;

use pinlat::report::readiness::Status;
use pinlat::report::Report;
use pinlat::wire::kernel_cpu_list;
use pinlat_test_infra::{load_runs, only_subdir, BootLock};

#[test]
fn boot_guest_knobs_presets_and_sysctls_reach_the_guest_and_its_readiness() {
    let _lock = BootLock::acquire().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = super::short_tcg_run(Path::new("configs/guest-knobs.toml"), "2s", out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let dir = only_subdir(out.path());
    let runs = load_runs(&dir);
    let run = |variant: &str| {
        runs.iter()
            .find(|r| r.variant.as_deref() == Some(variant))
            .unwrap_or_else(|| panic!("no run of variant {variant}: {stderr}"))
    };
    let facts = |variant: &str| {
        run(variant).guests[0]
            .hello
            .clone()
            .expect("the agent said hello")
            .facts
    };

    // The tuned variant: the preset's parameters reached the kernel and it applied them.
    let rvg = facts("rvg");
    for p in [
        "isolcpus=managed_irq,domain,1",
        "nohz=on",
        "nohz_full=1",
        "rcu_nocbs=1",
        "irqaffinity=0",
        "nosoftlockup",
        "idle=poll",
        "tsc=reliable",
    ] {
        assert!(
            rvg.cmdline.split(' ').any(|w| w == p),
            "{p}: {}",
            rvg.cmdline
        );
    }
    let t = rvg.tuning.expect("this agent reports the tuning facts");
    assert_eq!(t.isolated.as_deref(), Some("1"));
    assert_eq!(t.nohz_full.as_deref(), Some("1"));
    // idle=poll registers no cpuidle driver.
    assert_eq!(t.cpuidle_driver.as_deref(), Some("none"));
    assert_eq!(t.timer_migration.as_deref(), Some("0"));
    assert_eq!(t.sched_rt_runtime_us.as_deref(), Some("-1"));
    let read_back: Vec<(&str, &str, &str)> = t
        .sysctls
        .iter()
        .map(|s| (s.key.as_str(), s.written.as_str(), s.read.as_str()))
        .collect();
    assert_eq!(
        read_back,
        [
            ("kernel.sched_rt_runtime_us", "-1", "-1"),
            ("kernel.timer_migration", "0", "0")
        ]
    );
    let irqs = t.irqs.expect("/proc/irq is readable");
    assert!(!irqs.is_empty(), "the serial ports have IRQs");
    for i in &irqs {
        assert!(
            !i.delivered_to().unwrap().contains(1),
            "irqaffinity=0 keeps IRQ {} ({:?}) off RT vCPU 1",
            i.irq,
            i.actions
        );
    }

    // The untuned variant: none of it, and the kernel's defaults.
    let untuned = facts("untuned");
    for p in ["isolcpus", "nohz_full", "rcu_nocbs", "irqaffinity", "idle"] {
        assert!(
            !untuned.cmdline.split(' ').any(|w| w.starts_with(p)),
            "{p}: {}",
            untuned.cmdline
        );
    }
    let u = untuned.tuning.unwrap();
    assert_eq!(
        u.isolated.as_deref().and_then(kernel_cpu_list),
        Some(Default::default())
    );
    assert_eq!(u.nohz_full.as_deref(), Some("(null)"));
    assert_eq!(u.timer_migration.as_deref(), Some("1"));
    assert_eq!(u.sched_rt_runtime_us.as_deref(), Some("950000"));
    assert!(u.sysctls.is_empty());

    // The report's readiness tells them apart.
    let report = Report::read_json(&dir.join("report.json")).unwrap();
    let rd = report.readiness.expect("the agents reported the facts");
    let guest = |variant: &str| {
        rd.guests
            .iter()
            .find(|g| g.variant.as_deref() == Some(variant))
            .unwrap()
    };
    let status = |variant: &str, id: &str| {
        guest(variant)
            .checks
            .iter()
            .find(|c| c.id == id)
            .unwrap()
            .status
    };
    assert!(guest("rvg").ready, "{:#?}", guest("rvg").checks);
    assert!(!guest("untuned").ready);
    for id in ["guest.cmdline", "guest.isolcpus", "guest.nohz_full"] {
        assert_eq!(status("rvg", id), Status::Ok, "{id}");
        assert_eq!(status("untuned", id), Status::Fail, "{id}");
    }
    for id in [
        "guest.timer_migration",
        "guest.sched_rt_runtime_us",
        "guest.cpuidle",
    ] {
        assert_eq!(status("rvg", id), Status::Ok, "{id}");
        assert_eq!(status("untuned", id), Status::Warn, "{id}");
    }
    assert_eq!(status("rvg", "guest.sysctls"), Status::Ok);
    assert!(rd.tcg_note.is_some());
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("### Guest rt, variant rvg: ready"), "{md}");
    assert!(
        md.contains("### Guest rt, variant untuned: not ready"),
        "{md}"
    );
}

/// A sysctl the guest kernel does not have: the variant did not apply, so the run fails in
/// stage `agent`, naming the key and the errno, and measures nothing.
#[test]
fn boot_guest_sysctl_that_cannot_be_set_fails_the_run_naming_it() {
    let _lock = BootLock::acquire().unwrap();
    let out = tempfile::tempdir().unwrap();
    let config = out.path().join("bad-sysctl.toml");
    let text = std::fs::read_to_string(pinlat_test_infra::repo().join("configs/guest-knobs.toml"))
        .unwrap();
    let cut = text.find("[[variants]]").unwrap();
    let scen = text.find("[[scenarios]]").unwrap();
    let bad = format!(
        "{}[[variants]]\nname = \"bad\"\nguest.sysctls = {{ \"kernel.pinlat_no_such_knob\" = 1 }}\n\n{}",
        &text[..cut],
        &text[scen..]
    );
    std::fs::write(&config, bad).unwrap();
    let results = out.path().join("results");
    let o = super::short_tcg_run(&config, "1s", &results)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    let runs = load_runs(&only_subdir(&results));
    assert_eq!(runs.len(), 1);
    match &runs[0].status {
        pinlat::result::RunStatus::Failed { stage, reason } => {
            assert_eq!(*stage, pinlat::result::Stage::Agent, "{reason}");
            assert!(
                reason.contains("kernel.pinlat_no_such_knob") && reason.contains("ENOENT"),
                "{reason}"
            );
        }
        ok => panic!("the run must fail: {ok:?}"),
    }
    assert!(runs[0].guests[0].results.is_empty(), "nothing measured");
}

/// `accel = "auto"` on this machine: the KVM probe fails (a guest boot), pinlat falls back to
/// TCG, and a variant with a KVM-only knob is then refused (exit 2, naming it) before any run,
/// leaving no empty results directory behind.
#[test]
fn boot_auto_fallback_to_tcg_refuses_a_kvm_knob_and_leaves_no_results_dir() {
    let _lock = BootLock::acquire().unwrap();
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        cfg.path(),
        "[run]\naccel = \"auto\"\nduration_s = 1\n[host]\ncpus = \"0-1\"\n\
         [[guests]]\nname = \"rt\"\nvcpus = 2\n[[layouts]]\nkind = \"vcpu0\"\n\
         [[variants]]\nname = \"pm\"\nqemu.cpu_pm = true\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_pinlat"))
        .arg("run")
        .arg(cfg.path())
        .arg("--out")
        .arg(out.path())
        .current_dir(pinlat_test_infra::repo())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    if !stderr.contains("falling back to TCG") {
        eprintln!("skipped: KVM boots on this host, so nothing fell back to TCG\n{stderr}");
        return;
    }
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("qemu.cpu_pm") && stderr.contains("pm"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(out.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}\n{stderr}");
}
