//! Attribution on synthetic traces written in the kernel's text format: each test plants one
//! situation and checks where every µs went.

use super::*;
use crate::trace::parse::parse_trace;
use proptest::prelude::*;

const VCPU: u32 = 100;
const HOG: u32 = 200;

/// A trace builder: lines in the kernel's format, timestamps in µs.
#[derive(Default)]
struct T(String);

impl T {
    fn ev(mut self, us: u64, cpu: u32, who: (&str, u32), flags: &str, body: &str) -> Self {
        self.0 += &format!(
            "{:>16}-{:<7} [{cpu:03}] {flags} {:>5}.{:06}: {body}\n",
            who.0,
            who.1,
            us / 1_000_000,
            us % 1_000_000
        );
        self
    }
    fn sw(self, us: u64, prev: (&str, u32, i32), state: &str, next: (&str, u32, i32)) -> Self {
        let body = format!(
            "sched_switch: prev_comm={} prev_pid={} prev_prio={} prev_state={state} ==> next_comm={} next_pid={} next_prio={}",
            prev.0, prev.1, prev.2, next.0, next.1, next.2
        );
        self.ev(us, 1, (prev.0, prev.1), "d..2.", &body)
    }
    fn irq(self, us: u64, dur: u64, who: (&str, u32), name: &str) -> Self {
        self.ev(us, 1, who, "d.h..", &format!("{name}_entry: vector=236"))
            .ev(
                us + dur,
                1,
                who,
                "d.h..",
                &format!("{name}_exit: vector=236"),
            )
    }
    fn text(self) -> String {
        self.0
    }
}

const V: (&str, u32, i32) = ("CPU 1/TCG", VCPU, 89);
const H: (&str, u32, i32) = ("qemu-system-x86", HOG, 79);
const W: (&str, u32) = ("CPU 1/TCG", VCPU);
const IDLE: (&str, u32, i32) = ("swapper/1", 0, 120);

fn run(text: &str, start_us: u64, end_us: u64) -> CpuAttribution {
    let map: ClassMap = [(HOG, Class::Emulator)].into_iter().collect();
    let t = parse_trace(text);
    assert_eq!(t.stats.malformed, 0, "{:?}", t.stats.malformed_examples);
    let w = Window {
        start_ns: start_us * 1000,
        end_ns: end_us * 1000,
    };
    let mut a = attribute(
        &t,
        &[Planned { cpu: 1, tid: VCPU }],
        &map,
        w,
        &Options::default(),
    );
    let a = a.remove(0);
    assert_eq!(
        a.ran_ns + a.idle_ns + a.stolen_ns + a.away_ns + a.unknown_ns,
        w.len_ns(),
        "{a:#?}"
    );
    assert_eq!(
        a.by_class.iter().map(|c| c.total_ns).sum::<u64>(),
        a.stolen_ns
    );
    a
}

#[test]
fn a_hog_preempting_the_busy_vcpu_is_named_with_its_length() {
    let text = T::default()
        .irq(100, 5, W, "local_timer")
        .ev(
            1_000,
            1,
            W,
            "dNh3.",
            "sched_wakeup: comm=qemu-system-x86 pid=200 prio=79 target_cpu=001",
        )
        .sw(1_010, V, "R", H)
        .irq(2_000, 10, ("qemu-system-x86", HOG), "local_timer")
        .sw(3_010, H, "S", V)
        .text();
    let a = run(&text, 100, 10_000);
    assert_eq!(a.stolen_ns, 5_000 + 2_000_000);
    assert_eq!(a.ran_ns, 9_900_000 - a.stolen_ns);
    assert_eq!(a.unknown_ns, 0, "the first event shows the vCPU on the CPU");
    let emu = &a.by_class[0];
    assert_eq!(emu.class, Class::Emulator);
    assert_eq!(
        (emu.total_ns, emu.count, emu.longest_ns),
        (1_990_000, 1, 1_990_000)
    );
    assert_eq!(emu.names[0].name, "qemu-system-x86");
    assert_eq!(a.class_ns(Class::HardIrq), 15_000);
    let top = &a.longest[0];
    assert_eq!((top.start_ns, top.end_ns), (1_010_000, 3_010_000));
    assert_eq!(
        (top.class, top.name.as_str()),
        (Class::Emulator, "qemu-system-x86")
    );
    assert_eq!(a.intervals.len(), 2);
}

