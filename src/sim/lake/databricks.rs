//! The Databricks workspace stand-in: Lakeflow Connect pipelines (`/api/2.0/pipelines/{id}`, its `updates`)
//! and the SQL Statement Execution API (`/api/2.0/sql/statements`: submit, poll, result chunks, cancel).
//!
//! The statement executor runs the SQL it is sent: an in-memory SQLite database holds every table the
//! pipelines ingested (all columns as text), with the Spark SQL functions the console's statements use
//! registered under their Spark names (`sha2`, `string`); SQLite's own `coalesce`, `concat_ws`, `upper`,
//! `lower`, `char`, window functions and FULL OUTER JOIN are the rest. SQL SQLite cannot run is a FAILED
//! statement with SQLite's message.
//!
//! Our model (also in `docs/simulator.md`):
//! - Errors are `{"error_code","message"}` with the HTTP status; an unknown pipeline or update is 404
//!   `RESOURCE_DOES_NOT_EXIST`; starting an update while one is active is 409 `RESOURCE_CONFLICT`; a
//!   missing or wrong token is 401 `UNAUTHENTICATED`.
//! - An update goes QUEUED, INITIALIZING, RESETTING (a full refresh), SETTING_UP_TABLES, RUNNING by its share
//!   of `update_duration`, then COMPLETED or FAILED. It ingests every folder closed by its end; a table whose
//!   `model.json` attributes differ from what was ingested, not in `full_refresh_selection`, fails the update
//!   naming the table. `latest_updates[].creation_time` is RFC 3339; `update.creation_time` is epoch ms.
//! - A statement is PENDING for the first quarter of `statement_duration`, RUNNING until its end, then
//!   SUCCEEDED or FAILED; CLOSED `result_ttl` after it succeeded; CANCELED when cancelled before it ended.
//!   The submit answers at once whatever `wait_timeout` says. Only `INLINE` + `JSON_ARRAY` is modelled, in
//!   one chunk; every table is visible whatever `catalog` and `schema` say. Type names are `LONG`, `DOUBLE`
//!   or `STRING` from SQLite's value in the first row. A failed statement's `status.sql_state` is `42000`.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rusqlite::functions::FunctionFlags;
use serde_json::{Value, json};

use super::super::server::{App, header};
use super::{LakeRt, Statement, update_state};

/// A Databricks REST error.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error_code": code, "message": message}))).into_response()
}

/// The Azure Databricks resource's application id (the audience of its Entra tokens).
pub const DATABRICKS_RESOURCE: &str = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d";

fn check(app: &App, headers: &HeaderMap) -> Result<(), Response> {
    let Some(token) = header(headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
    else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Credential was not sent or was of an unsupported type for this API.",
        ));
    };
    let ok = app.with(|st| {
        let pat = st
            .lake
            .as_ref()
            .is_some_and(|l| l.cfg.databricks.tokens.iter().any(|t| t == token));
        pat || st
            .tokens
            .get(token)
            .is_some_and(|t| std::time::Instant::now() < t.expires && t.audience == DATABRICKS_RESOURCE)
    });
    if ok {
        Ok(())
    } else {
        Err(error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Invalid access token.",
        ))
    }
}

fn no_pipeline(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "RESOURCE_DOES_NOT_EXIST",
        &format!("The specified pipeline {id} was not found."),
    )
}

/// Runs `f` on the lake advanced to now (a 404 when the scenario has no lake).
fn with_lake<R>(app: &App, f: impl FnOnce(&mut LakeRt, f64, u64) -> R) -> Option<R> {
    app.with(|st| {
        let now = st.now;
        super::advance(st, now, true);
        let seq = st.next_guid();
        let seq = super::super::faults::hash_str(&seq);
        st.lake.as_mut().map(|l| f(l, now, seq))
    })
}

fn epoch_ms(app: &App, t: f64) -> i64 {
    let start = app.with(|st| st.scenario.start);
    (start + chrono::Duration::milliseconds((t * 1000.0) as i64)).timestamp_millis()
}

