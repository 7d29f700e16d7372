//! `dmf.export`: f&O Data management ExportToPackage, polled to a terminal status; the package URL is recorded.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::Runbook;

/// F&O Data management ExportToPackage, polled to a terminal status; the package URL is recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct DmfExport {
    pub env: String,
    pub definition_group: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_entity: Option<String>,
    /// Download the exported package (its blob link expires in days) into `evidence/<run>/` beside the journal,
    /// hashed (sha256) and journaled, so the audit holds the very bytes of the snapshot.
    #[serde(default, skip_serializing_if = "crate::runbook::model::is_false")]
    pub download: bool,
}

impl Kind for DmfExport {
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        1_800
    }

    fn handle_kind(&self) -> Option<&'static str> {
        Some("dmf.export")
    }

    /// The execution id is journaled: poll it, never submit again.
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
        vec![("env", self.env.as_str(), Some(EnvKind::Fno))]
    }

    fn captures(&self) -> Vec<&str> {
        Vec::new()
    }

    fn url(&self) -> Option<&str> {
        None
    }

    fn validate(&self, _check: &mut StepCheck<'_, '_, '_>) {}
}
