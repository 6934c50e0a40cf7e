//! The `load` message: what a housekeeping load that measures itself achieved (issue #12, "both
//! sides of the trade-off"). A layout that protects the RT vCPUs by starving the emulator
//! threads shows up here as slow or failing disk and network operations.
//!
//! One [`LoadResult`] per load (`io`, `net`) per run, sent at the end of the measurement before
//! the `final`s. Each operation kind ([`OpKind`]: `read`, `write`, `flush` for io, `rtt` for net)
//! has its own counts and HDR histogram of per-operation latency in ns, like a [`super::CpuResult`]:
//! `count` is the histogram's count plus `overflow`, `min_ns`/`max_ns` are exact.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::histo::Hist;

/// Which housekeeping load a [`LoadResult`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadKind {
    /// `O_DIRECT` reads and writes, and `fdatasync`, on a virtio-blk disk.
    Io,
    /// Raw Ethernet frames through a virtio-net NIC, echoed by the host.
    Net,
}

impl LoadKind {
    /// The name configs, results and reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadKind::Io => "io",
            LoadKind::Net => "net",
        }
    }

    /// The operation kinds this load reports.
    pub fn ops(self) -> &'static [OpKind] {
        match self {
            LoadKind::Io => &[OpKind::Read, OpKind::Write, OpKind::Flush],
            LoadKind::Net => &[OpKind::Rtt],
        }
    }
}

impl std::fmt::Display for LoadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One kind of operation a load times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    /// io: one `pread` of a block; the latency is the syscall's.
    Read,
    /// io: one `pwrite` of a block.
    Write,
    /// io: one `fdatasync`.
    Flush,
    /// net: a frame's round trip, from just before `send` to its echo's `recv`.
    Rtt,
}

impl OpKind {
    /// The name results and reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Write => "write",
            OpKind::Flush => "flush",
            OpKind::Rtt => "rtt",
        }
    }
}

impl std::fmt::Display for OpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts and latencies of one operation kind of a load.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "host", derive(Deserialize))]
pub struct OpStats {
    /// Operations completed, overflow included (failed ones are in `errors`, not here).
    pub count: u64,
    /// Bytes those operations moved (0 for `flush`).
    pub bytes: u64,
    /// Operations that failed (a syscall error, a short transfer, a frame that did not go out).
    pub errors: u64,
    /// The first failure's message, if any.
    pub first_error: Option<String>,
    /// Shortest operation, ns (exact; 0 when `count` is 0).
    pub min_ns: u64,
    /// Longest operation, ns (exact, even if it overflowed the histogram).
    pub max_ns: u64,
    /// Operations longer than the histogram's range (~60 s): in `count` and `max_ns` only.
    pub overflow: u64,
    /// Latency of every completed operation, ns.
    pub histogram: Hist,
}

impl OpStats {
    /// The percentile summary of these operations over `duration_ns`, as every latency in
    /// pinlat is summarised ([`crate::histo::Summary`]).
    pub fn summary(&self, duration_ns: u64) -> crate::histo::Summary {
        crate::histo::Summary::new(
            &self.histogram.0,
            self.overflow,
            self.min_ns,
            self.max_ns,
            duration_ns,
        )
    }
}

/// The net load's frame accounting. Every frame sent in the window ends either received or
/// lost: `received + lost == sent`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetCounts {
    /// Frames sent.
    pub sent: u64,
    /// Frames whose echo came back within [`NET_LOST_AFTER_NS`] (their round trips are the
    /// `rtt` histogram).
    pub received: u64,
    /// Frames not back within [`NET_LOST_AFTER_NS`].
    pub lost: u64,
    /// Echoes of frames already counted lost.
    pub late: u64,
    /// Frames of the load's ethertype that match no frame sent (duplicates, damaged).
    pub unmatched: u64,
    /// Send slots skipped because the sender fell more than a period behind its schedule (the
    /// pacing never bursts to catch up).
    pub skipped_slots: u64,
}

