//! Frame codec and histogram export: round trips, corruption, truncation, oversize, `\r\n`,
//! console noise, and property tests of the streaming decoder.

use pinlat::agentcfg::AgentConfig;
use pinlat::histo::{self, Hist};
use pinlat::kinds::WorkloadKind;
use pinlat::wire::{
    encode, encode_body, ClockInfo, ClockSource, CpuResult, Decoded, DeviceFacts, Done,
    ErrorReport, FrameDecoder, FrameWriter, GuestIrq, GuestTuning, Hello, IntervalReport, LoadKind,
    LoadResult, Message, ModuleLoad, NetCounts, OpKind, OpStats, Rejection, SysctlReadBack,
    SystemFacts, TopEvent, VirtioDevice, SCHEMA_VERSION,
};
use proptest::prelude::*;

fn hist(values: &[u64]) -> Hist {
    let mut h = histo::new_histogram();
    for &v in values {
        h.record(v).unwrap();
    }
    Hist(h)
}

fn clock() -> ClockInfo {
    ClockInfo {
        source: ClockSource::Tsc,
        tsc_hz: Some(2_600_000_000),
        invariant_tsc: true,
        calibration_spread_ppm: None,
    }
}

fn sample_messages() -> Vec<Message> {
    vec![
        Message::Hello(Hello {
            schema_version: SCHEMA_VERSION,
            agent_version: "0.1.0".into(),
            facts: SystemFacts {
                kernel_release: "6.1.0-rt".into(),
                kernel_version: "#1 SMP PREEMPT_RT".into(),
                preempt_rt: true,
                clocksource: "tsc".into(),
                cmdline: "console=ttyS0 isolcpus=1-3 \"quoted\"".into(),
                isolated_cpus: "1-3".into(),
                cpu_count: 4,
                clock: clock(),
                devices: DeviceFacts {
                    modules: vec![ModuleLoad {
                        name: "virtio_blk".into(),
                        load_ns: 1_234_567,
                        already_loaded: false,
                    }],
                    modules_load_ns: Some(2_000_000),
                    virtio: vec![VirtioDevice {
                        bus_id: "virtio0".into(),
                        kind: "block".into(),
                        name: "vda".into(),
                        driver: Some("virtio_blk".into()),
                    }],
                },
                tuning: Some(GuestTuning {
                    cpuidle_driver: Some("none".into()),
                    cpuidle_governor: None,
                    isolated: Some("1-3".into()),
                    nohz_full: Some("(null)".into()),
                    timer_migration: Some("0".into()),
                    sched_rt_runtime_us: Some("-1".into()),
                    irqs: Some(vec![GuestIrq {
                        irq: 4,
                        actions: vec!["ttyS0".into()],
                        effective: Some("0".into()),
                        affinity: None,
                    }]),
                    sysctls: vec![SysctlReadBack {
                        key: "kernel.timer_migration".into(),
                        written: "0".into(),
                        read: "0".into(),
                    }],
                }),
            },
            config: AgentConfig::new(WorkloadKind::BusyPoll, vec![1, 2, 3], 10_000),
            sent_mono_ns: None,
        }),
        Message::Interval(IntervalReport {
            cpu: 2,
            workload: WorkloadKind::BusyPoll,
            index: 7,
            start_offset_ns: 7_000_000_000,
            end_offset_ns: 8_000_000_013,
            samples: 5,
            overflow: 1,
            histogram: hist(&[15, 15, 16, 1_000_000]),
        }),
        Message::Final(CpuResult {
            cpu: 3,
            workload: WorkloadKind::Ring,
            peer_cpu: Some(2),
            clock: clock(),
            duration_ns: 10_000_000_000,
            start_mono_ns: None,
            end_mono_ns: None,
            cpu_dma_latency_held: None,
            samples: 3,
            min_ns: 90,
            max_ns: 12_345,
            overflow: 0,
            backwards: 0,
            missed_periods: 0,
            top: vec![TopEvent {
                offset_ns: 5,
                latency_ns: 12_345,
            }],
            intervals: 10,
            late_intervals: 0,
            histogram: hist(&[90, 100, 12_345]),
        }),
        Message::Load(LoadResult {
            load: LoadKind::Net,
            device: "eth0".into(),
            direct: None,
            cpus: vec![0],
            duration_ns: 10_000_000_000,
            target_per_s: Some(1_000),
            ops: [(
                OpKind::Rtt,
                OpStats {
                    count: 3,
                    bytes: 768,
                    errors: 1,
                    first_error: Some("send of 256 bytes: No buffer space available".into()),
                    min_ns: 210_000,
                    max_ns: 9_000_000,
                    overflow: 0,
                    histogram: hist(&[210_000, 250_000, 9_000_000]),
                },
            )]
            .into(),
            net: Some(NetCounts {
                sent: 4,
                received: 3,
                lost: 1,
                late: 1,
                unmatched: 0,
                skipped_slots: 7,
            }),
        }),
        Message::Error(ErrorReport {
            message: "Measuring thread on CPU 1: Cannot pin thread\nsecond line \u{1F600}".into(),
            cpu: Some(1),
        }),
        Message::Done(Done {
            finals: 3,
            max_rss_kib: None,
        }),
    ]
}