/// `POST /api/2.0/pipelines/{pipeline_id}/updates`.
pub async fn start_update(
    State(app): State<App>,
    Path(pid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = check(&app, &headers) {
        return r;
    }
    let req: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "MALFORMED_REQUEST",
                    &format!("Invalid JSON given in the body of the request: {e}"),
                );
            }
        }
    };
    let full = req["full_refresh"].as_bool().unwrap_or(false);
    let selection: Vec<String> = match &req["full_refresh_selection"] {
        Value::Null => Vec::new(),
        Value::Array(a) if a.iter().all(Value::is_string) => {
            a.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETER_VALUE",
                "full_refresh_selection must be a list of table names.",
            );
        }
    };
    if full && !selection.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            "full_refresh and full_refresh_selection cannot both be set.",
        );
    }
    let res = with_lake(&app, |lake, now, seq| {
        let Some(p) = lake.pipelines.get(&pid) else {
            return Err(no_pipeline(&pid));
        };
        if let Some(a) = p.updates.iter().find(|u| u.ended.is_none()) {
            return Err(error(
                StatusCode::CONFLICT,
                "RESOURCE_CONFLICT",
                &format!("Update {} is already active for pipeline {pid}.", a.id),
            ));
        }
        let id = super::super::tables::guid_from(seq, super::super::faults::mix(seq, 0xDB));
        super::start_update(lake, &pid, id.clone(), now, full, selection, "API_CALL");
        Ok(id)
    });
    match res {
        None => no_pipeline(&pid),
        Some(Err(r)) => r,
        Some(Ok(id)) => Json(json!({"update_id": id})).into_response(),
    }
}

