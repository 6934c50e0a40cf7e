//! Tests of the tracefs text parser. Lines marked "recorded" were copied from traces recorded on
//! this project's development machine (kernel 6.18, `trace_clock` = `mono`).

use super::*;
use proptest::prelude::*;

fn event(line: &str) -> Event {
    match parse_line(line) {
        Line::Event(e) => e,
        other => panic!("not an event: {other:?}\n{line}"),
    }
}

#[test]
fn sched_switch_with_spaces_and_dashes_in_comms() {
    // recorded
    let e = event("       CPU 1/TCG-32155   [001] d..2.  1735.187085: sched_switch: prev_comm=CPU 1/TCG prev_pid=32155 prev_prio=89 prev_state=R ==> next_comm=kworker/1:1H next_pid=44 next_prio=100");
    assert_eq!(e.ts_ns, 1_735_187_085_000);
    assert_eq!((e.cpu, e.pid, e.comm.as_str()), (1, 32155, "CPU 1/TCG"));
    assert_eq!(
        e.ctx,
        Some(Ctx {
            irqs_off: true,
            ..Ctx::default()
        })
    );
    let EventKind::Switch(s) = e.kind else {
        panic!()
    };
    assert_eq!(
        s,
        Switch {
            prev_comm: "CPU 1/TCG".into(),
            prev_pid: 32155,
            prev_prio: 89,
            prev_state: TaskState::Runnable { preempted: false },
            next_comm: "kworker/1:1H".into(),
            next_pid: 44,
            next_prio: 100,
        }
    );
    // recorded: dashes in the comm of the header and of both sides.
    let e = event(" qemu-system-x86-32156   [001] d..2.  1735.289302: sched_switch: prev_comm=qemu-system-x86 prev_pid=32156 prev_prio=79 prev_state=S ==> next_comm=CPU 1/TCG next_pid=32155 next_prio=89");
    assert_eq!((e.pid, e.comm.as_str()), (32156, "qemu-system-x86"));
    let EventKind::Switch(s) = e.kind else {
        panic!()
    };
    assert_eq!(s.prev_state, TaskState::Blocked("S".into()));
    assert_eq!((s.next_comm.as_str(), s.next_pid), ("CPU 1/TCG", 32155));
}

#[test]
fn idle_preempted_and_compound_states() {
    // recorded
    let e = event("          <idle>-0       [001] dNh2.  1674.432107: sched_wakeup: comm=rcu_preempt pid=15 prio=120 target_cpu=001");
    assert_eq!((e.pid, e.comm.as_str()), (0, "<idle>"));
    let c = e.ctx.unwrap();
    assert!(c.hardirq && c.need_resched && c.irqs_off && !c.softirq);
    assert_eq!(
        e.kind,
        EventKind::Wakeup {
            comm: "rcu_preempt".into(),
            pid: 15,
            prio: 120,
            target_cpu: 1
        }
    );
    let e = event("  a-1 [000] d..2. 1.000001: sched_switch: prev_comm=a prev_pid=1 prev_prio=120 prev_state=R+ ==> next_comm=swapper/0 next_pid=0 next_prio=120");
    let EventKind::Switch(s) = e.kind else {
        panic!()
    };
    assert_eq!(s.prev_state, TaskState::Runnable { preempted: true });
    let e = event("  a-1 [000] d..2. 1.000001: sched_switch: prev_comm=a prev_pid=1 prev_prio=120 prev_state=S|D ==> next_comm=b next_pid=2 next_prio=120");
    let EventKind::Switch(s) = e.kind else {
        panic!()
    };
    assert!(!s.prev_state.is_runnable());
}

#[test]
fn comm_holding_the_switch_arrow_still_parses() {
    let e = event("  x ==> y-7 [002] d..2. 3.5: sched_switch: prev_comm=x ==> y prev_pid=7 prev_prio=1 prev_state=R ==> next_comm=a ==> b next_pid=8 next_prio=2");
    assert_eq!((e.comm.as_str(), e.pid), ("x ==> y", 7));
    let EventKind::Switch(s) = e.kind else {
        panic!()
    };
    assert_eq!(
        (s.prev_comm.as_str(), s.next_comm.as_str()),
        ("x ==> y", "a ==> b")
    );
    assert_eq!(e.ts_ns, 3_500_000_000);
}

