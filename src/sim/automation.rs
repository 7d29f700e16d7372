//! Plug-ins and flows: the scenario's `dataverse.plugin_steps` and `dataverse.flows` as the Dataverse tables
//! that hold them, so they are read and switched as on a real environment.
//!
//! - `sdkmessageprocessingsteps` (`sdkmessageprocessingstepid`, `name`, `stage`, `mode`, `statecode` 0 Enabled /
//!   1 Disabled, `statuscode` 1 Enabled / 2 Disabled, lookups `sdkmessageid` → `sdkmessages` (`name`: `Create`,
//!   `Update`) and `sdkmessagefilterid` → `sdkmessagefilters` (`primaryobjecttypecode`: the table's logical name)
//!   [doc: Web API entity reference]; a step is switched by `PATCH` of `statecode`/`statuscode`.
//! - `workflows` (`workflowid`, `name`, `category` 5 for a cloud flow, `type` 1, `primaryentity` `none`,
//!   `statecode` 0 Draft / 1 Activated, `statuscode` 1 Draft / 2 Activated, `clientdata`: the flow definition,
//!   whose Dataverse trigger names the table in `subscriptionRequest/entityname`) [doc: work with cloud flows
//!   using code]; a flow is turned off and on by `PATCH` of `statecode`/`statuscode`.
//!
//! Every estate has these tables (empty unless the scenario declares automation). A step with `throws_on_dual_write` fails every
//! record dual-write pushes into its table while it is enabled (see `dual_write.rs`).

use serde_json::{Map, Value, json};

use super::scenario::{EntityDef, Rows, Side};
use super::tables::{NO_COMPANY, Row, Table, logical_of};
use super::world::SimState;

pub const STEPS_SET: &str = "sdkmessageprocessingsteps";
pub const FLOWS_SET: &str = "workflows";
const MESSAGES_SET: &str = "sdkmessages";
const FILTERS_SET: &str = "sdkmessagefilters";

impl SimState {
    fn automation_table(
        &mut self,
        set: &str,
        logical: &str,
        id: &str,
        fields: &[(&str, &str)],
        lookups: &[(&str, &str)],
    ) {
        if self.dv_idx.contains_key(set) {
            return;
        }
        let def = EntityDef {
            id: Some(id.into()),
            logical_name: Some(logical.into()),
            fields: fields
                .iter()
                .map(|(f, k)| ((*f).to_owned(), (*k).to_owned()))
                .collect(),
            lookups: lookups
                .iter()
                .map(|(l, s)| ((*l).to_owned(), (*s).to_owned()))
                .collect(),
            rows: Rows::default(),
            ..EntityDef::default()
        };
        let t = Table::new(set, Side::Dataverse, &def, &self.companies, self.scenario.seed);
        self.dv_idx.insert(t.name.clone(), self.dv.len());
        self.dv.push(t);
    }

    fn automation_row(&mut self, set: &str, row: Map<String, Value>) {
        if let Some(&i) = self.dv_idx.get(set) {
            let n = self.dv[i].next_n;
            self.dv[i].next_n += 1;
            self.dv[i].push(Row {
                owned: Some(Box::new(row)),
                ..Row::generated(NO_COMPANY, n)
            });
        }
    }

    fn automation_guid(&self, what: &str, name: &str) -> String {
        let h = super::faults::mix(
            self.scenario.seed,
            super::faults::hash_str(what) ^ super::faults::hash_str(name).rotate_left(7),
        );
        super::tables::guid_from(super::faults::mix(h, 11), super::faults::mix(h, 13))
    }

    /// The logical name of a scenario entity set (`salesorders` → `salesorder`).
    fn logical_of_set(&self, set: &str) -> String {
        self.dv_idx
            .get(set)
            .map_or_else(|| logical_of(set), |&i| self.dv[i].logical.clone())
    }