/// `GET /api/2.0/pipelines/{pipeline_id}/updates/{update_id}`.
pub async fn get_update(
    State(app): State<App>,
    Path((pid, uid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check(&app, &headers) {
        return r;
    }
    let found = with_lake(&app, |lake, now, _| {
        let p = lake.pipelines.get(&pid)?;
        let u = p.updates.iter().find(|u| u.id == uid)?;
        Some((u.clone(), update_state(u, now)))
    })
    .flatten();
    let Some((u, state)) = found else {
        return error(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            &format!("Update {uid} of pipeline {pid} was not found."),
        );
    };
    let mut update = json!({
        "pipeline_id": pid,
        "update_id": u.id,
        "state": state,
        "cause": u.cause,
        "creation_time": epoch_ms(&app, u.created),
        "full_refresh": u.full_refresh,
    });
    if !u.selection.is_empty() {
        update["full_refresh_selection"] = json!(u.selection);
    }
    if let Some((_, Some(e))) = &u.ended {
        // Our model: the reason of a failed update (the service keeps it in the pipeline's event log).
        update["error"] = json!({"message": e});
    }
    Json(json!({"update": update})).into_response()
}

/// `GET /api/2.0/pipelines/{pipeline_id}`.
pub async fn get_pipeline(State(app): State<App>, Path(pid): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = check(&app, &headers) {
        return r;
    }
    let start = app.with(|st| st.scenario.start);
    let found = with_lake(&app, |lake, now, _| {
        let p = lake.pipelines.get(&pid)?;
        let latest: Vec<Value> = p
            .updates
            .iter()
            .rev()
            .take(5)
            .map(|u| {
                json!({
                    "update_id": u.id,
                    "state": update_state(u, now),
                    "creation_time": (start + chrono::Duration::milliseconds((u.created * 1000.0) as i64))
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                })
            })
            .collect();
        let running = p.updates.iter().any(|u| u.ended.is_none());
        Some(json!({
            "pipeline_id": pid,
            "name": format!("d365-{pid}"),
            "state": if running { "RUNNING" } else { "IDLE" },
            "latest_updates": latest,
        }))
    })
    .flatten();
    match found {
        Some(v) => Json(v).into_response(),
        None => no_pipeline(&pid),
    }
}

fn statement_state(s: &Statement, now: f64, ttl: f64) -> &'static str {
    if s.canceled {
        return "CANCELED";
    }
    let pending_until = s.submitted + (s.ends - s.submitted) / 4.0;
    if now < pending_until {
        "PENDING"
    } else if now < s.ends {
        "RUNNING"
    } else if s.outcome.is_err() {
        "FAILED"
    } else if now >= s.ends + ttl {
        "CLOSED"
    } else {
        "SUCCEEDED"
    }
}

/// The statement response: status, and the manifest and first chunk once it succeeded.
fn statement_json(id: &str, s: &Statement, state: &str) -> Value {
    let mut v = json!({"statement_id": id, "status": {"state": state}});
    match (&s.outcome, state) {
        (Err((code, message, sql_state)), "FAILED") => {
            v["status"]["error"] = json!({"error_code": code, "message": message});
            v["status"]["sql_state"] = json!(sql_state);
        }
        (Ok((cols, rows)), "SUCCEEDED") => {
            v["manifest"] = manifest(cols, rows.len());
            v["result"] = chunk(rows);
        }
        _ => {}
    }
    v
}

fn manifest(cols: &[(String, String)], n: usize) -> Value {
    json!({
        "format": "JSON_ARRAY",
        "schema": {
            "column_count": cols.len(),
            "columns": cols.iter().enumerate().map(|(i, (name, ty))| json!({
                "name": name, "position": i, "type_name": ty, "type_text": ty.replace("LONG", "BIGINT"),
            })).collect::<Vec<_>>(),
        },
        "total_chunk_count": 1,
        "chunks": [{"chunk_index": 0, "row_offset": 0, "row_count": n}],
        "total_row_count": n,
        "truncated": false,
    })
}

fn chunk(rows: &[Vec<Value>]) -> Value {
    json!({"chunk_index": 0, "row_offset": 0, "row_count": rows.len(), "data_array": rows})
}

/// `POST /api/2.0/sql/statements`.
pub async fn submit(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = check(&app, &headers) {
        return r;
    }
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "MALFORMED_REQUEST",
                &format!("Invalid JSON given in the body of the request: {e}"),
            );
        }
    };
    let bad = |m: &str| error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", m);
    let Some(sql) = req["statement"].as_str() else {
        return bad("statement is required.");
    };
    let Some(warehouse) = req["warehouse_id"].as_str() else {
        return bad("warehouse_id is required.");
    };
    if let Some(w) = req["wait_timeout"].as_str() {
        let secs = w.strip_suffix('s').and_then(|n| n.parse::<u32>().ok());
        if !matches!(secs, Some(0 | 5..=50)) {
            return bad("wait_timeout must be 0s or between 5s and 50s.");
        }
    }
    if req["disposition"].as_str().is_some_and(|d| d != "INLINE")
        || req["format"].as_str().is_some_and(|f| f != "JSON_ARRAY")
    {
        return error(
            StatusCode::NOT_IMPLEMENTED,
            "NOT_IMPLEMENTED",
            "Only disposition INLINE with format JSON_ARRAY is modelled by the simulator.",
        );
    }
    let params: Vec<(String, Value, String)> = req["parameters"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap_or_default().to_owned(),
                        p["value"].clone(),
                        p["type"].as_str().unwrap_or("STRING").to_ascii_uppercase(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let row_limit = req["row_limit"].as_u64();
    let res = with_lake(&app, |lake, now, seq| {
        let known = &lake.cfg.databricks.warehouses;
        if !known.is_empty() && !known.iter().any(|w| w == warehouse) {
            return Err(error(
                StatusCode::NOT_FOUND,
                "RESOURCE_DOES_NOT_EXIST",
                &format!("Warehouse {warehouse} does not exist."),
            ));
        }
        // The warehouse sees what the pipelines ingested (the newest pipeline's copy of a table wins).
        let mut tables: BTreeMap<String, &super::Ingested> = BTreeMap::new();
        for p in lake.pipelines.values() {
            for (t, i) in &p.tables {
                tables.insert(t.clone(), i);
            }
        }
        let outcome = execute(&tables, sql, &params, row_limit);
        let id = format!(
            "01ef{:04x}-{}",
            seq & 0xffff,
            super::super::tables::guid_from(seq, seq ^ 0x57A7)[9..].to_owned()
        );
        let dur = lake.cfg.databricks.statement_duration.0;
        let s = Statement {
            submitted: now,
            ends: now + dur,
            outcome,
            canceled: false,
        };
        let v = statement_json(
            &id,
            &s,
            statement_state(&s, now, lake.cfg.databricks.result_ttl.0),
        );
        lake.statements.insert(id, s);
        Ok(v)
    });
    match res {
        None => error(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            &format!("Warehouse {warehouse} does not exist."),
        ),
        Some(Err(r)) => r,
        Some(Ok(v)) => Json(v).into_response(),
    }
}

fn no_statement(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "RESOURCE_DOES_NOT_EXIST",
        &format!("Statement {id} does not exist."),
    )
}