fn messages(out: Vec<Decoded>) -> Vec<Message> {
    out.into_iter()
        .filter_map(|d| match d {
            Decoded::Message(m) => Some(*m),
            Decoded::Rejected(_) => None,
        })
        .collect()
}

#[test]
fn every_message_round_trips() {
    let msgs = sample_messages();
    let mut bytes = Vec::new();
    let mut w = FrameWriter::new(&mut bytes);
    for m in &msgs {
        w.send(m).unwrap();
    }
    assert_eq!(
        bytes.iter().filter(|&&b| b == b'\n').count(),
        msgs.len(),
        "one line per frame"
    );
    let mut d = FrameDecoder::new();
    assert_eq!(messages(d.feed(&bytes)), msgs);
    assert_eq!(d.stats().frames, msgs.len() as u64);
    assert_eq!(d.stats().rejected(), 0);
}

#[test]
fn crlf_and_console_noise_are_tolerated() {
    let msgs = sample_messages();
    let mut bytes = b"[    0.000000] Linux version 6.1.0\r\n\r\nrandom PLF noise\n".to_vec();
    for m in &msgs {
        let mut f = encode(m).unwrap();
        f.pop();
        f.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(&f);
        bytes.extend_from_slice(b"login: \x00\xff\xfe garbage\r\n");
    }
    let mut d = FrameDecoder::new();
    assert_eq!(messages(d.feed(&bytes)), msgs);
    assert_eq!(d.stats().rejected(), 0);
    assert_eq!(d.stats().noise_lines, 3 + msgs.len() as u64);
}

#[test]
fn noise_before_the_magic_on_the_same_line_is_skipped() {
    let m = Message::Done(Done {
        finals: 1,
        max_rss_kib: None,
    });
    let mut bytes = b"\x1b[0mprintk without newline ".to_vec();
    bytes.extend_from_slice(&encode(&m).unwrap());
    let mut d = FrameDecoder::new();
    assert_eq!(messages(d.feed(&bytes)), vec![m]);
}

