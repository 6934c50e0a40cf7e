//! A planted culprit in a synthetic trace, read as a run would read it: the mapping from
//! interval frames, the classes from the pinner's threads, the match of the guest's largest
//! event, the strip around it.

use super::*;
use crate::cpuset::CpuSet;
use crate::plan::{GuestPlacement, Sched, VcpuPlacement};
use crate::result::HostPolicy;
use crate::trace::parse::parse_trace;
use crate::trace::record::MAX_STRIP_INTERVALS;
use crate::wire::{CpuResult, TopEvent};

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

fn thread(tid: i32, comm: &str, role: ThreadRole, cpus: &str) -> ObservedThread {
    let cpus = CpuSet::parse(cpus).unwrap();
    ObservedThread {
        tid,
        comm: comm.into(),
        role,
        cpus: cpus.clone(),
        policy: HostPolicy::Other,
        priority: 0,
        planned_cpus: cpus,
        planned_sched: Sched::OTHER,
    }
}

/// Guest `rt`: vCPU 0 housekeeping on pCPU 0, vCPU 1 RT on pCPU 1 (tid 100), emulator pid 50.
/// Its clock runs 3 s behind the host's.
fn guest(top: Vec<TopEvent>) -> GuestRun {
    let vcpu = |v: u32, rt: bool, cpus: &str| VcpuPlacement {
        vcpu: v,
        realtime: rt,
        cpus: CpuSet::parse(cpus).unwrap(),
        sched: if rt { Sched::fifo(1) } else { Sched::OTHER },
    };
    let result = CpuResult {
        duration_ns: 2 * S,
        start_mono_ns: Some(996 * S),
        end_mono_ns: Some(998 * S),
        samples: 1,
        min_ns: 1,
        max_ns: 20 * MS,
        top,
        intervals: 2,
        ..crate::wire::test_cpu_result()
    };
    let threads = vec![
        thread(50, "qemu-system-x86", ThreadRole::Emulator, "0"),
        thread(51, "CPU 0/TCG", ThreadRole::Vcpu { vcpu: 0 }, "0"),
        thread(100, "CPU 1/TCG", ThreadRole::Vcpu { vcpu: 1 }, "1"),
    ];
    GuestRun {
        qemu_pid: Some(50),
        observed_start: threads.clone(),
        observed_end: threads,
        results: vec![result],
        ..GuestRun::new(GuestPlacement {
            guest: "rt".into(),
            pinned: true,
            vcpus: vec![vcpu(0, false, "0"), vcpu(1, true, "1")],
            emulator_cpus: CpuSet::parse("0").unwrap(),
            iothread_cpus: CpuSet::parse("0").unwrap(),
        })
    }
}

fn line(ts_us: u64, comm: &str, pid: u32, body: &str) -> String {
    format!(
        "{comm:>16}-{pid:<6} [001] d..2. {}.{:06}: {body}\n",
        ts_us / 1_000_000,
        ts_us % 1_000_000
    )
}

fn switch(ts_us: u64, from: (&str, u32, i32, &str), to: (&str, u32, i32)) -> String {
    line(
        ts_us,
        from.0,
        from.1,
        &format!(
            "sched_switch: prev_comm={} prev_pid={} prev_prio={} prev_state={} ==> next_comm={} next_pid={} next_prio={}",
            from.0, from.1, from.2, from.3, to.0, to.1, to.2
        ),
    )
}

/// Host: the vCPU (SCHED_OTHER here, as without CAP_SYS_NICE) runs from 998.5 s; `inject-cpu1` (FIFO 2) takes pCPU 1 for 20 ms at 1000 s,
/// a `worker` the read-backs never saw for 1 ms at 1000.5 s.
fn trace_text() -> String {
    let vcpu = ("CPU 1/TCG", 100, 120);
    let mut t = String::from("# tracer: nop\n");
    t += &switch(998_500_000, ("<idle>", 0, 120, "R"), vcpu);
    t += &switch(
        1_000_000_000,
        ("CPU 1/TCG", 100, 120, "R+"),
        ("inject-cpu1", 77, 97),
    );
    t += &switch(1_000_020_000, ("inject-cpu1", 77, 97, "S"), vcpu);
    t += &switch(
        1_000_500_000,
        ("CPU 1/TCG", 100, 120, "R+"),
        ("worker", 60, 120),
    );
    t += &switch(1_000_501_000, ("worker", 60, 120, "S"), vcpu);
    t += &switch(
        1_002_000_000,
        ("CPU 1/TCG", 100, 120, "S"),
        ("<idle>", 0, 120),
    );
    t
}

/// Interval frames read 4 ms (fastest) and 15 ms after they ended: offset 3 s + 4 ms.
fn notes() -> GuestNotes {
    GuestNotes {
        hello_arrival_ns: None,
        interval_arrivals: vec![(1, S, 1_000 * S + 15 * MS), (1, 2 * S, 1_001 * S + 4 * MS)],
        threads: vec![],
    }
}