#[test]
fn irq_softirq_vector_ipi_marker_migrate() {
    // recorded
    let cases = [
        ("       CPU 1/TCG-30103   [001] d.h..  1673.475296: irq_handler_entry: irq=42 name=virtio3-tx",
         EventKind::IrqEntry { irq: 42, name: "virtio3-tx".into() }),
        ("       CPU 1/TCG-30103   [001] d.h..  1673.475309: irq_handler_exit: irq=42 ret=handled",
         EventKind::IrqExit { irq: 42 }),
        ("           rustc-30078   [001] ..s..  1673.444040: softirq_entry: vec=9 [action=RCU]",
         EventKind::SoftirqEntry { vec: 9, action: "RCU".into() }),
        ("           rustc-30078   [001] ..s..  1673.444092: softirq_exit: vec=9 [action=RCU]",
         EventKind::SoftirqExit { vec: 9 }),
        ("       CPU 1/TCG-30103   [001] d.h..  1675.420028: local_timer_entry: vector=236",
         EventKind::VectorEntry { name: "local_timer".into(), vector: 236 }),
        ("     coordinator-30100   [001] dNh2.  1675.442115: reschedule_exit: vector=253",
         EventKind::VectorExit { name: "reschedule".into(), vector: 253 }),
        ("       CPU 1/TCG-30103   [001] d.s4.  1675.424049: ipi_send_cpu: cpu=0 callsite=wakeup_preempt+0x92/0xa0 callback=0x0",
         EventKind::IpiSend { targets: "0".into(), callback: "0x0".into() }),
        (" qemu-system-x86-30104   [001] ...1.  1673.572276: tracing_mark_write: hog spin 1000000",
         EventKind::Marker { text: "hog spin 1000000".into() }),
        ("     migration/1-21      [001] d..4.  1673.469478: sched_migrate_task: comm=gen pid=30102 prio=120 orig_cpu=1 dest_cpu=0",
         EventKind::Migrate { comm: "gen".into(), pid: 30102, prio: 120, orig_cpu: 1, dest_cpu: 0 }),
        ("     coordinator-30100   [001] d..2.  1675.437325: sched_wakeup_new: comm=coordinator pid=30108 prio=120 target_cpu=001",
         EventKind::Wakeup { comm: "coordinator".into(), pid: 30108, prio: 120, target_cpu: 1 }),
        ("  a-1 [000] ...1. 1.000000: ipi_send_cpumask: cpumask=0-1 callsite=smp_call_function_many_cond+0x1/0x2 callback=do_sync_core+0x0/0x30",
         EventKind::IpiSend { targets: "0-1".into(), callback: "do_sync_core+0x0/0x30".into() }),
        ("  a-1 [000] ...1. 1.000000: sched_stat_runtime: comm=a pid=1 runtime=5 [ns]",
         EventKind::Other { name: "sched_stat_runtime".into() }),
    ];
    for (line, kind) in cases {
        assert_eq!(event(line).kind, kind, "{line}");
    }
}

