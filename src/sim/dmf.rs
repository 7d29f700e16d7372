//! F&O Data management package API (DMF) and our stand-in for its blob storage.
//!
//! Actions answer `{"@odata.context": "<base>/data/$metadata#Edm.<Type>", "value": ...}`.
//! A job is `NotRun` for the group's `queued` time, `Executing` for `duration`, then its `outcome`
//! (an import whose package was never uploaded, or cannot be read, ends `Failed`); an unknown execution id is `Unknown`.
//! An import runs the entities of its package's manifest in import order and fails those whose dependencies have
//! no rows yet (see "DMF packages" in `docs/simulator.md`).
//! When an import reaches Succeeded/PartiallySucceeded its entities' rows (minus `target_errors`)
//! are loaded into the F&O tables (and flow through Running maps). Our models:
//! - `GetExecutionErrors` value: a JSON string holding a JSON array of
//!   `{"entityName","errorMessage","recordKey","stage":"Staging"|"Target"}`. A dual-write initial sync's
//!   execution id (the map's `execution_id`, default `DWM-<map>`) answers its failed rows (stage `Target`)
//!   until a resumed initial sync of the map completes.
//! - Blob storage: `PUT/GET /_blob/dmf/<name>?sv=..&se=..&sr=b&sp=rw&sig=..`; the signature is a
//!   hash of the name and expiry under the seed, expiry one real hour; PUT needs
//!   `x-ms-blob-type: BlockBlob` and answers 201 like Azure Storage.
//! - The exported package holds a manifest listing the group's entities (1/1/1, 1/1/2, ...), the exported
//!   packages' header and one header-and-one-row CSV per entity; an empty zip for a group with no entities.
//! - `GetImportTargetErrorKeysFileUrl` is `""` until `error_file_delay` (simulated) after
//!   `GenerateImportTargetErrorKeysFile` was called for that entity.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::scenario::{DmfEntity, JobBehaviour, Side};
use super::server::{App, json_error};
use super::tables::NO_COMPANY;
use super::world::SimState;

#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub import: bool,
    /// The definition group it runs.
    pub group: String,
    pub created: f64,
    pub behaviour: JobBehaviour,
    pub entities: Vec<DmfEntity>,
    pub package_ok: bool,
    pub loaded: bool,
    pub generate: HashMap<String, f64>,
    pub company: Option<String>,
    /// Entities that failed at load because an entity they depend on had no rows yet: (entity, message).
    pub failed: Vec<(String, String)>,
}

impl Job {
    pub fn status(&self, t: f64) -> &'static str {
        let b = &self.behaviour;
        if t < self.created + b.queued.0 {
            "NotRun"
        } else if t < self.created + b.queued.0 + b.duration.0 {
            "Executing"
        } else if !self.package_ok {
            "Failed"
        } else if !self.failed.is_empty() && b.outcome == super::sections::Outcome::Succeeded {
            // Our model: an entity that fails its references fails the job only if nothing else loaded.
            if self.failed.len() < self.entities.len() {
                "PartiallySucceeded"
            } else {
                "Failed"
            }
        } else {
            b.outcome.as_str()
        }
    }

    fn terminal(&self, t: f64) -> bool {
        !matches!(self.status(t), "NotRun" | "Executing")
    }
}

