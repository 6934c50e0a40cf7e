//! The runner's commands to the agent (`go`, and a shared boot's `phase` and `quit`): round
//! trips through any chunking, the old `go` frame unchanged, damaged frames refused without a
//! panic, and a command decoder that never buffers past its cap.

use pinlat::agentcfg::{AgentConfig, ClockChoice, IoLoad, Loads};
use pinlat::kinds::WorkloadKind;
use pinlat::wire::{
    encode_body, encode_command, Command, Decoded, FrameDecoder, MAX_COMMAND_BYTES,
};
use proptest::prelude::*;

fn commands(out: Vec<Decoded<Command>>) -> Vec<Command> {
    out.into_iter()
        .filter_map(|d| match d {
            Decoded::Message(c) => Some(*c),
            Decoded::Rejected(_) => None,
        })
        .collect()
}

/// Any phase config the runner could send (valid or not: the agent validates it).
fn arb_config() -> impl Strategy<Value = AgentConfig> {
    (
        prop_oneof![
            Just(WorkloadKind::BusyPoll),
            Just(WorkloadKind::Timer),
            Just(WorkloadKind::Ring)
        ],
        proptest::collection::vec(0u32..64, 0..4),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        any::<bool>(),
        proptest::collection::vec("[a-z_]{1,12}", 0..3),
        prop_oneof![
            Just(ClockChoice::Auto),
            Just(ClockChoice::Tsc),
            Just(ClockChoice::Monotonic)
        ],
    )
        .prop_map(
            |(workload, rt_cpus, duration_ms, preheat_ms, phase, io, modules, clock)| {
                let mut c = AgentConfig::new(workload, rt_cpus, duration_ms);
                c.preheat_ms = preheat_ms;
                c.phase = Some(phase);
                c.wait_for_go = true;
                c.clock = clock;
                c.modules = modules;
                c.loads = Loads {
                    io: io.then(IoLoad::default),
                    ..Loads::default()
                };
                c
            },
        )
}

fn arb_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Go),
        Just(Command::Quit),
        arb_config().prop_map(|config| Command::Phase { config }),
    ]
}

/// The `go` an agent of before phases reads is still exactly this frame.
#[test]
fn go_is_the_frame_it_always_was() {
    let f = encode_command(&Command::Go).unwrap();
    let json = br#"{"type":"go"}"#;
    let want = format!("PLF1 {} {:08x} ", json.len(), crc32fast::hash(json));
    assert!(f.starts_with(want.as_bytes()) && f.ends_with(b"{\"type\":\"go\"}\n"));
    assert_eq!(
        String::from_utf8(encode_command(&Command::Quit).unwrap()).unwrap(),
        format!(
            "PLF1 15 {:08x} {{\"type\":\"quit\"}}\n",
            crc32fast::hash(br#"{"type":"quit"}"#)
        )
    );
}

/// A phase config outside one boot reads as before: no `phase` key in its JSON, and a config
/// without it reads as `None`.
#[test]
fn a_config_without_a_phase_is_the_json_it_was() {
    let c = AgentConfig::new(WorkloadKind::Timer, vec![1], 1000);
    assert!(!c.to_json().contains("phase"));
    let mut p = c.clone();
    p.phase = Some(3);
    let back = AgentConfig::from_json(&p.to_json()).unwrap();
    assert_eq!(back.phase, Some(3));
    assert_eq!(AgentConfig::from_json(&c.to_json()).unwrap().phase, None);
}

/// A command the decoder does not know (a newer runner's) is refused as bad JSON and the
/// commands around it still arrive: what lets an agent ignore what it does not understand.
#[test]
fn an_unknown_command_is_refused_and_the_next_one_read() {
    let mut d = FrameDecoder::<Command>::of(MAX_COMMAND_BYTES);
    let mut stream = encode_body(br#"{"type":"reboot"}"#);
    stream.extend(encode_command(&Command::Go).unwrap());
    assert_eq!(commands(d.feed(&stream)), vec![Command::Go]);
    assert_eq!(d.stats().bad_json, 1);
}

proptest! {
    #[test]
    fn commands_round_trip_through_noise_and_any_chunking(
        cmds in proptest::collection::vec((arb_command(), any::<bool>()), 0..6),
        chunk in 1usize..96,
    ) {
        let mut stream = Vec::new();
        for (c, crlf) in &cmds {
            stream.extend_from_slice(b"console noise\n");
            let mut f = encode_command(c).unwrap();
            if *crlf {
                f.pop();
                f.extend_from_slice(b"\r\n");
            }
            stream.extend_from_slice(&f);
        }
        let mut d = FrameDecoder::<Command>::of(MAX_COMMAND_BYTES);
        let mut got = Vec::new();
        for c in stream.chunks(chunk) {
            got.extend(commands(d.feed(c)));
        }
        got.extend(commands(d.finish()));
        let want: Vec<Command> = cmds.into_iter().map(|(c, _)| c).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(d.stats().rejected(), 0);
    }

    /// A damaged command is a whole command (the CRC passed) or a rejection, never a panic;
    /// and a cap below the frame drops it as oversize without buffering it.
    #[test]
    fn damaged_or_oversize_commands_are_refused_cleanly(
        cmd in arb_command(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cap in 0usize..64,
    ) {
        let good = encode_command(&cmd).unwrap();
        let mut f = good.clone();
        for (i, b) in flips {
            let i = i.index(f.len());
            f[i] = b;
        }
        let mut d = FrameDecoder::<Command>::of(MAX_COMMAND_BYTES);
        let out = d.feed(&f);
        prop_assert!(out.len() <= 2);
        d.finish();
        let mut small = FrameDecoder::<Command>::of(cap);
        let mut out = small.feed(&good);
        out.extend(small.finish());
        if good.len() > cap + 30 {
            prop_assert!(commands(out).is_empty());
            prop_assert_eq!(small.stats().oversize, 1);
        }
    }

    #[test]
    fn command_decoder_never_panics_on_arbitrary_bytes(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20),
        max in 0usize..300,
    ) {
        let mut d = FrameDecoder::<Command>::of(max);
        for c in &chunks {
            d.feed(c);
        }
        d.finish();
    }
}
