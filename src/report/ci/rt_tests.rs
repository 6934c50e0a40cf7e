//! rt-tests JSON: each busy-poll group as `oslat --json` writes it (`<group>.oslat.json`), each
//! timer group as `cyclictest --json` does (`<group>.cyclictest.json`), so that parsers of
//! rt-tests results read pinlat unchanged. The shapes are those of rt-tests 2.40 (Debian
//! bookworm), checked against files the tools wrote on this machine
//! (`tests/fixtures/rt-tests/`): `file_version`, `cmdline:` and `rt_test_version:` (the colons
//! are the tools'), `start_time`, `end_time`, `return_code`, `sysinfo`, `num_threads`,
//! cyclictest's `resolution_in_ns`, and `thread."N"`. pinlat adds one object, `pinlat`, with
//! what the tools' files cannot say (layout, host, accelerator, the TCG note, which thread is
//! which vCPU, and `in_progress` when the report was built from a checkpoint).
//!
//! Threads are the group's RT vCPUs (guest/vCPU order), each merged over the group's measured
//! repetitions; `cpu` is the vCPU's number in its guest. Latencies are µs, as both tools write
//! them without `-N`:
//!
//! - oslat shape (busy-poll): a gap of `ns` goes in bucket `ns / 1000 + 1` (oslat's
//!   `insert_bucket`: bucket `k` holds gaps in [k−1, k) µs), and `min`/`max` are rounded the
//!   same way; `avg` is the histogram's mean in bucket values, as oslat computes it; `freq` is
//!   the TSC frequency the agent calibrated, MHz (0 when it read `CLOCK_MONOTONIC`);
//!   `duration` the measured time, s. oslat folds every gap beyond its last bucket (32 µs by
//!   default) into it; pinlat keeps a bucket per µs up to the largest gap.
//! - cyclictest shape (timer): a wake-up latency of `ns` goes in bucket `ns / 1000` (cyclictest
//!   truncates to µs), `min`/`max` truncated alike, `avg` the mean of the truncated values
//!   with two decimals, `cycles` every sample, `node` 0 (pinlat's guests have one NUMA node),
//!   `resolution_in_ns` 0 (µs, as without `-N`).
//!
//! A sample's bucket is the value of its HDR bucket (within 0.1 %), bounded by the exact
//! smallest and largest samples. Samples above the histogram's range (60 s) are in no bucket,
//! as cyclictest leaves wake-ups beyond `-h` out of its histogram; `pinlat.overflow` counts
//! them per thread. `return_code` is pinlat's exit code for this group alone: 0 every run
//! measured and the budget held (or none is set), 1 over budget, 3 a run failed or nothing was
//! measured. `sysinfo` is the host's (the device under test; the guests' kernels are in
//! `pinlat.guest_kernels`). `start_time` is the start of the group's first run, `end_time` the
//! start of its last run plus its measured time. Ring groups have no rt-tests counterpart and
//! no file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{cases, group_runs, guest_kernel_labels, host_name, CiError, GroupCase};
use crate::config::WorkloadKind;
use crate::report::{Exporter, OutputFile, Report, ReportError, VcpuGroup};

/// `file_version` of rt-tests 2.x.
pub const FILE_VERSION: u32 = 1;

/// One rt-tests JSON document; `T` is the tool's thread shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RtTestsDoc<T> {
    /// [`FILE_VERSION`].
    pub file_version: u32,
    /// What measured: the group and how many runs were merged.
    #[serde(rename = "cmdline:")]
    pub cmdline: String,
    /// `pinlat <version>`.
    #[serde(rename = "rt_test_version:")]
    pub rt_test_version: String,
    /// Start of the group's first run (`Sun, 06 Dec 2026 07:22:40 +0000`).
    pub start_time: String,
    /// Start of the group's last run plus its measured time.
    pub end_time: String,
    /// 0 held or no budget, 1 over budget, 3 a run failed or nothing was measured.
    pub return_code: i32,
    /// The host the guests ran on.
    pub sysinfo: Sysinfo,
    /// Threads, one per RT vCPU.
    pub num_threads: usize,
    /// cyclictest only: 0, latencies in µs.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resolution_in_ns: Option<u32>,
    /// By thread number, from 0.
    pub thread: BTreeMap<u32, T>,
    /// What the tools' files cannot say.
    pub pinlat: PinlatExtension,
}