impl SimState {
    /// Loads the rows of imports that reached a loading outcome.
    pub fn advance_jobs(&mut self, t: f64) {
        let ready: Vec<String> = self
            .jobs
            .values()
            .filter(|j| j.import && !j.loaded && j.terminal(t))
            .map(|j| j.id.clone())
            .collect();
        for id in ready {
            let Some(job) = self.jobs.get_mut(&id) else {
                continue;
            };
            job.loaded = true;
            let loads = matches!(job.status(t), "Succeeded" | "PartiallySucceeded");
            let entities = job.entities.clone();
            let legal = job
                .company
                .as_deref()
                .and_then(|c| super::odata::company_index(&self.companies, c));
            if !loads {
                continue;
            }
            let group = job.group.clone();
            super::lake::import_loaded(self, &group, t);
            for e in entities {
                let Some(&idx) = self.fno_idx.get(&e.entity_set) else {
                    continue;
                };
                // A fresh environment: an entity whose map depends on a map whose F&O set has no rows yet (none
                // before the import, none loaded by an earlier entity of it) fails, and loads nothing.
                if let Some(missing) = self.missing_dependency(&e.entity_set) {
                    let msg = format!(
                        "The value in a field of '{}' is not found in the related table '{missing}': it has no rows yet (import it first).",
                        e.name
                    );
                    if let Some(job) = self.jobs.get_mut(&id) {
                        job.failed.push((e.name.clone(), msg));
                    }
                    continue;
                }
                let mut budget = e.target_errors;
                let targets: Vec<u16> = if self.fno[idx].company_specific {
                    (0..self.companies.len() as u16).collect()
                } else {
                    vec![NO_COMPANY]
                };
                for c in targets {
                    // A plain row count on a company-specific set goes to the job's legal entity.
                    let mut n = match (&e.rows, legal) {
                        (super::scenario::Rows::Shared(n), Some(l)) if c == l => *n,
                        _ => self.rows_for(&e.rows, c),
                    };
                    let skip = budget.min(n);
                    budget -= skip;
                    n -= skip;
                    for _ in 0..n {
                        let pos = self.fno[idx].add_generated(c, 1);
                        let row = self.fno[idx].rows[pos].clone();
                        self.propagate(Side::Fno, idx, super::live::ChangeKind::Create(row));
                    }
                }
            }
        }
    }

    /// The F&O set of a map that the map loading `entity_set` depends on and that has no rows, if any.
    fn missing_dependency(&self, entity_set: &str) -> Option<String> {
        let map = self
            .scenario
            .maps
            .iter()
            .find(|m| m.source.eq_ignore_ascii_case(entity_set))?;
        map.depends_on.iter().find_map(|dep| {
            let d = self.scenario.maps.iter().find(|m| &m.name == dep)?;
            let &idx = self.fno_idx.get(&d.source)?;
            self.fno[idx].is_empty().then(|| d.source.clone())
        })
    }

    /// The entities an import runs, in order: the package's (its manifest's import order), each with the
    /// group's definition of that name when it has one, else loading nothing into the F&O set of that name;
    /// then the group's entities the package does not name (our model).
    fn import_entities(
        &self,
        group: Option<&super::sections::GroupDef>,
        package: &[String],
    ) -> Vec<DmfEntity> {
        let defined = group.map(|g| g.entities.as_slice()).unwrap_or_default();
        let norm = |s: &str| {
            s.chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase())
                .collect::<String>()
        };
        let mut out: Vec<DmfEntity> = package
            .iter()
            .map(|name| {
                defined
                    .iter()
                    .find(|d| d.name.eq_ignore_ascii_case(name))
                    .cloned()
                    .unwrap_or_else(|| DmfEntity {
                        name: name.clone(),
                        entity_set: self
                            .fno_idx
                            .keys()
                            .find(|k| norm(k) == norm(name))
                            .cloned()
                            .unwrap_or_else(|| name.clone()),
                        rows: super::scenario::Rows::Shared(0),
                        target_errors: 0,
                        staging_errors: 0,
                    })
            })
            .collect();
        for d in defined {
            if !out.iter().any(|e| e.name.eq_ignore_ascii_case(&d.name)) {
                out.push(d.clone());
            }
        }
        out
    }

    fn new_job(
        &mut self,
        id: String,
        import: bool,
        group: &str,
        package: Option<&[String]>,
        company: Option<String>,
    ) {
        let g = self.scenario.dmf.definition_groups.get(group);
        let behaviour = g.map_or_else(|| self.scenario.dmf.default_job.clone(), |g| g.job.clone());
        let package_ok = package.is_some() || !import;
        let entities = match package {
            Some(p) if import => self.import_entities(g, p),
            _ => g.map(|g| g.entities.clone()).unwrap_or_default(),
        };
        let job = Job {
            id: id.clone(),
            import,
            group: group.to_owned(),
            created: self.now,
            behaviour,
            entities,
            package_ok,
            loaded: false,
            generate: HashMap::new(),
            company,
            failed: Vec::new(),
        };
        self.jobs.insert(id, job);
    }
}

/// A blob name that survives a URL path unchanged.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The SAS signature of a blob name and expiry.
fn sign(seed: u64, name: &str, se: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("{seed}:{name}:{se}").as_bytes());
    hex::encode(&d[..16])
}

