//! Hostile consoles: other line ends, no timestamps, escape codes, interleaved and cut lines,
//! non-UTF-8 bytes, huge consoles, thousands of reports, and arbitrary bytes (property tests).

use proptest::prelude::*;

use super::super::*;
use super::{no_hello, panic_of, HUNG_RCU_STARVED, OOPS_SURVIVED, OOPS_THEN_PANIC, TIMER_PANIC};

/// `console` with every line's timestamp taken off, as a console without PRINTK_TIME.
fn without_timestamps(console: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(console);
    text.lines()
        .map(|l| l.split_once("] ").map_or(l, |(_, rest)| rest))
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

#[test]
fn line_ends_timestamps_escapes_and_interleaving_do_not_change_the_verdict() {
    let facts = no_hello();
    let want = classify(TIMER_PANIC, &facts);
    let lf: Vec<u8> = TIMER_PANIC
        .iter()
        .copied()
        .filter(|&b| b != b'\r')
        .collect();
    assert_eq!(classify(&lf, &facts), want);
    let bare = without_timestamps(TIMER_PANIC);
    assert_eq!(classify(&bare, &facts).to_string(), want.to_string());
    // Colour codes, a bell and another CPU's half line in front of the panic line.
    let text = String::from_utf8_lossy(TIMER_PANIC).replace(
        "[    0.000000] Kernel panic",
        "\x1b[31m\x07[    0.000012] sd 0:0:0:0: [sda] Attached\x1b[0m[    0.000000] Kernel panic",
    );
    let mut noisy = b"\xff\xfe garbage \x00\n".to_vec();
    noisy.extend_from_slice(text.as_bytes());
    let noisy_cause = classify(&noisy, &facts);
    let (_, message, _, _) = panic_of(&noisy_cause);
    assert!(message.starts_with("IO-APIC + timer doesn't work!"));
    // Warnings survive the same treatment.
    let bare = without_timestamps(HUNG_RCU_STARVED);
    let w = scan_warnings(&bare);
    assert_eq!(w.iter().map(|w| w.count).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(w[1].first_at_us, None);
}

#[test]
fn a_huge_console_is_read_from_its_tail() {
    let mut huge = Vec::with_capacity(SCAN_TAIL_BYTES + (4 << 20));
    // An early oops that scrolls out of the window, then megabytes of noise, then the panic.
    huge.extend_from_slice(OOPS_SURVIVED);
    let noise = b"[   10.000000] random: crng reseeded on system resumption\r\n";
    while huge.len() < SCAN_TAIL_BYTES + (2 << 20) {
        huge.extend_from_slice(noise);
    }
    huge.extend_from_slice(TIMER_PANIC);
    let cause = classify(&huge, &no_hello());
    let (_, message, after, _) = panic_of(&cause);
    assert!(message.starts_with("IO-APIC + timer"));
    assert_eq!(after, None, "the oops is outside the scanned tail");
    // One line of 10 MiB without a newline.
    let line = vec![b'A'; 10 << 20];
    assert!(scan_warnings(&line).is_empty());
}

#[test]
fn many_reports_stay_bounded() {
    let mut console = Vec::new();
    for i in 0..500 {
        console.extend_from_slice(
            format!("[ {i}.000000] INFO: task kworker/{i}:1 blocked for more than {i} seconds.\n")
                .as_bytes(),
        );
        console.extend_from_slice(format!("BUG: scheduling while atomic: x/{i}\n").as_bytes());
    }
    let w = scan_warnings(&console);
    let hung = w.iter().find(|w| w.kind == WarningKind::HungTask).unwrap();
    assert_eq!(hung.count, 500);
    assert_eq!(hung.evidence.len(), EVIDENCE_LINES);
    let oops = w.iter().find(|w| w.kind == WarningKind::Oops).unwrap();
    assert_eq!(oops.count, 500);
    let cause = classify(&console, &no_hello());
    assert!(
        matches!(cause, FailureCause::Oops { count: 500, .. }),
        "{cause:?}"
    );
    assert!(cause.evidence().len() <= EVIDENCE_LINES);
}

fn bounded_evidence(lines: &[String]) -> bool {
    lines.len() <= EVIDENCE_LINES
        && lines
            .iter()
            .all(|l| l.chars().count() <= EVIDENCE_LINE_CHARS)
}

fn arb_facts() -> impl Strategy<Value = GuestFacts> {
    (
        any::<bool>(),
        proptest::collection::vec(".{0,300}", 0..3),
        proptest::option::of(".{0,40}"),
        proptest::option::of(".{0,300}"),
        proptest::option::of(0u64..1000),
    )
        .prop_map(
            |(hello, agent_errors, qemu_exit, host_failure, deadline_s)| GuestFacts {
                hello,
                agent_errors,
                qemu_exit,
                host_failure,
                deadline_s,
            },
        )
}

/// Lines that look like kernel reports, cut and mixed with junk.
fn arb_console() -> impl Strategy<Value = Vec<u8>> {
    const PIECES: &[&[u8]] = &[
        b"Kernel panic - not syncing: ",
        b"BUG: kernel NULL pointer dereference",
        b"Oops: 0000 [#1] SMP",
        b"Call Trace:\n",
        b"CPU: 0 PID: 1 Comm: init",
        b"RIP: 0010:",
        b"rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
        b"watchdog: BUG: soft lockup - CPU#",
        b"INFO: task x:1 blocked for more than 1 seconds.",
        b"[ 1.5] ",
        b"\r\n",
        b"\x1b[",
    ];
    // Each piece as likely as a run of random bytes.
    let pieces = prop_oneof![
        PIECES.len() as u32 => proptest::sample::select(PIECES).prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ];
    proptest::collection::vec(pieces, 0..64).prop_map(|p| p.concat())
}

proptest! {
    #[test]
    fn any_bytes_classify_without_panicking_and_stay_bounded(
        console in prop_oneof![arb_console(), proptest::collection::vec(any::<u8>(), 0..4096)],
        facts in arb_facts(),
    ) {
        let scanned = Console::scan(&console);
        let cause = scanned.classify(&facts);
        prop_assert!(bounded_evidence(cause.evidence()), "{:?}", cause);
        let _ = cause.to_string();
        for w in scanned.warnings() {
            prop_assert!(bounded_evidence(&w.evidence));
            prop_assert!(w.count >= 1);
            let _ = w.to_string();
        }
    }

    #[test]
    fn fixtures_cut_anywhere_never_panic(cut in 0usize..4000, facts in arb_facts()) {
        let console = &OOPS_THEN_PANIC[..cut.min(OOPS_THEN_PANIC.len())];
        let cause = classify(console, &facts);
        prop_assert!(bounded_evidence(cause.evidence()));
    }
}