#[test]
fn kvm_exit_reasons_as_this_kernel_prints_them() {
    // The print fmt of kvm_exit on 6.18 (events/kvm/kvm_exit/format).
    let e = event(" CPU 0/KVM-4242 [003] d..1. 100.000001: kvm_exit: vcpu 0 reason EXTERNAL_INTERRUPT rip 0xffffffff81000000 info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x800000ec error_code 0x00000000 requests 0x0000000000000000");
    assert_eq!(e.comm, "CPU 0/KVM");
    assert_eq!(
        e.kind,
        EventKind::KvmExit {
            vcpu: 0,
            reason: "EXTERNAL_INTERRUPT".into()
        }
    );
    // AMD reasons hold spaces; older kernels print less after rip.
    let e = event(
        " CPU 1/KVM-4243 [003] d..1. 100.000001: kvm_exit: vcpu 1 reason DE excp rip 0x0 info 0 0",
    );
    assert_eq!(
        e.kind,
        EventKind::KvmExit {
            vcpu: 1,
            reason: "DE excp".into()
        }
    );
    let e = event(" CPU 0/KVM-4242 [003] d..1. 100.000002: kvm_entry: vcpu 0, rip 0xffffffff81000000 intr_info 0x00000000 error_code 0x00000000");
    assert_eq!(e.kind, EventKind::KvmEntry { vcpu: 0 });
    let e = event(" CPU 0/KVM-4242 [003] d..1. 100.000002: kvm_entry: vcpu 0");
    assert_eq!(e.kind, EventKind::KvmEntry { vcpu: 0 });
}

#[test]
fn header_variants() {
    // Without irq-info, with record-tgid, nine digits as trace-cmd report -t prints.
    let e = event(
        "  kworker/1:1-41 [001] 1674.422183: sched_wakeup: comm=x pid=68 prio=120 target_cpu=000",
    );
    assert_eq!((e.pid, e.ctx), (41, None));
    let e = event("  kworker/1:1-41      (     41) [001] d..6.  1674.422183: sched_wakeup: comm=x pid=68 prio=120 target_cpu=000");
    assert_eq!((e.comm.as_str(), e.pid), ("kworker/1:1", 41));
    let e = event("  <...>-41      (-------) [001] d..6.  1674.422183: sched_wakeup: comm=x pid=68 prio=120 target_cpu=000");
    assert_eq!((e.comm.as_str(), e.pid), ("<...>", 41));
    let t = parse_trace("  a-1 [000] d..2. 12345.678901234: foo: x\n");
    assert_eq!(t.events[0].ts_ns, 12_345_678_901_234);
    assert_eq!(t.stats.resolution_ns, 1);
    let t = parse_trace(
        "  a-1 [000] d..2. 12345.678901: foo: x\n  a-1 [000] d..2. 1.000000001: foo: x\n",
    );
    assert_eq!(
        t.stats.resolution_ns, 1000,
        "the coarsest resolution is reported"
    );
    // Old 4-character flags, NMI and hard IRQ inside softirq.
    let e = event("  a-1 [000] d.z2 1.0: foo: x");
    assert!(e.ctx.unwrap().nmi);
    let e = event("  a-1 [000] dNH2. 1.0: foo:");
    let c = e.ctx.unwrap();
    assert!(c.hardirq && c.softirq);
    assert_eq!(e.kind, EventKind::Other { name: "foo".into() });
}

#[test]
fn lost_markers_comments_and_position() {
    let text = "# tracer: nop\n\
        #\n\
        ##### CPU 1 buffer started ####\n\
          a-1 [001] d..2. 1.000000: foo: x\n\
        CPU:1 [LOST 234 EVENTS]\n\
          a-1 [001] d..2. 2.000000: foo: x\n\
        CPU:0 [LOST EVENTS]\n\
        \n";
    let t = parse_trace(text);
    assert_eq!(t.events.len(), 2);
    assert_eq!(
        t.lost,
        vec![
            LostEvents {
                cpu: 1,
                count: Some(234),
                before_event: 1
            },
            LostEvents {
                cpu: 0,
                count: None,
                before_event: 2
            }
        ]
    );
    assert_eq!(t.stats.lost_events, 234);
    assert_eq!(t.stats.lost_markers, 2);
    assert_eq!(t.stats.comments, 4);
    assert_eq!(t.stats.malformed, 0);
    assert_eq!(t.stats.lines, 8);
}