fn blob_url(app: &App, base: &str, name: &str) -> String {
    let se = (chrono::Utc::now() + chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let sig = sign(app.seed, name, &se);
    format!(
        "{base}/_blob/dmf/{name}?sv=2021-08-06&se={}&sr=b&sp=rw&sig={sig}",
        super::odata::encode(&se)
    )
}

/// Checks `sig` and `se` of a blob request.
fn sas_ok(app: &App, name: &str, query: Option<&str>) -> bool {
    let pairs = super::odata::pairs(query);
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (Some(se), Some(sig)) = (get("se"), get("sig")) else {
        return false;
    };
    let fresh = chrono::DateTime::parse_from_rfc3339(&se).is_ok_and(|d| d > chrono::Utc::now());
    fresh && sign(app.seed, name, &se) == sig
}

fn storage_error(status: StatusCode, code: &str, msg: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{msg}</Message></Error>"
    );
    (status, [("content-type", "application/xml")], body).into_response()
}

pub async fn blob_put(
    State(app): State<App>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !sas_ok(&app, &name, q.as_deref()) {
        return storage_error(
            StatusCode::FORBIDDEN,
            "AuthenticationFailed",
            "Server failed to authenticate the request.",
        );
    }
    if headers.get("x-ms-blob-type").and_then(|v| v.to_str().ok()) != Some("BlockBlob") {
        return storage_error(
            StatusCode::BAD_REQUEST,
            "MissingRequiredHeader",
            "An HTTP header that's mandatory for this request is not specified: x-ms-blob-type.",
        );
    }
    app.with(|st| st.blobs.insert(name, body.to_vec()));
    StatusCode::CREATED.into_response()
}

pub async fn blob_get(State(app): State<App>, Path(name): Path<String>, RawQuery(q): RawQuery) -> Response {
    if !sas_ok(&app, &name, q.as_deref()) {
        return storage_error(
            StatusCode::FORBIDDEN,
            "AuthenticationFailed",
            "Server failed to authenticate the request.",
        );
    }
    match app.with(|st| st.blobs.get(&name).cloned()) {
        Some(b) => (StatusCode::OK, [("content-type", "application/octet-stream")], b).into_response(),
        None => storage_error(
            StatusCode::NOT_FOUND,
            "BlobNotFound",
            "The specified blob does not exist.",
        ),
    }
}

/// An empty zip archive (end-of-central-directory record only).
const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

fn envelope(base: &str, ty: &str, value: Value) -> Response {
    Json(json!({"@odata.context": format!("{base}/data/$metadata#Edm.{ty}"), "value": value})).into_response()
}