#[test]
fn a_sleeping_timer_thread_is_idle_and_its_wakeup_latency_stolen() {
    let f = ("cfs-filler", 300u32);
    let t = (("CPU 1/TCG", VCPU, 4), ("cfs-filler", 300u32, 120));
    let text = T::default()
        .sw(0, t.0, "S", t.1)
        .ev(1_000, 1, f, "d.h..", "local_timer_entry: vector=236")
        .ev(
            1_002,
            1,
            f,
            "dNh3.",
            "sched_wakeup: comm=CPU 1/TCG pid=100 prio=4 target_cpu=001",
        )
        .ev(1_014, 1, f, "dNh..", "local_timer_exit: vector=236")
        .sw(1_016, t.1, "R", t.0)
        .sw(1_034, t.0, "S", t.1)
        .text();
    let a = run(&text, 0, 2_000);
    assert_eq!(a.ran_ns, 18_000);
    assert_eq!(a.stolen_ns, 14_000);
    assert_eq!(a.idle_ns, 2_000_000 - 18_000 - 14_000);
    assert_eq!(a.class_ns(Class::HardIrq), 12_000);
    assert_eq!(a.class_ns(Class::Other), 2_000);
    assert_eq!(a.longest[0].len_ns(), 14_000);
    assert_eq!(a.longest[0].name, "local_timer");
}

#[test]
fn rt_throttling_is_named_as_such_with_what_ran() {
    let k = ("kworker/1:1", 41, 120);
    let text = T::default()
        .sw(100, V, "R", k)
        .sw(200, k, "I", IDLE)
        .irq(30_000, 10, ("<idle>", 0), "local_timer")
        .sw(50_100, IDLE, "R", V)
        .text();
    let a = run(&text, 0, 100_000);
    assert_eq!(a.throttle_episodes, 1);
    assert_eq!(a.stolen_ns, 50_000_000);
    assert_eq!(a.class_ns(Class::Throttled), 50_000_000);
    let th = &a.by_class[0];
    assert_eq!(th.names[0].name, "<idle>");
    assert_eq!(th.names[0].total_ns, 50_000_000 - 100_000 - 10_000);
    assert_eq!(a.longest[0].len_ns(), 50_000_000);
    assert_eq!(a.longest[0].class, Class::Throttled);
}

#[test]
fn throttling_that_catches_the_hog_is_throttling_too() {
    // The hog preempts the vCPU, then RT bandwidth runs out while the hog spins.
    let text = T::default()
        .sw(1_000, V, "R", H)
        .sw(1_500, H, "R", ("kworker/1:1H", 44, 100))
        .sw(1_600, ("kworker/1:1H", 44, 100), "I", IDLE)
        .sw(51_000, IDLE, "R", H)
        .sw(51_100, H, "S", V)
        .text();
    let a = run(&text, 0, 100_000);
    assert_eq!(a.class_ns(Class::Emulator), 500_000 + 100_000);
    assert_eq!(a.class_ns(Class::Throttled), 49_500_000);
    assert_eq!(a.throttle_episodes, 1);
    assert_eq!(a.longest[0].len_ns(), 50_100_000);
    assert_eq!(a.longest[0].class, Class::Throttled);
}

#[test]
fn a_normal_priority_vcpu_is_not_throttled_by_rt_bandwidth() {
    let v = ("CPU 1/TCG", VCPU, 120);
    let o = ("rustc", 400, 120);
    let text = T::default().sw(0, v, "R", o).sw(3_000, o, "R", v).text();
    let a = run(&text, 0, 10_000);
    assert_eq!(a.class_ns(Class::Other), 3_000_000);
    assert_eq!(a.throttle_episodes, 0);
}

#[test]
fn irq_without_exit_goes_to_the_task_below() {
    // The second call_function_single_entry has no exit (seen on this machine): the flags of
    // the next event (no hard IRQ) end it; its time stays with the vCPU.
    let text = T::default()
        .ev(
            1_000,
            1,
            W,
            "d.h..",
            "call_function_single_entry: vector=251",
        )
        .ev(
            1_001,
            1,
            W,
            "d.h..",
            "call_function_single_exit: vector=251",
        )
        .ev(
            2_000,
            1,
            W,
            "d.h..",
            "call_function_single_entry: vector=251",
        )
        .ev(3_000, 1, W, "..s..", "softirq_entry: vec=9 [action=RCU]")
        .ev(3_004, 1, W, "..s..", "softirq_exit: vec=9 [action=RCU]")
        .ev(
            4_000,
            1,
            W,
            "d.h..",
            "irq_handler_entry: irq=42 name=virtio3-tx",
        )
        .ev(
            4_000,
            1,
            W,
            "d.h..",
            "irq_handler_entry: irq=42 name=virtio3-tx",
        )
        .ev(4_003, 1, W, "d.h..", "irq_handler_exit: irq=42 ret=handled")
        .text();
    let a = run(&text, 0, 10_000);
    assert_eq!(a.class_ns(Class::Ipi), 1_000);
    assert_eq!(a.class_ns(Class::Softirq), 4_000);
    assert_eq!(a.class_ns(Class::HardIrq), 3_000);
    assert_eq!(a.unmatched_irqs, 2);
    let irq = a
        .by_class
        .iter()
        .find(|c| c.class == Class::HardIrq)
        .unwrap();
    assert_eq!(irq.names[0].name, "irq42 virtio3-tx");
}

