//! HDR histograms of latencies in integer nanoseconds, and their export.
//!
//! Every latency pinlat records goes into an [`hdrhistogram::Histogram`] built by [`new_histogram`]:
//! 1 ns to [`HIGHEST_TRACKABLE_NS`] (60 s) at [`SIGNIFICANT_DIGITS`] (3) significant decimal
//! digits, so a value is stored within 0.1 % of itself (HdrHistogram, Gil Tene,
//! <https://github.com/HdrHistogram/HdrHistogram>). Values above the range are never clamped into
//! it: the recorder counts them separately as overflow.
//!
//! Histograms travel (wire frames, result JSON) as the HdrHistogram **V2 deflate** encoding in
//! standard base64 — the same bytes HdrHistogram's own tools read from a `.hlog` line.
//! [`Hist`] is a serde wrapper that (de)serializes a histogram as that base64 string.
//!
//! Decoding is meant for untrusted input (a guest's serial output): [`decode_base64`] inflates
//! with a hard size cap and checks the V2 header (range, precision, payload length) before the
//! `hdrhistogram` deserializer sees it, so a hostile frame cannot make the host allocate more than
//! a few MiB.

use std::io::Read;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Deserializer as SerdeDeserializer, Serialize, Serializer};

/// Lowest value a pinlat histogram discerns, in ns.
pub const LOWEST_DISCERNIBLE_NS: u64 = 1;
/// Highest value a pinlat histogram is built to track, in ns (60 s). The histogram rounds its
/// range up to a bucket boundary; a value it refuses to record is overflow.
pub const HIGHEST_TRACKABLE_NS: u64 = 60_000_000_000;
/// Significant decimal digits kept per value.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// Largest decompressed V2 payload [`decode_base64`] accepts, in bytes.
pub const MAX_INFLATED_BYTES: usize = 4 << 20;
/// Largest `highest trackable value` [`decode_base64`] accepts in a V2 header (2^50 ns, ~13 days).
pub const MAX_DECODED_HIGHEST: u64 = 1 << 50;
/// Most significant digits [`decode_base64`] accepts in a V2 header.
pub const MAX_DECODED_DIGITS: u32 = 3;

/// V2 cookies as the Java and Rust implementations write them (base cookie | 0x10).
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;
/// V2 header: cookie, payload length, normalizing offset, digits (4 bytes each), lowest,
/// highest, conversion ratio (8 bytes each).
const V2_HEADER_LEN: usize = 40;

/// Errors of histogram export and import.
#[derive(Debug, thiserror::Error)]
pub enum HistoError {
    /// The V2 serializer failed (should not happen for a pinlat histogram).
    #[error("Cannot encode histogram as V2 deflate: {0:?}")]
    Encode(hdrhistogram::serialization::V2DeflateSerializeError),
    /// The text is not standard base64.
    #[error("Histogram is not valid base64")]
    Base64(#[source] base64::DecodeError),
    /// The bytes are not a V2 deflate histogram, or are one this decoder refuses.
    #[error("Histogram is not an acceptable HdrHistogram V2 deflate encoding: {0}")]
    Format(String),
    /// The `hdrhistogram` deserializer rejected the payload.
    #[error("Histogram payload is corrupt: {0:?}")]
    Decode(hdrhistogram::serialization::DeserializeError),
}

/// A new, empty histogram with pinlat's range (1 ns to 60 s, 3 significant digits).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(
        LOWEST_DISCERNIBLE_NS,
        HIGHEST_TRACKABLE_NS,
        SIGNIFICANT_DIGITS,
    )
    .expect("constant histogram bounds are valid")
}

/// Encode `h` as HdrHistogram V2 deflate bytes.
pub fn encode_v2_deflate(h: &Histogram<u64>) -> Result<Vec<u8>, HistoError> {
    let mut out = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut out)
        .map_err(HistoError::Encode)?;
    Ok(out)
}

/// Encode `h` as HdrHistogram V2 deflate in standard base64 (the `.hlog` line payload).
pub fn encode_base64(h: &Histogram<u64>) -> Result<String, HistoError> {
    Ok(base64::engine::general_purpose::STANDARD.encode(encode_v2_deflate(h)?))
}

/// Decode standard base64 of an HdrHistogram V2 (deflate or plain) encoding.
///
/// Refuses encodings whose header asks for more than [`MAX_DECODED_DIGITS`] digits, a highest
/// value above [`MAX_DECODED_HIGHEST`], a lowest value of 0, or an inflated size above
/// [`MAX_INFLATED_BYTES`]; never allocates more than a few MiB whatever the input.
pub fn decode_base64(text: &str) -> Result<Histogram<u64>, HistoError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(HistoError::Base64)?;
    decode_v2(&bytes)
}

