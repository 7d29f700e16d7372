//! The F&O Data management package API (DMF): export and import of data packages.
//!
//! Every action is `POST /data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.<Action>`.
//! Submitting (`ExportToPackage`, `ImportFromPackage`) is separate from polling so that a resumed engine can ask
//! about an executionId it journaled ([`DmfClient::status`], [`DmfClient::finish_import`]) without submitting
//! again. Submits carry the caller's executionId, but a re-sent id is a rerun ("Execution Id if it is a rerun"), so a
//! submit whose answer was lost asks `GetExecutionSummaryStatus` before anything is sent again; status, URL and error
//! actions are read-only and retried as reads. An import is a failure when its status is not
//! `Succeeded`, or when it is `Succeeded` but any entity reports target errors (`GenerateImportTargetErrorKeysFile`
//! = true) or a staging error file: the field-reported "Succeeded with errors" case.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::parse::{ExecutionError, WriteUrl};
use super::transport::{Body, Idempotency, Request, Transport};
use super::{ConnectorError, Result, parse};

const ACTIONS: &str = "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.";

/// `DMFExecutionSummaryStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionStatus {
    Unknown,
    NotRun,
    Executing,
    Succeeded,
    PartiallySucceeded,
    Failed,
    Canceled,
    /// A value outside the documented enum, kept verbatim.
    Other(String),
}

impl ExecutionStatus {
    pub fn parse(s: &str) -> Self {
        match s.trim() {
            "Unknown" => Self::Unknown,
            "NotRun" => Self::NotRun,
            "Executing" => Self::Executing,
            "Succeeded" => Self::Succeeded,
            "PartiallySucceeded" => Self::PartiallySucceeded,
            "Failed" => Self::Failed,
            "Canceled" | "Cancelled" => Self::Canceled,
            other => Self::Other(other.to_owned()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Self::Unknown => "Unknown",
            Self::NotRun => "NotRun",
            Self::Executing => "Executing",
            Self::Succeeded => "Succeeded",
            Self::PartiallySucceeded => "PartiallySucceeded",
            Self::Failed => "Failed",
            Self::Canceled => "Canceled",
            Self::Other(s) => s,
        }
    }
    /// The job will not change any more. `Unknown` and `NotRun` are not terminal: the package may not exist yet.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::PartiallySucceeded | Self::Failed | Self::Canceled
        )
    }
}

/// How long operations are polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poll {
    pub every: Duration,
    pub timeout: Duration,
}

/// What `ExportToPackage` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    pub definition_group: String,
    pub package_name: String,
    /// Caller-generated (journaled before the call).
    pub execution_id: String,
    pub legal_entity: String,
    pub re_execute: bool,
}

/// What `ImportFromPackage` needs (besides the uploaded package URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRequest {
    pub definition_group: String,
    /// Caller-generated (journaled before the call).
    pub execution_id: String,
    pub legal_entity: String,
    pub overwrite: bool,
    /// Entities in the package: each gets the per-entity error check.
    pub entities: Vec<String>,
}

/// A finished export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOutcome {
    pub execution_id: String,
    pub status: ExecutionStatus,
    /// The package's blob URL. It carries a SAS: journal only its path.
    pub package_url: String,
}

/// The per-entity error check of one entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityCheck {
    pub entity: String,
    pub target_errors: bool,
    pub target_error_file_url: String,
    pub staging_error_file_url: String,
}

/// A successful import (failures are `ConnectorError::JobFailed` with the details).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    pub execution_id: String,
    pub status: ExecutionStatus,
    pub entities: Vec<EntityCheck>,
}

/// The sha256 of a package, lower-case hex, for the install record.
pub fn package_sha256(bytes: &[u8]) -> String {
    crate::util::sha256_hex(bytes)
}

/// The DMF client of one F&O environment.
#[derive(Debug, Clone)]
pub struct DmfClient {
    t: Transport,
}

impl DmfClient {
    pub fn new(t: Transport) -> Self {
        Self { t }
    }

    async fn action(
        &self,
        action: &str,
        body: serde_json::Value,
        idem: Idempotency,
        cancel: &CancellationToken,
    ) -> Result<super::transport::Response> {
        let req = Request::post(format!("dmf.{action}"), format!("{ACTIONS}{action}"))
            .json(body)
            .idempotency(idem);
        self.t.send(req, cancel).await
    }

    async fn action_string(
        &self,
        action: &str,
        body: serde_json::Value,
        idem: Idempotency,
        cancel: &CancellationToken,
    ) -> Result<String> {
        let resp = self.action(action, body, idem, cancel).await?;
        self.t.parse(&resp, parse::dmf_value_string)
    }