/// `GET /api/2.0/sql/statements/{statement_id}`.
pub async fn get(State(app): State<App>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = check(&app, &headers) {
        return r;
    }
    let v = with_lake(&app, |lake, now, _| {
        let ttl = lake.cfg.databricks.result_ttl.0;
        lake.statements
            .get(&id)
            .map(|s| statement_json(&id, s, statement_state(s, now, ttl)))
    })
    .flatten();
    v.map_or_else(|| no_statement(&id), |v| Json(v).into_response())
}

/// `GET /api/2.0/sql/statements/{statement_id}/result/chunks/{chunk_index}`.
pub async fn get_chunk(
    State(app): State<App>,
    Path((id, index)): Path<(String, u64)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check(&app, &headers) {
        return r;
    }
    let v = with_lake(&app, |lake, now, _| {
        let ttl = lake.cfg.databricks.result_ttl.0;
        let s = lake.statements.get(&id)?;
        Some(match (&s.outcome, statement_state(s, now, ttl), index) {
            (Ok((_, rows)), "SUCCEEDED", 0) => Ok(chunk(rows)),
            (_, "SUCCEEDED", _) => Err(error(
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETER_VALUE",
                &format!("Chunk index {index} is out of range."),
            )),
            (_, state, _) => Err(error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!("The statement {id} is {state}: there is no result to fetch."),
            )),
        })
    })
    .flatten();
    match v {
        None => no_statement(&id),
        Some(Ok(v)) => Json(v).into_response(),
        Some(Err(r)) => r,
    }
}

/// `POST /api/2.0/sql/statements/{statement_id}/cancel`.
pub async fn cancel(State(app): State<App>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = check(&app, &headers) {
        return r;
    }
    let found = with_lake(&app, |lake, now, _| {
        let s = lake.statements.get_mut(&id)?;
        if now < s.ends {
            s.canceled = true;
        }
        Some(())
    })
    .flatten();
    match found {
        Some(()) => Json(json!({})).into_response(),
        None => no_statement(&id),
    }
}

/// Registers the Spark SQL functions the console's statements use, under their Spark names.
pub fn register_spark_functions(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    // `sha2(expr, bitLength)`: the hex SHA-2 digest of the text (256 only; 0 means 256 in Spark).
    conn.create_scalar_function("sha2", 2, flags, |ctx| {
        use sha2::Digest;
        let text: Option<String> = ctx.get(0)?;
        let bits: i64 = ctx.get(1)?;
        if bits != 256 && bits != 0 {
            return Err(rusqlite::Error::UserFunctionError(
                format!("sha2: bit length {bits} is not modelled (256 only)").into(),
            ));
        }
        Ok(text.map(|t| hex::encode(sha2::Sha256::digest(t.as_bytes()))))
    })?;
    // `string(expr)`: the value as text (Spark's cast to STRING; SQLite's CAST AS STRING is numeric).
    conn.create_scalar_function("string", 1, flags, |ctx| {
        Ok(match ctx.get_raw(0) {
            rusqlite::types::ValueRef::Null => None,
            rusqlite::types::ValueRef::Integer(i) => Some(i.to_string()),
            rusqlite::types::ValueRef::Real(r) => Some(r.to_string()),
            rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                Some(String::from_utf8_lossy(t).into_owned())
            }
        })
    })?;
    Ok(())
}

