//! Apply and restore on a fake root (a tempdir holding the three knob files), a crash between
//! journal and restore, refused and unkept values.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use pinlat::config::variant::{HostKnob, HostKnobs, Variant};
use pinlat::schema::{read_versioned, HostKnobsJournal};

use super::recover::{doctor_check, restore_command, Recovered};
use super::*;
use crate::doctor::Status;

const HALT: &str = "sys/module/kvm/parameters/halt_poll_ns";
const LAPIC: &str = "sys/module/kvm/parameters/lapic_timer_advance_ns";
const RT: &str = "proc/sys/kernel/sched_rt_runtime_us";

/// A root with KVM's two parameters and the RT runtime sysctl, as a host holds them.
fn fake_root() -> (tempfile::TempDir, SysRoot) {
    let dir = tempfile::tempdir().unwrap();
    for (rel, v) in [(HALT, "200000\n"), (LAPIC, "-1\n"), (RT, "950000\n")] {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, v).unwrap();
    }
    let root = SysRoot::at(dir.path());
    (dir, root)
}

fn variant(name: &str, host: HostKnobs) -> Variant {
    Variant {
        name: name.into(),
        host,
        ..Variant::default()
    }
}

fn all_three() -> Variant {
    variant(
        "tuned",
        HostKnobs {
            halt_poll_ns: Some(0),
            lapic_timer_advance_ns: Some(5000),
            sched_rt_runtime_us: Some(-1),
        },
    )
}

fn value(root: &SysRoot, rel: &str) -> String {
    root.read(rel).unwrap().trim().to_string()
}

fn values(root: &SysRoot) -> [String; 3] {
    [value(root, HALT), value(root, LAPIC), value(root, RT)]
}

fn journal(root: &SysRoot) -> HostKnobsJournal {
    read_versioned(&HostTuner::journal_path(root)).unwrap()
}

#[test]
fn apply_journals_every_change_and_restore_puts_every_value_back() {
    let (_d, root) = fake_root();
    let mut t = HostTuner::new(root.clone());
    let applied = t.apply(&all_three()).unwrap();
    assert_eq!(values(&root), ["0", "5000", "-1"]);
    assert_eq!(
        applied
            .iter()
            .map(|a| (a.knob, a.before.as_str(), a.applied.as_str()))
            .collect::<Vec<_>>(),
        [
            (HostKnob::HaltPollNs, "200000", "0"),
            (HostKnob::LapicTimerAdvanceNs, "-1", "5000"),
            (HostKnob::SchedRtRuntimeUs, "950000", "-1"),
        ]
    );
    assert!(applied.iter().all(|a| a.took()));
    let j = journal(&root);
    assert_eq!(
        (j.variant.as_str(), j.runner_pid),
        ("tuned", std::process::id())
    );
    assert_eq!(
        j.changes
            .iter()
            .map(|c| (c.path.as_str(), c.old.as_str(), c.new.as_str()))
            .collect::<Vec<_>>(),
        [
            (HALT, "200000", "0"),
            (LAPIC, "-1", "5000"),
            (RT, "950000", "-1")
        ]
    );

    let restored = t.restore().unwrap();
    assert_eq!(values(&root), ["200000", "-1", "950000"]);
    assert!(!HostTuner::journal_path(&root).exists());
    // Newest first.
    assert_eq!(
        restored.iter().map(|r| r.knob).collect::<Vec<_>>(),
        [
            HostKnob::SchedRtRuntimeUs,
            HostKnob::LapicTimerAdvanceNs,
            HostKnob::HaltPollNs
        ]
    );
    assert_eq!(restored[0].to_string(), "sched_rt_runtime_us -1 -> 950000");
    assert!(t.restore().unwrap().is_empty(), "nothing left to restore");
}

