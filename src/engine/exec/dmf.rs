//! `dmf.export` and `dmf.import`, with the step handle as the executionId.
//!
//! Fresh: submit with the handle's executionId, poll `GetExecutionSummaryStatus` to a terminal status
//! (journaling each status change as progress), then (import) the per-entity error check. Reconcile: ask
//! `status(executionId)` first; `Unknown` means the service never saw it, so it is submitted with the same id
//! (the service dedupes anyway); any other status is polled and finished, never re-submitted.
//!
//! Imports: `package_file` resolves against the runbook's directory; before anything is sent the bytes are checked
//! (`dmf_import::check_package`: the `package_sha256` pin, the manifest's version and entity order) and any error
//! refuses the step. The package's entities are its manifest's, in import order, each checked for staging and
//! target errors. "Succeeded" with target errors and "PartiallySucceeded" are failures
//! with the service's details. Every import that reaches a verdict journals one `InstallRecord` (package name =
//! file stem, version = `package_version` or `unversioned`, sha256, executionId, result) and, with
//! `record_install`, writes the same row to that F&O entity (looked up by `ExecutionId` first, so a resumed
//! step does not write it twice). `legal_entity` defaults to the empty string (the service's default company).

use std::collections::BTreeMap;

use serde_json::json;

use super::{Mode, Res, StepCtx, fail, fail_because, interpolate_step, log, poll, progress};
use crate::connectors::ConnectorError;
use crate::connectors::dmf::{DmfClient, ExecutionStatus, ExportRequest, ImportRequest};
use crate::connectors::fno::eq_filter;
use crate::connectors::install_table;
use crate::connectors::transport::{Idempotency, Request};
use crate::engine::event::{Event, Handle, LogLevel};
use crate::runbook::steps as kind;
use crate::runbook::{Step, StepKind};

fn execution_id(handle: Option<&Handle>) -> Res<String> {
    handle
        .map(|h| h.id.clone())
        .ok_or_else(|| fail("no executionId handle for this step"))
}

/// Polls to a terminal status, journaling each change as progress.
async fn wait(ctx: &StepCtx, dmf: &DmfClient, id: &str) -> Res<ExecutionStatus> {
    let mut last = String::new();
    let mut n = 0u64;
    let s = dmf
        .wait_terminal(id, poll(ctx), &ctx.cancel, |s| {
            n += 1;
            if s.as_str() != last {
                last = s.as_str().to_owned();
                progress(ctx, n, None, Some(format!("DMF {id}: {last}")));
            }
        })
        .await?;
    Ok(s)
}

pub async fn export(ctx: &StepCtx, step: &Step, handle: Option<&Handle>, mode: Mode) -> Res {
    let StepKind::DmfExport(kind::DmfExport {
        env,
        definition_group,
        package,
        legal_entity,
        download,
    }) = &step.kind
    else {
        return Err(fail("not a dmf.export step"));
    };
    let id = execution_id(handle)?;
    let dmf = ctx.envs.scoped(Some(&ctx.step.id)).dmf(env)?;
    let package_name = match package {
        Some(p) => interpolate_step(ctx, p)?,
        None => format!("{definition_group}-{}", ctx.run_date),
    };
    let known =
        mode == Mode::Reconcile && !matches!(dmf.status(&id, &ctx.cancel).await?, ExecutionStatus::Unknown);
    if known {
        log(
            ctx,
            LogLevel::Info,
            format!("export {id} is known to the service: polling it, not re-submitting"),
        );
    } else {
        let req = ExportRequest {
            definition_group: interpolate_step(ctx, definition_group)?,
            package_name: package_name.clone(),
            execution_id: id.clone(),
            legal_entity: legal_entity.clone().unwrap_or_default(),
            re_execute: false,
        };
        dmf.submit_export(&req, &ctx.cancel).await?;
    }
    wait(ctx, &dmf, &id).await?;
    let out = dmf.finish_export(&id, poll(ctx), &ctx.cancel).await?;
    let path = reqwest::Url::parse(&out.package_url)
        .map(|u| u.path().to_owned())
        .unwrap_or_default();
    log(
        ctx,
        LogLevel::Info,
        format!("exported {package_name} ({id}) to {path}"),
    );
    let mut outputs = BTreeMap::from([
        ("execution_id".to_owned(), id.clone()),
        ("package_path".to_owned(), path),
    ]);
    if *download {
        let (file, sha256) = keep_export(ctx, &dmf, &out.package_url, &id, &package_name).await?;
        outputs.insert("package_file".to_owned(), file);
        outputs.insert("package_sha256".to_owned(), sha256);
    }
    Ok(outputs)
}

