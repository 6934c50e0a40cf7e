//! The load's frames and what becomes of them: the frame format ([`build_frame`],
//! [`parse_frame`]), the pacing of sends ([`Pacer`]) and the frames in flight ([`InFlight`]).

use std::collections::VecDeque;

use pinlat::wire::NET_LOST_AFTER_NS;

use super::{ETHERTYPE, MAGIC, MIN_FRAME_BYTES};

/// Writes one frame into `buf` (its whole length is the frame): to and from `mac`, the
/// load's ethertype, then magic, `nonce`, `seq` and `sent_ns` (big-endian), zeros after.
pub fn build_frame(buf: &mut [u8], mac: [u8; 6], nonce: u32, seq: u64, sent_ns: u64) {
    debug_assert!(buf.len() >= MIN_FRAME_BYTES);
    buf.fill(0);
    buf[0..6].copy_from_slice(&mac);
    buf[6..12].copy_from_slice(&mac);
    buf[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    buf[14..18].copy_from_slice(&MAGIC);
    buf[18..22].copy_from_slice(&nonce.to_be_bytes());
    buf[22..30].copy_from_slice(&seq.to_be_bytes());
    buf[30..38].copy_from_slice(&sent_ns.to_be_bytes());
}

/// A frame of this load (`nonce`) as `(seq, sent_ns)`; `None` for anything else.
pub fn parse_frame(frame: &[u8], nonce: u32) -> Option<(u64, u64)> {
    if frame.len() < MIN_FRAME_BYTES
        || frame[12..14] != ETHERTYPE.to_be_bytes()
        || frame[14..18] != MAGIC
        || frame[18..22] != nonce.to_be_bytes()
    {
        return None;
    }
    let seq = u64::from_be_bytes(frame[22..30].try_into().ok()?);
    let sent_ns = u64::from_be_bytes(frame[30..38].try_into().ok()?);
    Some((seq, sent_ns))
}

/// Send times at a fixed rate against the clock, without bursts.
#[derive(Debug, Clone)]
pub struct Pacer {
    period_ns: u64,
    next_ns: u64,
}

impl Pacer {
    /// Slots every `1 s / rate_pps`, the first at `start_ns`.
    pub fn new(start_ns: u64, rate_pps: u32) -> Self {
        Pacer {
            period_ns: (1_000_000_000 / u64::from(rate_pps.max(1))).max(1),
            next_ns: start_ns,
        }
    }

    /// The next send slot for a sender at `now_ns`, and how many slots it skipped. A sender
    /// more than a whole period late skips the slots it missed instead of sending them back
    /// to back; one less than a period late sends at once.
    pub fn next(&mut self, now_ns: u64) -> (u64, u64) {
        let mut slot = self.next_ns;
        let mut skipped = 0;
        if now_ns > slot + self.period_ns {
            skipped = (now_ns - slot) / self.period_ns;
            slot += skipped * self.period_ns;
        }
        self.next_ns = slot + self.period_ns;
        (slot, skipped)
    }
}

/// What an arriving echo turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// The echo of a frame in flight: its round trip, ns, and whether it counts (sent in the
    /// window).
    Received {
        /// Receive time − send time, ns.
        rtt_ns: u64,
        /// Sent inside the measurement window.
        counted: bool,
    },
    /// The echo of a frame already given up as lost.
    Late,
    /// Not a frame in flight: a duplicate, or a sequence number or time never sent.
    Unmatched,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    sent_ns: u64,
    counted: bool,
    back: bool,
}

/// The frames sent in the last [`NET_LOST_AFTER_NS`], in sequence order, and their fate.
#[derive(Debug, Default)]
pub struct InFlight {
    /// Sequence number of `slots[0]`.
    first_seq: u64,
    slots: VecDeque<Slot>,
}

impl InFlight {
    /// The next sequence number to send.
    pub fn next_seq(&self) -> u64 {
        self.first_seq + self.slots.len() as u64
    }

    /// Frame [`InFlight::next_seq`] goes out at `sent_ns`.
    pub fn sent(&mut self, sent_ns: u64, counted: bool) -> u64 {
        let seq = self.next_seq();
        self.slots.push_back(Slot {
            sent_ns,
            counted,
            back: false,
        });
        seq
    }

    /// The last frame registered did not go out after all: it is neither received nor lost,
    /// and its sequence number is not reused.
    pub fn unsend(&mut self) {
        if let Some(s) = self.slots.back_mut() {
            s.back = true;
            s.counted = false;
        }
    }

    /// An echo of `seq`, stamped `sent_ns`, arrived at `now_ns`.
    pub fn echo(&mut self, seq: u64, sent_ns: u64, now_ns: u64) -> Echo {
        if seq < self.first_seq {
            return Echo::Late;
        }
        let Some(slot) = usize::try_from(seq - self.first_seq)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
        else {
            return Echo::Unmatched;
        };
        if slot.back || slot.sent_ns != sent_ns {
            return Echo::Unmatched;
        }
        let rtt_ns = now_ns.saturating_sub(slot.sent_ns);
        if rtt_ns >= NET_LOST_AFTER_NS {
            // Not yet expired only because nobody looked: as late as a lost one.
            return Echo::Late;
        }
        slot.back = true;
        Echo::Received {
            rtt_ns,
            counted: slot.counted,
        }
    }

    /// Forgets frames sent [`NET_LOST_AFTER_NS`] or more before `now_ns` (all of them with
    /// `u64::MAX`); returns how many of the counted ones never came back.
    pub fn expire(&mut self, now_ns: u64) -> u64 {
        let mut lost = 0;
        while let Some(s) = self.slots.front() {
            if now_ns.saturating_sub(s.sent_ns) < NET_LOST_AFTER_NS {
                break;
            }
            if !s.back && s.counted {
                lost += 1;
            }
            self.slots.pop_front();
            self.first_seq += 1;
        }
        lost
    }

    /// Whether frames are still out.
    pub fn outstanding(&self) -> bool {
        self.slots.iter().any(|s| !s.back)
    }
}
