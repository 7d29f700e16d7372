//! Azure Databricks: Lakeflow Connect pipeline updates (`/api/2.0/pipelines/{id}/updates`) and the SQL
//! Statement Execution API (`/api/2.0/sql/statements`: submit asynchronously, poll, fetch chunks, cancel).
//! d365-api.md §7.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::request::Request;
use super::transport::Transport;
use super::{ConnectorError, Result};

/// A pipeline update as `GET …/updates/{update_id}` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateInfo {
    pub update_id: String,
    /// QUEUED, CREATED, WAITING_FOR_RESOURCES, INITIALIZING, RESETTING, SETTING_UP_TABLES, RUNNING,
    /// STOPPING, COMPLETED, FAILED, CANCELED.
    pub state: String,
    pub creation_time: Option<DateTime<Utc>>,
    /// Why it failed, when the answer says.
    pub error: Option<String>,
}

impl UpdateInfo {
    pub fn is_terminal(&self) -> bool {
        matches!(self.state.as_str(), "COMPLETED" | "FAILED" | "CANCELED")
    }
}

/// One statement as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementInfo {
    pub statement_id: String,
    /// PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED, CLOSED.
    pub state: String,
    /// `status.error.message` (and `sql_state`) of a FAILED statement.
    pub error: Option<String>,
    /// The result's column names (manifest), once SUCCEEDED.
    pub columns: Vec<String>,
    /// Chunks in all, and the first chunk's rows (`result.data_array`).
    pub chunks: u64,
    pub rows: Vec<Vec<Value>>,
    pub truncated: bool,
}

impl StatementInfo {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.state.as_str(),
            "SUCCEEDED" | "FAILED" | "CANCELED" | "CLOSED"
        )
    }
}

/// A statement to run: the SQL, where, and its named parameters (`:name`).
#[derive(Debug, Clone, Default)]
pub struct StatementRequest {
    pub statement: String,
    pub warehouse_id: String,
    pub catalog: Option<String>,
    pub schema: Option<String>,
    /// (name, value, type) for `:name` markers.
    pub parameters: Vec<(String, String, String)>,
}

/// A Databricks workspace.
#[derive(Debug, Clone)]
pub struct DatabricksClient {
    t: Transport,
}

fn parse_json(env: &str, call: &str, body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body).map_err(|e| ConnectorError::bad_body(env, call, format!("not JSON: {e}")))
}

fn ms_time(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::Number(n) => n.as_i64().and_then(DateTime::from_timestamp_millis),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.with_timezone(&Utc))
            .or_else(|| s.parse::<i64>().ok().and_then(DateTime::from_timestamp_millis)),
        _ => None,
    }
}

fn statement(env: &str, call: &str, v: &Value) -> Result<StatementInfo> {
    let id = v["statement_id"]
        .as_str()
        .ok_or_else(|| ConnectorError::bad_body(env, call, "no statement_id"))?;
    let state = v["status"]["state"]
        .as_str()
        .ok_or_else(|| ConnectorError::bad_body(env, call, "no status.state"))?;
    let error = v["status"]["error"]["message"].as_str().map(|m| {
        match v["status"]["sql_state"]
            .as_str()
            .or(v["status"]["sqlState"].as_str())
        {
            Some(s) => format!("{m} (SQLSTATE {s})"),
            None => m.to_owned(),
        }
    });
    let columns = v["manifest"]["schema"]["columns"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|x| x["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let rows = v["result"]["data_array"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|row| row.as_array().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    Ok(StatementInfo {
        statement_id: id.to_owned(),
        state: state.to_owned(),
        error,
        columns,
        chunks: v["manifest"]["total_chunk_count"].as_u64().unwrap_or(1),
        rows,
        truncated: v["manifest"]["truncated"].as_bool().unwrap_or(false),
    })
}

impl DatabricksClient {
    pub fn new(t: Transport) -> Self {
        Self { t }
    }

    pub fn env(&self) -> &str {
        self.t.env()
    }

