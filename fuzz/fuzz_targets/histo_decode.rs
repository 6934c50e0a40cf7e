//! Fuzz the histogram import the wire decoder relies on: any bytes must give a histogram or an
//! error, never a panic or a huge allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = pinlat::histo::decode_v2(data) {
        let _ = pinlat::histo::encode_v2_deflate(&h);
    }
});
