//! `checkpoint.json`: the record of the run still measuring, so a soak can be looked at before
//! it ends (README "Soak"). `pinlat run --report-every D` writes it atomically every `D` and
//! rebuilds the report from `runs/` and it; the report says it was built from a checkpoint and
//! shows the run as in progress ([`crate::report::InProgress`]). When the run ends its final
//! record is written to `runs/<run>.json` and the checkpoint is removed; a checkpoint whose
//! run already has a record under `runs/` (the runner died between the two) is ignored.

use serde::{Deserialize, Serialize};

use crate::result::RunRecord;

/// File name of the checkpoint in a results directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.json";
/// Version of [`Checkpoint`].
pub const CHECKPOINT_SCHEMA_VERSION: u32 = 1;

/// `checkpoint.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`CHECKPOINT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// When it was written, ms since the Unix epoch.
    pub written_unix_ms: u64,
    /// Process id of the `pinlat run` that wrote it.
    pub runner_pid: u32,
    /// Measurement covered so far, ns: the end of the latest interval frame of any RT vCPU.
    pub measured_ns: u64,
    /// The run so far. Its `status` is `ok` (nothing has failed yet) but the run has not
    /// ended: no final results, `wall_ms` so far; each RT vCPU's samples so far are in its
    /// series' `merged` histogram ([`crate::result::CpuSeries`]).
    pub run: RunRecord,
}

impl super::Versioned for Checkpoint {
    const NAME: &'static str = CHECKPOINT_FILE;
    const VERSION: u32 = CHECKPOINT_SCHEMA_VERSION;
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::histo::{new_histogram, Hist};
    use crate::result::CpuSeries;
    use crate::schema::{parse_versioned, SchemaError};
    use crate::wire::IntervalReport;

    fn checkpoint() -> Checkpoint {
        let mut run = crate::result::test_record();
        let mut s = CpuSeries::new(1, 16, true);
        let mut h = new_histogram();
        h.record_n(1_500, 10).unwrap();
        h.record(90_000).unwrap();
        s.push(&IntervalReport {
            cpu: 1,
            workload: run.workload,
            index: 0,
            start_offset_ns: 0,
            end_offset_ns: 1_000_000_000,
            samples: 11,
            overflow: 0,
            histogram: Hist(h),
        });
        run.guests[0].series.push(s);
        Checkpoint {
            schema_version: CHECKPOINT_SCHEMA_VERSION,
            written_unix_ms: 1_700_000_000_000,
            runner_pid: 42,
            measured_ns: 1_000_000_000,
            run,
        }
    }

    #[test]
    fn round_trips_through_json_with_the_merged_histogram() {
        let c = checkpoint();
        let json = serde_json::to_vec(&c).unwrap();
        let back: Checkpoint = parse_versioned(Path::new("checkpoint.json"), &json).unwrap();
        assert_eq!(back, c);
        let merged = back.run.guests[0].series[0].merged.as_ref().unwrap();
        assert_eq!(merged.0.len(), 11);
    }

    #[test]
    fn another_version_is_refused_by_name() {
        let mut v = serde_json::to_value(checkpoint()).unwrap();
        v["schema_version"] = 7.into();
        let e = parse_versioned::<Checkpoint>(
            Path::new("/r/checkpoint.json"),
            &serde_json::to_vec(&v).unwrap(),
        )
        .unwrap_err();
        assert!(
            matches!(e, SchemaError::Version { found: Some(7), .. }),
            "{e}"
        );
        assert!(e.to_string().contains("checkpoint.json version 1"), "{e}");
    }
}
