//! The host side of the wire: a streaming decoder that finds frames in whatever the guest's
//! serial port carries (see the [frame format](super)), checks them and counts what it drops.
//! Only the host decodes, so only the `host` feature builds it.

use serde::{Deserialize, Serialize};

#[cfg(feature = "host")]
use super::DEFAULT_MAX_FRAME_BYTES;
use super::{Message, MAGIC, MAX_HEADER_BYTES};

/// Why a frame was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The header after the magic is not `<len> <crc32-hex> `.
    #[error("Malformed frame header")]
    BadHeader,
    /// The body is not as long as the header says (a truncated or damaged frame).
    #[error("Frame length mismatch: header says {declared} bytes, line has {actual}")]
    BadLength {
        /// Length in the header.
        declared: usize,
        /// Length found.
        actual: usize,
    },
    /// The body's CRC differs from the header's.
    #[error("Frame CRC mismatch: header {declared:08x}, body {actual:08x}")]
    BadCrc {
        /// CRC in the header.
        declared: u32,
        /// CRC of the body.
        actual: u32,
    },
    /// The body is not a valid message.
    #[error("Frame body is not a valid message: {0}")]
    BadJson(String),
    /// The frame is larger than the cap and was discarded.
    #[error("Frame larger than {max} bytes discarded")]
    Oversize {
        /// The cap, bytes.
        max: usize,
    },
}

/// What the decoder made of a frame: a [`Message`] from the agent by default, a
/// [`super::Command`] in the agent's own decoder.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded<T = Message> {
    /// A valid message.
    Message(Box<T>),
    /// A dropped frame.
    Rejected(Rejection),
}

/// Counters of everything the decoder saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecoderStats {
    /// Valid frames.
    pub frames: u64,
    /// Frames with a malformed header.
    pub bad_header: u64,
    /// Frames whose body length differs from the header (truncated included).
    pub bad_length: u64,
    /// Frames with a CRC mismatch.
    pub bad_crc: u64,
    /// Frames whose body is not a valid message.
    pub bad_json: u64,
    /// Frames over the size cap.
    pub oversize: u64,
    /// Lines without the magic (console noise).
    pub noise_lines: u64,
}

impl DecoderStats {
    /// Total dropped frames.
    pub fn rejected(&self) -> u64 {
        self.bad_header + self.bad_length + self.bad_crc + self.bad_json + self.oversize
    }
}

/// Streaming frame decoder: feed it any byte chunks, get messages (of type `T`) and
/// rejections.
#[derive(Debug)]
pub struct FrameDecoder<T = Message> {
    line: Vec<u8>,
    max_frame: usize,
    /// Dropping bytes until the next newline; `Some(true)` if the dropped line held the magic.
    discarding: Option<bool>,
    stats: DecoderStats,
    /// Bytes run through CRC-32 so far: the decoder's work, which must stay linear in its input.
    #[cfg(test)]
    crc_bytes: u64,
    message: std::marker::PhantomData<fn() -> T>,
}

#[cfg(feature = "host")]
impl Default for FrameDecoder<Message> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "host")]
impl FrameDecoder<Message> {
    /// A decoder of the agent's messages with the [`DEFAULT_MAX_FRAME_BYTES`] cap.
    pub fn new() -> Self {
        Self::with_max_frame_bytes(DEFAULT_MAX_FRAME_BYTES)
    }

    /// A decoder of the agent's messages capping a frame's JSON body at `max` bytes.
    pub fn with_max_frame_bytes(max: usize) -> Self {
        Self::of(max)
    }
}

