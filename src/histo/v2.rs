//! The plain (uncompressed) HdrHistogram V2 encoding, written here so that the guest agent can
//! export histograms without linking a deflate implementation or the `hdrhistogram` crate's
//! `serialization` feature.
//!
//! The layout is the one `hdrhistogram` 7.5's `serialization/v2_serializer.rs` writes (and the
//! Java and C implementations read), all integers big-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 4 | cookie `0x1c849313` (the V2 base cookie `0x1c849303` with the V2 bit `0x10`) |
//! | 4 | payload length: bytes of counts after this 40-byte header |
//! | 4 | normalizing index offset, always 0 |
//! | 4 | significant value digits |
//! | 8 | lowest discernible value |
//! | 8 | highest trackable value |
//! | 8 | integer-to-double conversion ratio, the f64 `1.0` |
//! | … | counts of indexes 0 up to the index of the histogram's max, in index order |
//!
//! Each count is a ZigZag-encoded i64 in LEB128-64b9B (little-endian base 128; an eighth
//! continuation byte is followed by a ninth holding the top 8 bits whole). A run of two or more
//! zero counts is written as one negative number, minus the run's length; a single zero as 0.
//! An empty histogram is one count, 0. The index order is the order of `Histogram::iter_all`,
//! which yields one item per index, ascending.

use hdrhistogram::Histogram;

/// Plain V2 cookie as the Rust, Java and C implementations write it (base cookie | 0x10).
pub const V2_COOKIE: u32 = 0x1c84_9313;
/// Length of the V2 header, bytes.
pub const V2_HEADER_LEN: usize = 40;

/// A count the V2 encoding cannot carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Cannot encode histogram: a count of {count} is above the V2 limit of i64::MAX")]
pub struct CountTooLarge {
    /// The count.
    pub count: u64,
}

/// Encodes `h` as plain HdrHistogram V2 bytes (see the module documentation).
pub fn encode_v2(h: &Histogram<u64>) -> Result<Vec<u8>, CountTooLarge> {
    let mut out = Vec::with_capacity(V2_HEADER_LEN + 256);
    out.extend_from_slice(&V2_COOKIE.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes()); // payload length, set below
    out.extend_from_slice(&0u32.to_be_bytes()); // normalizing index offset
    out.extend_from_slice(&u32::from(h.sigfig()).to_be_bytes());
    out.extend_from_slice(&h.low().to_be_bytes());
    out.extend_from_slice(&h.high().to_be_bytes());
    out.extend_from_slice(&1f64.to_bits().to_be_bytes());
    debug_assert_eq!(out.len(), V2_HEADER_LEN);

    // The bucket of the max is the last index written; its top value is `h.max()`.
    let max = h.max();
    let mut zeros: i64 = 0;
    for v in h.iter_all() {
        match v.count_at_value() {
            0 => zeros += 1,
            count => {
                put_zero_run(&mut out, &mut zeros);
                let count = i64::try_from(count).map_err(|_| CountTooLarge { count })?;
                put_varint(&mut out, zigzag(count));
            }
        }
        if v.value_iterated_to() >= max {
            break;
        }
    }
    put_zero_run(&mut out, &mut zeros);

    // At most ~27 k indexes of 9 bytes for pinlat's range; far below u32::MAX for any range.
    let payload_len = (out.len() - V2_HEADER_LEN) as u32;
    out[4..8].copy_from_slice(&payload_len.to_be_bytes());
    Ok(out)
}

/// Writes a pending run of zero counts: 0 for one, minus the length for more.
fn put_zero_run(out: &mut Vec<u8>, zeros: &mut i64) {
    match *zeros {
        0 => {}
        1 => put_varint(out, zigzag(0)),
        n => put_varint(out, zigzag(-n)),
    }
    *zeros = 0;
}

/// ZigZag: 0 → 0, -1 → 1, 1 → 2, -2 → 3, …
fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

