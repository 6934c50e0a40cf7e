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
//! Decoding is meant for untrusted input (a guest's serial output): `decode_base64` inflates
//! with a hard size cap and checks the V2 header (range, precision, payload length) before the
//! `hdrhistogram` deserializer sees it, so a hostile frame cannot make the host allocate more than
//! a few MiB.

use base64::Engine as _;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize, Serializer};

#[cfg(feature = "host")]
pub mod codec;
pub mod v2;

#[cfg(feature = "host")]
pub use codec::{
    decode_base64, decode_v2, encode_base64, encode_v2_deflate, HistoError, MAX_DECODED_DIGITS,
    MAX_DECODED_HIGHEST, MAX_INFLATED_BYTES,
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
impl<'de> Deserialize<'de> for Hist {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        decode_base64(&text)
            .map(Hist)
            .map_err(serde::de::Error::custom)
    }
}

/// Percentile summary of a histogram, all in ns (at the histogram's 3-digit precision).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of recorded values.
    pub count: u64,
    /// Smallest recorded value, ns (0 when empty).
    pub min_ns: u64,
    /// Median, ns.
    pub p50_ns: u64,
    /// 90th percentile, ns.
    pub p90_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// 99.9th percentile, ns.
    pub p999_ns: u64,
    /// 99.99th percentile, ns.
    pub p9999_ns: u64,
    /// Largest recorded value (highest equivalent of its bucket), ns.
    pub max_ns: u64,
}

/// Summarise `h` at the usual percentiles. An empty histogram gives all zeros.
pub fn summarize(h: &Histogram<u64>) -> Summary {
    if h.is_empty() {
        return Summary::default();
    }
    Summary {
        count: h.len(),
        min_ns: h.min(),
        p50_ns: h.value_at_quantile(0.5),
        p90_ns: h.value_at_quantile(0.9),
        p99_ns: h.value_at_quantile(0.99),
        p999_ns: h.value_at_quantile(0.999),
        p9999_ns: h.value_at_quantile(0.9999),
        max_ns: h.max(),
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

    #[test]
    fn summary_percentiles() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        let s = summarize(&h);
        assert_eq!(s.count, 1000);
        assert_eq!(s.min_ns, 1);
        assert_eq!(s.p50_ns, 500);
        assert_eq!(s.p99_ns, 990);
        assert_eq!(s.max_ns, 1000);
        assert_eq!(summarize(&new_histogram()), Summary::default());
    }
}