/// Downloads an exported package into `evidence/<run>/` beside the journal (written to a `.part` file, then
/// renamed) and journals it with its sha256. Returns the file (relative to the journal's folder) and the hash.
async fn keep_export(
    ctx: &StepCtx,
    dmf: &DmfClient,
    url: &str,
    id: &str,
    package_name: &str,
) -> Res<(String, String)> {
    let bytes = dmf.download(url, &ctx.cancel).await?;
    let sha256 = crate::util::sha256_hex(&bytes);
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let rel = format!(
        "evidence/{}/{}-{}.zip",
        safe(ctx.run_id.as_str()),
        safe(ctx.step.id.as_str()),
        safe(package_name)
    );
    let path = ctx.work_dir.join(&rel);
    let dir = path
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let io = |e: std::io::Error| {
        fail(format!(
            "cannot keep the exported package as {}: {e}",
            path.display()
        ))
    };
    tokio::fs::create_dir_all(&dir).await.map_err(io)?;
    let part = path.with_extension("zip.part");
    tokio::fs::write(&part, &bytes).await.map_err(io)?;
    tokio::fs::rename(&part, &path).await.map_err(io)?;
    ctx.emit
        .durable(Event::PackageDownloaded {
            step: ctx.step.id.clone(),
            execution_id: id.to_owned(),
            package: package_name.to_owned(),
            file: rel.clone(),
            sha256: sha256.clone(),
            bytes: bytes.len() as u64,
        })
        .await?;
    log(
        ctx,
        LogLevel::Info,
        format!(
            "kept the exported package as {rel} ({} bytes, sha256 {sha256})",
            bytes.len()
        ),
    );
    Ok((rel, sha256))
}

struct Package {
    name: String,
    version: String,
    sha256: String,
    bytes: Vec<u8>,
}

pub async fn import(ctx: &StepCtx, step: &Step, handle: Option<&Handle>, mode: Mode) -> Res {
    let StepKind::DmfImport(spec) = &step.kind else {
        return Err(fail("not a dmf.import step"));
    };
    import_spec(ctx, spec, execution_id(handle)?, mode).await
}