#[test]
fn corruption_is_rejected_and_counted() {
    let good = encode(&sample_messages()[4]).unwrap();
    let body_at = good.len() - 10;

    // Flipped body byte: CRC mismatch.
    let mut bad_crc = good.clone();
    bad_crc[body_at] ^= 0x01;
    // Body with a changed length field.
    let text = String::from_utf8(good.clone()).unwrap();
    let len: usize = text.split(' ').nth(1).unwrap().parse().unwrap();
    let bad_len = text.replacen(&format!(" {len} "), &format!(" {} ", len + 1), 1);
    // Valid frame, invalid message.
    let bad_json = encode_body(br#"{"type":"nonsense"}"#);
    // Header garbage.
    let bad_header = b"PLF1 12x 00000000 {}\n".to_vec();
    // Truncated: the line ends early (guest died mid-frame, then printed something).
    let mut truncated = good[..good.len() / 2].to_vec();
    truncated.push(b'\n');

    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    for f in [
        &bad_crc,
        bad_len.as_bytes(),
        &bad_json,
        &bad_header,
        &truncated,
        &good,
    ] {
        out.extend(d.feed(f));
    }
    let kinds: Vec<_> = out
        .iter()
        .map(|d| match d {
            Decoded::Message(_) => "ok",
            Decoded::Rejected(Rejection::BadCrc { .. }) => "crc",
            Decoded::Rejected(Rejection::BadLength { .. }) => "len",
            Decoded::Rejected(Rejection::BadJson(_)) => "json",
            Decoded::Rejected(Rejection::BadHeader) => "header",
            Decoded::Rejected(Rejection::Oversize { .. }) => "oversize",
        })
        .collect();
    assert_eq!(kinds, ["crc", "len", "json", "header", "len", "ok"]);
    let s = d.stats();
    assert_eq!(
        (s.bad_crc, s.bad_length, s.bad_json, s.bad_header, s.frames),
        (1, 2, 1, 1, 1)
    );
}

#[test]
fn truncated_last_frame_at_end_of_stream() {
    let good = encode(&Message::Done(Done {
        finals: 1,
        max_rss_kib: None,
    }))
    .unwrap();
    let mut d = FrameDecoder::new();
    assert!(d.feed(&good[..good.len() - 5]).is_empty());
    let out = d.finish();
    assert!(matches!(
        out.as_slice(),
        [Decoded::Rejected(Rejection::BadLength { .. })]
    ));
    assert_eq!(d.stats().bad_length, 1);
}

#[test]
fn oversize_frames_are_dropped_by_declared_or_actual_size() {
    let mut d = FrameDecoder::with_max_frame_bytes(1_000);
    let big = encode(&Message::Error(ErrorReport {
        message: "x".repeat(5_000),
        cpu: None,
    }))
    .unwrap();
    // Declared too large but line short: rejected on the header.
    let liar = b"PLF1 999999999 00000000 {}\n";
    let small = encode(&Message::Done(Done {
        finals: 0,
        max_rss_kib: None,
    }))
    .unwrap();
    let mut out = Vec::new();
    for c in big.chunks(100) {
        out.extend(d.feed(c));
    }
    out.extend(d.feed(liar));
    out.extend(d.feed(&small));
    assert_eq!(d.stats().oversize, 2);
    assert_eq!(
        messages(out),
        vec![Message::Done(Done {
            finals: 0,
            max_rss_kib: None
        })]
    );
    // A long noise line is noise, not an oversize frame.
    let mut noise = vec![b'a'; 10_000];
    noise.push(b'\n');
    d.feed(&noise);
    assert_eq!(d.stats().oversize, 2);
}

#[test]
fn histogram_export_keeps_identical_counts() {
    let mut h = histo::new_histogram();
    for i in 0..100_000u64 {
        h.record(1 + (i * i) % 50_000_000_000).unwrap();
    }
    let text = histo::encode_base64(&h).unwrap();
    let back = histo::decode_base64(&text).unwrap();
    assert_eq!(back.len(), h.len());
    for v in h.iter_recorded() {
        assert_eq!(back.count_at(v.value_iterated_to()), v.count_at_value());
    }
    assert_eq!(back.min(), h.min());
    assert_eq!(back.max(), h.max());
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<String>(), proptest::option::of(any::<u32>()))
            .prop_map(|(message, cpu)| Message::Error(ErrorReport { message, cpu })),
        (
            any::<u32>(),
            any::<u64>(),
            proptest::collection::vec(1u64..100_000_000_000, 0..50)
        )
            .prop_map(|(cpu, index, values)| {
                let h = hist(
                    &values
                        .iter()
                        .copied()
                        .filter(|&v| v <= 60_000_000_000)
                        .collect::<Vec<_>>(),
                );
                Message::Interval(IntervalReport {
                    cpu,
                    workload: WorkloadKind::Timer,
                    index,
                    start_offset_ns: index,
                    end_offset_ns: index.saturating_add(1),
                    samples: values.len() as u64,
                    overflow: values.iter().filter(|&&v| v > 60_000_000_000).count() as u64,
                    histogram: h,
                })
            }),
        (any::<u32>(), any::<Option<u64>>()).prop_map(|(finals, max_rss_kib)| Message::Done(
            Done {
                finals,
                max_rss_kib
            }
        )),
        arb_load().prop_map(Message::Load),
        proptest::option::of(arb_tuning()).prop_map(|tuning| {
            let Message::Hello(mut h) = sample_messages().swap_remove(0) else {
                unreachable!("the first sample is the hello")
            };
            h.facts.tuning = tuning;
            Message::Hello(h)
        }),
    ]
}

