//! Recording the operations of a housekeeping load that measures itself (`io`, `net`): per
//! operation kind, a pinlat HDR histogram of latencies in ns, the exact extremes, counts, bytes,
//! and failures counted with the first one's message. A failed syscall is a counted error here,
//! never a panic nor the end of the load.
//!
//! Only operations that started inside the measurement [`Window`] are counted, so a load's rate
//! is over the same stretch as the RT vCPUs' samples (the preheat is left out).

use hdrhistogram::Histogram;
use pinlat::histo::{new_histogram, Hist};
use pinlat::wire::OpStats;

/// Longest first-error message kept, bytes.
const MAX_ERROR_BYTES: usize = 240;

/// The stretch operations are counted in, `CLOCK_MONOTONIC` ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Operations that start at or after this count.
    pub from_ns: u64,
}

impl Window {
    /// Whether an operation that started at `start_ns` counts.
    pub fn counts(&self, start_ns: u64) -> bool {
        start_ns >= self.from_ns
    }

    /// The window's length if it ends at `end_ns` (0 if it never opened).
    pub fn length_ns(&self, end_ns: u64) -> u64 {
        end_ns.saturating_sub(self.from_ns)
    }

    /// `at +1.234 s`: when `at_ns` was, from the window's start, for error messages.
    pub fn at(&self, at_ns: u64) -> String {
        let ms = at_ns.saturating_sub(self.from_ns) / 1_000_000;
        format!("at +{}.{:03} s", ms / 1000, ms % 1000)
    }
}

/// One operation kind's record.
#[derive(Debug)]
pub struct OpRecorder {
    hist: Histogram<u64>,
    count: u64,
    bytes: u64,
    errors: u64,
    first_error: Option<String>,
    min_ns: u64,
    max_ns: u64,
    overflow: u64,
}

impl Default for OpRecorder {
    fn default() -> Self {
        OpRecorder {
            hist: new_histogram(),
            count: 0,
            bytes: 0,
            errors: 0,
            first_error: None,
            min_ns: u64::MAX,
            max_ns: 0,
            overflow: 0,
        }
    }
}

impl OpRecorder {
    /// One completed operation of `latency_ns` that moved `bytes`.
    pub fn record(&mut self, latency_ns: u64, bytes: u64) {
        // Zero is below the histogram's lowest value (1 ns): a coarse clock's zero is "< 1 ns".
        let v = latency_ns.max(1);
        if self.hist.record(v).is_err() {
            self.overflow += 1;
        }
        self.count += 1;
        self.bytes += bytes;
        self.min_ns = self.min_ns.min(v);
        self.max_ns = self.max_ns.max(v);
    }

    /// One failed operation; the first failure's message is kept.
    pub fn error(&mut self, message: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            let mut m = message();
            if m.len() > MAX_ERROR_BYTES {
                let mut cut = MAX_ERROR_BYTES;
                while !m.is_char_boundary(cut) {
                    cut -= 1;
                }
                m.truncate(cut);
                m.push('…');
            }
            self.first_error = Some(m);
        }
    }

    /// Completed operations so far.
    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The wire form.
    pub fn finish(self) -> OpStats {
        OpStats {
            count: self.count,
            bytes: self.bytes,
            errors: self.errors,
            first_error: self.first_error,
            min_ns: if self.count == 0 { 0 } else { self.min_ns },
            max_ns: self.max_ns,
            overflow: self.overflow,
            histogram: Hist(self.hist),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_extremes_overflow_and_the_first_error() {
        let mut r = OpRecorder::default();
        r.record(0, 512);
        r.record(2_000, 512);
        r.record(70_000_000_000, 512);
        r.error(|| "pwrite at 4096: Input/output error".into());
        r.error(|| unreachable!("only the first message is made"));
        let s = r.finish();
        assert_eq!((s.count, s.bytes, s.errors, s.overflow), (3, 1536, 2, 1));
        assert_eq!((s.min_ns, s.max_ns), (1, 70_000_000_000));
        assert_eq!(s.histogram.0.len() + s.overflow, s.count);
        assert_eq!(
            s.first_error.as_deref(),
            Some("pwrite at 4096: Input/output error")
        );
        let empty = OpRecorder::default().finish();
        assert_eq!((empty.count, empty.min_ns, empty.max_ns), (0, 0, 0));
    }

    #[test]
    fn long_error_messages_are_cut_on_a_char_boundary() {
        let mut r = OpRecorder::default();
        r.error(|| "é".repeat(500));
        let m = r.finish().first_error.unwrap();
        assert!(m.len() <= MAX_ERROR_BYTES + '…'.len_utf8(), "{}", m.len());
        assert!(m.ends_with('…'));
    }

    #[test]
    fn the_window_counts_from_its_start() {
        let w = Window { from_ns: 100 };
        assert!(!w.counts(99) && w.counts(100));
        assert_eq!((w.length_ns(50), w.length_ns(350)), (0, 250));
        assert_eq!(w.at(1_234_567_890), "at +1.234 s");
    }
}
