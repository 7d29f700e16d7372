//! `dmf.import`: getAzureWriteUrl, upload, ImportFromPackage, poll, per-entity error check; journaled as an install record.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::is_false;
use crate::runbook::model::{MapId, Runbook};
use crate::util::dmf_package::{self, Manifest, PackageEntity};

/// GetAzureWriteUrl, upload, ImportFromPackage, poll, per-entity error check; journaled as an install record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct DmfImport {
    pub env: String,
    pub definition_group: String,
    /// Path of the package zip, relative to the runbook file.
    pub package_file: String,
    /// The release version the package's `Manifest.xml` must carry in its `Version` element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_version: Option<String>,
    /// The sha256 (hex) the package file must have: a different file is refused before anything is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_sha256: Option<String>,
    /// DMF entity names this step expects in the package besides those of the runbook's maps (an entity
    /// neither names is a warning).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<String>,
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
        if let Some(r) = &self.record_install
            && let Some(env) = check.rb.environments.get(&r.env)
            && let Err(why) = r.target(env.kind)
        {
            check.error(
                "record_install",
                "record-install-target",
                why,
                "a Dataverse environment takes `table` (default cutover_packageinstall), an F&O one `entity`"
                    .to_owned(),
            );
        }
        if let Some(t) = self.record_install.as_ref().and_then(|r| r.table.as_deref())
            && !(t.contains('_')
                && t.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        {
            check.error(
                "record_install",
                "invalid-value",
                format!("record_install table `{t}` is not a table logical name (`prefix_name`, lower case)"),
                None,
            );
        }
        if let Some(pin) = &self.package_sha256
            && !is_sha256(pin)
        {
            check.error(
                "package_sha256",
                "invalid-sha256",
                format!("package_sha256 `{pin}` is not a sha256 (64 hexadecimal digits)"),
                "write the hash `sha256sum` prints for the package file".to_owned(),
            );
        }
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

/// Where a `dmf.import` writes its install record: a Dataverse table (`env` of kind `dataverse`, `table` the
/// table's logical name, default [`DEFAULT_INSTALL_TABLE`]; see the README for its columns) or an F&O entity
/// (`env` of kind `fno`, `entity` its entity set, built by the customer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordInstall {
    pub env: String,
    /// F&O: the entity set the record is created in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// Dataverse: the install table's logical name (its entity set is the name plus `s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

/// The Dataverse install table `cutover preflight --create-install-table` creates.
pub const DEFAULT_INSTALL_TABLE: &str = "cutover_packageinstall";

/// Where a record goes, once the environment's kind is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordTarget {
    /// F&O entity set.
    Fno { entity: String },
    /// Dataverse table logical name (entity set = logical name + `s`).
    Dataverse { table: String },
}

impl RecordTarget {
    /// `fno:Entity` / `dataverse:table`, for the journal and the report.
    pub fn describe(&self, env: &str) -> String {
        match self {
            RecordTarget::Fno { entity } => format!("{env}:{entity}"),
            RecordTarget::Dataverse { table } => format!("{env}:{table}"),
        }
    }
}

impl RecordInstall {
    /// The target for an environment of `kind`, or why that kind cannot take a record.
    pub fn target(&self, kind: EnvKind) -> Result<RecordTarget, String> {
        match (kind, &self.entity, &self.table) {
            (EnvKind::Fno, Some(e), None) => Ok(RecordTarget::Fno { entity: e.clone() }),
            (EnvKind::Fno, None, _) => Err(format!(
                "record_install on F&O environment `{}` needs `entity` (the F&O entity set built for install records)",
                self.env
            )),
            (EnvKind::Fno, Some(_), Some(_)) => Err(format!(
                "record_install on F&O environment `{}` takes `entity`, not `table`",
                self.env
            )),
            (EnvKind::Dataverse, None, t) => Ok(RecordTarget::Dataverse {
                table: t.clone().unwrap_or_else(|| DEFAULT_INSTALL_TABLE.to_owned()),
            }),
            (EnvKind::Dataverse, Some(_), _) => Err(format!(
                "record_install on Dataverse environment `{}` takes `table` (a table's logical name), not `entity`",
                self.env
            )),
            (other, ..) => Err(format!(
                "record_install cannot go to environment `{}` of kind {other:?}: only an F&O entity or a Dataverse table can take a record",
                self.env
            )),
        }
    }
}

pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Where on the step a package finding points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageField {
    /// The step itself (its `- id:` line): entity order against the maps' dependencies.
    Step,
    PackageFile,
    PackageVersion,
    PackageSha256,
}

/// One thing found by [`check_package`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFinding {
    pub field: PackageField,
    pub error: bool,
    pub code: &'static str,
    pub message: String,
    pub hint: String,
}

/// What [`check_package`] read and found.
#[derive(Debug, Clone)]
pub struct PackageCheck {
    pub sha256: String,
    pub manifest: Option<Manifest>,
    pub findings: Vec<PackageFinding>,
}

impl PackageCheck {
    /// The errors, worded for a failed step.
    pub fn errors(&self) -> Vec<String> {
        self.findings
            .iter()
            .filter(|f| f.error)
            .map(|f| f.message.clone())
            .collect()
    }
}