#[test]
fn lost_events_and_missing_switches_make_time_unknown_not_stolen() {
    let o = ("rustc", 400u32);
    let text = T::default().irq(1_000, 2, W, "local_timer").0
        + "CPU:1 [LOST 99 EVENTS]\n"
        + &T::default()
            // After the loss the header shows rustc: unknown until the vCPU is switched in.
            .irq(5_000, 2, o, "local_timer")
            .sw(6_000, ("rustc", 400, 120), "R", V)
            // A switch the trace lost: rustc is on the CPU without one. When the vCPU
            // stopped running is unknown, and so is its state until it is switched in.
            .irq(8_000, 2, o, "local_timer")
            .sw(9_000, ("rustc", 400, 120), "R", V)
            .text();
    let a = run(&text, 1_000, 10_000);
    assert_eq!(a.lost_markers, 1);
    assert_eq!(a.inferred_switches, 1);
    assert_eq!(a.stolen_ns, 2_000);
    assert_eq!(a.unknown_ns, 4_998_000 + 2_000_000 + 1_000_000);
    assert_eq!(a.ran_ns, 1_000_000);
}

#[test]
fn kvm_exits_by_reason_and_a_halted_vcpu_is_idle() {
    let v = ("CPU 0/KVM", VCPU);
    let vk = ("CPU 0/KVM", VCPU, 89);
    let text = T::default()
        .ev(
            1_000,
            1,
            v,
            "d..1.",
            "kvm_exit: vcpu 0 reason EXTERNAL_INTERRUPT rip 0x1 info1 0x0",
        )
        .ev(1_005, 1, v, "d..1.", "kvm_entry: vcpu 0, rip 0x1")
        .ev(
            2_000,
            1,
            v,
            "d..1.",
            "kvm_exit: vcpu 0 reason HLT rip 0x1 info1 0x0",
        )
        .sw(2_003, vk, "S", IDLE)
        .ev(
            4_000,
            1,
            ("<idle>", 0),
            "dNh2.",
            "sched_wakeup: comm=CPU 0/KVM pid=100 prio=89 target_cpu=001",
        )
        .sw(4_010, IDLE, "R", vk)
        .ev(4_012, 1, v, "d..1.", "kvm_entry: vcpu 0, rip 0x1")
        .text();
    let a = run(&text, 0, 5_000);
    let exits = a
        .by_class
        .iter()
        .find(|c| c.class == Class::KvmExit)
        .unwrap();
    assert_eq!(exits.total_ns, 5_000 + 3_000 + 2_000);
    assert_eq!(exits.names[0].name, "EXTERNAL_INTERRUPT");
    assert_eq!(exits.names[1].name, "HLT");
    assert_eq!(a.idle_ns, 1_997_000);
    assert_eq!(a.class_ns(Class::Idle), 10_000, "wake-up from idle");
}

#[test]
fn remote_wakeups_and_migrations_of_the_planned_thread() {
    let o = ("rustc", 400, 120);
    let text = T::default()
        .sw(0, V, "S", o)
        // Woken from CPU 0 (traced when CPU 0 is an RT pCPU too).
        .ev(
            1_000,
            0,
            ("qemu-system-x86", HOG),
            "d..3.",
            "sched_wakeup: comm=CPU 1/TCG pid=100 prio=89 target_cpu=001",
        )
        .sw(1_500, o, "R", V)
        .sw(2_000, V, "R", ("migration/1", 21, 0))
        .ev(
            2_001,
            1,
            ("migration/1", 21),
            "d..4.",
            "sched_migrate_task: comm=CPU 1/TCG pid=100 prio=89 orig_cpu=1 dest_cpu=0",
        )
        .sw(2_002, ("migration/1", 21, 0), "S", IDLE)
        .text();
    let a = run(&text, 0, 3_000);
    assert_eq!(a.idle_ns, 1_000_000);
    assert_eq!(a.class_ns(Class::Other), 500_000);
    assert_eq!(a.ran_ns, 500_000);
    assert_eq!(a.class_ns(Class::KernelThread), 1_000);
    assert_eq!(a.away_ns, 999_000);
}