/// The import of `spec` under the executionId `id` (a `dmf.import` step's handle, or the id a
/// `dualwrite.batch_window` derives for its package): see the module docs.
pub async fn import_spec(ctx: &StepCtx, spec: &kind::DmfImport, id: String, mode: Mode) -> Res {
    let kind::DmfImport {
        env,
        definition_group,
        package_file,
        package_version,
        legal_entity,
        overwrite,
        record_install,
        ..
    } = spec;
    if let Some(why) = crate::runbook::steps::dmf_import::package_path_problem(package_file) {
        return Err(fail(format!("package_file `{package_file}` {why}")));
    }
    let path = ctx.runbook_dir.join(package_file);
    // A symbolic link inside the folder must not lead out of it either.
    let inside = match (
        tokio::fs::canonicalize(&path).await,
        tokio::fs::canonicalize(&ctx.runbook_dir).await,
    ) {
        (Ok(p), Ok(dir)) => p.starts_with(&dir),
        (Err(e), _) | (_, Err(e)) => {
            return Err(fail(format!("cannot read package {}: {e}", path.display())));
        }
    };
    if !inside {
        return Err(fail(format!(
            "package {} resolves outside the runbook's folder; refused",
            path.display()
        )));
    }
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| fail(format!("cannot read package {}: {e}", path.display())))?;
    // The pin, the manifest and its order are checked on the very bytes about to be uploaded: the file may have
    // changed since the run was validated.
    let check = kind::dmf_import::check_package(&ctx.runbook, spec, &bytes);
    let errors = check.errors();
    if !errors.is_empty() {
        return Err(fail(format!(
            "package refused, nothing was sent: {}",
            errors.join("; ")
        )));
    }
    let entities = check
        .manifest
        .as_ref()
        .map(crate::util::dmf_package::Manifest::entity_names)
        .unwrap_or_default();
    let pkg = Package {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        version: package_version.clone().unwrap_or_else(|| "unversioned".into()),
        sha256: check.sha256,
        bytes,
    };
    let record_count = crate::util::dmf_package::record_count(&pkg.bytes);
    let environment = {
        let host = ctx
            .envs
            .transport(env)
            .ok()
            .and_then(|t| t.base_url().host_str().map(str::to_owned))
            .unwrap_or_default();
        format!("{env}@{host}")
    };
    // A retry after the install record failed: the import already succeeded (its InstallRecord is journaled), so
    // only the record is written again, under the import's execution id. The import is never repeated.
    if let Some(r) = record_install {
        let done = ctx
            .state
            .read()
            .installs
            .iter()
            .rev()
            .find(|i| i.step == ctx.step.id && i.sha256 == pkg.sha256 && i.result == "Succeeded")
            .map(|i| i.execution_id.clone());
        if let Some(done) = done {
            log(
                ctx,
                LogLevel::Info,
                format!(
                    "import {done} already succeeded: writing its install record only, not importing again"
                ),
            );
            record(ctx, r, &pkg, &done, "Succeeded", &environment, record_count)
                .await
                .map_err(|e| {
                    fail(format!(
                        "import {done} succeeded, but its install record could not be written: {e}"
                    ))
                })?;
            return Ok(BTreeMap::from([
                ("execution_id".to_owned(), done),
                ("sha256".to_owned(), pkg.sha256),
            ]));
        }
    }
    let dmf = ctx.envs.scoped(Some(&ctx.step.id)).dmf(env)?;
    let req = ImportRequest {
        definition_group: interpolate_step(ctx, definition_group)?,
        execution_id: id.clone(),
        legal_entity: legal_entity.clone().unwrap_or_default(),
        overwrite: *overwrite,
        entities,
    };
    let known =
        mode == Mode::Reconcile && !matches!(dmf.status(&id, &ctx.cancel).await?, ExecutionStatus::Unknown);
    if known {
        log(
            ctx,
            LogLevel::Info,
            format!("import {id} is known to the service: polling it, not re-submitting"),
        );
    } else {
        let w = dmf.write_url(&format!("{id}-{}", pkg.name), &ctx.cancel).await?;
        dmf.upload(&w.blob_url, &pkg.bytes, &ctx.cancel).await?;
        dmf.submit_import(&req, &w.blob_url, &ctx.cancel).await?;
    }
    wait(ctx, &dmf, &id).await?;
    let verdict = dmf
        .finish_import(&id, &req.entities, poll(ctx), &ctx.cancel)
        .await;
    let (result, failure) = match verdict {
        Ok(o) => (o.status.as_str().to_owned(), None),
        Err(ConnectorError::JobFailed(j)) => {
            let status = j.status.clone();
            let e = ConnectorError::JobFailed(j);
            (status, Some((e.to_string(), e.service_reason())))
        }
        Err(e) => return Err(e.into()),
    };
    // A resumed step whose verdict was journaled before the process died (between the record and the
    // step's end) keeps that one record: the audit counts installs.
    let recorded = ctx
        .state
        .read()
        .installs
        .iter()
        .any(|i| i.step == ctx.step.id && i.execution_id == id && i.result == result);
    if !recorded {
        ctx.emit
            .durable(Event::InstallRecord {
                step: ctx.step.id.clone(),
                package: pkg.name.clone(),
                version: pkg.version.clone(),
                sha256: pkg.sha256.clone(),
                execution_id: id.clone(),
                result: result.clone(),
                environment: environment.clone(),
                record_count,
            })
            .await?;
    }
    let written = match record_install {
        Some(r) => record(ctx, r, &pkg, &id, &result, &environment, record_count).await,
        None => Ok(()),
    };
    match (failure, written) {
        (Some((f, why)), _) => Err(fail_because(f, why)),
        (None, Err(e)) => Err(fail(format!(
            "import {id} succeeded, but its install record could not be written: {e}"
        ))),
        (None, Ok(())) => Ok(BTreeMap::from([
            ("execution_id".to_owned(), id),
            ("sha256".to_owned(), pkg.sha256),
        ])),
    }
}

