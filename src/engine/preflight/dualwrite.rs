//! Dual-write: in gateway mode every runbook map exists on the gateway, with its state (a read of the maps);
//! in operator mode there is nothing to ask, and the line is the checklist the operator confirms by hand.

use super::{Ctx, fix, line};
use crate::connectors::dual_write::GatewayClient;
use crate::model::event::{CheckStatus, PreflightCheck};
use crate::runbook::{DualWriteMode, EnvKind};

const CHECK: &str = "dualwrite";

fn set(s: &str) -> &str {
    s.split_once(':').map_or(s, |(_, r)| r)
}

pub async fn run(cx: &mut Ctx<'_>) -> Vec<PreflightCheck> {
    let mut out = Vec::new();
    let dw: Vec<(String, DualWriteMode)> = cx
        .envs
        .iter()
        .filter(|(_, e)| e.kind == EnvKind::Dualwrite)
        .map(|(n, e)| (n.clone(), e.mode))
        .collect();
    let maps = &cx.opts.runbook.maps;
    for (name, mode) in dw {
        if mode == DualWriteMode::Operator {
            let list: Vec<String> = maps
                .iter()
                .map(|(id, m)| format!("{id} ({} → {})", set(&m.source), set(&m.target)))
                .collect();
            out.push(line(
                CHECK,
                format!("{name} (operator mode)"),
                CheckStatus::Ok,
                format!(
                    "nothing to ask (no supported API); confirm by hand in F&O → Data management → Dual-write: the link to Dataverse is healthy, the dual-write solutions are installed, and these {} maps are listed and Not running: {}",
                    list.len(),
                    list.join(", ")
                ),
            ));
            continue;
        }
        let t = match cx.ready(&name) {
            Ok(t) => t.clone(),
            Err(why) => {
                out.push(line(CHECK, &name, CheckStatus::Skipped, why));
                continue;
            }
        };
        let gw = GatewayClient::new(t);
        let listed = match gw.maps(&cx.cancel).await {
            Ok(l) => l,
            Err(e) => {
                out.push(fix(
                    line(CHECK, &name, CheckStatus::Error, e.to_string()),
                    format!("check `url` and the sign-in of `{name}`; gateway mode is unsupported by Microsoft, operator mode needs no gateway"),
                ));
                continue;
            }
        };
        for (id, m) in maps {
            let subject = format!("{name}: {id}");
            let found = listed
                .iter()
                .find(|g| g.is_between(set(&m.source), set(&m.target)));
            out.push(match found {
                Some(g) => {
                    let state = crate::connectors::dual_write::status::name(g.state());
                    line(CHECK, subject, CheckStatus::Ok, format!("map exists, state {state}"))
                }
                None => fix(
                    line(
                        CHECK,
                        subject,
                        CheckStatus::Error,
                        format!("no dual-write map {} → {} on the gateway", set(&m.source), set(&m.target)),
                    ),
                    "apply the dual-write solution that carries this map (or add it in the dual-write workspace), or correct the map's `source`/`target`",
                ),
            });
        }
    }
    out
}