#[test]
fn short_intervals_are_counted_not_kept() {
    let text = T::default()
        .irq(1_000, 1, W, "local_timer")
        .sw(2_000, V, "R", H)
        .sw(2_500, H, "S", V)
        .text();
    let map = ClassMap::new();
    let t = parse_trace(&text);
    let opts = Options {
        keep_intervals_min_ns: 10_000,
        top_intervals: 1,
        ..Options::default()
    };
    let w = Window {
        start_ns: 0,
        end_ns: 3_000_000,
    };
    let a = &attribute(&t, &[Planned { cpu: 1, tid: VCPU }], &map, w, &opts)[0];
    assert_eq!(a.dropped_intervals, 1);
    assert_eq!(a.intervals.len(), 1);
    assert_eq!(a.longest.len(), 1);
    assert_eq!(a.by_class[0].class, Class::Other, "not in the map");
}

/// Event lines for the invariant test, drawn from every kind the attribution reads.
fn any_line() -> impl Strategy<Value = String> {
    let who = prop_oneof![
        Just(("CPU 1/TCG", VCPU)),
        Just(("hog", HOG)),
        Just(("<idle>", 0))
    ];
    let flags = prop_oneof![Just("d..2."), Just("d.h.."), Just("..s.."), Just("dNH2.")];
    let body = prop_oneof![
        (0..3usize, 0..3usize, any::<bool>()).prop_map(|(a, b, r)| {
            let t = [V, H, IDLE];
            format!(
                "sched_switch: prev_comm={} prev_pid={} prev_prio={} prev_state={} ==> next_comm={} next_pid={} next_prio={}",
                t[a].0, t[a].1, t[a].2, if r { "R" } else { "S" }, t[b].0, t[b].1, t[b].2
            )
        }),
        Just("sched_wakeup: comm=CPU 1/TCG pid=100 prio=89 target_cpu=001".to_string()),
        Just("sched_migrate_task: comm=CPU 1/TCG pid=100 prio=89 orig_cpu=1 dest_cpu=0".to_string()),
        Just("local_timer_entry: vector=236".to_string()),
        Just("local_timer_exit: vector=236".to_string()),
        Just("irq_handler_entry: irq=42 name=x".to_string()),
        Just("irq_handler_exit: irq=42 ret=handled".to_string()),
        Just("softirq_entry: vec=1 [action=TIMER]".to_string()),
        Just("softirq_exit: vec=1 [action=TIMER]".to_string()),
        Just("kvm_exit: vcpu 0 reason HLT rip 0x0".to_string()),
        Just("kvm_entry: vcpu 0".to_string()),
    ];
    (0u64..2_000, 0u32..2, who, flags, body)
        .prop_map(|(us, cpu, who, flags, body)| T::default().ev(us, cpu, who, flags, &body).text())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Whatever the events (unordered, inconsistent, lost), every ns of the window is booked
    /// exactly once and nothing panics.
    #[test]
    fn every_ns_is_booked_once(
        lines in proptest::collection::vec(any_line(), 0..60),
        lost_at in proptest::option::of(0usize..60),
        start in 0u64..1_000, len in 0u64..2_000,
    ) {
        let mut text = String::new();
        for (i, l) in lines.iter().enumerate() {
            if lost_at == Some(i) {
                text += "CPU:1 [LOST 3 EVENTS]\n";
            }
            text += l;
        }
        let t = parse_trace(&text);
        let w = Window { start_ns: start * 1000, end_ns: (start + len) * 1000 };
        let a = &attribute(&t, &[Planned { cpu: 1, tid: VCPU }], &ClassMap::new(), w, &Options::default())[0];
        prop_assert_eq!(a.ran_ns + a.idle_ns + a.stolen_ns + a.away_ns + a.unknown_ns, w.len_ns());
        prop_assert_eq!(a.by_class.iter().map(|c| c.total_ns).sum::<u64>(), a.stolen_ns);
        prop_assert_eq!(a.intervals.iter().map(|i| i.len_ns()).sum::<u64>(), a.stolen_ns);
        for p in a.intervals.windows(2) {
            prop_assert!(p[0].end_ns <= p[1].start_ns);
        }
    }
}
