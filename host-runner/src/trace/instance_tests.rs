//! Tests of the tracefs instance. Those that need a real tracefs and root skip (saying so)
//! where there is none; every instance they create is removed even when they fail, by the
//! instance's own `Drop` or by [`RmDir`].

use super::*;
use crate::trace::cleanup::remove_stale;
use pinlat::trace::{parse_trace, EventKind};

/// Serialises the tests that create instances: `remove_stale` removes every instance it does
/// not know to be live, a parallel test's too.
fn test_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes a directory the test made by hand, whatever happens.
struct RmDir(PathBuf);

impl Drop for RmDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The real tracefs, or `None` (with the reason printed) where tracing is unavailable.
fn tracefs() -> Option<Tracefs> {
    match Tracefs::locate() {
        Ok(fs) if nix::unistd::geteuid().is_root() => Some(fs),
        Ok(_) => {
            eprintln!("skipped: creating tracefs instances needs root");
            None
        }
        Err(e) => {
            assert!(e.is_unavailable(), "{e}");
            eprintln!("skipped: {e}");
            None
        }
    }
}

/// The highest CPU this thread may use: traced in the tests.
fn test_cpu() -> u32 {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
    (0..nix::sched::CpuSet::count())
        .rev()
        .find(|&c| set.is_set(c).unwrap_or(false))
        .unwrap() as u32
}

fn one_cpu(cpu: u32) -> CpuSet {
    let mut s = CpuSet::new();
    s.insert(cpu);
    s
}

fn small(name: &str, cpu: u32) -> InstanceConfig {
    InstanceConfig {
        buffer_kb: 512,
        ..InstanceConfig::new(name, one_cpu(cpu))
    }
}

#[test]
fn an_instance_records_only_its_cpu_on_the_mono_clock_and_goes_away() {
    let _serial = test_lock();
    let Some(fs) = tracefs() else { return };
    let cpu = test_cpu();
    let inst = Instance::create(&fs, &small("test-record", cpu)).unwrap();
    let path = inst.path().to_path_buf();
    let file = |f: &str| std::fs::read_to_string(path.join(f)).unwrap();
    assert!(file("trace_clock").contains("[mono]"));
    assert_eq!(
        file("tracing_on").trim(),
        "0",
        "configured, not yet recording"
    );
    assert_eq!(
        file("tracing_cpumask").trim().trim_start_matches('0'),
        cpumask_hex(&one_cpu(cpu)).trim_start_matches('0')
    );
    assert!(inst
        .enabled_events()
        .contains(&"sched/sched_switch".to_string()));
    for ev in inst.enabled_events() {
        assert_eq!(file(&format!("events/{ev}/enable")).trim(), "1", "{ev}");
    }
    for spec in inst.missing_events() {
        assert!(!spec.contains('*'), "{spec}: a pattern matched nothing");
        assert!(!path.join("events").join(spec).exists(), "{spec}");
    }

    inst.start().unwrap();
    let before = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
    pinlat::sched::set_affinity(0, &[cpu]).unwrap();
    let text = format!("pinlat-test {}", std::process::id());
    let marked = inst.marker(&text);
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(2));
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &before).unwrap();
    inst.stop().unwrap();
    marked.unwrap();

    let t = parse_trace(&inst.read_trace().unwrap());
    assert_eq!(t.stats.malformed, 0, "{:?}", t.stats.malformed_examples);
    assert!(t.events.iter().all(|e| e.cpu == cpu), "tracing_cpumask");
    assert!(t
        .events
        .iter()
        .any(|e| matches!(&e.kind, EventKind::Switch(_))));
    let m = t
        .events
        .iter()
        .find(|e| matches!(&e.kind, EventKind::Marker { text: x } if *x == text))
        .expect("our marker");
    assert_eq!(m.pid, nix::unistd::gettid().as_raw() as u32);
    assert!(inst.buffer_stats(cpu).unwrap().entries > 0);
    let mut copy = Vec::new();
    assert!(inst.copy_trace(&mut copy).unwrap() > 0);

    drop(inst);
    assert!(!path.exists(), "Drop removes the instance");
}

#[test]
fn a_failing_run_still_removes_its_instance() {
    let _serial = test_lock();
    let Some(fs) = tracefs() else { return };
    let path = std::sync::Mutex::new(PathBuf::new());
    let res = std::panic::catch_unwind(|| {
        let inst = Instance::create(&fs, &small("test-panic", test_cpu())).unwrap();
        *path.lock().unwrap() = inst.path().to_path_buf();
        inst.start().unwrap();
        panic!("the run fails");
    });
    assert!(res.is_err());
    let path = path.into_inner().unwrap();
    assert!(path.starts_with(fs.instances_dir()));
    assert!(!path.exists());
}