#[test]
fn the_mapping_is_the_fastest_frame_centred_in_its_bound() {
    let g = guest(vec![]);
    let m = mapping(&g, &notes(), Accel::Tcg).unwrap();
    assert_eq!(m.frames, 2);
    assert_eq!(m.delay_min_ns, (3 * S + 4 * MS) as i64);
    assert_eq!(m.uncertainty_ns, MAX_FRAME_DELAY_NS / 2);
    assert_eq!(
        m.offset_ns,
        (3 * S + 4 * MS) as i64 - m.uncertainty_ns as i64
    );
    assert!(m.note.starts_with("TCG: "), "{}", m.note);
    let k = mapping(&g, &notes(), Accel::Kvm).unwrap();
    assert!(k.note.contains("not implemented"), "{}", k.note);
    assert!(mapping(&g, &GuestNotes::default(), Accel::Tcg).is_none());
}

#[test]
fn the_planted_thread_is_named_and_matched_to_the_guests_largest_event() {
    // The guest saw a 20 ms gap ending at guest 997.020 s (host 1000.020 s): offset 1.020 s from
    // its start at guest 996 s. The frames map it to 999.924 s (fastest delay 3.004 s, centred
    // in its 200 ms bound); the alignment moves it by +96 ms onto the injector's interval.
    let g = guest(vec![TopEvent {
        offset_ns: S + 20 * MS,
        latency_ns: 20 * MS,
    }]);
    let n = notes();
    let m = mapping(&g, &n, Accel::Tcg);
    let trace = parse_trace(&trace_text());
    let out = analyse(
        &trace,
        &[(&g, &n)],
        std::slice::from_ref(&m),
        &Options::default(),
    );
    let gt = &out[0];
    assert!(gt.notes.is_empty(), "{:?}", gt.notes);
    let w = gt.window.unwrap();
    assert_eq!(w.len_ns(), 2 * S);
    let p = &gt.pcpus[0];
    assert_eq!(
        (p.vcpu, p.attribution.cpu, p.attribution.planned_tid),
        (1, 1, 100)
    );
    let other = p
        .attribution
        .by_class
        .iter()
        .find(|c| c.class == Class::Other)
        .unwrap();
    assert_eq!(other.names[0].name, "inject-cpu1");
    assert_eq!((other.total_ns, other.longest_ns), (20 * MS, 20 * MS));
    assert_eq!(
        p.attribution.class_ns(Class::Worker),
        MS,
        "a worker by its comm"
    );
    let al = gt
        .mapping
        .as_ref()
        .unwrap()
        .aligned
        .clone()
        .expect("aligned");
    assert_eq!((al.shift_ns, al.events, al.lined_up), (96_000_000, 1, 1));
    assert_eq!(
        gt.mapping.as_ref().unwrap().uncertainty_ns,
        ALIGNED_UNCERTAINTY_NS
    );
    let hit = &gt.matches[0];
    assert_eq!((hit.vcpu, hit.pcpu, hit.latency_ns), (1, 1, 20 * MS));
    let best = hit.host.best().expect("matched");
    assert_eq!(best.interval.name, "inject-cpu1");
    assert_eq!(best.interval.len_ns(), 20 * MS);
    assert!(best.end_delta_ns.unsigned_abs() <= hit.host.tolerance_ns);
    let strip = p.strip.as_ref().unwrap();
    assert!(strip.from_ns < 1_000 * S && strip.to_ns > 1_000 * S + 20 * MS);
    assert_eq!(strip.intervals.len(), 1, "the worker is outside the strip");
    assert_eq!(
        p.attribution.intervals, strip.intervals,
        "the record keeps the strip's only"
    );
    let by = stolen_by_class(&out);
    assert_eq!(by[0], (Class::Other, 20 * MS));
}

#[test]
fn a_floating_rt_vcpu_is_not_attributed_and_says_why() {
    let mut g = guest(vec![]);
    g.planned.vcpus[1].cpus = CpuSet::parse("0-1").unwrap();
    let n = notes();
    let m = mapping(&g, &n, Accel::Tcg);
    let out = analyse(
        &parse_trace(&trace_text()),
        &[(&g, &n)],
        &[m],
        &Options::default(),
    );
    assert!(out[0].pcpus.is_empty());
    assert!(
        out[0].notes[0].contains("pinned to one pCPU"),
        "{:?}",
        out[0].notes
    );
    assert!(out[0].window.is_some());
}

#[test]
fn a_strip_keeps_the_longest_intervals_in_time_order() {
    let iv = |s: u64, len: u64| Interval {
        start_ns: s,
        end_ns: s + len,
        class: Class::Other,
        name: "x".into(),
        parts: vec![],
    };
    let many: Vec<Interval> = (0..MAX_STRIP_INTERVALS as u64 + 10)
        .map(|i| iv(i * 100, 1 + i % 7))
        .collect();
    let s = strip(&many, 0, u64::MAX, (0, 1));
    assert_eq!(s.intervals.len(), MAX_STRIP_INTERVALS);
    assert!(s
        .intervals
        .windows(2)
        .all(|w| w[0].start_ns < w[1].start_ns));
    let ones = |v: &[Interval]| v.iter().filter(|i| i.len_ns() == 1).count();
    assert_eq!(
        ones(&s.intervals),
        ones(&many) - 10,
        "the shortest went first"
    );
    assert_eq!(span([]), None);
    let w = Window {
        start_ns: 5 * S,
        end_ns: 6 * S,
    };
    assert_eq!(span([w]), Some((4 * S, 7 * S)));
}