/// Any guest tuning facts: every file present or absent, any text (the report judges it).
fn arb_tuning() -> impl Strategy<Value = GuestTuning> {
    let text = || proptest::option::of(any::<String>());
    let irq = (
        any::<u32>(),
        proptest::collection::vec(any::<String>(), 0..3),
        proptest::option::of(any::<String>()),
        proptest::option::of(any::<String>()),
    )
        .prop_map(|(irq, actions, effective, affinity)| GuestIrq {
            irq,
            actions,
            effective,
            affinity,
        });
    let sysctl = (any::<String>(), any::<String>(), any::<String>())
        .prop_map(|(key, written, read)| SysctlReadBack { key, written, read });
    (
        (text(), text(), text(), text()),
        (text(), text()),
        proptest::option::of(proptest::collection::vec(irq, 0..5)),
        proptest::collection::vec(sysctl, 0..3),
    )
        .prop_map(
            |(
                (cpuidle_driver, cpuidle_governor, isolated, nohz_full),
                (timer_migration, sched_rt_runtime_us),
                irqs,
                sysctls,
            )| GuestTuning {
                cpuidle_driver,
                cpuidle_governor,
                isolated,
                nohz_full,
                timer_migration,
                sched_rt_runtime_us,
                irqs,
                sysctls,
            },
        )
}

/// A hello of an agent from before the tuning facts decodes, its tuning unknown; one with
/// fields this reader does not know (a later agent) decodes too.
#[test]
fn hellos_without_or_beyond_the_tuning_facts_decode() {
    let Message::Hello(h) = sample_messages().swap_remove(0) else {
        unreachable!()
    };
    let mut v = serde_json::to_value(Message::Hello(h.clone())).unwrap();
    v["facts"].as_object_mut().unwrap().remove("tuning");
    let old: Message = serde_json::from_value(v.clone()).unwrap();
    let Message::Hello(old) = old else { panic!() };
    assert_eq!(old.facts.tuning, None);
    assert_eq!(old.facts.cmdline, h.facts.cmdline);
    v["facts"]["tuning"] = serde_json::json!({"cpuidle_driver": "haltpoll", "later": 1});
    let Message::Hello(newer) = serde_json::from_value::<Message>(v).unwrap() else {
        panic!()
    };
    let t = newer.facts.tuning.unwrap();
    assert_eq!(t.cpuidle_driver.as_deref(), Some("haltpoll"));
    assert_eq!((t.isolated, t.irqs), (None, None));
}

fn arb_op() -> impl Strategy<Value = OpStats> {
    (
        proptest::collection::vec(1u64..60_000_000_000, 0..40),
        any::<u64>(),
        any::<u64>(),
        proptest::option::of(any::<String>()),
    )
        .prop_map(|(values, bytes, errors, first_error)| OpStats {
            count: values.len() as u64,
            bytes,
            errors,
            first_error,
            min_ns: values.iter().copied().min().unwrap_or(0),
            max_ns: values.iter().copied().max().unwrap_or(0),
            overflow: 0,
            histogram: hist(&values),
        })
}