/// Decode HdrHistogram V2 (deflate or plain) bytes, with the checks of [`decode_base64`].
pub fn decode_v2(bytes: &[u8]) -> Result<Histogram<u64>, HistoError> {
    let plain = match be_u32(bytes, 0) {
        Some(V2_DEFLATE_COOKIE) => {
            let len = be_u32(bytes, 4).ok_or_else(|| fmt_err("truncated deflate header"))? as usize;
            let body = bytes
                .get(8..8usize.saturating_add(len))
                .ok_or_else(|| fmt_err("deflate length beyond end of data"))?;
            let mut plain = Vec::new();
            flate2::read::ZlibDecoder::new(body)
                .take(MAX_INFLATED_BYTES as u64 + 1)
                .read_to_end(&mut plain)
                .map_err(|e| fmt_err(&format!("bad deflate stream: {e}")))?;
            if plain.len() > MAX_INFLATED_BYTES {
                return Err(fmt_err("inflated histogram is too large"));
            }
            plain
        }
        Some(V2_COOKIE) => bytes.to_vec(),
        Some(c) => return Err(fmt_err(&format!("unknown cookie {c:#010x}"))),
        None => return Err(fmt_err("shorter than a cookie")),
    };
    check_v2_header(&plain)?;
    Deserializer::new()
        .deserialize(&mut plain.as_slice())
        .map_err(HistoError::Decode)
}

fn check_v2_header(plain: &[u8]) -> Result<(), HistoError> {
    if plain.len() < V2_HEADER_LEN || be_u32(plain, 0) != Some(V2_COOKIE) {
        return Err(fmt_err("missing V2 header"));
    }
    let payload_len = be_u32(plain, 4).unwrap_or(u32::MAX) as usize;
    if payload_len != plain.len() - V2_HEADER_LEN {
        return Err(fmt_err("payload length does not match the data"));
    }
    let digits = be_u32(plain, 12).unwrap_or(u32::MAX);
    let lowest = be_u64(plain, 16).unwrap_or(0);
    let highest = be_u64(plain, 24).unwrap_or(u64::MAX);
    if digits > MAX_DECODED_DIGITS {
        return Err(fmt_err(&format!("{digits} significant digits")));
    }
    if lowest == 0 || highest > MAX_DECODED_HIGHEST || highest < lowest.saturating_mul(2) {
        return Err(fmt_err(&format!("range {lowest}..{highest}")));
    }
    Ok(())
}

fn fmt_err(what: &str) -> HistoError {
    HistoError::Format(what.to_string())
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A histogram that (de)serializes as a base64 HdrHistogram V2 deflate string.
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
        let text = encode_base64(&self.0).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Hist {
    fn deserialize<D: SerdeDeserializer<'de>>(d: D) -> Result<Self, D::Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Histogram<u64> {
        let mut h = new_histogram();
        for v in [1u64, 2, 17, 999, 1_000, 1_001, 123_456, 59_999_999_999] {
            h.record(v).unwrap();
        }
        h.record_n(42, 1_000_000).unwrap();
        h
    }

    #[test]
    fn range_covers_sixty_seconds_and_refuses_far_above() {
        let mut h = new_histogram();
        assert!(h.record(10_000_000_000).is_ok());
        assert!(h.record(HIGHEST_TRACKABLE_NS).is_ok());
        assert!(h.record(2 * HIGHEST_TRACKABLE_NS).is_err());
    }

    #[test]
    fn base64_round_trip_keeps_every_count() {
        let h = sample();
        let text = encode_base64(&h).unwrap();
        let back = decode_base64(&text).unwrap();
        assert_eq!(back.len(), h.len());
        let a: Vec<_> = h
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        let b: Vec<_> = back
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        assert_eq!(a, b);
        assert_eq!(back, h);
    }

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
    }

    #[test]
    fn hostile_headers_are_refused_without_allocating() {
        // Plain V2 header asking for a 2 GiB payload.
        let mut b = Vec::new();
        b.extend_from_slice(&V2_COOKIE.to_be_bytes());
        b.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&3u32.to_be_bytes());
        b.extend_from_slice(&1u64.to_be_bytes());
        b.extend_from_slice(&1_000_000u64.to_be_bytes());
        b.extend_from_slice(&1f64.to_bits().to_be_bytes());
        assert!(decode_v2(&b).is_err());
        // Header asking for a huge range.
        b[4..8].copy_from_slice(&0u32.to_be_bytes());
        b[24..32].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(decode_v2(&b).is_err());
        b[24..32].copy_from_slice(&1_000_000u64.to_be_bytes());
        b[12..16].copy_from_slice(&5u32.to_be_bytes());
        assert!(decode_v2(&b).is_err());
        b[12..16].copy_from_slice(&3u32.to_be_bytes());
        assert!(decode_v2(&b).unwrap().is_empty());
        assert!(decode_base64("not base64!").is_err());
        assert!(decode_v2(&[]).is_err());
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
