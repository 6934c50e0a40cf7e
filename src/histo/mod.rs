//! HDR histograms of latencies in integer nanoseconds, and their export.
//!
//! Every latency pinlat records goes into an [`hdrhistogram::Histogram`] built by [`new_histogram`]:
//! 1 ns to [`HIGHEST_TRACKABLE_NS`] (60 s) at [`SIGNIFICANT_DIGITS`] (3) significant decimal
//! digits, so a value is stored within 0.1 % of itself (HdrHistogram, Gil Tene,
//! <https://github.com/HdrHistogram/HdrHistogram>). Values above the range are never clamped into
//! it: the recorder counts them separately as overflow.
//!
//! Histograms travel (wire frames, run files, `report.json`) as standard base64 of an
//! HdrHistogram V2 encoding; [`Hist`] is a serde wrapper that (de)serializes a histogram as that
//! string. Two encodings exist: **plain** V2 ([`v2`], base64 `HISTE…`), which this crate encodes
//! itself, and **V2 deflate** (`HISTF…`, what HdrHistogram's `.hlog` lines carry), encoded by the
//! `hdrhistogram` crate (`codec`, feature `host`). [`Hist`] writes the most compact one the build
//! links: plain V2 without the `host` feature — the guest agent, which so links no deflate — and
//! V2 deflate with it, so the host's run files and reports are as before. Reading (feature
//! `host`) accepts both, whoever wrote them.
//!
//! Percentiles and the one latency summary ([`Summary`]: by rank, overflow counted above the
//! range, bounded by the exact max, max-bound percentiles flagged) are in `summary.rs`.
//!
//! Decoding is meant for untrusted input (a guest's serial output): `decode_base64` inflates
//! with a hard size cap and checks the V2 header (range, precision, payload length) before the
//! `hdrhistogram` deserializer sees it, so a hostile frame cannot make the host allocate more than
//! a few MiB.

use base64::Engine as _;
use hdrhistogram::Histogram;
use serde::{Serialize, Serializer};

#[cfg(feature = "host")]
pub mod codec;
mod summary;
pub mod v2;

#[cfg(feature = "host")]
pub use codec::{
    decode_base64, decode_v2, encode_base64, encode_v2_deflate, HistoError, MAX_DECODED_DIGITS,
    MAX_DECODED_HIGHEST, MAX_INFLATED_BYTES,
};
pub use summary::{
    percentile, percentiles, ppm_of_percent, rank, summarize, Percentile, Quantile, Summary,
    MAX_BOUND_BEYOND, PPM,
};
pub use v2::{encode_v2, CountTooLarge};

/// Lowest value a pinlat histogram discerns, in ns.
pub const LOWEST_DISCERNIBLE_NS: u64 = 1;
/// Highest value a pinlat histogram is built to track, in ns (60 s). The histogram rounds its
/// range up to a bucket boundary; a value it refuses to record is overflow.
pub const HIGHEST_TRACKABLE_NS: u64 = 60_000_000_000;
/// Significant decimal digits kept per value.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// A new, empty histogram with pinlat's range (1 ns to 60 s, 3 significant digits).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(
        LOWEST_DISCERNIBLE_NS,
        HIGHEST_TRACKABLE_NS,
        SIGNIFICANT_DIGITS,
    )
    .expect("constant histogram bounds are valid")
}

/// Encode `h` as plain HdrHistogram V2 in standard base64, as [`Hist`] writes it.
pub fn encode_v2_base64(h: &Histogram<u64>) -> Result<String, CountTooLarge> {
    Ok(base64::engine::general_purpose::STANDARD.encode(encode_v2(h)?))
}

/// A histogram that serializes as a base64 HdrHistogram V2 string: V2 deflate
/// (`encode_base64`) with the `host` feature, plain V2 ([`encode_v2_base64`]) without (see the
/// module documentation); with `host` it deserializes from either (`decode_base64`).
#[derive(Clone, Debug, PartialEq)]
pub struct Hist(pub Histogram<u64>);

impl Default for Hist {
    fn default() -> Self {
        Hist(new_histogram())
    }
}

impl From<Histogram<u64>> for Hist {
    fn from(h: Histogram<u64>) -> Self {
        Hist(h)
    }
}

impl Serialize for Hist {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[cfg(feature = "host")]
        let text = encode_base64(&self.0);
        #[cfg(not(feature = "host"))]
        let text = encode_v2_base64(&self.0);
        s.serialize_str(&text.map_err(serde::ser::Error::custom)?)
    }
}

#[cfg(feature = "host")]
impl<'de> serde::Deserialize<'de> for Hist {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        decode_base64(&text)
            .map(Hist)
            .map_err(serde::de::Error::custom)
    }
}

/// A histogram with values across the whole range, for tests of every histogram module.
#[cfg(test)]
pub(crate) fn test_sample() -> Histogram<u64> {
    let mut h = new_histogram();
    for v in [1u64, 2, 17, 999, 1_000, 1_001, 123_456, 59_999_999_999] {
        h.record(v).unwrap();
    }
    h.record_n(42, 1_000_000).unwrap();
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Histogram<u64> {
        test_sample()
    }

    #[test]
    fn range_covers_sixty_seconds_and_refuses_far_above() {
        let mut h = new_histogram();
        assert!(h.record(10_000_000_000).is_ok());
        assert!(h.record(HIGHEST_TRACKABLE_NS).is_ok());
        assert!(h.record(2 * HIGHEST_TRACKABLE_NS).is_err());
    }

    #[cfg(feature = "host")]
    #[test]
    fn serde_wrapper_is_a_base64_string() {
        let h = Hist(sample());
        let json = serde_json::to_string(&h).unwrap();
        assert!(
            json.starts_with("\"HISTF"),
            "V2 deflate cookie 1c849314 is base64 HISTF: {json}"
        );
        let back: Hist = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h);
        // Plain V2, as the agent writes it, reads too.
        let plain = format!("\"{}\"", encode_v2_base64(&h.0).unwrap());
        assert!(
            plain.starts_with("\"HISTE"),
            "plain V2 cookie 1c849313 is base64 HISTE"
        );
        assert_eq!(serde_json::from_str::<Hist>(&plain).unwrap(), h);
    }

    /// What the agent writes: plain V2, no deflate linked.
    #[cfg(not(feature = "host"))]
    #[test]
    fn without_host_the_wrapper_writes_plain_v2() {
        let h = Hist(sample());
        let json = serde_json::to_string(&h).unwrap();
        let want = format!("\"{}\"", encode_v2_base64(&h.0).unwrap());
        assert_eq!(json, want);
        assert!(
            json.starts_with("\"HISTE"),
            "plain V2 cookie 1c849313 is base64 HISTE"
        );
    }
}
