//! Fuzz the streaming frame decoder: arbitrary bytes, split into arbitrary chunks, with a small
//! frame cap so the oversize path is reached. It must never panic, never buffer past the cap,
//! and account for every frame it yields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinlat::wire::{Decoded, FrameDecoder};

fuzz_target!(|data: &[u8]| {
    let (split, rest) = match data.split_first() {
        Some((s, r)) => (*s as usize + 1, r),
        None => return,
    };
    let mut small = FrameDecoder::with_max_frame_bytes(256);
    let mut big = FrameDecoder::new();
    let mut yielded = 0u64;
    let mut ok = 0u64;
    let mut out = Vec::new();
    for c in rest.chunks(split) {
        out.extend(small.feed(c));
        big.feed(c);
    }
    out.extend(small.finish());
    big.finish();
    for d in out {
        yielded += 1;
        if let Decoded::Message(m) = d {
            ok += 1;
            // A decoded message re-encodes into a frame that decodes to itself.
            let f = pinlat::wire::encode(&m).expect("decoded message encodes");
            let again = FrameDecoder::new().feed(&f);
            assert_eq!(again, vec![Decoded::Message(m)]);
        }
    }
    let s = small.stats();
    assert_eq!(s.frames, ok);
    assert_eq!(s.frames + s.rejected(), yielded);
});