/// `POST /data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.<Action>`.
/// `base` is the caller's external origin (links are built from it).
pub async fn action(app: App, base: &str, action: &str, body: Value) -> Response {
    let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    match action {
        "GetAzureWriteUrl" => {
            let file = s("uniqueFileName");
            let name = if file.is_empty() {
                app.with(|st| st.next_guid())
            } else {
                safe(&file)
            };
            let blob_id = app.with(|st| st.next_guid());
            let inner = json!({"BlobId": format!("{{{blob_id}}}"), "BlobUrl": blob_url(&app, base, &name)});
            envelope(base, "String", json!(inner.to_string()))
        }
        "ImportFromPackage" | "ImportFromPackageAsync" => {
            let (pkg, group) = (s("packageUrl"), s("definitionGroupId"));
            let legal = Some(s("legalEntityId")).filter(|l| !l.is_empty());
            let id = app.with(|st| {
                let id = Some(s("executionId"))
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| st.next_guid());
                // "Execution Id if it is a rerun" (§3): a known id runs the import again.
                {
                    let blob = pkg
                        .split("/_blob/dmf/")
                        .nth(1)
                        .and_then(|r| r.split('?').next())
                        .unwrap_or("");
                    // The package is read as the service reads it: an unreadable one fails the job.
                    let package = st
                        .blobs
                        .get(blob)
                        .and_then(|b| crate::util::dmf_package::read(b).ok())
                        .map(|m| m.entity_names());
                    st.new_job(id.clone(), true, &group, package.as_deref(), legal);
                    st.effect(format!("dmf.import:{id}"));
                }
                id
            });
            envelope(base, "String", json!(id))
        }
        "ExportToPackage" | "ExportToPackageAsync" | "ExportToPackagePreview" => {
            let group = s("definitionGroupId");
            let legal = Some(s("legalEntityId")).filter(|l| !l.is_empty());
            let id = app.with(|st| {
                let id = Some(s("executionId"))
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| st.next_guid());
                // "Execution Id if it is a rerun" (§3): a known id runs the export again.
                {
                    st.new_job(id.clone(), false, &group, None, legal);
                    let names: Vec<(String, i64)> = st
                        .jobs
                        .get(&id)
                        .map(|j| {
                            j.entities
                                .iter()
                                .zip(1..)
                                .map(|(e, n)| (e.name.clone(), n))
                                .collect()
                        })
                        .unwrap_or_default();
                    let entities: Vec<(&str, i64, i64, i64)> =
                        names.iter().map(|(n, k)| (n.as_str(), 1, 1, *k)).collect();
                    let zip = if entities.is_empty() {
                        EMPTY_ZIP.to_vec()
                    } else {
                        crate::util::dmf_package::build_package(&group, None, &entities)
                    };
                    st.blobs.insert(format!("{id}.zip"), zip);
                    st.effect(format!("dmf.export:{id}"));
                }
                id
            });
            envelope(base, "String", json!(id))
        }
        "GetExportedPackageUrl" => {
            let id = s("executionId");
            let done = app.with(|st| {
                st.jobs
                    .get(&id)
                    .is_some_and(|j| !j.import && j.terminal(st.now) && j.status(st.now) != "Failed")
            });
            let url = if done {
                blob_url(&app, base, &format!("{id}.zip"))
            } else {
                String::new()
            };
            envelope(base, "String", json!(url))
        }
        "GetExecutionSummaryStatus" => {
            let id = s("executionId");
            let status = app.with(|st| st.jobs.get(&id).map_or("Unknown", |j| j.status(st.now)));
            envelope(base, "String", json!(status))
        }
        "GetExecutionErrors" => {
            let id = s("executionId");
            let errors = app.with(|st| {
                let Some(j) = st.jobs.get(&id).filter(|j| j.terminal(st.now)) else {
                    return dwm_errors(st, &id);
                };
                let mut out = Vec::new();
                for e in &j.entities {
                    for (stage, n) in [("Staging", e.staging_errors), ("Target", e.target_errors)] {
                        for k in 0..n {
                            out.push(json!({"entityName": e.name, "errorMessage": format!("{stage} validation failed for record {}.", k + 1), "recordKey": format!("{}-ERR-{:04}", e.entity_set, k + 1), "stage": stage}));
                        }
                    }
                }
                for (entity, message) in &j.failed {
                    out.push(json!({"entityName": entity, "errorMessage": message, "recordKey": "", "stage": "Target"}));
                }
                if !j.package_ok {
                    out.push(json!({"entityName": "", "errorMessage": "The package could not be read from the package URL.", "recordKey": "", "stage": "Staging"}));
                }
                out
            });
            envelope(base, "String", json!(Value::Array(errors).to_string()))
        }
        "GenerateImportTargetErrorKeysFile" => {
            let (id, entity) = (s("executionId"), s("entityName"));
            let has = app.with(|st| {
                let now = st.now;
                let Some(j) = st.jobs.get_mut(&id) else {
                    return false;
                };
                let has = j
                    .entities
                    .iter()
                    .any(|e| e.name.eq_ignore_ascii_case(&entity) && e.target_errors > 0)
                    || j.failed.iter().any(|(n, _)| n.eq_ignore_ascii_case(&entity));
                if has {
                    j.generate.entry(entity.to_lowercase()).or_insert(now);
                }
                has
            });
            envelope(base, "Boolean", json!(has))
        }
        "GetImportTargetErrorKeysFileUrl" => {
            let (id, entity) = (s("executionId"), s("entityName"));
            let ready = app.with(|st| {
                let j = st.jobs.get(&id)?;
                let at = j.generate.get(&entity.to_lowercase())?;
                (st.now >= at + j.behaviour.error_file_delay.0).then_some(())
            });
            let url = match ready {
                Some(()) => {
                    let name = format!("{id}-{}-targeterrors.csv", safe(&entity));
                    app.with(|st| {
                        st.blobs
                            .entry(name.clone())
                            .or_insert_with(|| b"RecordKey\r\n".to_vec());
                    });
                    blob_url(&app, base, &name)
                }
                None => String::new(),
            };
            envelope(base, "String", json!(url))
        }
        "GetImportStagingErrorFileUrl" => {
            let (id, entity) = (s("executionId"), s("entityName"));
            let has = app.with(|st| {
                st.jobs.get(&id).is_some_and(|j| {
                    j.terminal(st.now)
                        && j.entities
                            .iter()
                            .any(|e| e.name.eq_ignore_ascii_case(&entity) && e.staging_errors > 0)
                })
            });
            let url = if has {
                let name = format!("{id}-{}-stagingerrors.csv", safe(&entity));
                app.with(|st| {
                    st.blobs
                        .entry(name.clone())
                        .or_insert_with(|| b"Error\r\n".to_vec());
                });
                blob_url(&app, base, &name)
            } else {
                String::new()
            };
            envelope(base, "String", json!(url))
        }
        _ => json_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("No action named '{action}' is bound to DataManagementDefinitionGroups."),
        ),
    }
}