#[test]
fn a_crash_between_journal_and_restore_is_restored_by_doctor_restore() {
    let (_d, root) = fake_root();
    assert!(doctor_check(&root).is_none(), "no journal, no line");
    let mut t = HostTuner::new(root.clone());
    t.apply(&all_three()).unwrap();
    // The process dies here: no restore, no Drop.
    std::mem::forget(t);
    assert_eq!(values(&root), ["0", "5000", "-1"]);

    let check = doctor_check(&root).unwrap();
    assert_eq!(check.status, Status::Warn);
    assert!(
        check
            .found
            .contains("halt_poll_ns was 200000, pinlat wrote 0"),
        "{check:?}"
    );
    assert_eq!(check.fix, "pinlat doctor --restore");
    let e = refuse_leftover(&root).unwrap_err();
    assert!(matches!(e, Held::Left { .. }), "{e}");
    assert!(
        e.to_string().contains("run pinlat doctor --restore first"),
        "{e}"
    );
    // A second pinlat does not touch the knobs while the journal is there.
    let e = HostTuner::new(root.clone())
        .apply(&all_three())
        .unwrap_err();
    assert!(matches!(e, KnobError::Held(Held::Left { .. })), "{e}");
    assert_eq!(values(&root), ["0", "5000", "-1"]);

    match restore_command(&root).unwrap() {
        Recovered::Restored { restored, journal } => {
            assert_eq!(restored.len(), 3);
            assert_eq!(journal.variant, "tuned");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(values(&root), ["200000", "-1", "950000"]);
    assert!(!HostTuner::journal_path(&root).exists());
    assert!(matches!(
        restore_command(&root).unwrap(),
        Recovered::Nothing { .. }
    ));
    refuse_leftover(&root).unwrap();
}

#[test]
fn drop_restores_what_is_still_applied() {
    let (_d, root) = fake_root();
    {
        let mut t = HostTuner::new(root.clone());
        t.apply(&all_three()).unwrap();
        assert_eq!(value(&root, RT), "-1");
    }
    assert_eq!(values(&root), ["200000", "-1", "950000"]);
    assert!(!HostTuner::journal_path(&root).exists());
}

#[test]
fn enter_applies_on_a_change_of_variant_and_restores_before_the_next() {
    let (_d, root) = fake_root();
    let a = variant(
        "a",
        HostKnobs {
            halt_poll_ns: Some(0),
            ..HostKnobs::default()
        },
    );
    let b = variant(
        "b",
        HostKnobs {
            sched_rt_runtime_us: Some(980000),
            ..HostKnobs::default()
        },
    );
    let mut t = HostTuner::new(root.clone());
    assert_eq!(t.enter(Some(&a)).unwrap().len(), 1);
    let created = journal(&root).created_unix_ms;
    // The same variant again: nothing rewritten.
    std::fs::write(root.path(HALT), "0").unwrap();
    assert_eq!(t.enter(Some(&a)).unwrap()[0].applied, "0");
    assert_eq!(journal(&root).created_unix_ms, created);
    let applied = t.enter(Some(&b)).unwrap().to_vec();
    assert_eq!(
        values(&root),
        ["200000", "-1", "980000"],
        "a restored, b applied"
    );
    assert_eq!(applied[0].before, "950000");
    assert!(t.enter(None).unwrap().is_empty());
    assert_eq!(values(&root), ["200000", "-1", "950000"]);
    assert!(!HostTuner::journal_path(&root).exists());
}

#[test]
fn a_read_only_knob_is_refused_before_anything_changes_naming_the_variant_and_fix() {
    let (_d, root) = fake_root();
    std::fs::set_permissions(root.path(HALT), std::fs::Permissions::from_mode(0o444)).unwrap();
    let variants = [
        variant("plain", HostKnobs::default()),
        variant(
            "poll0",
            HostKnobs {
                sched_rt_runtime_us: Some(-1),
                halt_poll_ns: Some(0),
                ..HostKnobs::default()
            },
        ),
    ];
    let e = preflight(&root, &variants).unwrap_err();
    let msg = pinlat::report::aggregate::error_chain(&e);
    assert!(
        msg.starts_with("variants[1].host.halt_poll_ns cannot be set on this host: "),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "{} is read-only (mode 0444)",
            root.path(HALT).display()
        )),
        "{msg}"
    );
    assert!(msg.contains("options kvm halt_poll_ns=0"), "{msg}");
    // sched_rt_runtime_us comes later in the variant but was not written either.
    assert_eq!(values(&root), ["200000", "-1", "950000"]);
    assert!(!HostTuner::journal_path(&root).exists());
}

#[test]
fn a_kernel_without_lapic_timer_advance_ns_is_named_with_what_replaced_it() {
    let (_d, root) = fake_root();
    std::fs::remove_file(root.path(LAPIC)).unwrap();
    std::fs::write(
        root.path("sys/module/kvm/parameters/lapic_timer_advance"),
        "Y\n",
    )
    .unwrap();
    let e = preflight(&root, &[all_three()]).unwrap_err();
    let msg = pinlat::report::aggregate::error_chain(&e);
    assert!(
        msg.starts_with("variants[0].host.lapic_timer_advance_ns"),
        "{msg}"
    );
    assert!(msg.contains("kvm.lapic_timer_advance"), "{msg}");
    assert_eq!(value(&root, HALT), "200000", "halt_poll_ns untouched");
    // Without KVM at all the fix is to load it.
    std::fs::remove_dir_all(root.path("sys/module/kvm")).unwrap();
    let msg =
        pinlat::report::aggregate::error_chain(&preflight(&root, &[all_three()]).unwrap_err());
    assert!(msg.contains("modprobe kvm_intel"), "{msg}");
}