/// Lower-case letters and digits only: `Customer groups`, `customer_groups` and `CustomerGroups` are one name.
fn norm(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The map a package entity stands for: the map whose id, or whose source or target entity set, is the entity's
/// name once case, spaces and punctuation are dropped (`Customer groups` ~ `customer_groups`,
/// `Customers V3` ~ `fno:CustomersV3`).
pub fn map_for_entity<'a>(rb: &'a Runbook, entity: &str) -> Option<&'a MapId> {
    let n = norm(entity);
    if n.is_empty() {
        return None;
    }
    let set = |s: &str| norm(s.split_once(':').map_or(s, |(_, t)| t));
    rb.maps
        .iter()
        .find(|(id, m)| norm(id.as_str()) == n || set(&m.source) == n || set(&m.target) == n)
        .map(|(id, _)| id)
}

/// Checks a package's bytes against its `dmf.import` step and the runbook's maps: the sha256 pin, that the zip
/// and its manifest read, the manifest's `Version` against `package_version`, every entity imported after the
/// entities of the maps its map `depends_on` (an error), and every entity expected by a map or by the step's
/// `entities` (a warning otherwise). `cutover validate` and `plan` call it offline; the executor calls it again
/// on the bytes it is about to upload.
pub fn check_package(rb: &Runbook, step: &DmfImport, bytes: &[u8]) -> PackageCheck {
    let sha256 = crate::util::sha256_hex(bytes);
    let mut findings = Vec::new();
    let mut push = |field, error, code, message: String, hint: &str| {
        findings.push(PackageFinding {
            field,
            error,
            code,
            message,
            hint: hint.to_owned(),
        });
    };
    let file = &step.package_file;
    if let Some(pin) = &step.package_sha256
        && is_sha256(pin)
        && !pin.eq_ignore_ascii_case(&sha256)
    {
        push(
            PackageField::PackageSha256,
            true,
            "package-hash-mismatch",
            format!(
                "package `{file}` has sha256 {sha256}, but package_sha256 pins {}",
                pin.to_ascii_lowercase()
            ),
            "this is not the package that was pinned: rebuild it from source, or pin the new file's hash after review",
        );
    }
    let manifest = match dmf_package::read(bytes) {
        Ok(m) => m,
        Err(e) => {
            push(
                PackageField::PackageFile,
                true,
                "unreadable-package",
                format!("package `{file}` cannot be read: it {e}"),
                "a DMF package is a zip holding Manifest.xml, PackageHeader.xml and the entities' data files",
            );
            return PackageCheck {
                sha256,
                manifest: None,
                findings,
            };
        }
    };
    if let Some(want) = step.package_version.as_deref().filter(|v| !v.contains("${")) {
        match &manifest.version {
            Some(have) if have == want => {}
            Some(have) => push(
                PackageField::PackageVersion,
                true,
                "package-version-mismatch",
                format!(
                    "package `{file}` is version {have} (its Manifest.xml), but package_version is {want}"
                ),
                "import the package built for this version, or correct package_version",
            ),
            None => push(
                PackageField::PackageVersion,
                true,
                "package-unversioned",
                format!(
                    "package_version is {want}, but package `{file}`'s Manifest.xml carries no <Version>"
                ),
                "stamp <Version> into Manifest.xml when the package is built, or drop package_version",
            ),
        }
    }
    let mapped: Vec<(&PackageEntity, Option<&MapId>)> = manifest
        .entities
        .iter()
        .map(|e| (e, map_for_entity(rb, &e.name)))
        .collect();
    for (e, map) in &mapped {
        let Some(map) = map else {
            if !step.entities.iter().any(|x| norm(x) == norm(&e.name)) {
                push(
                    PackageField::PackageFile,
                    false,
                    "unexpected-package-entity",
                    format!(
                        "package `{file}` holds entity `{}`, which no map and no `entities` of this step expects",
                        e.name
                    ),
                    "add it to the step's `entities` if it belongs in the package, or rebuild the package without it",
                );
            }
            continue;
        };
        let deps = rb.maps.get(*map).map_or(&[][..], |m| &m.depends_on[..]);
        for dep in deps {
            for (d, _) in mapped.iter().filter(|(_, m)| *m == Some(dep)) {
                if d.order() >= e.order() {
                    let what = if d.order() == e.order() {
                        format!("alongside `{}` (both at {})", d.name, d.position())
                    } else {
                        format!("(at {}) before `{}` (at {})", e.position(), d.name, d.position())
                    };
                    push(
                        PackageField::Step,
                        true,
                        "package-entity-order",
                        format!(
                            "package `{file}` imports `{}` {what}, but map `{map}` depends on `{dep}`",
                            e.name
                        ),
                        "give the depended-on entity a lower ExecutionUnit/LevelInExecutionUnit/SequenceInLevel in Manifest.xml: a fresh environment fails the import otherwise",
                    );
                }
            }
        }
    }
    PackageCheck {
        sha256,
        manifest: Some(manifest),
        findings,
    }
}
