//! The host tracer end to end under TCG: a culprit planted on the RT pCPU is named with its
//! lengths and matched to the guest's largest events; the emulator's main loop shows up on the
//! RT pCPU under `share` and not under `vcpu0`; and no tracefs instance outlives a run.
//!
//! Tolerances are for a loaded 2-CPU machine: this host RT-throttles every second
//! (`sched_rt_runtime_us` = 950000), so a planted stall that lands in a throttled stretch is
//! merged with it and only the stalls that did not are held to their lengths.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pinlat::result::{RunRecord, ThreadRole};
use pinlat::trace::record::TraceStatus;
use pinlat::trace::{Class, Interval};
use pinlat_runner::calibrate::inject::{self, Planned};
use pinlat_test_infra::{load_runs, only_subdir, repo, BootLock};

/// Planted stall length, ns.
const STALL_NS: u64 = 20_000_000;
/// How far a recognised stall's interval may differ from the injector's own start and end:
/// the switch to the injector precedes its first clock read, the switch back follows its last,
/// by microseconds; a tick or an IPI inside the spin splits nothing (it is the same interval).
const STALL_TOLERANCE_NS: u64 = 1_000_000;
/// The injector's SCHED_FIFO priority: above the RT vCPU thread's (1).
const INJECTOR_PRIORITY: u32 = 50;

/// The names of the tracefs instances pinlat created that still exist.
pub fn pinlat_instances() -> Vec<String> {
    let dir = [
        "/sys/kernel/tracing/instances",
        "/sys/kernel/debug/tracing/instances",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.is_dir());
    let Some(dir) = dir else {
        return Vec::new();
    };
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pinlat-"))
        .collect()
}

/// Instances left by this test process's runners (their pid is in the name).
fn instances_of(pid: u32) -> Vec<String> {
    pinlat_instances()
        .into_iter()
        .filter(|n| n.starts_with(&format!("pinlat-{pid}-")))
        .collect()
}

fn config(dir: &Path, layouts: &[&str], scenario: &str, workload: &str, secs: u32) -> PathBuf {
    let mut s = format!(
        "[run]\nduration_s = {secs}\naccel = \"tcg\"\nboot_timeout_s = 120\n\
         [host]\ncpus = \"0-1\"\n[[guests]]\nname = \"rt\"\nvcpus = 2\n"
    );
    for l in layouts {
        s += &format!("[[layouts]]\nkind = \"{l}\"\n");
    }
    s += &format!(
        "[[scenarios]]\n{scenario}\n[[workloads]]\nkind = \"{workload}\"\npreheat_ms = 300\n"
    );
    let p = dir.join("trace.toml");
    std::fs::write(&p, s).unwrap();
    p
}

