//! Where dual-write errors can actually be read. There is no error-queue API (the F&O `DualWriteErrorLog`
//! table is not an OData entity set; asking F&O for it as an entity set is 404 on a real environment), so each
//! figure the console shows comes from one named source, which is either available (a total, the total per
//! category, a bounded sample of entries) or not available (with the reason): never a silent zero.
//!
//! - [`SourceId::AsyncOperations`] `dataverse.asyncoperations`: failed Dataverse system jobs
//!   (`asyncoperations`, `statuscode eq 31`) for the map's target table (`primaryentitytype`, the logical
//!   name), created since a watermark: live-sync failures writing into Dataverse. Never resolved.
//! - [`SourceId::PluginTraceLogs`] `dataverse.plugintracelogs`: plug-in trace logs (`plugintracelogs`) of the
//!   target table (`primaryentity`) since the watermark; with tracing off the table is simply empty
//!   (available, 0).
//! - [`SourceId::DmfExecutionErrors`] `dmf.execution_errors`: DMF `GetExecutionErrors` of the map's
//!   initial-sync (DWM) execution, when the runbook names its execution id.
//! - [`SourceId::GatewayInitialSync`] `gateway.initial_sync`: the gateway's initial-sync details; not wired
//!   here yet (see [`gateway_initial_sync`]).
//!
//! A source is unavailable only when the service answers 403 or 404 for it (or the runbook gives it nothing
//! to read); any other failure is an error of the read, as for every other call. Categories are the
//! console's classification of each entry's message ([`classify`]): no source reports the error-queue
//! categories.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::dataverse::DataverseClient;
use super::dmf::DmfClient;
use super::transport::Request;
use super::{ConnectorError, Result, parse};

/// Entries kept per read (a sample; totals are exact).
pub const SAMPLE_MAX: usize = 50;

/// A source of dual-write error figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceId {
    AsyncOperations,
    PluginTraceLogs,
    DmfExecutionErrors,
    GatewayInitialSync,
}

impl SourceId {
    pub const ALL: [SourceId; 4] = [
        SourceId::AsyncOperations,
        SourceId::PluginTraceLogs,
        SourceId::DmfExecutionErrors,
        SourceId::GatewayInitialSync,
    ];

    /// The name the runbook, the journal and the console use.
    pub fn name(self) -> &'static str {
        match self {
            SourceId::AsyncOperations => "dataverse.asyncoperations",
            SourceId::PluginTraceLogs => "dataverse.plugintracelogs",
            SourceId::DmfExecutionErrors => "dmf.execution_errors",
            SourceId::GatewayInitialSync => "gateway.initial_sync",
        }
    }

    pub fn parse(name: &str) -> Option<SourceId> {
        SourceId::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Where its figures come from, for the console and the report.
    pub fn origin(self) -> &'static str {
        match self {
            SourceId::AsyncOperations => "Dataverse failed system jobs (asyncoperations, statuscode 31)",
            SourceId::PluginTraceLogs => "Dataverse plug-in trace logs (plugintracelogs)",
            SourceId::DmfExecutionErrors => "F&O DMF GetExecutionErrors of the initial-sync execution",
            SourceId::GatewayInitialSync => "dual-write gateway initial-sync details",
        }
    }
}

/// One entry read from a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEntry {
    /// The source's own id (a GUID for Dataverse rows; `<execution>#<n>` for DMF errors).
    pub id: String,
    /// When the source says it happened (empty when it does not say).
    pub at: String,
    pub key: String,
    pub category: String,
    pub message: String,
}

/// What one source says about one map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceReport {
    Available {
        total: u64,
        by_category: BTreeMap<String, u64>,
        /// At most [`SAMPLE_MAX`], newest first where the source orders them.
        entries: Vec<SourceEntry>,
    },
    Unavailable {
        reason: String,
    },
}

impl SourceReport {
    pub fn unavailable(reason: impl Into<String>) -> Self {
        SourceReport::Unavailable {
            reason: reason.into(),
        }
    }

    pub fn total(&self) -> Option<u64> {
        match self {
            SourceReport::Available { total, .. } => Some(*total),
            SourceReport::Unavailable { .. } => None,
        }
    }
}

/// The console's category for an error message (no source reports one): the error-queue categories the
/// console has always shown, by words in the message, else `other`.
pub fn classify(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("lookup") {
        "missing_lookup"
    } else if m.contains("enum") || m.contains("conversion") {
        "enum_conversion"
    } else if m.contains("already exists") || m.contains("duplicate") {
        "duplicate_key"
    } else if m.contains("company") || m.contains("legal entity") {
        "company_context"
    } else if m.contains("mapping") {
        "missing_field_mapping"
    } else if m.contains("plug-in") || m.contains("plugin") {
        "plugin_exception"
    } else {
        "other"
    }
}

