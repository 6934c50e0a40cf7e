//! [`pinlat::report::source::read`]: a results directory's `report.json` when it is of this
//! schema, else its `runs/` aggregated, with why; and neither.

use pinlat::report::source::{read, JsonUnused, Origin, REPORT_FILE};
use pinlat::report::{ReportError, REPORT_SCHEMA_VERSION};

use super::copy_fixture;

/// Why `origin` aggregated the runs (panics when it read report.json).
fn why(origin: Origin) -> JsonUnused {
    match origin {
        Origin::Runs(why) => why,
        Origin::ReportJson => panic!("read report.json"),
    }
}

#[test]
fn report_json_when_current_else_runs_with_why() {
    let tmp = copy_fixture("runs-basic");
    let dir = tmp.path();
    let (from_runs, origin) = read(dir).unwrap();
    let missing = why(origin);
    assert!(matches!(missing, JsonUnused::Missing), "{missing:?}");
    assert_eq!(missing.to_string(), "no report.json");
    assert!(missing.error().is_none());

    // A current report.json is read, not the runs: without runs/ it still reads.
    let json = serde_json::to_string(&from_runs).unwrap();
    std::fs::write(dir.join(REPORT_FILE), &json).unwrap();
    std::fs::rename(dir.join("runs"), dir.join("runs.away")).unwrap();
    let (from_json, origin) = read(dir).unwrap();
    assert!(matches!(origin, Origin::ReportJson), "{origin:?}");
    assert_eq!(from_json.groups, from_runs.groups);
    std::fs::rename(dir.join("runs.away"), dir.join("runs")).unwrap();

    // Another schema version: the runs, saying which.
    let other = json.replacen(
        &format!("\"schema_version\":{REPORT_SCHEMA_VERSION}"),
        "\"schema_version\":99",
        1,
    );
    std::fs::write(dir.join(REPORT_FILE), other).unwrap();
    let other = why(read(dir).unwrap().1);
    assert!(
        matches!(
            other,
            JsonUnused::OtherVersion {
                found: Some(99),
                ..
            }
        ),
        "{other:?}"
    );
    assert_eq!(
        other.to_string(),
        format!(
            "report.json has schema version 99, this pinlat reads version {REPORT_SCHEMA_VERSION}"
        )
    );

    // Not JSON: the runs, with the parse error.
    std::fs::write(dir.join(REPORT_FILE), "{ truncated").unwrap();
    let damaged = why(read(dir).unwrap().1);
    assert!(matches!(damaged, JsonUnused::Unreadable(_)), "{damaged:?}");
    assert!(
        damaged
            .to_string()
            .starts_with("report.json is unreadable ("),
        "{damaged}"
    );
}

#[test]
fn neither_a_report_nor_runs_gives_both_reasons() {
    let tmp = tempfile::tempdir().unwrap();
    let e = read(tmp.path()).unwrap_err();
    assert!(matches!(e.json, JsonUnused::Missing), "{e:?}");
    assert!(matches!(e.runs, ReportError::NotAResultDir(..)), "{e:?}");
    std::fs::write(tmp.path().join(REPORT_FILE), r#"{"schema_version": 99}"#).unwrap();
    let e = read(tmp.path()).unwrap_err();
    assert!(
        matches!(
            e.json,
            JsonUnused::OtherVersion {
                found: Some(99),
                ..
            }
        ),
        "{e:?}"
    );
}