#[test]
fn a_value_the_file_does_not_keep_is_refused_by_the_check_and_recorded_at_run_time() {
    // /dev/null takes every write and reads back empty: a kernel that accepts a value and
    // keeps another.
    let (_d, root) = fake_root();
    std::fs::remove_file(root.path(HALT)).unwrap();
    std::os::unix::fs::symlink("/dev/null", root.path(HALT)).unwrap();
    let v = all_three();
    let e = preflight(&root, std::slice::from_ref(&v)).unwrap_err();
    let msg = pinlat::report::aggregate::error_chain(&e);
    assert!(
        msg.contains("reads back \"\" after pinlat wrote \"0\""),
        "{msg}"
    );
    assert!(msg.starts_with("variants[0].host.halt_poll_ns"), "{msg}");
    assert!(!HostTuner::journal_path(&root).exists());
    assert_eq!(&values(&root)[1..], ["-1", "950000"]);

    let mut t = HostTuner::new(root.clone());
    let applied = t.enter(Some(&v)).unwrap().to_vec();
    let halt = applied
        .iter()
        .find(|a| a.knob == HostKnob::HaltPollNs)
        .unwrap();
    assert_eq!((halt.wanted.as_str(), halt.applied.as_str()), ("0", ""));
    assert!(!halt.took());
    t.restore().unwrap();
}

#[test]
fn a_value_the_kernel_refuses_was_journaled_before_the_write_and_is_an_error() {
    // The real sysctl behind a fake root: the kernel refuses a runtime above the period
    // (EINVAL), so nothing on this host changes.
    let real = Path::new("/proc/sys/kernel/sched_rt_runtime_us");
    let period: i64 = std::fs::read_to_string("/proc/sys/kernel/sched_rt_period_us")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let before = std::fs::read_to_string(real).unwrap();
    let (_d, root) = fake_root();
    std::fs::remove_file(root.path(RT)).unwrap();
    std::os::unix::fs::symlink(real, root.path(RT)).unwrap();
    let v = variant(
        "too-much",
        HostKnobs {
            halt_poll_ns: Some(0),
            sched_rt_runtime_us: Some(period * 2),
            ..HostKnobs::default()
        },
    );
    let mut t = HostTuner::new(root.clone());
    let e = t.apply(&v).unwrap_err();
    assert!(
        matches!(
            e,
            KnobError::Write {
                knob: HostKnob::SchedRtRuntimeUs,
                ..
            }
        ),
        "{e}"
    );
    // The refused change is in the journal: it was written first.
    let j = journal(&root);
    let last = j.changes.last().unwrap();
    assert_eq!(
        (last.knob, last.new.clone()),
        (HostKnob::SchedRtRuntimeUs, (period * 2).to_string())
    );
    assert_eq!(last.old, before.trim());
    assert_eq!(value(&root, HALT), "0", "the knob before it was applied");
    let restored = t.restore().unwrap();
    assert_eq!(
        super::summary(&restored),
        format!(
            "sched_rt_runtime_us already {}, halt_poll_ns 0 -> 200000",
            before.trim()
        )
    );
    assert_eq!(std::fs::read_to_string(real).unwrap(), before);
    assert!(!HostTuner::journal_path(&root).exists());

    let e = preflight(&root, &[variant("plain", HostKnobs::default()), v]).unwrap_err();
    let msg = pinlat::report::aggregate::error_chain(&e);
    assert!(
        msg.starts_with("variants[1].host.sched_rt_runtime_us cannot be set on this host: "),
        "{msg}"
    );
    assert!(
        msg.contains("sched_rt_period_us") || msg.contains("root"),
        "{msg}"
    );
}

#[test]
fn a_knob_that_cannot_be_restored_keeps_the_journal_for_doctor_restore() {
    let (_d, root) = fake_root();
    let mut t = HostTuner::new(root.clone());
    t.apply(&all_three()).unwrap();
    // The file goes away under pinlat's feet.
    std::fs::remove_file(root.path(LAPIC)).unwrap();
    std::fs::create_dir(root.path(LAPIC)).unwrap();
    let e = t.restore().unwrap_err();
    assert_eq!((e.total, e.failed.len(), e.restored.len()), (3, 1, 2));
    assert!(e.to_string().contains("pinlat doctor --restore"), "{e}");
    assert_eq!(value(&root, HALT), "200000");
    assert_eq!(value(&root, RT), "950000");
    assert!(HostTuner::journal_path(&root).exists(), "kept");
    drop(t); // nothing left for Drop: the failure is the journal's now

    std::fs::remove_dir(root.path(LAPIC)).unwrap();
    std::fs::write(root.path(LAPIC), "5000\n").unwrap();
    let Recovered::Restored { restored, .. } = restore_command(&root).unwrap() else {
        panic!("a journal was there");
    };
    assert_eq!(super::summary(&restored), "sched_rt_runtime_us already 950000, lapic_timer_advance_ns 5000 -> -1, halt_poll_ns already 200000");
    assert!(!HostTuner::journal_path(&root).exists());
}

#[test]
fn a_variant_without_host_knobs_writes_no_journal() {
    let (_d, root) = fake_root();
    let mut t = HostTuner::new(root.clone());
    assert!(t
        .apply(&variant("plain", HostKnobs::default()))
        .unwrap()
        .is_empty());
    assert!(!root.path("run").exists());
    preflight(&root, &[variant("plain", HostKnobs::default())]).unwrap();
}
