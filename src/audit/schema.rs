//! The JSON schema of the report (`cutover report --format json`), generated from [`Report`] and
//! shipped as `assets/report.schema.json`; a test keeps the file equal to what this generates
//! (`UPDATE_SCHEMA=1 cargo test --test audit_report` rewrites it).

use schemars::generate::SchemaSettings;

use super::model::Report;

/// The schema as pretty-printed JSON with a trailing newline (draft-07, like the runbook schema).
pub fn generate() -> String {
    let generator = SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<Report>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
