//! Fuzz the agent's decoder of the runner's commands (`go`, `phase`, `quit`): arbitrary bytes
//! in arbitrary chunks, with a small cap so the oversize path is reached. It must never panic,
//! and every command it yields re-encodes into a frame that decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinlat::wire::{encode_command, Command, Decoded, FrameDecoder, MAX_COMMAND_BYTES};

fuzz_target!(|data: &[u8]| {
    let (split, rest) = match data.split_first() {
        Some((s, r)) => (*s as usize + 1, r),
        None => return,
    };
    let mut small = FrameDecoder::<Command>::of(256);
    let mut full = FrameDecoder::<Command>::of(MAX_COMMAND_BYTES);
    let mut out = Vec::new();
    for c in rest.chunks(split) {
        out.extend(small.feed(c));
        out.extend(full.feed(c));
    }
    out.extend(small.finish());
    out.extend(full.finish());
    for d in out {
        if let Decoded::Message(c) = d {
            let f = encode_command(&c).expect("a decoded command encodes");
            let again = FrameDecoder::<Command>::of(MAX_COMMAND_BYTES).feed(&f);
            assert_eq!(again, vec![Decoded::Message(c)]);
        }
    }
});
