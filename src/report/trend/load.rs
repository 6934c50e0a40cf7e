//! Reading one results directory for the trend: its `report.json` (the [`Report`] type, with the
//! host facts of `host.json` in it) when it is of this schema, else its `runs/` aggregated by
//! [`crate::report::build`], as `pinlat compare` does for a directory ([`source::read`]). Of the report only what
//! the trend shows is kept: the directory's facts and each group's summary; the histograms and
//! the run list are dropped before the next directory is read.

use std::path::Path;

use super::{KernelRelease, PointStatus, SeriesPoint, SkipKind, SkippedDir, TrendDir};
use crate::config::WorkloadKind;
use crate::report::aggregate::error_chain;
use crate::report::source::{self, JsonUnused, NoReport, Origin};
use crate::report::{failures, Report};
use crate::schema::{read_versioned, HostFacts, SchemaError, HOST_FILE};

/// The layout × scenario × workload (× variant with variants) a point belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesKey {
    /// Layout name.
    pub layout: String,
    /// The tuning variant, `None` when the config has no variants.
    pub variant: Option<String>,
    /// Scenario.
    pub scenario: String,
    /// Workload.
    pub workload: WorkloadKind,
}

/// One directory read: its facts and one point per group.
#[derive(Debug, Clone, PartialEq)]
pub struct DirInput {
    /// Its facts.
    pub dir: TrendDir,
    /// Its points, in the report's group order.
    pub points: Vec<(SeriesKey, SeriesPoint)>,
}

/// `6.1.0-28-rt-amd64` from `/boot/vmlinuz-6.1.0-28-rt-amd64`.
fn release_of_image(path: &str) -> Option<KernelRelease> {
    let name = Path::new(path).file_name()?.to_str()?;
    let r = name.strip_prefix("vmlinuz-")?;
    (!r.is_empty()).then(|| KernelRelease(r.to_string()))
}

/// The guests' kernel release, and a note when it is not simply the one the agents reported.
fn guest_kernel(r: &Report) -> (Option<KernelRelease>, Option<String>) {
    let mut releases: Vec<KernelRelease> = r
        .guest_kernels
        .kernels
        .iter()
        .map(|k| KernelRelease(k.kernel_release.clone()))
        .collect();
    releases.sort();
    releases.dedup();
    match releases.as_slice() {
        [] => {
            let k = r
                .host
                .as_ref()
                .and_then(|h| release_of_image(&h.guest_kernel));
            let note = k.as_ref().map(|k| {
                format!(
                    "no agent reported its kernel: guest kernel {k} from host.json's image name"
                )
            });
            (k, note)
        }
        [one] => (Some(one.clone()), None),
        many => (
            many.last().cloned(),
            Some(format!(
                "its guests ran several kernels ({}): ordered by the highest",
                many.iter()
                    .map(|k| k.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ),
    }
}

/// Keeps what the trend needs of `r`.
fn input(path: &Path, r: Report, aggregated: bool, mut notes: Vec<String>) -> DirInput {
    let host: Option<HostFacts> = match r.host.clone() {
        Some(h) => Some(h),
        None => match read_versioned::<HostFacts>(&path.join(HOST_FILE)) {
            Ok(h) => Some(h),
            Err(SchemaError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                notes.push("no host.json: host kernel unknown".to_string());
                None
            }
            Err(e) => {
                notes.push(format!("host.json is unreadable ({})", error_chain(&e)));
                None
            }
        },
    };
    let (guest_kernel, note) = guest_kernel(&r);
    notes.extend(note);
    let points = r
        .groups
        .iter()
        .map(|g| {
            let status = if g.stats.samples > 0 {
                PointStatus::Measured
            } else if failures::all_failed(g) {
                PointStatus::Failed {
                    cause: failures::causes_text(&g.failures),
                }
            } else {
                PointStatus::Absent
            };
            let key = SeriesKey {
                layout: g.layout.clone(),
                variant: g.variant.clone(),
                scenario: g.scenario.clone(),
                workload: g.workload,
            };
            let point = SeriesPoint {
                stats: (status == PointStatus::Measured).then_some(g.stats),
                status,
                ok_runs: g.ok_runs.len(),
                failed_runs: g.failed_runs.len(),
                clocks: g.clocks.clone(),
            };
            (key, point)
        })
        .collect();
    DirInput {
        dir: TrendDir {
            path: path.display().to_string(),
            run_id: r.run_id.clone(),
            started_unix_ms: r.runs.iter().map(|x| x.started_unix_ms).min(),
            host_kernel: host
                .as_ref()
                .map(|h| KernelRelease(h.local.kernel_release.clone())),
            host_preempt_rt: host.as_ref().map(|h| h.local.preempt_rt),
            hostname: host.as_ref().and_then(|h| h.local.hostname.clone()),
            cpu_model: host.as_ref().map(|h| h.local.cpu_model.clone()),
            guest_kernel,
            accels: r.accels.clone(),
            runs: r.runs.len(),
            failed_runs: r.runs.iter().filter(|x| !x.outcome.ok).count(),
            aggregated,
            notes,
        },
        points,
    }
}

/// Reads one results directory ([`source::read`]): `report.json` when it is of this schema,
/// else `runs/` aggregated. A directory neither gives is skipped: [`SkipKind::OtherSchema`]
/// when its `report.json` is of another schema version, else [`SkipKind::Unreadable`].
pub fn read_dir(path: &Path) -> Result<DirInput, SkippedDir> {
    match source::read(path) {
        Ok((r, Origin::ReportJson)) => Ok(input(path, r, false, Vec::new())),
        Ok((r, Origin::Runs(json))) => {
            let notes = json
                .error()
                .map(|e| {
                    format!(
                        "report.json is unusable ({}): aggregated from runs/",
                        error_chain(e)
                    )
                })
                .into_iter()
                .collect();
            Ok(input(path, r, true, notes))
        }
        Err(NoReport { json, runs }) => Err(SkippedDir {
            path: path.display().to_string(),
            kind: if matches!(json, JsonUnused::OtherVersion { .. }) {
                SkipKind::OtherSchema
            } else {
                SkipKind::Unreadable
            },
            reason: match json.error() {
                Some(j) => format!("{}; and runs/: {}", error_chain(j), error_chain(&runs)),
                None => format!("no report.json, and {}", error_chain(&runs)),
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_kernel_release_from_the_image_name() {
        assert_eq!(
            release_of_image("/boot/vmlinuz-6.1.0-28-rt-amd64"),
            Some(KernelRelease("6.1.0-28-rt-amd64".into()))
        );
        assert_eq!(release_of_image("/cache/pinlat/bzImage"), None);
        assert_eq!(release_of_image("vmlinuz-"), None);
    }
}