/// `sysinfo` (the tools' `uname(2)` and `/sys/kernel/realtime`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sysinfo {
    /// `Linux`.
    pub sysname: String,
    /// The host's name ([`host_name`]).
    pub nodename: String,
    /// The host kernel's `uname -r` (empty without `host.json`).
    pub release: String,
    /// The host kernel's `uname -v`.
    pub version: String,
    /// `x86_64`: the only architecture pinlat measures on (the agent reads the TSC).
    pub machine: String,
    /// 1 when the host kernel is PREEMPT_RT.
    pub realtime: u32,
}

/// One thread as `oslat --json` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OslatThread {
    /// The vCPU, as numbered in its guest.
    pub cpu: u32,
    /// TSC frequency, MHz (0: the agent read `CLOCK_MONOTONIC`).
    pub freq: u64,
    /// Smallest gap, µs, rounded as oslat does (`ns / 1000 + 1`).
    pub min: u64,
    /// Mean of the histogram, µs (bucket values).
    pub avg: f64,
    /// Largest gap, µs, rounded as `min`.
    pub max: u64,
    /// Measured time, s (ms resolution).
    pub duration: f64,
    /// Gaps per µs bucket (bucket `k`: [k−1, k) µs).
    pub histogram: BTreeMap<u64, u64>,
}

/// One thread as `cyclictest --json` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CyclictestThread {
    /// Wake-ups per µs bucket (bucket `k`: [k, k+1) µs).
    pub histogram: BTreeMap<u64, u64>,
    /// Wake-ups measured, those above the histogram's range included.
    pub cycles: u64,
    /// Smallest latency, µs (truncated).
    pub min: u64,
    /// Largest latency, µs (truncated).
    pub max: u64,
    /// Mean of the truncated latencies, µs, two decimals.
    pub avg: f64,
    /// The vCPU, as numbered in its guest.
    pub cpu: u32,
    /// NUMA node: 0 (pinlat's guests have one).
    pub node: u32,
}

/// The `pinlat` object of an rt-tests document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinlatExtension {
    /// The run id of the results directory.
    pub run_id: String,
    /// The host's name.
    pub host: String,
    /// Layout name.
    pub layout: String,
    /// The tuning variant, `None` when the config has no variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Scenario name.
    pub scenario: String,
    /// Workload (`busy-poll`, `timer`).
    pub workload: WorkloadKind,
    /// The accelerators of the group's runs (`kvm`, `tcg`).
    pub accel: String,
    /// The TCG disclaimer when a run used TCG.
    pub note: Option<String>,
    /// The warning when a guest kernel was not PREEMPT_RT.
    pub guest_warning: Option<String>,
    /// Present when the report was built from a checkpoint while a run measured: which run,
    /// how far it had got (the group's numbers leave that run out).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub in_progress: Option<String>,
    /// The guests' kernels (`guest: release`, ` PREEMPT_RT` when it was).
    pub guest_kernels: Vec<String>,
    /// Per thread number: `guest/vCPUn`.
    pub threads: Vec<String>,
    /// Per thread number: samples above the histogram's range, in no bucket.
    pub overflow: Vec<u64>,
    /// How the group came out, in words.
    pub status: String,
    /// Each budget check, described.
    pub budget: Vec<String>,
    /// The runs merged.
    pub runs: Vec<String>,
    /// The runs that failed (not merged).
    pub failed_runs: Vec<String>,
}

/// One group's document, in its tool's shape.
#[derive(Debug, Clone, PartialEq)]
pub enum RtTestsFile {
    /// A busy-poll group.
    Oslat(RtTestsDoc<OslatThread>),
    /// A timer group.
    Cyclictest(RtTestsDoc<CyclictestThread>),
}

impl RtTestsFile {
    /// The tool whose shape it has.
    pub fn tool(&self) -> &'static str {
        match self {
            RtTestsFile::Oslat(_) => "oslat",
            RtTestsFile::Cyclictest(_) => "cyclictest",
        }
    }

    /// The JSON text, pretty-printed as the tools do, with a final newline.
    pub fn to_json(&self) -> String {
        let mut s = match self {
            RtTestsFile::Oslat(d) => serde_json::to_string_pretty(d),
            RtTestsFile::Cyclictest(d) => serde_json::to_string_pretty(d),
        }
        .expect("an rt-tests document always serializes");
        s.push('\n');
        s
    }
}

/// Writes `<group>.oslat.json` and `<group>.cyclictest.json`.
pub struct RtTestsExporter;

impl Exporter for RtTestsExporter {
    fn report_files(&self, report: &Report) -> Result<Vec<OutputFile>, ReportError> {
        Ok(documents(report)
            .into_iter()
            .map(|(name, f)| OutputFile {
                name: format!("{name}.{}.json", f.tool()),
                contents: f.to_json(),
            })
            .collect())
    }
}