#[test]
fn one_shift_must_line_up_every_event_and_decoys_lose() {
    let iv = |s: u64, len: u64, name: &str| Interval {
        start_ns: s,
        end_ns: s + len,
        class: Class::Other,
        name: name.into(),
        parts: vec![],
    };
    // Two planted stalls 500 ms apart (10 and 30 ms), and a 10 ms decoy 12 ms before the first.
    let ivs = [
        iv(988 * MS, 10 * MS, "decoy"),
        iv(1_000 * MS, 10 * MS, "a"),
        iv(1_500 * MS, 30 * MS, "b"),
    ];
    // The guest saw them 6 ms later than they were (frame delay).
    let events = [(1_016 * MS, 10 * MS), (1_536 * MS, 30 * MS)];
    assert_eq!(align(&events, &ivs, 20 * MS), Some((-6_000_000, 2)));
    // Out of the search range: nothing.
    assert_eq!(align(&events, &ivs, 5 * MS), None);
    // Lengths that agree with nothing: nothing.
    assert_eq!(align(&[(1_016 * MS, 3 * MS)], &ivs, 20 * MS), None);
}

#[test]
fn the_residual_after_one_shift_is_how_far_the_guest_clock_wandered() {
    let iv = |s: u64, len: u64| Interval {
        start_ns: s,
        end_ns: s + len,
        class: Class::Other,
        name: "stall".into(),
        parts: vec![],
    };
    let ivs = [iv(1_000 * MS, 10 * MS), iv(1_500 * MS, 30 * MS)];
    // Seen 6 ms late, but the second 1.1 ms later still: the clock wandered within the run.
    let events = [(1_016 * MS, 10 * MS), (1_537 * MS + 100_000, 30 * MS)];
    let (shift, _) = align(&events, &ivs, 20 * MS).unwrap();
    assert_eq!(shift, -6_000_000);
    assert_eq!(
        residual(&events, &ivs, shift, 20 * MS),
        Some((1_100_000, 2))
    );
    // Exactly on: no wander beyond the resolution.
    let on = [(1_016 * MS, 10 * MS), (1_536 * MS, 30 * MS)];
    assert_eq!(residual(&on, &ivs, shift, 20 * MS), Some((0, 2)));
    // Small events, or two intervals of the length in reach, do not count.
    assert_eq!(
        residual(&[(1_016 * MS, 500_000)], &ivs, shift, 20 * MS),
        None
    );
    let twins = [iv(1_000 * MS, 10 * MS), iv(1_005 * MS, 10 * MS)];
    assert_eq!(
        residual(&[(1_016 * MS, 10 * MS)], &twins, shift, 20 * MS),
        None
    );
}

#[test]
fn classes_come_from_the_pinners_threads_and_workers_from_their_comm() {
    let a = guest(vec![]);
    let mut b = guest(vec![]);
    b.guest = "other".into();
    b.qemu_pid = Some(70);
    b.observed_start = vec![
        thread(70, "qemu-system-x86", ThreadRole::Emulator, "0"),
        thread(71, "CPU 0/TCG", ThreadRole::Vcpu { vcpu: 0 }, "1"),
        thread(
            72,
            "IO iothread0",
            ThreadRole::Iothread {
                id: "iothread0".into(),
            },
            "0",
        ),
    ];
    b.observed_end.clear();
    let mut na = GuestNotes::default();
    na.threads
        .push(thread(55, "live_migration", ThreadRole::Emulator, "0"));
    na.threads
        .push(thread(56, "call_rcu", ThreadRole::Emulator, "0"));
    let nb = GuestNotes::default();
    let trace = parse_trace(&trace_text());
    let m = class_map(&[(&a, &na), (&b, &nb)], 0, &trace);
    assert_eq!(
        m.get(50),
        Some(Class::Emulator),
        "the main loop is the QEMU pid"
    );
    assert_eq!(m.get(51), Some(Class::Vcpu), "our own housekeeping vCPU");
    assert_eq!(
        m.get(71),
        Some(Class::ForeignVcpu),
        "the other guest's vCPU"
    );
    assert_eq!(m.get(72), Some(Class::Iothread));
    assert_eq!(m.get(55), Some(Class::Migration));
    assert_eq!(
        m.get(56),
        Some(Class::Emulator),
        "other QEMU threads are the emulator's"
    );
    assert_eq!(
        m.get(60),
        Some(Class::Worker),
        "a worker seen only in the trace"
    );
    assert_eq!(
        m.get(77),
        None,
        "the injector is nobody's: classed from the trace (other)"
    );
}
