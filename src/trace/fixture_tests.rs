//! Attribution of traces recorded on this project's development machine
//! (`tests/fixtures/trace/`, see the README there): it must find what was planted.
//!
//! `throttle-hog.txt`: a SCHED_FIFO 10 busy loop named `CPU 1/TCG` (pid 32155) on CPU 1, RT
//! throttled once a second, preempted every 100 ms by `qemu-system-x86` (pid 32156, FIFO 20)
//! spinning 1, 2 or 3 ms, each spin announced by a `hog spin <ns>` marker just before it.
//! `timer-sleep.txt`: a SCHED_FIFO 95 thread (pid 32241) sleeping to 1 ms deadlines while a
//! SCHED_OTHER `cfs-filler` keeps the CPU busy.

use super::parse::Trace;
use super::*;

const THROTTLE_HOG: &str = include_str!("../../tests/fixtures/trace/throttle-hog.txt");
const TIMER_SLEEP: &str = include_str!("../../tests/fixtures/trace/timer-sleep.txt");

const BUSY: u32 = 32155;
const HOG: u32 = 32156;
/// The trimmed window of `throttle-hog.txt`: exactly one second.
const HOG_WINDOW: Window = Window {
    start_ns: 1_734_950_000_000,
    end_ns: 1_735_950_000_000,
};
/// How far a stolen interval may differ from the planted spin: the hog is switched in before
/// it writes its marker, timer ticks and softirqs land inside the spin, and the text has 1 µs
/// resolution.
const SPIN_TOLERANCE_NS: u64 = 100_000;

fn hog_attribution(text: &str) -> (Trace, CpuAttribution) {
    let t = parse_trace(text);
    let map: ClassMap = [(HOG, Class::Emulator)].into_iter().collect();
    let planned = [Planned { cpu: 1, tid: BUSY }];
    let a = attribute(&t, &planned, &map, HOG_WINDOW, &Options::default()).remove(0);
    let sum = a.ran_ns + a.idle_ns + a.stolen_ns + a.away_ns + a.unknown_ns;
    assert_eq!(sum, HOG_WINDOW.len_ns(), "every ns booked once");
    (t, a)
}