/// Every busy-poll and timer group's document, with the group's name, in report order.
pub fn documents(report: &Report) -> Vec<(String, RtTestsFile)> {
    cases(report)
        .iter()
        .filter_map(|c| document(report, c).map(|f| (c.group.name(), f)))
        .collect()
}

/// The one document `pinlat report --format rt-tests [--group NAME]` prints (only that one is
/// built).
pub fn render_one(report: &Report, group: Option<&str>) -> Result<String, CiError> {
    let shaped: Vec<GroupCase<'_>> = cases(report)
        .into_iter()
        .filter(|c| c.group.workload != WorkloadKind::Ring)
        .collect();
    let names: Vec<String> = shaped.iter().map(|c| c.group.name()).collect();
    let at = match group {
        _ if shaped.is_empty() => return Err(CiError::NoRtTestsGroup),
        Some(g) => names
            .iter()
            .position(|n| n == g)
            .ok_or_else(|| CiError::UnknownGroup {
                given: g.to_string(),
                available: names.clone(),
            })?,
        None if shaped.len() == 1 => 0,
        None => return Err(CiError::GroupNeeded(names)),
    };
    let doc = document(report, &shaped[at]).expect("busy-poll and timer groups have a document");
    Ok(doc.to_json())
}

/// A group's document (`None` for a ring group).
pub fn document(report: &Report, c: &GroupCase<'_>) -> Option<RtTestsFile> {
    let g = c.group;
    let head = |resolution_in_ns| Head {
        report,
        case: c,
        resolution_in_ns,
    };
    match g.workload {
        WorkloadKind::BusyPoll => {
            let freq = tsc_mhz(report, c);
            let thread = g
                .per_vcpu
                .iter()
                .map(|v| oslat_thread(v, freq))
                .enumerate()
                .map(|(i, t)| (i as u32, t))
                .collect();
            Some(RtTestsFile::Oslat(head(None).doc(thread)))
        }
        WorkloadKind::Timer => {
            let thread = g
                .per_vcpu
                .iter()
                .map(cyclictest_thread)
                .enumerate()
                .map(|(i, t)| (i as u32, t))
                .collect();
            Some(RtTestsFile::Cyclictest(head(Some(0)).doc(thread)))
        }
        WorkloadKind::Ring => None,
    }
}

/// The fields both shapes share.
struct Head<'a> {
    report: &'a Report,
    case: &'a GroupCase<'a>,
    resolution_in_ns: Option<u32>,
}

impl Head<'_> {
    fn doc<T>(&self, thread: BTreeMap<u32, T>) -> RtTestsDoc<T> {
        let (r, g) = (self.report, self.case.group);
        let runs: Vec<_> = group_runs(r, g).collect();
        let start = runs.iter().map(|x| x.started_unix_ms).min().unwrap_or(0);
        let end = runs
            .iter()
            .map(|x| x.started_unix_ms + x.duration_ms)
            .max()
            .unwrap_or(0);
        let host = r.host.as_ref();
        RtTestsDoc {
            file_version: FILE_VERSION,
            cmdline: format!(
                "pinlat {} ({} run(s) of {} merged)",
                g.name(),
                g.ok_runs.len(),
                r.run_id
            ),
            rt_test_version: format!(
                "pinlat {}",
                host.map_or(env!("CARGO_PKG_VERSION"), |h| h.pinlat_version.as_str())
            ),
            start_time: rfc2822(start),
            end_time: rfc2822(end),
            return_code: self.case.status.exit_code(),
            sysinfo: Sysinfo {
                sysname: "Linux".to_string(),
                nodename: host_name(r).to_string(),
                release: host
                    .map(|h| h.local.kernel_release.clone())
                    .unwrap_or_default(),
                version: host
                    .map(|h| h.local.kernel_version.clone())
                    .unwrap_or_default(),
                machine: "x86_64".to_string(),
                realtime: host.is_some_and(|h| h.local.preempt_rt).into(),
            },
            num_threads: thread.len(),
            resolution_in_ns: self.resolution_in_ns,
            thread,
            pinlat: PinlatExtension {
                run_id: r.run_id.clone(),
                host: host_name(r).to_string(),
                layout: g.layout.clone(),
                variant: g.variant.clone(),
                scenario: g.scenario.clone(),
                workload: g.workload,
                accel: self.case.accel.clone(),
                note: r.disclaimer.clone(),
                guest_warning: r.guest_warning.clone(),
                in_progress: r.in_progress.as_ref().map(|p| p.statement.clone()),
                guest_kernels: guest_kernel_labels(r),
                threads: g.per_vcpu.iter().map(|v| v.vcpu.to_string()).collect(),
                overflow: g.per_vcpu.iter().map(|v| v.stats.overflow).collect(),
                status: self.case.status.describe().to_string(),
                budget: g.budget.describe(),
                runs: g.ok_runs.clone(),
                failed_runs: g.failed_runs.clone(),
            },
        }
    }
}

