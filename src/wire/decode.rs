//! The host side of the wire: a streaming decoder that finds frames in whatever the guest's
//! serial port carries (see the [frame format](super)), checks them and counts what it drops.
//! Only the host decodes, so only the `host` feature builds it.

use serde::{Deserialize, Serialize};

use super::{Message, DEFAULT_MAX_FRAME_BYTES, MAGIC, MAX_HEADER_BYTES};

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
    /// The body is not a valid [`Message`].
    #[error("Frame body is not a valid message: {0}")]
    BadJson(String),
    /// The frame is larger than the cap and was discarded.
    #[error("Frame larger than {max} bytes discarded")]
    Oversize {
        /// The cap, bytes.
        max: usize,
    },
}

/// What the decoder made of a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A valid message.
    Message(Box<Message>),
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

/// Streaming frame decoder: feed it any byte chunks, get messages and rejections.
#[derive(Debug)]
pub struct FrameDecoder {
    line: Vec<u8>,
    max_frame: usize,
    /// Dropping bytes until the next newline; `Some(true)` if the dropped line held the magic.
    discarding: Option<bool>,
    stats: DecoderStats,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder with the [`DEFAULT_MAX_FRAME_BYTES`] cap.
    pub fn new() -> Self {
        Self::with_max_frame_bytes(DEFAULT_MAX_FRAME_BYTES)
    }

    /// A decoder capping a frame's JSON body at `max` bytes.
    pub fn with_max_frame_bytes(max: usize) -> Self {
        FrameDecoder {
            line: Vec::new(),
            max_frame: max,
            discarding: None,
            stats: DecoderStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &DecoderStats {
        &self.stats
    }

    /// Counts the end of a line that was too long to keep: an oversize frame if it carried the
    /// magic, else console noise.
    fn end_overlong_line(&mut self, had_magic: bool, out: &mut Vec<Decoded>) {
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
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<Decoded> {
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
    pub fn finish(&mut self) -> Vec<Decoded> {
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

    fn decode_line(&mut self, mut line: &[u8], out: &mut Vec<Decoded>) {
        while let [rest @ .., b'\r'] = line {
            line = rest;
        }
        let mut from = 0;
        let mut found = false;
        while let Some(pos) = find(&line[from..], b"PLF1 ") {
            found = true;
            let start = from + pos;
            match self.decode_frame(&line[start + 5..]) {
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
            from = start + 1;
        }
        if !found {
            self.stats.noise_lines += 1;
        }
    }

    /// Decode `<len> <crc> <json>` (the part after `PLF1 `).
    fn decode_frame(&self, s: &[u8]) -> Result<Message, Rejection> {
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
        let body = &after[9..];
        if body.len() != declared {
            return Err(Rejection::BadLength {
                declared,
                actual: body.len(),
            });
        }
        let actual = crc32fast::hash(body);
        if actual != crc {
            return Err(Rejection::BadCrc {
                declared: crc,
                actual,
            });
        }
        serde_json::from_slice(body).map_err(|e| Rejection::BadJson(e.to_string()))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

#[cfg(test)]
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
