//! `report.json`: the whole [`Report`] as versioned JSON (`schema_version` =
//! [`super::REPORT_SCHEMA_VERSION`]); merged histograms are HdrHistogram V2 deflate base64
//! strings. `pinlat compare` reads it back.

use super::{Exporter, OutputFile, Report, ReportError};

/// Writes `report.json`.
pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn report_files(&self, report: &Report) -> Result<Vec<OutputFile>, ReportError> {
        let mut contents = serde_json::to_string_pretty(report)
            .map_err(|e| ReportError::Plot("report.json".into(), e.to_string()))?;
        contents.push('\n');
        Ok(vec![OutputFile {
            name: "report.json".to_string(),
            contents,
        }])
    }
}

impl crate::schema::Versioned for Report {
    const NAME: &'static str = "report.json";
    const VERSION: u32 = super::REPORT_SCHEMA_VERSION;
}
