//! The service answers with this token: Dataverse `WhoAmI` (who the app is in the organisation), F&O a cheap
//! read of the metadata service (`/Metadata/PublicEntities?$top=1`, one row). The answer's headers are kept for
//! the clock and service-protection checks.

use chrono::Utc;

use super::{Ctx, fix, line};
use crate::connectors::parse;
use crate::connectors::transport::Request;
use crate::model::event::{CheckStatus, PreflightCheck};
use crate::runbook::EnvKind;

const CHECK: &str = "reach";

pub async fn run(cx: &mut Ctx<'_>) -> Vec<PreflightCheck> {
    let mut out = Vec::new();
    let names: Vec<(String, EnvKind)> = cx
        .envs
        .iter()
        .filter(|(_, e)| matches!(e.kind, EnvKind::Fno | EnvKind::Dataverse))
        .map(|(n, e)| (n.clone(), e.kind))
        .collect();
    for (name, kind) in names {
        let t = match cx.ready(&name) {
            Ok(t) => t.clone(),
            Err(why) => {
                out.push(line(CHECK, &name, CheckStatus::Skipped, why));
                continue;
            }
        };
        let req = match kind {
            EnvKind::Dataverse => Request::get("dataverse.whoami", "/api/data/v9.2/WhoAmI"),
            _ => Request::get("fno.metadata", "/Metadata/PublicEntities")
                .query("$top", "1")
                .query("$select", "Name"),
        };
        let before = Utc::now();
        let sent = t.send(req, &cx.cancel).await;
        let after = Utc::now();
        let l = match sent {
            Ok(resp) => {
                let mid = before + (after - before) / 2;
                let what = match kind {
                    EnvKind::Dataverse => {
                        let user = t
                            .parse(&resp, parse::object)
                            .ok()
                            .and_then(|o| o.get("UserId").and_then(parse::scalar_string))
                            .unwrap_or_default();
                        format!("WhoAmI: the app is user {user} in this organisation")
                    }
                    _ => "the metadata service answers a read".to_owned(),
                };
                cx.envs
                    .entry(name.clone())
                    .and_modify(|e| e.answer = Some((resp.headers.clone(), mid)));
                line(CHECK, &name, CheckStatus::Ok, what)
            }
            Err(e) => {
                let f = match kind {
                    EnvKind::Dataverse => format!(
                        "make the app an application user of this organisation (Power Platform admin center → Environments → Settings → Users + permissions → Application users) with a security role, and check `url` of `{name}`"
                    ),
                    _ => format!(
                        "register the app in F&O (System administration → Setup → Azure Active Directory applications, mapped to a user with the needed roles) and check `url` of `{name}`"
                    ),
                };
                fix(line(CHECK, &name, CheckStatus::Error, e.to_string()), f)
            }
        };
        out.push(l);
    }
    out
}