#[test]
fn removal_waits_for_a_pipe_reader_to_close() {
    let _serial = test_lock();
    let Some(fs) = tracefs() else { return };
    let inst = Instance::create(&fs, &small("test-pipe", test_cpu())).unwrap();
    let path = inst.path().to_path_buf();
    let pipe = inst.open_pipe().unwrap();
    // With the pipe open the kernel refuses rmdir.
    let busy = std::fs::remove_dir(&path).unwrap_err();
    assert_eq!(busy.raw_os_error(), Some(libc::EBUSY));
    let reader = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        drop(pipe);
    });
    inst.remove().unwrap();
    reader.join().unwrap();
    assert!(!path.exists());
}

#[test]
fn stale_instances_of_dead_runs_are_removed_others_kept() {
    let _serial = test_lock();
    let Some(fs) = tracefs() else { return };
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let dir = fs.instances_dir();
    let stale = instance_dir_name(dead, "test-stale");
    let live = instance_dir_name(std::process::id(), "test-live");
    let foreign = "pinlat-nopid-test".to_string();
    let _guards: Vec<RmDir> = [&stale, &live, &foreign]
        .iter()
        .map(|n| {
            std::fs::create_dir(dir.join(n)).unwrap();
            RmDir(dir.join(n))
        })
        .collect();
    let r = remove_stale(&fs).unwrap();
    assert!(r.removed.contains(&stale), "{r:?}");
    assert!(!dir.join(&stale).exists());
    let kept: Vec<&String> = r.kept.iter().map(|(n, _)| n).collect();
    assert!(kept.contains(&&live) && kept.contains(&&foreign), "{r:?}");
    assert!(dir.join(&live).exists() && dir.join(&foreign).exists());
}

#[test]
fn without_tracefs_the_error_says_skip_not_fail() {
    let e = Instance::create(&Tracefs::at("/nonexistent/tracefs"), &small("x", 0)).unwrap_err();
    assert!(
        matches!(e, TraceError::NotMounted) && e.is_unavailable(),
        "{e}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let e = Instance::create(&Tracefs::at(tmp.path()), &small("x", 0)).unwrap_err();
    assert!(matches!(e, TraceError::NoInstances { .. }) && e.is_unavailable());
    let denied = mkdir_error(
        PathBuf::from("/x"),
        io::Error::from_raw_os_error(libc::EACCES),
    );
    assert!(matches!(denied, TraceError::PermissionDenied { .. }) && denied.is_unavailable());
    assert!(denied.to_string().contains("run pinlat as root"));
    let exists = mkdir_error(
        PathBuf::from("/x"),
        io::Error::from_raw_os_error(libc::EEXIST),
    );
    assert!(matches!(exists, TraceError::Exists(_)) && !exists.is_unavailable());
}

#[test]
fn names_and_masks() {
    for bad in ["", "a/b", "..", "a b", "x\n"] {
        let e = Instance::create(&Tracefs::at("/nonexistent"), &small(bad, 0)).unwrap_err();
        assert!(matches!(e, TraceError::BadName(_)), "{bad:?}: {e}");
    }
    assert!(valid_name("share.idle.busy-poll.1_a"));
    let e = Instance::create(
        &Tracefs::at("/nonexistent"),
        &InstanceConfig::new("x", CpuSet::new()),
    )
    .unwrap_err();
    assert!(matches!(e, TraceError::NoCpus));
    assert_eq!(instance_dir_name(42, "run"), "pinlat-42-run");
    assert_eq!(cpumask_hex(&CpuSet::parse("1").unwrap()), "2");
    assert_eq!(cpumask_hex(&CpuSet::parse("0,33").unwrap()), "2,00000001");
    assert_eq!(
        cpumask_hex(&CpuSet::parse("4-7,64").unwrap()),
        "1,00000000,000000f0"
    );
    assert_eq!(cpumask_hex(&CpuSet::new()), "0");
}

#[test]
fn buffer_stats_parse() {
    let s = BufferStats::parse(
        "entries: 12\noverrun: 3\ncommit overrun: 0\nbytes: 99\noldest event ts:  2644.218513\nnow ts:  2644.2\ndropped events: 4\nread events: 7\n",
    );
    assert_eq!(
        s,
        BufferStats {
            entries: 12,
            overrun: 3,
            dropped_events: 4,
            read_events: 7
        }
    );
    assert_eq!(s.lost(), 7);
}