/// The TSC frequency of the group's first measured run, MHz (0 without a TSC).
fn tsc_mhz(report: &Report, c: &GroupCase<'_>) -> u64 {
    let first = c.group.ok_runs.first();
    report
        .runs
        .iter()
        .filter(|r| Some(&r.name) == first)
        .flat_map(|r| r.clocks.iter())
        .find_map(|k| k.tsc_hz)
        .map_or(0, |hz| (hz + 500_000) / 1_000_000)
}

/// Samples per µs bucket of a vCPU's histogram, `key` turning a value in ns into its bucket.
/// A sample's value is its HDR bucket's, bounded by the exact smallest and largest samples.
pub fn us_buckets(v: &VcpuGroup, key: impl Fn(u64) -> u64) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    if v.stats.samples == 0 {
        return out;
    }
    for r in v.histogram.0.iter_recorded() {
        let ns = r
            .value_iterated_to()
            .clamp(v.stats.min_ns, v.stats.max_ns.max(v.stats.min_ns));
        *out.entry(key(ns)).or_insert(0) += r.count_at_value();
    }
    out
}

/// The mean of a histogram's bucket values, rounded to `decimals` (0 when it is empty).
fn bucket_mean(h: &BTreeMap<u64, u64>, decimals: i32) -> f64 {
    let n: u64 = h.values().sum();
    if n == 0 {
        return 0.0;
    }
    let sum: u128 = h.iter().map(|(k, c)| u128::from(*k) * u128::from(*c)).sum();
    let scale = 10f64.powi(decimals);
    (sum as f64 / n as f64 * scale).round() / scale
}

fn oslat_us(ns: u64) -> u64 {
    ns / 1000 + 1
}

fn oslat_thread(v: &VcpuGroup, freq: u64) -> OslatThread {
    let histogram = us_buckets(v, oslat_us);
    let measured = v.stats.samples > 0;
    OslatThread {
        cpu: v.vcpu.vcpu,
        freq,
        min: if measured {
            oslat_us(v.stats.min_ns)
        } else {
            0
        },
        avg: bucket_mean(&histogram, 6),
        max: if measured {
            oslat_us(v.stats.max_ns)
        } else {
            0
        },
        duration: (v.stats.duration_ns as f64 / 1e6).round() / 1e3,
        histogram,
    }
}

fn cyclictest_thread(v: &VcpuGroup) -> CyclictestThread {
    let histogram = us_buckets(v, |ns| ns / 1000);
    CyclictestThread {
        avg: bucket_mean(&histogram, 2),
        histogram,
        cycles: v.stats.samples,
        min: v.stats.min_ns / 1000,
        max: v.stats.max_ns / 1000,
        cpu: v.vcpu.vcpu,
        node: 0,
    }
}

/// `Sun, 06 Dec 2026 07:22:40 +0000` for ms since the epoch, as rt-tests writes its times.
pub fn rfc2822(ms: u64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = (ms / 1000) as i64;
    let days = secs.div_euclid(86_400);
    let (y, mo, d) = crate::report::hlog::civil(days);
    let s = secs.rem_euclid(86_400);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} +0000",
        // 1970-01-01 was a Thursday.
        DAYS[(days + 4).rem_euclid(7) as usize],
        MONTHS[mo as usize - 1],
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_rt_tests_writes_them() {
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        // The start_time of the oslat file recorded on this machine.
        assert_eq!(
            rfc2822(1_796_541_760_000),
            "Sun, 06 Dec 2026 07:22:40 +0000"
        );
    }

    #[test]
    fn oslat_rounds_up_to_the_bucket_cyclictest_truncates() {
        assert_eq!(oslat_us(20), 1);
        assert_eq!(oslat_us(999), 1);
        assert_eq!(oslat_us(1000), 2);
        let h: BTreeMap<u64, u64> = [(1, 3), (3, 1)].into_iter().collect();
        assert_eq!(bucket_mean(&h, 6), 1.5);
        assert_eq!(bucket_mean(&BTreeMap::new(), 2), 0.0);
    }
}