#[test]
fn malformed_and_truncated_lines_are_counted_and_skipped() {
    let good = "       CPU 1/TCG-32155   [001] d..2.  1735.187085: sched_switch: prev_comm=CPU 1/TCG prev_pid=32155 prev_prio=89 prev_state=R ==> next_comm=kworker/1:1H next_pid=44 next_prio=100";
    let cases = [
        (&good[..28], Malformed::Header),
        (&good[..45], Malformed::Timestamp),
        (&good[..50], Malformed::EventName),
        (&good[..58], Malformed::EventName),
        (&good[..70], Malformed::Body),
        (&good[..120], Malformed::Body),
        (&good[..good.len() - 4], Malformed::Body),
        ("  a-1 [001] d..2. 1.: foo: x", Malformed::Timestamp),
        (
            "  a-1 [001] d..2. 99999999999999.0: foo: x",
            Malformed::Timestamp,
        ),
        (
            "  a-1 [001] d..2. 1.0000000001: foo: x",
            Malformed::Timestamp,
        ),
        ("  a-x [001] d..2. 1.0: foo: x", Malformed::Header),
        ("  a-1 [001] d..2. 1.0: foo bar: x", Malformed::EventName),
        (
            "  a-1 [001] d..2. 1.0: irq_handler_exit: irq=1 ret=maybe",
            Malformed::Body,
        ),
        (
            "  a-1 [001] d..2. 1.0: kvm_exit: vcpu 0 reason  rip 0x0",
            Malformed::Body,
        ),
        ("CPU:1 [LOST many EVENTS]", Malformed::Header),
        ("garbage", Malformed::Header),
    ];
    for (line, why) in cases {
        assert_eq!(parse_line(line), Line::Malformed(why), "{line:?}");
    }
    // In a text: skipped, counted, the first few kept; the truncated last line too.
    let text = format!("{good}\ngarbage\n{good}\n{}", &good[..100]);
    let t = parse_trace(&text);
    assert_eq!(t.events.len(), 2);
    assert_eq!(t.stats.malformed, 2);
    assert_eq!(t.stats.malformed_examples[0].0, 2);
    assert_eq!(t.stats.malformed_examples[1].0, 4);
}

#[test]
fn overlong_lines_are_dropped_not_buffered() {
    let mut p = TraceParser::new();
    let big = vec![b'x'; MAX_LINE_BYTES + 10];
    p.feed(&big);
    p.feed(&big);
    p.feed(b"\n  a-1 [000] d..2. 1.0: foo: x\n");
    let t = p.finish();
    assert_eq!(t.stats.malformed, 1);
    assert_eq!(t.events.len(), 1);
}

const SAMPLE: &str = include_str!("../../tests/fixtures/trace/throttle-hog.txt");

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC*") {
        let t = parse_trace(&s);
        prop_assert_eq!(t.stats.lines as usize >= t.events.len(), true);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut p = TraceParser::new();
        p.feed(&b);
        let _ = p.finish();
    }

    /// Real lines cut, spliced and corrupted at random positions.
    #[test]
    fn mutated_real_lines_never_panic(
        idx in 0usize..400, cut in 0usize..200, at in 0usize..200, byte in any::<u8>()
    ) {
        let line = SAMPLE.lines().nth(20 + idx).unwrap_or("");
        let mut b = line.as_bytes().to_vec();
        if !b.is_empty() {
            let i = at % b.len();
            b[i] = byte;
        }
        b.truncate(cut.min(b.len()));
        let _ = parse_line(&String::from_utf8_lossy(&b));
    }

    /// Chunked feeding (a trace_pipe reader) gives what one parse of the whole text gives.
    #[test]
    fn chunking_does_not_change_the_result(cuts in proptest::collection::vec(0usize..20_000, 0..8)) {
        let text = &SAMPLE[..SAMPLE.len().min(20_000)];
        let mut cuts: Vec<usize> = cuts.into_iter().filter(|c| text.is_char_boundary(*c)).collect();
        cuts.sort_unstable();
        let mut p = TraceParser::new();
        let mut last = 0;
        for c in cuts {
            p.feed(&text.as_bytes()[last..c]);
            last = c;
        }
        p.feed(&text.as_bytes()[last..]);
        prop_assert_eq!(p.finish(), parse_trace(text));
    }
}
