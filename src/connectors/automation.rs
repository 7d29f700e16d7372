//! Plug-ins and flows that act on the tables dual-write writes [doc: Web API entity reference,
//! `sdkmessageprocessingstep`, `workflow`; work with cloud flows using code]:
//!
//! - plug-in steps: `GET sdkmessageprocessingsteps?$select=name,statecode,statuscode,stage,mode&$expand=
//!   sdkmessageid($select=name),sdkmessagefilterid($select=primaryobjecttypecode)`, kept when the message is
//!   `Create` or `Update` and the filter's `primaryobjecttypecode` is one of the tables. `statecode` 0 Enabled /
//!   1 Disabled, `statuscode` 1 Enabled / 2 Disabled.
//! - cloud flows: `GET workflows?$filter=category eq 5&$select=workflowid,name,statecode,statuscode,clientdata`;
//!   the Dataverse trigger's table is `subscriptionRequest/entityname` among the trigger's `inputs.parameters`
//!   in `clientdata`. `statecode` 0 Draft (off) / 1 Activated (on), `statuscode` 1 / 2.
//! - switching one: `PATCH <set>(<id>)` with `statecode` and `statuscode`, `If-Match: *` so a missing row is a
//!   404 rather than an upsert. Setting a state is idempotent, so it is safe to repeat.

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::transport::{Request, Transport};
use super::{Result, parse};

const API: &str = "/api/data/v9.2";
pub const STEPS: &str = "sdkmessageprocessingsteps";
pub const FLOWS: &str = "workflows";

/// A plug-in step or a cloud flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Automation {
    /// `plugin_step` or `flow`.
    pub kind: &'static str,
    pub id: String,
    pub name: String,
    /// The table's logical name.
    pub table: String,
    /// The message (`Create`, `Update`) of a plug-in step.
    pub message: Option<String>,
    pub statecode: i64,
    pub statuscode: i64,
}

impl Automation {
    /// Enabled (a plug-in step) or activated (a flow).
    pub fn is_on(&self) -> bool {
        is_on(self.kind, self.statecode)
    }
    /// The (statecode, statuscode) that turns it off.
    pub fn off_state(&self) -> (i64, i64) {
        off_state(self.kind)
    }
}

/// Whether `statecode` means on for this kind.
pub fn is_on(kind: &str, statecode: i64) -> bool {
    if kind == "flow" {
        statecode == 1
    } else {
        statecode == 0
    }
}

/// The (statecode, statuscode) that turns a kind off.
pub fn off_state(kind: &str) -> (i64, i64) {
    if kind == "flow" { (0, 1) } else { (1, 2) }
}

/// The entity set of a kind.
pub fn set_of(kind: &str) -> &'static str {
    if kind == "flow" { FLOWS } else { STEPS }
}

fn int(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(Value::as_i64).unwrap_or(-1)
}

fn text(v: &Value, k: &str) -> String {
    v.get(k).and_then(parse::scalar_string).unwrap_or_default()
}

async fn all(t: &Transport, call: &str, first: Request, cancel: &CancellationToken) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut req = first;
    for _ in 0..1000 {
        let resp = t.send(req, cancel).await?;
        let page = t.parse(&resp, parse::collection)?;
        out.extend(page.value);
        match page.next_link {
            Some(next) => req = Request::next_link(call, next),
            None => return Ok(out),
        }
    }
    Ok(out)
}

