//! The host side of histogram transport: decoding base64 HdrHistogram V2, plain or deflate, from
//! untrusted input with hard limits, and the V2 deflate encoding the `.hlog` export writes.

use std::io::Read;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;

use super::v2::{V2_COOKIE, V2_HEADER_LEN};

/// Largest decompressed V2 payload [`decode_base64`] accepts, in bytes.
pub const MAX_INFLATED_BYTES: usize = 4 << 20;
/// Largest `highest trackable value` [`decode_base64`] accepts in a V2 header (2^50 ns, ~13 days).
pub const MAX_DECODED_HIGHEST: u64 = 1 << 50;
/// Most significant digits [`decode_base64`] accepts in a V2 header.
pub const MAX_DECODED_DIGITS: u32 = 3;

/// V2 deflate cookie as the Java and Rust implementations write it (base cookie | 0x10).
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;

/// Errors of histogram export and import.
#[derive(Debug, thiserror::Error)]
pub enum HistoError {
    /// The V2 serializer failed (should not happen for a pinlat histogram).
    #[error("Cannot encode histogram as V2 deflate: {0:?}")]
    Encode(hdrhistogram::serialization::V2DeflateSerializeError),
    /// The text is not standard base64.
    #[error("Histogram is not valid base64")]
    Base64(#[source] base64::DecodeError),
    /// The bytes are not a V2 (plain or deflate) histogram, or are one this decoder refuses.
    #[error("Histogram is not an acceptable HdrHistogram V2 encoding: {0}")]
    Format(String),
    /// The `hdrhistogram` deserializer rejected the payload.
    #[error("Histogram payload is corrupt: {0:?}")]
    Decode(hdrhistogram::serialization::DeserializeError),
}

/// Encode `h` as HdrHistogram V2 deflate bytes.
pub fn encode_v2_deflate(h: &Histogram<u64>) -> Result<Vec<u8>, HistoError> {
    let mut out = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut out)
        .map_err(HistoError::Encode)?;
    Ok(out)
}

/// Encode `h` as HdrHistogram V2 deflate in standard base64 (the `.hlog` line payload; [`super::Hist`]
/// writes plain V2).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histo::test_sample as sample;

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
}