/// A 403 or 404 means the source is not there for us: unavailable, with the service's words.
fn unavailable_or(e: ConnectorError) -> Result<SourceReport> {
    let status = match &e {
        ConnectorError::NotFound { .. } => 404,
        ConnectorError::Auth {
            status: Some(403), ..
        } => 403,
        ConnectorError::Service { status, .. } if matches!(*status, 403 | 404) => *status,
        _ => return Err(e),
    };
    Ok(SourceReport::unavailable(format!("HTTP {status}: {e}")))
}

/// The watermark as an OData `DateTimeOffset` literal (UTC, milliseconds).
pub fn odata_instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn text(o: &Value, k: &str) -> String {
    o.get(k).and_then(parse::scalar_string).unwrap_or_default()
}

/// Reads a Dataverse table filtered by `filter`: the exact count, then the newest [`SAMPLE_MAX`] rows.
async fn dataverse_rows(
    dv: &DataverseClient,
    call: &str,
    set: &str,
    select: &str,
    filter: &str,
    cancel: &CancellationToken,
) -> Result<(u64, Vec<Value>)> {
    let req = Request::get(call, format!("/api/data/v9.2/{set}"))
        .query("$select", select)
        .query("$filter", filter)
        .query("$orderby", "createdon desc")
        .query("$count", "true")
        .query("$top", SAMPLE_MAX.to_string());
    let resp = dv.transport().send(req, cancel).await?;
    let page = dv.transport().parse(&resp, parse::collection)?;
    let total = page.count.unwrap_or(page.value.len() as u64);
    Ok((total, page.value))
}

fn tally(entries: &[SourceEntry], total: u64) -> BTreeMap<String, u64> {
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    for e in entries {
        *by.entry(e.category.clone()).or_default() += 1;
    }
    let seen = entries.len() as u64;
    if total > seen {
        *by.entry("unsampled".into()).or_default() += total - seen;
    }
    by
}

/// `dataverse.asyncoperations`: failed system jobs of `logical` (the target's logical name) since `since`.
pub async fn async_operations(
    dv: &DataverseClient,
    logical: &str,
    since: DateTime<Utc>,
    cancel: &CancellationToken,
) -> Result<SourceReport> {
    let filter = format!(
        "statuscode eq 31 and primaryentitytype eq {} and createdon ge {}",
        super::fno::odata_string(logical),
        odata_instant(since)
    );
    dataverse_source(
        dv,
        "dataverse.asyncoperations",
        "asyncoperations",
        "asyncoperationid,name,message,friendlymessage,statuscode,createdon,primaryentitytype",
        &filter,
        cancel,
        |r| {
            let message = Some(text(r, "friendlymessage"))
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| text(r, "message"));
            SourceEntry {
                id: text(r, "asyncoperationid"),
                at: text(r, "createdon"),
                key: text(r, "name"),
                category: classify(&message).to_owned(),
                message,
            }
        },
    )
    .await
}

/// One Dataverse table read as a source: its rows matching `filter` (the total and a bounded sample), each
/// made an entry by `entry`; a 403/404 is "not available".
async fn dataverse_source(
    dv: &DataverseClient,
    call: &str,
    set: &str,
    select: &str,
    filter: &str,
    cancel: &CancellationToken,
    entry: impl Fn(&Value) -> SourceEntry,
) -> Result<SourceReport> {
    let (total, rows) = match dataverse_rows(dv, call, set, select, filter, cancel).await {
        Ok(r) => r,
        Err(e) => return unavailable_or(e),
    };
    let entries: Vec<SourceEntry> = rows.iter().map(entry).collect();
    Ok(SourceReport::Available {
        total,
        by_category: tally(&entries, total),
        entries,
    })
}

/// `dataverse.plugintracelogs`: trace logs with an exception for `logical` since `since`.
pub async fn plugin_trace_logs(
    dv: &DataverseClient,
    logical: &str,
    since: DateTime<Utc>,
    cancel: &CancellationToken,
) -> Result<SourceReport> {
    let filter = format!(
        "primaryentity eq {} and exceptiondetails ne null and createdon ge {}",
        super::fno::odata_string(logical),
        odata_instant(since)
    );
    dataverse_source(
        dv,
        "dataverse.plugintracelogs",
        "plugintracelogs",
        "plugintracelogid,typename,messagename,primaryentity,exceptiondetails,messageblock,createdon,correlationid",
        &filter,
        cancel,
        |r| {
            let message = text(r, "exceptiondetails");
            SourceEntry {
                id: text(r, "plugintracelogid"),
                at: text(r, "createdon"),
                key: format!("{} {}", text(r, "messagename"), text(r, "typename"))
                    .trim()
                    .to_owned(),
                category: classify(&message).to_owned(),
                message,
            }
        },
    )
    .await
}

