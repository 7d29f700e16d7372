//! The JSON schema of the runbook format, generated from the model (never hand-kept). Shipped as
//! `assets/runbook.schema.json` for editors running the YAML language server; a test keeps the file
//! equal to what this generates (`UPDATE_SCHEMA=1 cargo test --test runbook_schema` rewrites it).

use schemars::generate::SchemaSettings;

use super::model::Runbook;

/// The schema as pretty-printed JSON with a trailing newline. Draft-07, which the YAML language server
/// supports fully.
pub fn generate() -> String {
    let generator = SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<Runbook>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
