//! The libvirt launcher end to end, on a private libvirtd ([`PrivateLibvirtd`]): libvirt
//! applies the plan's `<cputune>`, pinlat reads it back and runs the measurement as with QEMU;
//! and when libvirt applies something else, the run fails in `verify` naming the thread.

use std::path::Path;
use std::process::Output;

use pinlat::kinds::{LauncherKind, LayoutKind};
use pinlat::result::{HostPolicy, RunStatus, Stage, ThreadRole};
use pinlat_test_infra::{load_runs, only_subdir, process_alive, BootLock, PrivateLibvirtd};

fn pinlat_run(d: &PrivateLibvirtd, config: &Path, out: &Path, env: &[(&str, &str)]) -> Output {
    super::short_tcg_run(config, "2s", out)
        .args(["--launcher", "libvirt", "--no-trace"])
        .env("LIBVIRT_DEFAULT_URI", d.uri())
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Nothing of a run may outlive it: no domain, no QEMU, no domain cgroup.
fn assert_nothing_left(d: &PrivateLibvirtd, pids: &[i32]) {
    assert_eq!(d.domains(), Vec::<String>::new(), "domains left");
    for &pid in pids {
        assert!(!process_alive(pid), "QEMU {pid} left running");
    }
    assert_eq!(d.domain_cgroups(), Vec::<std::path::PathBuf>::new());
}

/// `configs/quick.toml` as it is (both layouts, mgmt-storm and migrate, both workloads: 8
/// runs of 2 s) with libvirt launching: every thread where the plan says, as libvirt put it.
#[test]
fn boot_libvirt_quick_config_placement_matches_the_plan() {
    let _lock = BootLock::acquire().unwrap();
    let d = PrivateLibvirtd::start();
    let out = tempfile::tempdir().unwrap();
    let o = pinlat_run(&d, Path::new("configs/quick.toml"), out.path(), &[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let dir = only_subdir(out.path());
    let runs = load_runs(&dir);
    let dump = || {
        let mut s = format!("stderr:\n{stderr}\nlibvirtd:\n{}\n", d.log());
        for r in &runs {
            s += &format!("{}: {:?}\n", r.name, r.status);
        }
        s
    };
    assert_eq!(o.status.code(), Some(0), "{}", dump());
    assert!(stderr.contains("launching through libvirt"), "{stderr}");
    assert_eq!(runs.len(), 8, "{}", dump());
    let mut pids = Vec::new();
    for r in &runs {
        assert!(r.status.is_ok(), "{}: {:?}\n{}", r.name, r.status, dump());
        let g = &r.guests[0];
        pids.extend(g.qemu_pid);
        assert_eq!(g.launcher, LauncherKind::Libvirt, "{}", r.name);
        let lv = g.libvirt.as_ref().expect("the libvirt launch is recorded");
        assert_eq!(lv.libvirt_version, "9.0.0", "{}", r.name);
        assert!(lv.hypervisor.starts_with("QEMU 7."), "{lv:?}");
        assert!(lv.domain_xml.contains("<cputune>"), "{}", lv.domain_xml);
        assert!(g.results[0].samples > 0, "{}: measured nothing", r.name);

        // Every thread as planned, at the start and at the end, and never in between.
        assert!(!g.observed_start.is_empty() && !g.observed_end.is_empty());
        for t in g.observed_start.iter().chain(&g.observed_end) {
            assert!(t.matches(), "{}: {t:?}", r.name);
        }
        assert!(g.drift.is_empty(), "{}: {:?}", r.name, g.drift);
        // What libvirt applied, thread by thread (issue 15's observations under TCG).
        let emulator = match r.layout_kind {
            LayoutKind::Share => "0-1",
            LayoutKind::Vcpu0 => "0",
            k => panic!("quick.toml has no {k} layout"),
        };
        for t in &g.observed_start {
            match &t.role {
                ThreadRole::Emulator => assert_eq!(t.cpus.to_string(), emulator, "{t:?}"),
                ThreadRole::Vcpu { vcpu: 0 } => {
                    assert_eq!(t.cpus.to_string(), "0");
                    assert_eq!(t.policy, HostPolicy::Other);
                }
                ThreadRole::Vcpu { vcpu: 1 } => {
                    assert_eq!(t.cpus.to_string(), "1");
                    assert_eq!((t.policy, t.priority), (HostPolicy::Fifo, 1), "{t:?}");
                }
                other => panic!("{}: unexpected thread {other:?}", r.name),
            }
        }
    }
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("libvirt"), "the report names the launcher");
    assert_nothing_left(&d, &pids);
}

/// libvirt made to apply something else: the emulator re-pinned to pCPU 1 after the domain
/// started (the launcher's test hook), so the `vcpu0` plan's emulator on pCPU 0 does not hold.
#[test]
fn boot_libvirt_applying_otherwise_fails_verify_naming_the_thread() {
    let _lock = BootLock::acquire().unwrap();
    let d = PrivateLibvirtd::start();
    let out = tempfile::tempdir().unwrap();
    let config = out.path().join("one.toml");
    std::fs::write(
        &config,
        "[run]\nduration_s = 2\n[host]\ncpus = \"0-1\"\n\
         [[guests]]\nname = \"rt\"\nvcpus = 2\nmemory_mib = 256\nrealtime_mask = \"^0\"\n\
         [[layouts]]\nkind = \"vcpu0\"\n[[scenarios]]\nkind = \"idle\"\n\
         [[workloads]]\nkind = \"busy-poll\"\n",
    )
    .unwrap();
    let results = out.path().join("results");
    let o = pinlat_run(
        &d,
        &config,
        &results,
        &[(pinlat_runner::libvirt::launch::TEST_EMULATORPIN_ENV, "1")],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}\n{}", d.log());
    let dir = only_subdir(&results);
    let runs = load_runs(&dir);
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    let RunStatus::Failed { stage, reason } = &r.status else {
        panic!("the run passed: {:?}", r.status);
    };
    assert_eq!(*stage, Stage::Verify, "{reason}");
    assert!(
        reason.contains("emulator thread")
            && reason.contains("libvirt applied CPUs 1 other, the plan says CPUs 0 other"),
        "{reason}"
    );
    // Only the emulator threads were moved: the vCPUs are not named.
    assert!(!reason.contains("vCPU"), "{reason}");
    // The domain XML that was used is kept with the failed run, and the report shows why.
    let g = &r.guests[0];
    assert!(g
        .libvirt
        .as_ref()
        .unwrap()
        .domain_xml
        .contains("<emulatorpin cpuset='0'/>"));
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("libvirt applied CPUs 1"), "{report}");
    assert_nothing_left(&d, &g.qemu_pid.into_iter().collect::<Vec<_>>());
}

/// `mgmt-poll` under the libvirt launcher polls through libvirt (`virsh domstats`) at the
/// scenario's rate, as a cloud's monitoring does, not on a QMP monitor of pinlat's own.
#[test]
fn boot_libvirt_mgmt_poll_polls_through_libvirt() {
    let _lock = BootLock::acquire().unwrap();
    let d = PrivateLibvirtd::start();
    let out = tempfile::tempdir().unwrap();
    let config = out.path().join("poll.toml");
    std::fs::write(
        &config,
        "[run]\nduration_s = 2\n[host]\ncpus = \"0-1\"\n\
         [[guests]]\nname = \"rt\"\nvcpus = 2\nmemory_mib = 256\nrealtime_mask = \"^0\"\n\
         [[layouts]]\nkind = \"share\"\n[[scenarios]]\nkind = \"mgmt-poll\"\nrate_hz = 20\n\
         [[workloads]]\nkind = \"busy-poll\"\n",
    )
    .unwrap();
    let results = out.path().join("results");
    let o = pinlat_run(&d, &config, &results, &[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}\n{}", d.log());
    let runs = load_runs(&only_subdir(&results));
    let r = &runs[0];
    let poll = r.mgmt_poll.as_ref().expect("mgmt-poll counters");
    assert_eq!(poll.rate_hz, 20);
    assert!(
        poll.queries
            .iter()
            .any(|q| q.starts_with("virsh domstats pinlat-share-rt")),
        "{poll:?}"
    );
    // At 20 Hz over at least the 2 s measured: dozens of rounds, next to no errors.
    assert!(poll.rounds >= 20, "{poll:?}");
    assert!(poll.errors <= 1, "{poll:?}");
    // Nothing of pinlat's own on QEMU: no second QMP monitor, so no <qemu:commandline>.
    let xml = &r.guests[0].libvirt.as_ref().unwrap().domain_xml;
    assert!(!xml.contains("qemu:commandline"), "{xml}");
    assert_nothing_left(&d, &r.guests[0].qemu_pid.into_iter().collect::<Vec<_>>());
}