impl<T: serde::de::DeserializeOwned> FrameDecoder<T> {
    /// A decoder of frames holding `T`, capping a frame's JSON body at `max` bytes.
    pub fn of(max: usize) -> Self {
        FrameDecoder {
            line: Vec::new(),
            max_frame: max,
            discarding: None,
            stats: DecoderStats::default(),
            #[cfg(test)]
            crc_bytes: 0,
            message: std::marker::PhantomData,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &DecoderStats {
        &self.stats
    }

    /// Counts the end of a line that was too long to keep: an oversize frame if it carried the
    /// magic, else console noise.
    fn end_overlong_line(&mut self, had_magic: bool, out: &mut Vec<Decoded<T>>) {
        if had_magic {
            self.stats.oversize += 1;
            out.push(Decoded::Rejected(Rejection::Oversize {
                max: self.max_frame,
            }));
        } else {
            self.stats.noise_lines += 1;
        }
    }

    /// Feed the next bytes of the stream; returns the frames completed by them, in order.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<Decoded<T>> {
        let mut out = Vec::new();
        let line_cap = self.max_frame.saturating_add(MAX_HEADER_BYTES + 2);
        while !bytes.is_empty() {
            let nl = bytes.iter().position(|&b| b == b'\n');
            let (chunk, rest, complete) = match nl {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            if let Some(had_magic) = self.discarding {
                let had_magic = had_magic || contains(chunk, MAGIC);
                if complete {
                    self.discarding = None;
                    self.end_overlong_line(had_magic, &mut out);
                } else {
                    self.discarding = Some(had_magic);
                }
                continue;
            }
            if self.line.len() + chunk.len() > line_cap {
                let had_magic = contains(&self.line, MAGIC) || contains(chunk, MAGIC);
                self.line.clear();
                self.line.shrink_to(4096);
                if complete {
                    self.end_overlong_line(had_magic, &mut out);
                } else {
                    self.discarding = Some(had_magic);
                }
                continue;
            }
            self.line.extend_from_slice(chunk);
            if complete {
                let line = std::mem::take(&mut self.line);
                self.decode_line(&line, &mut out);
                self.line = line;
                self.line.clear();
            }
        }
        out
    }

    /// End of stream: a partial last line that held a frame is reported as truncated.
    pub fn finish(&mut self) -> Vec<Decoded<T>> {
        let mut out = Vec::new();
        match self.discarding.take() {
            Some(true) => {
                self.stats.oversize += 1;
                out.push(Decoded::Rejected(Rejection::Oversize {
                    max: self.max_frame,
                }));
            }
            Some(false) => self.stats.noise_lines += 1,
            None if !self.line.is_empty() => {
                let line = std::mem::take(&mut self.line);
                self.decode_line(&line, &mut out);
            }
            None => {}
        }
        out
    }

    /// Decodes one line. The magic may appear more than once (console noise before a frame on
    /// the same line, or a frame nested in another's text): each occurrence is a candidate, tried
    /// in order. A frame runs to the end of its line, so a candidate is checked in O(1) by its
    /// declared length first; the CRC of every candidate that passes is then computed in one
    /// backward pass over the line (each body's CRC is the CRC of the bytes up to the next
    /// candidate combined with that candidate's), so the work stays linear in the line's length
    /// however many headers it nests. (Seen: 20,000 nested, length-correct headers in a 414 KB
    /// line took 174 ms when each candidate was CRC'd on its own.)
    fn decode_line(&mut self, mut line: &[u8], out: &mut Vec<Decoded<T>>) {
        while let [rest @ .., b'\r'] = line {
            line = rest;
        }
        let mut candidates: Vec<Result<(usize, u32), Rejection>> = Vec::new();
        let mut from = 0;
        while let Some(pos) = find(&line[from..], MAGIC_SP) {
            let start = from + pos;
            candidates.push(self.header(line, start + MAGIC_SP.len()));
            from = start + 1;
        }
        if candidates.is_empty() {
            self.stats.noise_lines += 1;
            return;
        }
        // CRCs of the bodies (each runs to the end of the line), from the last one back.
        let mut crcs: Vec<Option<u32>> = vec![None; candidates.len()];
        let mut suffix: Option<(usize, crc32fast::Hasher)> = None;
        for (i, c) in candidates.iter().enumerate().rev() {
            let Ok((body_start, _)) = c else { continue };
            let mut h = crc32fast::Hasher::new();
            match &suffix {
                Some((next_start, next)) => {
                    h.update(&line[*body_start..*next_start]);
                    self.count_crc(*next_start - *body_start);
                    h.combine(next);
                }
                None => {
                    h.update(&line[*body_start..]);
                    self.count_crc(line.len() - *body_start);
                }
            }
            crcs[i] = Some(h.clone().finalize());
            suffix = Some((*body_start, h));
        }
        for (c, crc) in candidates.into_iter().zip(crcs) {
            let decoded = c.and_then(|(body_start, declared)| {
                let actual = crc.expect("computed for every candidate that passed its header");
                if actual != declared {
                    return Err(Rejection::BadCrc { declared, actual });
                }
                serde_json::from_slice(&line[body_start..])
                    .map_err(|e| Rejection::BadJson(e.to_string()))
            });
            match decoded {
                Ok(msg) => {
                    self.stats.frames += 1;
                    out.push(Decoded::Message(Box::new(msg)));
                    return;
                }
                Err(rej) => {
                    match rej {
                        Rejection::BadHeader => self.stats.bad_header += 1,
                        Rejection::BadLength { .. } => self.stats.bad_length += 1,
                        Rejection::BadCrc { .. } => self.stats.bad_crc += 1,
                        Rejection::BadJson(_) => self.stats.bad_json += 1,
                        Rejection::Oversize { .. } => self.stats.oversize += 1,
                    }
                    out.push(Decoded::Rejected(rej));
                }
            }
        }
    }

    #[cfg(test)]
    fn count_crc(&mut self, n: usize) {
        self.crc_bytes += n as u64;
    }

    #[cfg(not(test))]
    fn count_crc(&mut self, _: usize) {}

    /// Checks the header `<len> <crc> ` starting at `at` (just after the magic) of a frame that
    /// must run to the end of `line`: the body's start and the declared CRC.
    fn header(&self, line: &[u8], at: usize) -> Result<(usize, u32), Rejection> {
        let s = &line[at..];
        let sp1 = s
            .iter()
            .take(11)
            .position(|&b| b == b' ')
            .ok_or(Rejection::BadHeader)?;
        let len_digits = &s[..sp1];
        if len_digits.is_empty() || !len_digits.iter().all(u8::is_ascii_digit) {
            return Err(Rejection::BadHeader);
        }
        let declared: usize = std::str::from_utf8(len_digits)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or(Rejection::BadHeader)?;
        let after = &s[sp1 + 1..];
        let crc_hex = after.get(..8).ok_or(Rejection::BadHeader)?;
        if after.get(8) != Some(&b' ') || !crc_hex.iter().all(u8::is_ascii_hexdigit) {
            return Err(Rejection::BadHeader);
        }
        let crc = std::str::from_utf8(crc_hex)
            .ok()
            .and_then(|t| u32::from_str_radix(t, 16).ok())
            .ok_or(Rejection::BadHeader)?;
        if declared > self.max_frame {
            return Err(Rejection::Oversize {
                max: self.max_frame,
            });
        }
        let body_start = at + sp1 + 1 + 9;
        let actual = line.len() - body_start.min(line.len());
        if actual != declared {
            return Err(Rejection::BadLength { declared, actual });
        }
        Ok((body_start, crc))
    }
}

/// The magic and the space after it: what starts a frame header.
const MAGIC_SP: &[u8] = b"PLF1 ";

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

#[cfg(all(test, feature = "host"))]
mod tests {
    use super::*;
    use crate::wire::{encode, ErrorReport};

    fn err(text: &str) -> Message {
        Message::Error(ErrorReport {
            message: text.into(),
            cpu: Some(3),
        })
    }

    #[test]
    fn nested_headers_cost_linear_work() {
        // 20,000 frames each wrapped in the next with a correct length and CRC (414 KB): the
        // innermost is the message, the others are JSON errors; every byte is CRC'd about
        // once, where checking each candidate on its own CRC'd 4 GB.
        let inner = serde_json::to_vec(&err("inner")).unwrap();
        let (mut len, mut crc) = (inner.len(), crc32fast::Hasher::new());
        crc.update(&inner);
        let mut headers = Vec::new();
        for _ in 0..20_000 {
            let h = format!("PLF1 {len} {:08x} ", crc.clone().finalize());
            let mut outer = crc32fast::Hasher::new();
            outer.update(h.as_bytes());
            outer.combine(&crc);
            (len, crc) = (len + h.len(), outer);
            headers.push(h);
        }
        headers.reverse();
        let line = [headers.concat().as_bytes(), &inner, b"\n"].concat();
        assert!(line.len() > 400_000, "{}", line.len());
        let mut d = FrameDecoder::with_max_frame_bytes(1 << 20);
        let out = d.feed(&line);
        assert_eq!(out.len(), 20_000);
        assert!(matches!(out.last(), Some(Decoded::Message(m)) if **m == err("inner")));
        assert_eq!(d.stats().bad_json, 19_999);
        assert!(
            d.crc_bytes <= 2 * line.len() as u64,
            "{} bytes CRC'd for a {}-byte line",
            d.crc_bytes,
            line.len()
        );
    }

    #[test]
    fn crlf_and_byte_by_byte() {
        let mut f = encode(&err("x")).unwrap();
        f.pop();
        f.extend_from_slice(b"\r\n");
        let mut d = FrameDecoder::new();
        let got: Vec<_> = f
            .iter()
            .flat_map(|b| d.feed(std::slice::from_ref(b)))
            .collect();
        assert_eq!(got, vec![Decoded::Message(Box::new(err("x")))]);
    }

    #[test]
    fn oversize_is_discarded_without_buffering() {
        let mut d = FrameDecoder::with_max_frame_bytes(100);
        let big = encode(&err(&"a".repeat(500))).unwrap();
        for c in big.chunks(7) {
            d.feed(c);
            assert!(d.line.len() <= 100 + MAX_HEADER_BYTES + 2);
        }
        assert_eq!(d.stats().oversize, 1);
        let ok = d.feed(&encode(&err("b")).unwrap());
        assert_eq!(ok, vec![Decoded::Message(Box::new(err("b")))]);
    }

    /// The agent (built without the `host` feature) writes plain V2 histograms; the host's
    /// decoder takes them as it takes deflate ones.
    #[test]
    fn frames_with_plain_v2_histograms_decode() {
        let mut h = crate::histo::new_histogram();
        h.record_n(1_234, 5).unwrap();
        h.record(7_654_321).unwrap();
        let msg = Message::Interval(crate::wire::IntervalReport {
            cpu: 2,
            workload: crate::kinds::WorkloadKind::Timer,
            index: 0,
            start_offset_ns: 0,
            end_offset_ns: 1_000,
            samples: 6,
            overflow: 0,
            histogram: crate::histo::Hist(h.clone()),
        });
        let mut json = serde_json::to_value(&msg).unwrap();
        let plain = crate::histo::encode_v2_base64(&h).unwrap();
        assert!(plain.starts_with("HISTE"));
        json["histogram"] = serde_json::Value::String(plain);
        let frame = crate::wire::encode_body(&serde_json::to_vec(&json).unwrap());
        let got = FrameDecoder::new().feed(&frame);
        assert_eq!(got, vec![Decoded::Message(Box::new(msg))]);
    }
}