/// LEB128-64b9B: seven bits per byte, low first, high bit set when more follow; after eight
/// such bytes the ninth carries the remaining eight bits as they are.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    for _ in 0..8 {
        if v < 0x80 {
            out.push(v as u8);
            return;
        }
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histo::new_histogram;

    fn varint(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn varints_and_zigzag_as_the_reference_writes_them() {
        assert_eq!(varint(0), [0]);
        assert_eq!(varint(0x7f), [0x7f]);
        assert_eq!(varint(0x80), [0x80, 0x01]);
        assert_eq!(varint(300), [0xac, 0x02]);
        assert_eq!(
            varint((1 << 56) - 1),
            [0xff; 7].iter().copied().chain([0x7f]).collect::<Vec<_>>()
        );
        assert_eq!(varint(u64::MAX), [0xff; 9]);
        assert_eq!(varint(1 << 63).len(), 9);
        assert_eq!(
            [
                zigzag(0),
                zigzag(-1),
                zigzag(1),
                zigzag(-2),
                zigzag(i64::MIN)
            ],
            [0, 1, 2, 3, u64::MAX]
        );
    }

    #[test]
    fn header_and_counts_of_a_small_histogram() {
        let mut h = new_histogram();
        h.record_n(3, 2).unwrap();
        h.record(5).unwrap();
        let b = encode_v2(&h).unwrap();
        assert_eq!(b[..4], V2_COOKIE.to_be_bytes());
        assert_eq!(b[8..12], 0u32.to_be_bytes());
        assert_eq!(b[12..16], 3u32.to_be_bytes());
        assert_eq!(b[16..24], 1u64.to_be_bytes());
        assert_eq!(b[24..32], h.high().to_be_bytes());
        assert_eq!(b[32..40], 1f64.to_bits().to_be_bytes());
        // Indexes 0..=5: zeros for 0-2 (a run of 3), 2 at 3, one zero at 4, 1 at 5.
        assert_eq!(
            b[40..],
            [zigzag(-3) as u8, zigzag(2) as u8, 0, zigzag(1) as u8]
        );
        assert_eq!(b[4..8], 4u32.to_be_bytes());
        let empty = encode_v2(&new_histogram()).unwrap();
        assert_eq!(empty[40..], [0]);
    }

    #[test]
    fn a_count_beyond_i64_is_an_error() {
        let mut h = new_histogram();
        h.record_n(7, u64::MAX).unwrap();
        assert_eq!(encode_v2(&h), Err(CountTooLarge { count: u64::MAX }));
    }

    /// Values over the whole range, small ones denser (where latencies are); counts small or
    /// large enough to need every varint length, without the total passing i64::MAX.
    #[cfg(feature = "host")]
    fn arb_histogram() -> impl proptest::strategy::Strategy<Value = Histogram<u64>> {
        use proptest::prelude::*;
        let value = prop_oneof![1u64..5_000, 1u64..=crate::histo::HIGHEST_TRACKABLE_NS];
        let count = prop_oneof![1u64..4, 1u64..100_000, 1u64..(1 << 56)];
        proptest::collection::vec((value, count), 0..100).prop_map(|samples| {
            let mut h = new_histogram();
            for (v, n) in samples {
                h.record_n(v, n).unwrap();
            }
            h
        })
    }

    #[cfg(feature = "host")]
    proptest::proptest! {
        /// The encoding decodes with hdrhistogram's own `Deserializer` to an equal histogram,
        /// and is byte for byte what its `V2Serializer` writes.
        #[test]
        fn hdrhistogram_reads_back_what_we_write(h in arb_histogram()) {
            use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
            let ours = encode_v2(&h).unwrap();
            let back: Histogram<u64> = Deserializer::new().deserialize(&mut ours.as_slice()).unwrap();
            let counts = |h: &Histogram<u64>| -> Vec<(u64, u64)> {
                h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
            };
            proptest::prop_assert_eq!(counts(&back), counts(&h));
            proptest::prop_assert_eq!((back.min(), back.max(), back.len()), (h.min(), h.max(), h.len()));
            proptest::prop_assert_eq!((back.low(), back.high(), back.sigfig()), (h.low(), h.high(), h.sigfig()));
            proptest::prop_assert!(back == h);
            let mut reference = Vec::new();
            V2Serializer::new().serialize(&h, &mut reference).unwrap();
            proptest::prop_assert_eq!(ours, reference);
        }
    }
}