/// The table a cloud flow's Dataverse trigger watches, from its `clientdata`.
pub fn flow_table(clientdata: &str) -> Option<String> {
    let v: Value = serde_json::from_str(clientdata).ok()?;
    let triggers = v.pointer("/properties/definition/triggers")?.as_object()?;
    triggers.values().find_map(|t| {
        t.pointer("/inputs/parameters")
            .and_then(|p| p.get("subscriptionRequest/entityname"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
}

/// The plug-in steps on `Create`/`Update` of `tables` (every table: `None`) and the cloud flows triggered on
/// them, on or off.
pub async fn list(
    t: &Transport,
    tables: Option<&[String]>,
    cancel: &CancellationToken,
) -> Result<Vec<Automation>> {
    let wanted = |table: &str| tables.is_none_or(|ts| ts.iter().any(|x| x.eq_ignore_ascii_case(table)));
    let call = "dataverse.automation.steps";
    let req = Request::get(call, format!("{API}/{STEPS}"))
        .query("$select", "name,statecode,statuscode,stage,mode")
        .query(
            "$expand",
            "sdkmessageid($select=name),sdkmessagefilterid($select=primaryobjecttypecode)",
        );
    let mut out = Vec::new();
    for s in all(t, call, req, cancel).await? {
        let message = s
            .pointer("/sdkmessageid/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let table = s
            .pointer("/sdkmessagefilterid/primaryobjecttypecode")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !matches!(message, "Create" | "Update") || !wanted(table) {
            continue;
        }
        out.push(Automation {
            kind: "plugin_step",
            id: text(&s, "sdkmessageprocessingstepid"),
            name: text(&s, "name"),
            table: table.to_owned(),
            message: Some(message.to_owned()),
            statecode: int(&s, "statecode"),
            statuscode: int(&s, "statuscode"),
        });
    }
    let call = "dataverse.automation.flows";
    let req = Request::get(call, format!("{API}/{FLOWS}"))
        .query("$filter", "category eq 5")
        .query("$select", "workflowid,name,statecode,statuscode,clientdata");
    for f in all(t, call, req, cancel).await? {
        let Some(table) = flow_table(&text(&f, "clientdata")) else {
            continue;
        };
        if !wanted(&table) {
            continue;
        }
        out.push(Automation {
            kind: "flow",
            id: text(&f, "workflowid"),
            name: text(&f, "name"),
            table,
            message: None,
            statecode: int(&f, "statecode"),
            statuscode: int(&f, "statuscode"),
        });
    }
    Ok(out)
}

/// The current (statecode, statuscode) of one plug-in step or flow.
pub async fn state(t: &Transport, kind: &str, id: &str, cancel: &CancellationToken) -> Result<(i64, i64)> {
    let req = Request::get(
        format!("dataverse.automation.state {kind}"),
        format!("{API}/{}({id})", set_of(kind)),
    )
    .query("$select", "statecode,statuscode");
    let resp = t.send(req, cancel).await?;
    let v = t.parse(&resp, parse::object)?;
    let v = Value::Object(v);
    Ok((int(&v, "statecode"), int(&v, "statuscode")))
}

/// Sets one plug-in step's or flow's state (`PATCH`, `If-Match: *`). A row that is gone is an error.
pub async fn set_state(
    t: &Transport,
    kind: &str,
    id: &str,
    (statecode, statuscode): (i64, i64),
    cancel: &CancellationToken,
) -> Result<()> {
    let req = Request::new(
        format!("dataverse.automation.set {kind}"),
        reqwest::Method::PATCH,
        format!("{API}/{}({id})", set_of(kind)),
    )
    .header("If-Match", "*")
    .json(json!({"statecode": statecode, "statuscode": statuscode}))
    .idempotency(super::request::Idempotency::Safe);
    t.send(req, cancel).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_trigger_names_its_table() {
        let cd = r#"{"properties":{"definition":{"triggers":{"When_a_row_is_added":{"inputs":{"parameters":{"subscriptionRequest/message":4,"subscriptionRequest/entityname":"salesorder"}}}}}}}"#;
        assert_eq!(flow_table(cd).as_deref(), Some("salesorder"));
        assert_eq!(flow_table("{}"), None);
        assert_eq!(flow_table("not json"), None);
        assert!(is_on("flow", 1) && !is_on("flow", 0) && is_on("plugin_step", 0) && !is_on("plugin_step", 1));
    }
}