/// Any `load` message, io or net, with any operations and counts (plausible or not: the
/// decoder's job is the frame, the runner's validator judges the numbers).
fn arb_load() -> impl Strategy<Value = LoadResult> {
    let op_kind = prop_oneof![
        Just(OpKind::Read),
        Just(OpKind::Write),
        Just(OpKind::Flush),
        Just(OpKind::Rtt)
    ];
    let net = (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(sent, received, lost, late, unmatched, skipped_slots)| NetCounts {
                sent,
                received,
                lost,
                late,
                unmatched,
                skipped_slots,
            },
        );
    (
        prop_oneof![Just(LoadKind::Io), Just(LoadKind::Net)],
        any::<String>(),
        proptest::option::of(any::<bool>()),
        proptest::collection::vec(any::<u32>(), 0..4),
        any::<u64>(),
        proptest::option::of(any::<u64>()),
        proptest::collection::btree_map(op_kind, arb_op(), 0..4),
        proptest::option::of(net),
    )
        .prop_map(
            |(load, device, direct, cpus, duration_ns, target_per_s, ops, net)| LoadResult {
                load,
                device,
                direct,
                cpus,
                duration_ns,
                target_per_s,
                ops,
                net,
            },
        )
}

/// Console noise: never contains the magic nor a newline inside a line.
fn arb_noise() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..80).prop_map(|mut v| {
        v.retain(|&b| b != b'\n' && b != b'P');
        v.push(b'\n');
        v
    })
}

proptest! {
    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20),
        max in 0usize..300,
    ) {
        let mut d = FrameDecoder::with_max_frame_bytes(max);
        for c in &chunks {
            d.feed(c);
        }
        d.finish();
    }

    #[test]
    fn decoder_never_panics_on_damaged_frames(
        msg in arb_message(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut f = encode(&msg).unwrap();
        for (i, b) in flips {
            let i = i.index(f.len());
            f[i] = b;
        }
        let n = cut.index(f.len() + 1);
        let mut d = FrameDecoder::new();
        let out = d.feed(&f[..n]);
        // Whatever survives damage is a whole message (CRC protects the rest), never a panic.
        prop_assert!(out.len() <= 2);
        d.finish();
    }

    #[test]
    fn frames_round_trip_through_noise_and_any_chunking(
        items in proptest::collection::vec((arb_message(), arb_noise(), any::<bool>()), 0..8),
        chunk in 1usize..64,
    ) {
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for (m, noise, crlf) in &items {
            stream.extend_from_slice(noise);
            let mut f = encode(m).unwrap();
            if *crlf {
                f.pop();
                f.extend_from_slice(b"\r\n");
            }
            stream.extend_from_slice(&f);
            want.push(m.clone());
        }
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        for c in stream.chunks(chunk) {
            got.extend(messages(d.feed(c)));
        }
        got.extend(messages(d.finish()));
        prop_assert_eq!(got, want);
        prop_assert_eq!(d.stats().rejected(), 0);
    }

    /// A `load` frame decodes to exactly the message sent, and a frame whose JSON was damaged
    /// (any byte of the body replaced, CRC recomputed so the JSON parser sees it) decodes to a
    /// message or is rejected as bad JSON, never panics.
    #[test]
    fn load_messages_round_trip_and_damaged_json_is_refused_cleanly(
        load in arb_load(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let msg = Message::Load(load);
        let mut d = FrameDecoder::new();
        prop_assert_eq!(messages(d.feed(&encode(&msg).unwrap())), vec![msg.clone()]);
        let mut body = serde_json::to_vec(&msg).unwrap();
        let i = at.index(body.len());
        body[i] = if byte == b'\n' { b' ' } else { byte };
        let out = d.feed(&encode_body(&body));
        prop_assert_eq!(out.len(), 1);
        match &out[0] {
            Decoded::Message(_) => {}
            Decoded::Rejected(Rejection::BadJson(_)) => {}
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