/// `dmf.execution_errors`: `GetExecutionErrors` of an initial-sync (DWM) execution. Every error of the
/// execution counts (an execution is one initial sync; its id is the operator's to give).
pub async fn dmf_execution_errors(
    dmf: &DmfClient,
    execution_id: &str,
    cancel: &CancellationToken,
) -> Result<SourceReport> {
    let errors = match dmf.execution_errors(execution_id, cancel).await {
        Ok(e) => e,
        Err(e) => return unavailable_or(e),
    };
    let total = errors.len() as u64;
    let entries: Vec<SourceEntry> = errors
        .into_iter()
        .take(SAMPLE_MAX)
        .enumerate()
        .map(|(i, e)| SourceEntry {
            id: format!("{execution_id}#{}", i + 1),
            at: String::new(),
            key: e.record_key,
            category: classify(&e.error_message).to_owned(),
            message: e.error_message,
        })
        .collect();
    Ok(SourceReport::Available {
        total,
        by_category: tally(&entries, total),
        entries,
    })
}

/// `gateway.initial_sync`: the map's initial-sync details through the dual-write gateway
/// (`api/ProjectExecutionWithCompanies/{pid}`, d365-api.md §5a): per legal entity `errorCount` and each leg's
/// `importErrors`/`exportErrors`. A map with no project yet has had no initial sync: available, 0. A 403/404
/// (the map or the call) is "not available".
pub async fn gateway_initial_sync(
    gw: &super::dual_write::GatewayClient,
    left: &str,
    right: &str,
    cancel: &CancellationToken,
) -> Result<SourceReport> {
    let map = match gw.find_map(left, right, cancel).await {
        Ok(m) => m,
        Err(e) => return unavailable_or(e),
    };
    let Some(pid) = map.detail.pid.clone() else {
        return Ok(SourceReport::Available {
            total: 0,
            by_category: BTreeMap::new(),
            entries: Vec::new(),
        });
    };
    let companies = match gw.initial_sync_details(&pid, cancel).await {
        Ok(c) => c,
        Err(e) => return unavailable_or(e),
    };
    let total: u64 = companies.iter().map(|c| c.error_count).sum();
    let mut entries = Vec::new();
    for c in &companies {
        let request = c.initial_sync_request_id.clone().unwrap_or_default();
        for (i, e) in c.errors().enumerate() {
            if entries.len() < SAMPLE_MAX {
                entries.push(SourceEntry {
                    id: format!("{pid}#{request}#{}#{i}", c.legal_entity_id),
                    at: String::new(),
                    key: if c.legal_entity_id.is_empty() {
                        e.record_id.clone()
                    } else {
                        format!("{} ({})", e.record_id, c.legal_entity_id)
                    },
                    category: classify(&e.error_message).to_owned(),
                    message: e.error_message.clone(),
                });
            }
        }
    }
    Ok(SourceReport::Available {
        total,
        by_category: tally(&entries, total),
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_messages_classify() {
        for s in SourceId::ALL {
            assert_eq!(SourceId::parse(s.name()), Some(s));
        }
        assert_eq!(SourceId::parse("fno.error_queue"), None);
        assert_eq!(classify("Lookup for 'x' could not be resolved"), "missing_lookup");
        assert_eq!(
            classify("A record with the same key already exists"),
            "duplicate_key"
        );
        assert_eq!(classify("boom"), "other");
    }

    #[test]
    fn only_403_and_404_make_a_source_unavailable() {
        let nf = ConnectorError::NotFound {
            env: "dv".into(),
            call: "dataverse.plugintracelogs".into(),
            message: "Resource not found for the segment 'plugintracelogs'.".into(),
        };
        let Ok(SourceReport::Unavailable { reason }) = unavailable_or(nf) else {
            panic!("a 404 is not available")
        };
        assert!(reason.starts_with("HTTP 404: "), "{reason}");
        let denied = ConnectorError::Auth {
            env: "dv".into(),
            call: "dataverse.asyncoperations".into(),
            status: Some(403),
            message: "missing privilege".into(),
        };
        assert!(matches!(
            unavailable_or(denied),
            Ok(SourceReport::Unavailable { .. })
        ));
        let unauth = ConnectorError::Auth {
            env: "dv".into(),
            call: "dataverse.asyncoperations".into(),
            status: Some(401),
            message: "expired".into(),
        };
        assert!(unavailable_or(unauth).is_err(), "a 401 is a failed read");
        let gone = ConnectorError::TransientExhausted {
            env: "dv".into(),
            call: "dataverse.asyncoperations".into(),
            attempts: 3,
            last: "503".into(),
        };
        assert!(
            unavailable_or(gone).is_err(),
            "a 5xx is a failed read, not an absent source"
        );
    }

    #[test]
    fn a_sample_smaller_than_the_total_is_tallied_as_unsampled() {
        let e = SourceEntry {
            id: "1".into(),
            at: String::new(),
            key: "k".into(),
            category: "other".into(),
            message: "m".into(),
        };
        let by = tally(&[e], 3);
        assert_eq!(by.get("other"), Some(&1));
        assert_eq!(by.get("unsampled"), Some(&2));
    }
}