    /// Starts an update; `full_refresh_selection` lists the tables refreshed in full. Not retried (a
    /// second update must not start): the caller journals its intent first and asks the pipeline after a
    /// lost answer.
    pub async fn start_update(
        &self,
        pipeline: &str,
        tables: &[String],
        cancel: &CancellationToken,
    ) -> Result<String> {
        let call = "databricks.start_update";
        let body = if tables.is_empty() {
            json!({"full_refresh": false})
        } else {
            json!({"full_refresh": false, "full_refresh_selection": tables})
        };
        let req = Request::post(call, format!("/api/2.0/pipelines/{}/updates", enc(pipeline))).json(body);
        let resp = self.t.send(req, cancel).await?;
        let v = parse_json(self.env(), call, &resp.body)?;
        v["update_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ConnectorError::bad_body(self.env(), call, "no update_id"))
    }

    /// One update's state.
    pub async fn get_update(
        &self,
        pipeline: &str,
        update: &str,
        cancel: &CancellationToken,
    ) -> Result<UpdateInfo> {
        let call = "databricks.get_update";
        let req = Request::get(
            call,
            format!("/api/2.0/pipelines/{}/updates/{}", enc(pipeline), enc(update)),
        );
        let resp = self.t.send(req, cancel).await?;
        let v = parse_json(self.env(), call, &resp.body)?;
        let u = &v["update"];
        Ok(UpdateInfo {
            update_id: u["update_id"].as_str().unwrap_or(update).to_owned(),
            state: u["state"]
                .as_str()
                .ok_or_else(|| ConnectorError::bad_body(self.env(), call, "no update.state"))?
                .to_owned(),
            creation_time: ms_time(&u["creation_time"]),
            error: u["error"]["message"].as_str().map(str::to_owned),
        })
    }

    /// The pipeline's latest updates (`latest_updates`), newest first.
    pub async fn latest_updates(
        &self,
        pipeline: &str,
        cancel: &CancellationToken,
    ) -> Result<Vec<UpdateInfo>> {
        let call = "databricks.get_pipeline";
        let req = Request::get(call, format!("/api/2.0/pipelines/{}", enc(pipeline)));
        let resp = self.t.send(req, cancel).await?;
        let v = parse_json(self.env(), call, &resp.body)?;
        let mut out: Vec<UpdateInfo> = v["latest_updates"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| {
                        Some(UpdateInfo {
                            update_id: u["update_id"].as_str()?.to_owned(),
                            state: u["state"].as_str().unwrap_or_default().to_owned(),
                            creation_time: ms_time(&u["creation_time"]),
                            error: None,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by_key(|u| std::cmp::Reverse(u.creation_time));
        Ok(out)
    }

    /// Submits a statement asynchronously (`wait_timeout: 0s`, `INLINE`, `JSON_ARRAY`). Not retried: a lost
    /// answer leaves a statement the caller cannot name (it runs to its end and is dropped).
    pub async fn submit(&self, s: &StatementRequest, cancel: &CancellationToken) -> Result<StatementInfo> {
        let call = "databricks.submit_statement";
        let mut body = json!({
            "statement": s.statement,
            "warehouse_id": s.warehouse_id,
            "wait_timeout": "0s",
            "on_wait_timeout": "CONTINUE",
            "disposition": "INLINE",
            "format": "JSON_ARRAY",
        });
        if let Some(c) = &s.catalog {
            body["catalog"] = json!(c);
        }
        if let Some(sc) = &s.schema {
            body["schema"] = json!(sc);
        }
        if !s.parameters.is_empty() {
            body["parameters"] = Value::Array(
                s.parameters
                    .iter()
                    .map(|(n, v, t)| json!({"name": n, "value": v, "type": t}))
                    .collect(),
            );
        }
        let req = Request::post(call, "/api/2.0/sql/statements").json(body);
        let resp = self.t.send(req, cancel).await?;
        statement(self.env(), call, &parse_json(self.env(), call, &resp.body)?)
    }

    /// A statement's state (and its first chunk once SUCCEEDED).
    pub async fn statement(&self, id: &str, cancel: &CancellationToken) -> Result<StatementInfo> {
        let call = "databricks.get_statement";
        let req = Request::get(call, format!("/api/2.0/sql/statements/{}", enc(id)));
        let resp = self.t.send(req, cancel).await?;
        statement(self.env(), call, &parse_json(self.env(), call, &resp.body)?)
    }

    /// Rows of a further result chunk.
    pub async fn chunk(&self, id: &str, index: u64, cancel: &CancellationToken) -> Result<Vec<Vec<Value>>> {
        let call = "databricks.get_chunk";
        let req = Request::get(
            call,
            format!("/api/2.0/sql/statements/{}/result/chunks/{index}", enc(id)),
        );
        let resp = self.t.send(req, cancel).await?;
        let v = parse_json(self.env(), call, &resp.body)?;
        Ok(v["data_array"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|row| row.as_array().cloned().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Asks the warehouse to cancel a statement (a no-op once it ended).
    pub async fn cancel(&self, id: &str) -> Result<()> {
        let call = "databricks.cancel_statement";
        let req = Request::post(call, format!("/api/2.0/sql/statements/{}/cancel", enc(id))).json(json!({}));
        // Its own token: the step's may be what was cancelled.
        self.t.send(req, &CancellationToken::new()).await.map(|_| ())
    }
}

fn enc(s: &str) -> String {
    super::transport::encode_query_part(s)
}
