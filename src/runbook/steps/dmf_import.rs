//! `dmf.import`: getAzureWriteUrl, upload, ImportFromPackage, poll, per-entity error check; journaled as an install record.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::Runbook;
use crate::runbook::model::is_false;

/// GetAzureWriteUrl, upload, ImportFromPackage, poll, per-entity error check; journaled as an install record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct DmfImport {
    pub env: String,
    pub definition_group: String,
    /// Path of the package zip, relative to the runbook file.
    pub package_file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_entity: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub overwrite: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_install: Option<RecordInstall>,
}

impl Kind for DmfImport {
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        1_800
    }

    fn handle_kind(&self) -> Option<&'static str> {
        Some("dmf.import")
    }

    /// The execution id is journaled: poll it, never import again.
    fn reconcile(&self) -> Reconcile {
        Reconcile::ByHandle
    }

    fn default_timeout(&self) -> DefaultTimeout {
        DefaultTimeout::Runbook
    }

    fn maps(&self) -> Option<&MapSelection> {
        None
    }

    fn envs(&self) -> Vec<(&'static str, &str, Option<EnvKind>)> {
        let mut v = vec![("env", self.env.as_str(), Some(EnvKind::Fno))];
        if let Some(r) = &self.record_install {
            v.push(("record_install", r.env.as_str(), None));
        }
        v
    }

    fn captures(&self) -> Vec<&str> {
        Vec::new()
    }

    fn url(&self) -> Option<&str> {
        None
    }

    fn validate(&self, check: &mut StepCheck<'_, '_, '_>) {
        if let Some(why) = package_path_problem(&self.package_file) {
            check.error(
                "package_file",
                "invalid-path",
                format!("package_file `{}` {why}", self.package_file),
                "write a path relative to the runbook's folder, inside it, e.g. `packages/reference-data.zip`".to_owned(),
            );
        }
    }
}

/// Why a `package_file` may not be used, if it may not: it must stay inside the runbook's folder (no
/// absolute path, no `..`) and be written out (no `${...}`: a value from a service or the environment could
/// name any local file, which would then be uploaded).
pub fn package_path_problem(p: &str) -> Option<&'static str> {
    if p.trim().is_empty() {
        return Some("is empty");
    }
    if p.contains("${") {
        return Some("holds a `${...}` reference: the package must be named in the runbook itself");
    }
    let b = p.as_bytes();
    if p.starts_with(['/', '\\']) || b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic() {
        return Some("is an absolute path");
    }
    if p.split(['/', '\\']).any(|c| c == "..") {
        return Some("leaves the runbook's folder (`..`)");
    }
    None
}

/// Where a `dmf.import` writes its install record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordInstall {
    pub env: String,
    pub entity: String,
}