fn spawn(cfg: &Path, out: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pinlat"))
        .arg("run")
        .arg(cfg)
        .arg("--out")
        .arg(out)
        .args(extra)
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the run's agent has sent `n` interval frames (read from the raw agent stream
/// the runner keeps under `console/`).
fn wait_for_intervals(out: &Path, n: usize, timeout: Duration) {
    let end = Instant::now() + timeout;
    loop {
        let seen = std::fs::read_dir(out)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .and_then(|e| std::fs::read_dir(e.path().join("console")).ok())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".agent"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .map(|t| t.matches("\"type\":\"interval\"").count())
            .max()
            .unwrap_or(0);
        if seen >= n {
            return;
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for {n} interval frames"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn runs_of(out: &Path) -> Vec<RunRecord> {
    load_runs(&only_subdir(out))
}

/// The parts of `iv` named `name`, summed.
fn part_ns(iv: &Interval, name: &str) -> u64 {
    iv.parts
        .iter()
        .filter(|p| p.name == name)
        .map(|p| p.ns)
        .sum()
}

#[test]
fn boot_trace_names_a_planted_culprit_with_its_lengths() {
    let _lock = BootLock::acquire().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &["vcpu0"], "kind = \"idle\"", "busy-poll", 4);
    let out = tmp.path().join("out");
    let child = spawn(&cfg, &out, &["--trace-threshold", "10ms"]);
    let runner = child.id();
    // Plant once the agent measures: three 20 ms stalls 700 ms apart on RT pCPU 1.
    wait_for_intervals(&out, 1, Duration::from_secs(150));
    let t0 = pinlat::host::monotonic_ns() + 200_000_000;
    let plan: Vec<Planned> = (0..3)
        .map(|i| Planned {
            at_ns: t0 + i * 700_000_000,
            spin_ns: STALL_NS,
        })
        .collect();
    let injections = inject::spawn(1, INJECTOR_PRIORITY, plan)
        .unwrap()
        .join()
        .unwrap()
        .expect("the injector ran (root, SCHED_FIFO)");
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let r = &runs_of(&out)[0];
    assert!(r.status.is_ok(), "{:?}", r.status);
    let t = r.host_trace.as_ref().expect("traced");
    assert_eq!(t.status, TraceStatus::Recorded, "{:?}", r.warnings);
    assert!(instances_of(runner).is_empty(), "{:?}", pinlat_instances());
    let g = &t.guests[0];
    let p = g
        .pcpus
        .iter()
        .find(|p| p.attribution.cpu == 1)
        .unwrap_or_else(|| panic!("pCPU 1 not attributed: {:?}", g.notes));
    let w = p.attribution.window;

    // The injector's thread is named, by its comm, with the planted lengths: every stall that
    // did not land in an RT-throttled stretch is one interval of its length.
    let name = "inject-cpu1";
    let other = p
        .attribution
        .by_class
        .iter()
        .find(|c| c.names.iter().any(|n| n.name == name));
    assert!(
        other.is_some(),
        "{name} not among the culprits: {:#?}",
        p.attribution.by_class
    );
    let mut recognised = Vec::new();
    for inj in &injections {
        assert!(
            w.start_ns < inj.start_ns && inj.end_ns < w.end_ns,
            "{inj:?} outside {w:?}"
        );
        let planted = inj.end_ns - inj.start_ns;
        // Stolen intervals around it, from the longest list (20 ms stalls are among the
        // longest) or the strip.
        let ivs: Vec<&Interval> = p
            .attribution
            .longest
            .iter()
            .chain(p.strip.iter().flat_map(|s| &s.intervals))
            .filter(|i| i.start_ns < inj.end_ns && i.end_ns > inj.start_ns)
            .collect();
        let throttled = ivs
            .iter()
            .any(|i| i.parts.iter().any(|p| p.class == Class::Throttled));
        let hit = ivs.iter().find(|i| {
            i.name == name
                && i.start_ns.abs_diff(inj.start_ns) <= STALL_TOLERANCE_NS
                && i.end_ns.abs_diff(inj.end_ns) <= STALL_TOLERANCE_NS
        });
        eprintln!(
            "planted {:.3} ms at {}: recognised {:?}, throttled nearby {throttled}",
            planted as f64 / 1e6,
            inj.start_ns,
            hit.map(|i| (i.len_ns() as f64 / 1e6, part_ns(i, name) as f64 / 1e6))
        );
        match hit {
            Some(i) => {
                assert!(
                    i.len_ns().abs_diff(planted) <= 2 * STALL_TOLERANCE_NS,
                    "{i:?}"
                );
                recognised.push(i.len_ns());
            }
            // Seen once in seven runs on a loaded 2-CPU TCG host: a stall with no throttled
            // stretch near it still not one interval of its length. Printed; two of the three
            // must be recognised.
            None if !throttled => eprintln!("stall {inj:?} not recognised: {ivs:#?}"),
            None => {}
        }
    }
    assert!(recognised.len() >= 2, "{recognised:?}");

    // The guest's largest events are attributed to it: a recognised stall is one of the
    // guest's top events, and its first culprit is the injector, covering most of it, within
    // the matcher's own tolerance (a "match"). On some 2-CPU TCG machines the guest's clock
    // wanders against the host's by ±0.6 ms within a run (seen: Δstart -0.47 ms and +0.61 ms
    // for two stalls of one run); the mapping's uncertainty includes that wander (the residual
    // after its one shift), so a recognised stall must still match.
    let attributed: Vec<_> = g
        .matches
        .iter()
        .filter_map(|m| m.host.culprits.first().map(|c| (m, c)))
        .filter(|(m, c)| c.interval.name == name && c.overlap_ns * 10 >= m.latency_ns * 8)
        .collect();
    let strict = attributed.iter().filter(|(_, c)| c.matches).count();
    for (m, c) in &attributed {
        eprintln!(
            "guest event {:.3} ms attributed to {} {:.3} ms (overlap {:.3} ms, Δstart {:+.3} ms, Δend {:+.3} ms, tolerance ±{:.3} ms, match {})",
            m.latency_ns as f64 / 1e6,
            c.interval.name,
            c.interval.len_ns() as f64 / 1e6,
            c.overlap_ns as f64 / 1e6,
            c.start_delta_ns as f64 / 1e6,
            c.end_delta_ns as f64 / 1e6,
            m.host.tolerance_ns as f64 / 1e6,
            c.matches
        );
        assert!(
            m.latency_ns.abs_diff(c.interval.len_ns()) <= m.host.tolerance_ns + STALL_TOLERANCE_NS
        );
    }
    assert!(
        attributed.len() >= recognised.len() && strict >= recognised.len(),
        "{} of {} recognised stalls attributed, {strict} matched: {:#?}\nmapping {:?}",
        attributed.len(),
        recognised.len(),
        g.matches,
        g.mapping
    );
    // Capture on threshold: the trace of those intervals is kept, with the markers.
    let f = t.capture_file.as_ref().expect("a capture over 10 ms");
    let text = std::fs::read_to_string(only_subdir(&out).join(f)).unwrap();
    assert!(text.contains(name), "the capture holds the injector");
    assert!(text.contains("pinlat-marker") || t.captures.iter().all(|c| c.marker_in_kernel));
    assert!(t.dat_note.is_some());
    // SMIs: a count or "not available", never a silent 0.
    assert_eq!(t.smi.len(), 1);
}

/// The main loop's comm and tid of the run's guest.
fn main_loop(r: &RunRecord) -> (String, i32) {
    let g = &r.guests[0];
    let pid = g.qemu_pid.unwrap();
    let t = g
        .observed_start
        .iter()
        .find(|t| t.tid == pid && t.role == ThreadRole::Emulator)
        .unwrap();
    (t.comm.clone(), pid)
}

/// Stolen time on RT pCPU 1 booked to `name` in any class (throttled stretches book what ran
/// under its name): (class, ns).
fn stolen_by(r: &RunRecord, name: &str) -> Vec<(Class, u64)> {
    let t = r.host_trace.as_ref().unwrap();
    t.guests[0]
        .pcpus
        .iter()
        .flat_map(|p| &p.attribution.by_class)
        .flat_map(|c| c.names.iter().map(move |n| (c.class, n)))
        .filter(|(_, n)| n.name == name)
        .map(|(c, n)| (c, n.total_ns))
        .collect()
}

#[test]
fn boot_trace_shows_the_main_loop_on_the_rt_pcpu_under_share_not_vcpu0() {
    let _lock = BootLock::acquire().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(
        tmp.path(),
        &["share", "vcpu0"],
        "kind = \"mgmt-poll\"\nrate_hz = 1000",
        "timer",
        4,
    );
    let out = tmp.path().join("out");
    let child = spawn(&cfg, &out, &[]);
    let runner = child.id();
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(instances_of(runner).is_empty(), "{:?}", pinlat_instances());
    let runs = runs_of(&out);
    let share = runs.iter().find(|r| r.layout == "share").unwrap();
    let vcpu0 = runs.iter().find(|r| r.layout == "vcpu0").unwrap();
    for r in [share, vcpu0] {
        assert!(r.status.is_ok(), "{}: {:?}", r.name, r.status);
        let t = r.host_trace.as_ref().unwrap();
        assert_eq!(
            t.status,
            TraceStatus::Recorded,
            "{}: {:?}",
            r.name,
            r.warnings
        );
        assert!(
            !t.guests[0].pcpus.is_empty(),
            "{}: {:?}",
            r.name,
            t.guests[0].notes
        );
        assert!(
            r.mgmt_poll.as_ref().unwrap().rounds > 100,
            "{:?}",
            r.mgmt_poll
        );
    }
    let (comm, _) = main_loop(share);
    let on_share = stolen_by(share, &comm);
    eprintln!("share: main loop '{comm}' stole {on_share:?}");
    assert!(
        on_share
            .iter()
            .any(|&(c, ns)| ns > 0 && matches!(c, Class::Emulator | Class::Throttled)),
        "share: the main loop '{comm}' never took RT pCPU 1: {:#?}",
        share.host_trace.as_ref().unwrap().guests[0].pcpus[0]
            .attribution
            .by_class
    );
    let (comm, _) = main_loop(vcpu0);
    let on_vcpu0 = stolen_by(vcpu0, &comm);
    assert!(
        on_vcpu0.is_empty(),
        "vcpu0: the main loop '{comm}' took RT pCPU 1: {on_vcpu0:?}"
    );
    let v = &vcpu0.host_trace.as_ref().unwrap().guests[0].pcpus[0].attribution;
    assert_eq!(v.class_ns(Class::Emulator), 0, "{:#?}", v.by_class);
}
