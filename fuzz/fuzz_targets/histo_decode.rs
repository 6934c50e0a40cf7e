//! Fuzz the histogram import the wire decoder relies on: any bytes must give a histogram or an
//! error, never a panic or a huge allocation; a histogram that decodes re-encodes, plain (as the
//! agent writes it) and deflate, and the plain encoding decodes to the same histogram.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = pinlat::histo::decode_v2(data) {
        let _ = pinlat::histo::encode_v2_deflate(&h);
        if let Ok(plain) = pinlat::histo::encode_v2(&h) {
            let back = pinlat::histo::decode_v2(&plain).expect("our own encoding decodes");
            assert!(back == h, "plain V2 round trip changed the histogram");
        }
    }
});