    /// `ExportToPackage` with the caller's executionId; returns the executionId the service echoes.
    pub async fn submit_export(&self, req: &ExportRequest, cancel: &CancellationToken) -> Result<String> {
        let body = json!({"definitionGroupId": req.definition_group, "packageName": req.package_name,
            "executionId": req.execution_id, "reExecute": req.re_execute, "legalEntityId": req.legal_entity});
        self.submit_job("ExportToPackage", body, &req.execution_id, cancel)
            .await
    }

    /// `GetExecutionSummaryStatus`: what became of an execution (the resume question).
    pub async fn status(&self, execution_id: &str, cancel: &CancellationToken) -> Result<ExecutionStatus> {
        let s = self
            .action_string(
                "GetExecutionSummaryStatus",
                json!({"executionId": execution_id}),
                Idempotency::Safe,
                cancel,
            )
            .await?;
        Ok(ExecutionStatus::parse(&s))
    }

    /// Polls `GetExecutionSummaryStatus` until a terminal status, reporting each status read to `on_status`.
    pub async fn wait_terminal(
        &self,
        execution_id: &str,
        poll: Poll,
        cancel: &CancellationToken,
        mut on_status: impl FnMut(&ExecutionStatus) + Send,
    ) -> Result<ExecutionStatus> {
        let deadline = Instant::now() + poll.timeout;
        loop {
            let s = match self.status(execution_id, cancel).await {
                Ok(s) => s,
                Err(e) if e.poll_may_ride_out() && Instant::now() + poll.every <= deadline => {
                    self.sleep(poll.every, cancel).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            on_status(&s);
            if s.is_terminal() {
                return Ok(s);
            }
            if Instant::now() + poll.every > deadline {
                return Err(ConnectorError::Timeout {
                    env: self.t.env().to_owned(),
                    call: format!("dmf.wait {execution_id} (last status {})", s.as_str()),
                    after_ms: u64::try_from(poll.timeout.as_millis()).unwrap_or(u64::MAX),
                });
            }
            self.sleep(poll.every, cancel).await?;
        }
    }

    async fn sleep(&self, d: Duration, cancel: &CancellationToken) -> Result<()> {
        tokio::select! {
            () = cancel.cancelled() => Err(ConnectorError::Cancelled { env: self.t.env().to_owned(), call: "dmf.poll".into() }),
            () = tokio::time::sleep(d) => Ok(()),
        }
    }

    /// `GetExportedPackageUrl` (flat or nested value shape).
    pub async fn exported_package_url(
        &self,
        execution_id: &str,
        cancel: &CancellationToken,
    ) -> Result<String> {
        self.action_string(
            "GetExportedPackageUrl",
            json!({"executionId": execution_id}),
            Idempotency::Safe,
            cancel,
        )
        .await
    }

    /// Export end to end: submit, poll to a terminal status, fetch the package URL. Anything but `Succeeded` is a
    /// failure carrying `GetExecutionErrors`.
    pub async fn export(
        &self,
        req: &ExportRequest,
        poll: Poll,
        cancel: &CancellationToken,
    ) -> Result<ExportOutcome> {
        let id = self.submit_export(req, cancel).await?;
        self.finish_export(&id, poll, cancel).await
    }

    /// The polling half of [`Self::export`], for resume.
    pub async fn finish_export(
        &self,
        execution_id: &str,
        poll: Poll,
        cancel: &CancellationToken,
    ) -> Result<ExportOutcome> {
        let status = self.wait_terminal(execution_id, poll, cancel, |_| {}).await?;
        if status != ExecutionStatus::Succeeded {
            let details = self
                .execution_errors(execution_id, cancel)
                .await
                .map(describe_errors)
                .unwrap_or_default();
            return Err(ConnectorError::job_failed(
                self.t.env(),
                "dmf.export",
                execution_id,
                status.as_str(),
                details,
            ));
        }
        let package_url = self.exported_package_url(execution_id, cancel).await?;
        Ok(ExportOutcome {
            execution_id: execution_id.to_owned(),
            status,
            package_url,
        })
    }

    /// `GetAzureWriteUrl` (its value is a JSON string inside the JSON envelope).
    pub async fn write_url(&self, unique_file_name: &str, cancel: &CancellationToken) -> Result<WriteUrl> {
        let resp = self
            .action(
                "GetAzureWriteUrl",
                json!({"uniqueFileName": unique_file_name}),
                Idempotency::Safe,
                cancel,
            )
            .await?;
        self.t.parse(&resp, parse::dmf_write_url)
    }

    /// Uploads the package to the blob (`PUT` with `x-ms-blob-type: BlockBlob`, SAS in the URL, no bearer token).
    pub async fn upload(&self, blob_url: &str, package: &[u8], cancel: &CancellationToken) -> Result<()> {
        let req = Request::new("dmf.upload", reqwest::Method::PUT, blob_url)
            .header("x-ms-blob-type", "BlockBlob")
            .body(Body::Bytes {
                data: package.to_vec(),
                content_type: "application/zip".into(),
            })
            .unauthenticated();
        self.t.send(req, cancel).await.map(|_| ())
    }

    /// Downloads an exported package from its blob URL (`GET`, SAS in the URL, no bearer token); read-only, retried
    /// as a read.
    pub async fn download(&self, blob_url: &str, cancel: &CancellationToken) -> Result<Vec<u8>> {
        let req = Request::new("dmf.download", reqwest::Method::GET, blob_url)
            .idempotency(Idempotency::Safe)
            .unauthenticated();
        self.t.send(req, cancel).await.map(|r| r.body)
    }

    /// `ImportFromPackage` with the caller's executionId (`execute: true`).
    pub async fn submit_import(
        &self,
        req: &ImportRequest,
        package_url: &str,
        cancel: &CancellationToken,
    ) -> Result<String> {
        let body = json!({"packageUrl": package_url, "definitionGroupId": req.definition_group, "executionId": req.execution_id,
            "execute": true, "overwrite": req.overwrite, "legalEntityId": req.legal_entity});
        self.submit_job("ImportFromPackage", body, &req.execution_id, cancel)
            .await
    }

    /// Submits a job action carrying the caller's executionId and returns the executionId the service echoes (the
    /// caller's when it echoes an empty string). The service documents a re-sent executionId as "Execution Id if
    /// it is a rerun", so a submit is never repeated blindly: when its outcome is unknown (a timeout or a reset
    /// after the request went out) the execution's status is asked first (`GetExecutionSummaryStatus`), and the
    /// submit is sent again only while the service does not know the id (`Unknown`).
    async fn submit_job(
        &self,
        action: &str,
        body: serde_json::Value,
        execution_id: &str,
        cancel: &CancellationToken,
    ) -> Result<String> {
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match self
                .action_string(action, body.clone(), Idempotency::Unsafe, cancel)
                .await
            {
                Ok(id) if id.is_empty() => return Ok(execution_id.to_owned()),
                Ok(id) => return Ok(id),
                Err(ConnectorError::Ambiguous { detail, .. }) if !execution_id.is_empty() => {
                    let status = self.status(execution_id, cancel).await?;
                    if status != ExecutionStatus::Unknown {
                        tracing::info!(
                            action,
                            execution_id,
                            status = status.as_str(),
                            "the submit's answer was lost but the service knows the execution: not sent again"
                        );
                        return Ok(execution_id.to_owned());
                    }
                    if attempts > self.t.policy().retries {
                        return Err(ConnectorError::Ambiguous {
                            env: self.t.env().to_owned(),
                            call: format!("dmf.{action}"),
                            detail: format!(
                                "{detail}; after {attempts} attempts the service still does not know execution {execution_id}"
                            ),
                        });
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Import end to end: write URL, upload, submit, then [`Self::finish_import`].
    pub async fn import(
        &self,
        req: &ImportRequest,
        package_name: &str,
        package: &[u8],
        poll: Poll,
        cancel: &CancellationToken,
    ) -> Result<ImportOutcome> {
        let w = self
            .write_url(&format!("{}-{package_name}", req.execution_id), cancel)
            .await?;
        self.upload(&w.blob_url, package, cancel).await?;
        let id = self.submit_import(req, &w.blob_url, cancel).await?;
        self.finish_import(&id, &req.entities, poll, cancel).await
    }

    /// Polls an import to a terminal status and runs the per-entity error check. Used after a submit and on resume
    /// (it never submits).
    pub async fn finish_import(
        &self,
        execution_id: &str,
        entities: &[String],
        poll: Poll,
        cancel: &CancellationToken,
    ) -> Result<ImportOutcome> {
        let status = self.wait_terminal(execution_id, poll, cancel, |_| {}).await?;
        let mut checks = Vec::with_capacity(entities.len());
        for e in entities {
            checks.push(self.check_entity(execution_id, e, poll, cancel).await?);
        }
        // GetExecutionErrors is read on every import: with it, an import is checked even when the caller could
        // not name the package's entities.
        let errors = self.execution_errors(execution_id, cancel).await?;
        let dirty = checks
            .iter()
            .any(|c| c.target_errors || !c.staging_error_file_url.is_empty())
            || !errors.is_empty();
        if status == ExecutionStatus::Succeeded && !dirty {
            return Ok(ImportOutcome {
                execution_id: execution_id.to_owned(),
                status,
                entities: checks,
            });
        }
        let mut details: Vec<String> = checks
            .iter()
            .filter(|c| c.target_errors || !c.staging_error_file_url.is_empty())
            .map(|c| {
                format!(
                    "{}: {}",
                    c.entity,
                    if c.target_errors {
                        "target errors"
                    } else {
                        "staging errors"
                    }
                )
            })
            .collect();
        details.extend(describe_errors(errors));
        let label = if status == ExecutionStatus::Succeeded {
            "Succeeded with errors".to_owned()
        } else {
            status.as_str().to_owned()
        };
        Err(ConnectorError::job_failed(
            self.t.env(),
            "dmf.import",
            execution_id,
            &label,
            details,
        ))
    }

    /// The per-entity check: `GetImportStagingErrorFileUrl`, then `GenerateImportTargetErrorKeysFile` and, when it
    /// says errors exist, `GetImportTargetErrorKeysFileUrl` polled until non-empty.
    pub async fn check_entity(
        &self,
        execution_id: &str,
        entity: &str,
        poll: Poll,
        cancel: &CancellationToken,
    ) -> Result<EntityCheck> {
        let args = json!({"executionId": execution_id, "entityName": entity});
        let staging = self
            .action_string(
                "GetImportStagingErrorFileUrl",
                args.clone(),
                Idempotency::Safe,
                cancel,
            )
            .await?;
        let resp = self
            .action(
                "GenerateImportTargetErrorKeysFile",
                args.clone(),
                Idempotency::Safe,
                cancel,
            )
            .await?;
        let target_errors = self.t.parse(&resp, parse::dmf_value_bool)?;
        let mut url = String::new();
        if target_errors {
            let deadline = Instant::now() + poll.timeout;
            loop {
                url = self
                    .action_string(
                        "GetImportTargetErrorKeysFileUrl",
                        args.clone(),
                        Idempotency::Safe,
                        cancel,
                    )
                    .await?;
                if !url.is_empty() || Instant::now() + poll.every > deadline {
                    break;
                }
                self.sleep(poll.every.min(Duration::from_secs(5)), cancel).await?;
            }
        }
        Ok(EntityCheck {
            entity: entity.to_owned(),
            target_errors,
            target_error_file_url: url,
            staging_error_file_url: staging,
        })
    }

    /// `GetExecutionErrors`.
    pub async fn execution_errors(
        &self,
        execution_id: &str,
        cancel: &CancellationToken,
    ) -> Result<Vec<ExecutionError>> {
        let resp = self
            .action(
                "GetExecutionErrors",
                json!({"executionId": execution_id}),
                Idempotency::Safe,
                cancel,
            )
            .await?;
        self.t.parse(&resp, parse::dmf_execution_errors)
    }
}

fn describe_errors(errors: Vec<ExecutionError>) -> Vec<String> {
    errors
        .into_iter()
        .map(|e| {
            let mut s = String::new();
            for part in [&e.entity_name, &e.stage, &e.record_key] {
                if !part.is_empty() {
                    s.push_str(part);
                    s.push(' ');
                }
            }
            format!(
                "{}{}",
                if s.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", s.trim_end())
                },
                e.error_message
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_terminal_ones_are_known() {
        for s in [
            "Unknown",
            "NotRun",
            "Executing",
            "Succeeded",
            "PartiallySucceeded",
            "Failed",
            "Canceled",
        ] {
            assert_eq!(ExecutionStatus::parse(s).as_str(), s);
        }
        assert!(!ExecutionStatus::parse("NotRun").is_terminal());
        assert!(ExecutionStatus::parse("PartiallySucceeded").is_terminal());
        assert_eq!(
            ExecutionStatus::parse("Weird"),
            ExecutionStatus::Other("Weird".into())
        );
    }

    #[test]
    fn sha256_is_hex() {
        assert_eq!(
            package_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn errors_are_described_in_the_services_words() {
        let d = describe_errors(vec![ExecutionError {
            entity_name: "Customers V3".into(),
            error_message: "Field X missing".into(),
            record_key: "US-001".into(),
            stage: "Target".into(),
        }]);
        assert_eq!(d, vec!["Customers V3 Target US-001: Field X missing".to_owned()]);
    }
}