/// A frame not echoed within this long is lost, ns (1 s).
pub const NET_LOST_AFTER_NS: u64 = 1_000_000_000;

/// What one housekeeping load did over the measurement: the `load` message.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "host", derive(Deserialize))]
pub struct LoadResult {
    /// Which load.
    pub load: LoadKind,
    /// What it drove: the disk or file (`/dev/vda`), or the interface (`eth0`).
    pub device: String,
    /// io: whether the disk was opened with `O_DIRECT` (natively a filesystem without it, such
    /// as an old tmpfs, is used through the page cache). `None` for net.
    #[serde(default)]
    pub direct: Option<bool>,
    /// The housekeeping CPUs its threads ran on.
    pub cpus: Vec<u32>,
    /// Length of the window its operations were counted in, ns: from the end of the preheat to
    /// the load's stop. An operation counts when it started in the window.
    pub duration_ns: u64,
    /// The rate asked for, per second (net: `rate_pps`); `None` for a load that goes as fast as
    /// it can (io).
    pub target_per_s: Option<u64>,
    /// Per operation kind.
    pub ops: BTreeMap<OpKind, OpStats>,
    /// net: the frame accounting; `None` for io.
    pub net: Option<NetCounts>,
}

impl LoadResult {
    /// Completed operations per second of `op` over the window (0 without a window).
    pub fn rate_per_s(&self, op: OpKind) -> f64 {
        let n = self.ops.get(&op).map_or(0, |s| s.count);
        per_second(n, self.duration_ns)
    }

    /// The summary of `op`'s latencies, if the load reports that operation.
    pub fn summary(&self, op: OpKind) -> Option<crate::histo::Summary> {
        self.ops.get(&op).map(|s| s.summary(self.duration_ns))
    }
}

/// `n` events over `duration_ns` as a rate per second (0 without a duration).
pub fn per_second(n: u64, duration_ns: u64) -> f64 {
    if duration_ns == 0 {
        0.0
    } else {
        n as f64 * 1e9 / duration_ns as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histo::new_histogram;

    #[test]
    fn names_and_ops_per_load() {
        assert_eq!(
            LoadKind::Io.ops(),
            [OpKind::Read, OpKind::Write, OpKind::Flush]
        );
        assert_eq!(LoadKind::Net.ops(), [OpKind::Rtt]);
        assert_eq!(serde_json::to_string(&OpKind::Rtt).unwrap(), "\"rtt\"");
        assert_eq!(LoadKind::Net.to_string(), "net");
    }

    #[test]
    fn summary_and_rate_of_an_op() {
        let mut h = new_histogram();
        h.record_n(250_000, 99).unwrap();
        h.record(9_000_000).unwrap();
        let op = OpStats {
            count: 100,
            bytes: 409_600,
            errors: 0,
            first_error: None,
            min_ns: 250_000,
            max_ns: 9_000_001,
            overflow: 0,
            histogram: Hist(h),
        };
        let r = LoadResult {
            load: LoadKind::Io,
            device: "/dev/vda".into(),
            direct: Some(true),
            cpus: vec![0],
            duration_ns: 2_000_000_000,
            target_per_s: None,
            ops: [(OpKind::Read, op)].into(),
            net: None,
        };
        assert_eq!(r.rate_per_s(OpKind::Read), 50.0);
        assert_eq!(r.rate_per_s(OpKind::Write), 0.0);
        let s = r.summary(OpKind::Read).unwrap();
        // A percentile is the top of its HDR bucket (within 0.1 %).
        let bucket_top = r.ops[&OpKind::Read].histogram.0.highest_equivalent(250_000);
        assert_eq!(
            (s.samples, s.p50_ns.value_ns, s.max_ns),
            (100, Some(bucket_top), 9_000_001)
        );
        assert_eq!(s.duration_ns, 2_000_000_000);
        assert!(r.summary(OpKind::Rtt).is_none());
        assert_eq!(per_second(5, 0), 0.0);
    }
}