/// The F&O entity set of the data projects (definition groups): the set the DMF actions are bound to.
pub const GROUPS_SET: &str = "DataManagementDefinitionGroups";

/// `GET /data/DataManagementDefinitionGroups[('<Name>')]` with `$filter $select $top $skip`: the scenario's
/// `dmf.definition_groups`, one row each with the properties of the public entity
/// `DataManagementDefinitionGroupEntity` [doc: CDM schema] the simulator can fill: `Name`, `Description` (empty),
/// `ProjectCategory` (`Project`). Our model: a group the scenario does not declare is not listed (a submit naming
/// it still runs with `default_job`, as before).
/// Our model: the errors of a map's initial-sync (DWM) execution, its failed rows not yet resolved.
fn dwm_errors(st: &SimState, id: &str) -> Vec<Value> {
    st.errors
        .iter()
        .filter(|e| !e.resolved)
        .filter(|e| matches!(&e.origin, super::world::ErrorOrigin::InitialSync { execution_id } if execution_id == id))
        .map(|e| json!({"entityName": e.target, "errorMessage": e.message, "recordKey": e.key, "stage": "Target"}))
        .collect()
}

pub fn groups(app: &App, base: &str, seg: &str, raw: Option<&str>) -> Response {
    use super::odata::{Dialect, Query, filter};
    let (_, key) = super::fno::split_key(seg);
    let rows: Vec<serde_json::Map<String, Value>> = app.with(|st| {
        st.scenario
            .dmf
            .definition_groups
            .keys()
            .map(|name| {
                let v = json!({"@odata.etag": format!("W/\"{}\"", super::faults::hash_str(name) % 1_000_000),
                    "Name": name, "Description": "", "ProjectCategory": "Project"});
                v.as_object().cloned().unwrap_or_default()
            })
            .collect()
    });
    let q = match Query::parse(raw, Dialect::Fno) {
        Ok(q) => q,
        Err(e) => return super::fno::query_error(e),
    };
    let known = ["Name", "Description", "ProjectCategory"];
    let named: Vec<String> = q
        .filter
        .iter()
        .flat_map(filter::fields)
        .chain(q.select.iter().flatten().cloned())
        .collect();
    if let Some(f) = named.iter().find(|f| !known.contains(&f.as_str())) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "",
            &format!(
                "Could not find a property named '{f}' on type 'Microsoft.Dynamics.DataEntities.DataManagementDefinitionGroup'."
            ),
        );
    }
    let context = format!("{base}/data/$metadata#{GROUPS_SET}");
    if let Some(key) = key {
        let want = key.first().and_then(|(_, v)| v.as_str()).unwrap_or("").to_owned();
        return match rows
            .into_iter()
            .find(|m| m["Name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(&want)))
        {
            Some(mut m) => {
                m.insert("@odata.context".into(), json!(format!("{context}/$entity")));
                Json(Value::Object(m)).into_response()
            }
            None => json_error(
                StatusCode::NOT_FOUND,
                "",
                &format!("No resource was found for {seg}."),
            ),
        };
    }
    let value: Vec<Value> = rows
        .into_iter()
        .filter(|m| {
            q.filter
                .as_ref()
                .is_none_or(|f| filter::eval(f, &|p: &str| m.get(p).cloned().unwrap_or(Value::Null)))
        })
        .skip(q.skip)
        .take(q.top.unwrap_or(usize::MAX))
        .map(|m| match &q.select {
            Some(sel) => Value::Object(
                m.into_iter()
                    .filter(|(k, _)| k.starts_with('@') || sel.contains(k))
                    .collect(),
            ),
            None => Value::Object(m),
        })
        .collect();
    Json(json!({"@odata.context": context, "value": value})).into_response()
}