/// Writes the install record as its own journaled operation: `intent` before, `written` or `failed` after. Its
/// handle is the import's execution id: the target is asked for a row with it before one is written.
async fn record(
    ctx: &StepCtx,
    r: &kind::RecordInstall,
    pkg: &Package,
    id: &str,
    result: &str,
    environment: &str,
    record_count: Option<u64>,
) -> Result<(), String> {
    let env_kind = ctx
        .runbook
        .environments
        .get(&r.env)
        .map(|e| e.kind)
        .ok_or_else(|| format!("no environment `{}`", r.env))?;
    let target = r.target(env_kind)?;
    let described = target.describe(&r.env);
    let journal = |status: &str, detail: String| Event::InstallRecordWrite {
        step: ctx.step.id.clone(),
        execution_id: id.to_owned(),
        target: described.clone(),
        status: status.to_owned(),
        detail,
    };
    ctx.emit
        .durable(journal("intent", String::new()))
        .await
        .map_err(|e| e.to_string())?;
    let row = install_table::InstallRow {
        package: pkg.name.clone(),
        version: pkg.version.clone(),
        sha256: pkg.sha256.clone(),
        execution_id: id.to_owned(),
        environment: environment.to_owned(),
        imported_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        imported_by: ctx.run_operator.clone(),
        record_count,
        status: install_table::status_of(result).to_owned(),
        notes: format!(
            "runbook {} run {} step {}: DMF {result}",
            ctx.runbook.runbook,
            ctx.run_id.as_str(),
            ctx.step.id
        ),
    };
    let outcome = match &target {
        kind::dmf_import::RecordTarget::Fno { entity } => {
            write_fno(ctx, &r.env, entity, pkg, id, result).await
        }
        kind::dmf_import::RecordTarget::Dataverse { table } => {
            let dv = ctx
                .envs
                .scoped(Some(&ctx.step.id))
                .dataverse(&r.env)
                .map_err(|e| e.to_string())?;
            install_table::write(&dv, table, &row, &ctx.cancel)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    };
    let event = match &outcome {
        Ok(()) => journal("written", String::new()),
        Err(e) => journal("failed", e.clone()),
    };
    ctx.emit.durable(event).await.map_err(|e| e.to_string())?;
    outcome
}

/// Writes the install record to an F&O entity unless a row with this executionId exists.
async fn write_fno(
    ctx: &StepCtx,
    env: &str,
    entity: &str,
    pkg: &Package,
    id: &str,
    result: &str,
) -> Result<(), String> {
    let fno = ctx
        .envs
        .scoped(Some(&ctx.step.id))
        .fno(env)
        .map_err(|e| e.to_string())?;
    let found = fno
        .read(
            entity,
            Some(&eq_filter("ExecutionId", id)),
            &[],
            None,
            1,
            &ctx.cancel,
        )
        .await
        .map_err(|e| e.to_string())?;
    if !found.is_empty() {
        return Ok(());
    }
    let body = json!({
        "PackageName": pkg.name, "PackageVersion": pkg.version, "PackageSha256": pkg.sha256,
        "ExecutionId": id, "Result": result, "Runbook": ctx.runbook.runbook,
        "RunId": ctx.run_id.as_str(), "InstalledBy": ctx.run_operator,
    });
    let req = Request::post(format!("fno.create {entity}"), format!("/data/{entity}"))
        .json(body)
        .idempotency(Idempotency::Handle(id.to_owned()));
    fno.transport()
        .send(req, &ctx.cancel)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