    /// Builds the automation tables and their rows from the scenario.
    pub fn add_automation(&mut self) {
        let steps = self.scenario.dataverse.plugin_steps.clone();
        let flows = self.scenario.dataverse.flows.clone();
        self.automation_table(
            MESSAGES_SET,
            "sdkmessage",
            "sdkmessageid",
            &[("name", "text")],
            &[],
        );
        self.automation_table(
            FILTERS_SET,
            "sdkmessagefilter",
            "sdkmessagefilterid",
            &[("primaryobjecttypecode", "text")],
            &[("sdkmessageid", MESSAGES_SET)],
        );
        self.automation_table(
            STEPS_SET,
            "sdkmessageprocessingstep",
            "sdkmessageprocessingstepid",
            &[
                ("name", "text"),
                ("stage", "int"),
                ("mode", "int"),
                ("rank", "int"),
            ],
            &[
                ("sdkmessageid", MESSAGES_SET),
                ("sdkmessagefilterid", FILTERS_SET),
            ],
        );
        self.automation_table(
            FLOWS_SET,
            "workflow",
            "workflowid",
            &[
                ("name", "text"),
                ("category", "int"),
                ("type", "int"),
                ("primaryentity", "text"),
                ("clientdata", "text"),
            ],
            &[],
        );
        let mut messages: Vec<String> = Vec::new();
        let mut filters: Vec<(String, String)> = Vec::new();
        for s in &steps {
            let logical = self.logical_of_set(&s.table);
            let mid = self.automation_guid("sdkmessage", &s.message);
            if !messages.contains(&s.message) {
                messages.push(s.message.clone());
                let mut o = Map::new();
                o.insert("sdkmessageid".into(), json!(mid));
                o.insert("name".into(), json!(s.message));
                self.automation_row(MESSAGES_SET, o);
            }
            let fid = self.automation_guid("sdkmessagefilter", &format!("{logical}/{}", s.message));
            if !filters.contains(&(logical.clone(), s.message.clone())) {
                filters.push((logical.clone(), s.message.clone()));
                let mut o = Map::new();
                o.insert("sdkmessagefilterid".into(), json!(fid));
                o.insert("primaryobjecttypecode".into(), json!(logical));
                o.insert("_sdkmessageid_value".into(), json!(mid));
                self.automation_row(FILTERS_SET, o);
            }
            let mut o = Map::new();
            o.insert(
                "sdkmessageprocessingstepid".into(),
                json!(self.automation_guid("step", &format!("{}/{}", s.name, s.message))),
            );
            o.insert("name".into(), json!(s.name));
            o.insert("stage".into(), json!(40));
            o.insert("mode".into(), json!(0));
            o.insert("rank".into(), json!(1));
            o.insert("statecode".into(), json!(if s.enabled { 0 } else { 1 }));
            o.insert("statuscode".into(), json!(if s.enabled { 1 } else { 2 }));
            o.insert("_sdkmessageid_value".into(), json!(mid));
            o.insert("_sdkmessagefilterid_value".into(), json!(fid));
            self.automation_row(STEPS_SET, o);
        }
        for f in &flows {
            let logical = self.logical_of_set(&f.table);
            let clientdata = json!({"properties": {"definition": {"triggers": {
            "When_a_row_is_added,_modified_or_deleted": {
                "type": "OpenApiConnectionWebhook",
                "inputs": {"host": {"connectionName": "shared_commondataserviceforapps", "operationId": "SubscribeWebhookTrigger"},
                           "parameters": {"subscriptionRequest/message": 4, "subscriptionRequest/entityname": logical, "subscriptionRequest/scope": 4}}
            }}}}});
            let mut o = Map::new();
            o.insert("workflowid".into(), json!(self.automation_guid("flow", &f.name)));
            o.insert("name".into(), json!(f.name));
            o.insert("category".into(), json!(5));
            o.insert("type".into(), json!(1));
            o.insert("primaryentity".into(), json!("none"));
            o.insert("clientdata".into(), json!(clientdata.to_string()));
            o.insert("statecode".into(), json!(if f.enabled { 1 } else { 0 }));
            o.insert("statuscode".into(), json!(if f.enabled { 2 } else { 1 }));
            self.automation_row(FLOWS_SET, o);
        }
    }

    /// The enabled plug-in step on `set` that throws on what dual-write pushes: its name.
    pub fn throwing_plugin(&self, set: &str) -> Option<String> {
        let defs = &self.scenario.dataverse.plugin_steps;
        let &i = self.dv_idx.get(STEPS_SET)?;
        let t = &self.dv[i];
        defs.iter()
            .filter(|d| d.throws_on_dual_write && d.table == set)
            .find(|d| {
                let id = self.automation_guid("step", &format!("{}/{}", d.name, d.message));
                t.rows.iter().any(|r| {
                    r.owned.as_ref().is_some_and(|o| {
                        o.get("sdkmessageprocessingstepid").and_then(Value::as_str) == Some(id.as_str())
                            && o.get("statecode").and_then(Value::as_i64) == Some(0)
                    })
                })
            })
            .map(|d| d.name.clone())
    }

    /// `/_sim/state`'s `automation`: each plug-in step and flow by name with its statecode.
    pub fn automation_json(&self) -> Value {
        let mut out = Map::new();
        for set in [STEPS_SET, FLOWS_SET] {
            let Some(&i) = self.dv_idx.get(set) else { continue };
            let mut m = Map::new();
            for r in &self.dv[i].rows {
                if let Some(o) = &r.owned
                    && let Some(name) = o.get("name").and_then(Value::as_str)
                {
                    m.insert(
                        name.to_owned(),
                        json!({"statecode": o.get("statecode"), "statuscode": o.get("statuscode")}),
                    );
                }
            }
            out.insert(set.to_owned(), Value::Object(m));
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Scenario;

    #[test]
    fn a_throwing_plugin_throws_until_it_is_disabled() {
        let text = "companies: [USMF]\nentities:\n  fno: {}\n  dataverse:\n    salesorders: { key: ordernumber }\ndataverse:\n  plugin_steps:\n    - { name: Check, table: salesorders, message: Create, throws_on_dual_write: true }\n    - { name: Quiet, table: salesorders, message: Update }\n";
        let mut st = SimState::new(Scenario::from_yaml(text).unwrap());
        assert_eq!(st.throwing_plugin("salesorders").as_deref(), Some("Check"));
        assert_eq!(st.automation_json()[STEPS_SET]["Check"]["statecode"], 0);
        let i = st.dv_idx[STEPS_SET];
        for r in &mut st.dv[i].rows {
            if let Some(o) = r.owned.as_mut()
                && o["name"] == "Check"
            {
                o.insert("statecode".into(), json!(1));
            }
        }
        assert_eq!(st.throwing_plugin("salesorders"), None);
        assert!(
            st.dv_idx.contains_key(FLOWS_SET),
            "every estate has the workflows table"
        );
    }
}