/// A statement run on an in-memory SQLite database holding `tables`.
fn execute(
    tables: &BTreeMap<String, &super::Ingested>,
    sql: &str,
    params: &[(String, Value, String)],
    row_limit: Option<u64>,
) -> super::Outcome {
    let fail = |e: rusqlite::Error| ("BAD_REQUEST".to_owned(), e.to_string(), "42000".to_owned());
    let conn = rusqlite::Connection::open_in_memory().map_err(fail)?;
    register_spark_functions(&conn).map_err(fail)?;
    for (name, t) in tables {
        load_table(&conn, name, &t.columns, t.rows.values()).map_err(fail)?;
    }
    let mut stmt = conn.prepare(sql).map_err(fail)?;
    for (name, value, ty) in params {
        let Some(i) = stmt.parameter_index(&format!(":{name}")).map_err(fail)? else {
            return Err((
                "BAD_REQUEST".into(),
                format!("parameter `{name}` does not appear in the statement"),
                "42000".into(),
            ));
        };
        let text = match value {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        };
        let r = match (ty.as_str(), text) {
            (_, None) => stmt.raw_bind_parameter(i, rusqlite::types::Null),
            ("INT" | "BIGINT" | "LONG" | "SMALLINT" | "TINYINT", Some(t)) => match t.parse::<i64>() {
                Ok(n) => stmt.raw_bind_parameter(i, n),
                Err(_) => stmt.raw_bind_parameter(i, t),
            },
            (_, Some(t)) => stmt.raw_bind_parameter(i, t),
        };
        r.map_err(fail)?;
    }
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let mut types: Vec<Option<&'static str>> = vec![None; names.len()];
    let mut out = Vec::new();
    let mut rows = stmt.raw_query();
    while let Some(r) = rows.next().map_err(fail)? {
        if row_limit.is_some_and(|l| out.len() as u64 >= l) {
            break;
        }
        let mut line = Vec::with_capacity(names.len());
        for (i, ty) in types.iter_mut().enumerate() {
            let v = r.get_ref(i).map_err(fail)?;
            let (val, t) = match v {
                rusqlite::types::ValueRef::Null => (Value::Null, None),
                rusqlite::types::ValueRef::Integer(n) => (json!(n.to_string()), Some("LONG")),
                rusqlite::types::ValueRef::Real(x) => (json!(x.to_string()), Some("DOUBLE")),
                rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                    (json!(String::from_utf8_lossy(t)), Some("STRING"))
                }
            };
            if ty.is_none() {
                *ty = t;
            }
            line.push(val);
        }
        out.push(line);
    }
    let cols = names
        .into_iter()
        .zip(types)
        .map(|(n, t)| (n, t.unwrap_or("STRING").to_owned()))
        .collect();
    Ok((cols, out))
}

/// Creates table `name` (every column text) and loads `rows` into it.
pub fn load_table<'a>(
    conn: &rusqlite::Connection,
    name: &str,
    columns: &[String],
    rows: impl Iterator<Item = &'a Vec<String>>,
) -> rusqlite::Result<()> {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let cols: Vec<String> = columns.iter().map(|c| format!("{} TEXT", q(c))).collect();
    conn.execute_batch(&format!("CREATE TABLE {} ({})", q(name), cols.join(", ")))?;
    let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    let tx = conn.unchecked_transaction()?;
    {
        let mut ins = tx.prepare(&format!("INSERT INTO {} VALUES ({})", q(name), marks.join(", ")))?;
        for r in rows {
            let vals: Vec<Option<&str>> = (0..columns.len())
                .map(|i| r.get(i).map(String::as_str).filter(|v| !v.is_empty()))
                .collect();
            ins.execute(rusqlite::params_from_iter(vals))?;
        }
    }
    tx.commit()
}