/// The planted spins: (marker time, spin length), ns.
fn spins(t: &Trace) -> Vec<(u64, u64)> {
    t.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Marker { text } => {
                Some((e.ts_ns, text.strip_prefix("hog spin ")?.parse().ok()?))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn the_recording_parses_with_exactly_the_injected_defects() {
    let t = parse_trace(THROTTLE_HOG);
    assert_eq!(t.stats.malformed, 4, "{:#?}", t.stats.malformed_examples);
    assert_eq!(t.stats.resolution_ns, 1_000, "the kernel prints µs");
    assert!(t.events.len() > 1_400);
    assert!(
        t.events.iter().all(|e| e.cpu == 1),
        "tracing_cpumask = CPU 1"
    );
    assert_eq!(spins(&t).len(), 10);
}

#[test]
fn throttling_is_found_at_about_50_ms_per_second() {
    let (_, a) = hog_attribution(THROTTLE_HOG);
    let throttled = a.class_ns(Class::Throttled);
    assert!(
        (45_000_000..=55_000_000).contains(&throttled),
        "{throttled} ns\n{}",
        table::render(&a)
    );
    assert!((1..=3).contains(&a.throttle_episodes));
    let top = &a.longest[0];
    assert_eq!(top.class, Class::Throttled);
    assert!((45_000_000..=60_000_000).contains(&top.len_ns()), "{top:?}");
    // sched_rt_runtime_us = 950000 of 1000000: the busy loop got the rest, less the hog.
    assert!(
        a.ran_ns > 900_000_000 && a.ran_ns < 950_000_000,
        "{}",
        a.ran_ns
    );
    assert_eq!(a.idle_ns, 0, "a busy loop never sleeps");
}

#[test]
fn every_planted_spin_is_found_with_its_culprit_and_length() {
    let (t, a) = hog_attribution(THROTTLE_HOG);
    let throttle = a.longest[0].clone();
    let mut found = 0;
    for (at, spin) in spins(&t) {
        if (throttle.start_ns..throttle.end_ns).contains(&at) {
            continue; // swallowed by the throttle
        }
        let i = a
            .intervals
            .iter()
            .find(|i| (i.start_ns..i.end_ns).contains(&at))
            .unwrap_or_else(|| panic!("no stolen interval holds the marker at {at}"));
        assert_eq!(
            (i.class, i.name.as_str()),
            (Class::Emulator, "qemu-system-x86")
        );
        assert!(at - i.start_ns < 50_000, "{i:?}");
        assert!(
            i.len_ns().abs_diff(spin) <= SPIN_TOLERANCE_NS,
            "{spin} vs {i:?}"
        );
        found += 1;
    }
    assert_eq!(found, 9);
    let emu = a
        .by_class
        .iter()
        .find(|c| c.class == Class::Emulator)
        .unwrap();
    assert_eq!(emu.names[0].name, "qemu-system-x86");
    assert!(emu.longest_ns.abs_diff(3_000_000) <= SPIN_TOLERANCE_NS);
    // Timer ticks inside the busy loop's run are hard IRQ time, each a few µs.
    let irq = a
        .by_class
        .iter()
        .find(|c| c.class == Class::HardIrq)
        .unwrap();
    assert_eq!(irq.names[0].name, "local_timer");
    assert!(irq.count > 200 && irq.longest_ns < 100_000, "{irq:?}");
}

#[test]
fn guest_events_are_matched_to_the_hog() {
    let (t, a) = hog_attribution(THROTTLE_HOG);
    let events: Vec<GuestEvent> = spins(&t)
        .into_iter()
        .map(|(at, spin)| GuestEvent {
            end_ns: at + spin,
            length_ns: spin,
            uncertainty_ns: 50_000,
        })
        .collect();
    let matches = match_events(&a.intervals, &events, t.stats.resolution_ns);
    let matched = matches
        .iter()
        .filter_map(|m| m.best())
        .filter(|c| c.interval.name == "qemu-system-x86")
        .count();
    assert_eq!(matched, 9, "all but the spin the throttle swallowed");
    assert!(matches.iter().all(|m| m.tolerance_ns == 51_000));
    // The swallowed one still overlaps the throttle, which is named, but does not match it.
    let swallowed = matches.iter().find(|m| m.best().is_none()).unwrap();
    assert_eq!(swallowed.culprits[0].interval.class, Class::Throttled);
}

#[test]
fn lost_events_in_the_recording_cost_time_to_unknown_not_to_a_culprit() {
    // Events lost just before the marker of the spin at 1735.587300.
    let at = THROTTLE_HOG
        .find(" qemu-system-x86-32156   [001] ...1.  1735.587300")
        .unwrap();
    let text = format!(
        "{}CPU:1 [LOST 50 EVENTS]\n{}",
        &THROTTLE_HOG[..at],
        &THROTTLE_HOG[at..]
    );
    let (_, clean) = hog_attribution(THROTTLE_HOG);
    let (t, a) = hog_attribution(&text);
    assert_eq!(t.stats.lost_markers, 1);
    assert_eq!(a.lost_markers, 1);
    // From the last event before the loss until the hog switches back to the busy loop.
    let more_unknown = a.unknown_ns - clean.unknown_ns;
    assert!(
        (1_500_000..2_500_000).contains(&more_unknown),
        "{more_unknown}"
    );
    assert!(a.class_ns(Class::Emulator) < clean.class_ns(Class::Emulator));
    assert_eq!(
        a.class_ns(Class::Throttled),
        clean.class_ns(Class::Throttled)
    );
}

#[test]
fn a_sleeping_timer_thread_is_idle_and_only_its_wakeups_are_stolen() {
    let t = parse_trace(TIMER_SLEEP);
    assert_eq!(t.stats.malformed, 0);
    let w = Window {
        start_ns: 1_738_000_000_000,
        end_ns: 1_738_200_000_000,
    };
    let planned = [Planned { cpu: 1, tid: 32241 }];
    let a = attribute(&t, &planned, &ClassMap::new(), w, &Options::default()).remove(0);
    assert!(a.idle_ns * 100 > w.len_ns() * 97, "{}", table::render(&a));
    assert!((1_000_000..5_000_000).contains(&a.ran_ns), "{}", a.ran_ns);
    assert_eq!(a.class_ns(Class::Throttled), 0);
    assert_eq!(a.throttle_episodes, 0);
    // One wake-up per 1 ms period, each delayed by the tick that woke it and the filler.
    assert!(
        (195..=201).contains(&a.intervals.len()),
        "{}",
        a.intervals.len()
    );
    assert!(a.longest[0].len_ns() < 50_000);
    assert_eq!(a.by_class[0].class, Class::HardIrq);
    assert_eq!(a.by_class[0].names[0].name, "local_timer");
    let filler = a.by_class.iter().find(|c| c.class == Class::Other).unwrap();
    assert_eq!(filler.names[0].name, "cfs-filler");
}
