//! Value maps: every compared pair of an F&O enum field and a Dataverse choice column is checked against
//! both sides' metadata. The F&O members come from the metadata service (`PublicEntities` says which
//! property is an `Enum` and of which enumeration, `PublicEnumerations` lists its members: the `$metadata`
//! document says the same, but is tens of megabytes on a real environment); the Dataverse options from the
//! attribute's `PicklistAttributeMetadata` with its `OptionSet`. Reported, each with its fix: a value
//! present on one side and mapped by nothing, a mapping to a value that does not exist, a Dataverse option
//! that two F&O values map to, and an enum compared with a choice with no value map at all.

use std::collections::BTreeMap;

use super::{Ctx, fix, line};
use crate::connectors::metadata::{self, DvTable, FnoEntity};
use crate::connectors::transport::Transport;
use crate::model::event::{CheckStatus, PreflightCheck};
use crate::runbook::{EnvKind, MapSpec};

const CHECK: &str = "values";

fn split(s: &str) -> (&str, &str) {
    s.split_once(':').unwrap_or(("", s))
}

/// A map's two sides as (F&O env, F&O set, Dataverse env, Dataverse set, F&O is the source).
pub(super) fn sides<'a>(
    cx: &Ctx<'_>,
    map: &'a MapSpec,
) -> Option<(&'a str, &'a str, &'a str, &'a str, bool)> {
    let (senv, sset) = split(&map.source);
    let (tenv, tset) = split(&map.target);
    let kind = |e: &str| cx.envs.get(e).map(|x| x.kind);
    match (kind(senv), kind(tenv)) {
        (Some(EnvKind::Fno), Some(EnvKind::Dataverse)) => Some((senv, sset, tenv, tset, true)),
        (Some(EnvKind::Dataverse), Some(EnvKind::Fno)) => Some((tenv, tset, senv, sset, false)),
        _ => None,
    }
}

/// The two sides' transports, the F&O entity and the Dataverse table of a map, or the line saying why not.
pub(super) async fn both(
    cx: &Ctx<'_>,
    check: &str,
    id: &str,
    (fenv, fset, denv, dset): (&str, &str, &str, &str),
) -> Result<(Transport, Transport, FnoEntity, DvTable), PreflightCheck> {
    let subject = id.to_owned();
    let ft = cx
        .ready(fenv)
        .map_err(|why| line(check, &subject, CheckStatus::Skipped, why))?
        .clone();
    let dt = cx
        .ready(denv)
        .map_err(|why| line(check, &subject, CheckStatus::Skipped, why))?
        .clone();
    let missing = || {
        line(
            check,
            &subject,
            CheckStatus::Skipped,
            "an entity set is missing (see the entity check)",
        )
    };
    let e = match metadata::fno_entity(&ft, fset, &cx.cancel).await {
        Ok(Some(e)) => e,
        Ok(None) => return Err(missing()),
        Err(e) => return Err(line(check, &subject, CheckStatus::Error, e.to_string())),
    };
    let t = match metadata::dataverse_table(&dt, dset, &cx.cancel).await {
        Ok(Some(t)) => t,
        Ok(None) => return Err(missing()),
        Err(e) => return Err(line(check, &subject, CheckStatus::Error, e.to_string())),
    };
    Ok((ft, dt, e, t))
}

pub async fn run(cx: &mut Ctx<'_>) -> Vec<PreflightCheck> {
    let mut out = Vec::new();
    for (id, map) in &cx.opts.runbook.maps {
        let Some((fenv, fset, denv, dset, fwd)) = sides(cx, map) else {
            continue;
        };
        // (the compare's source field, F&O field, Dataverse field)
        let pairs: Vec<(&str, &str, &str)> = map
            .compare
            .iter()
            .map(|(s, t)| {
                if fwd {
                    (s.as_str(), s.as_str(), t.as_str())
                } else {
                    (s.as_str(), t.as_str(), s.as_str())
                }
            })
            .collect();
        let interesting = !map.values.is_empty() || !pairs.is_empty();
        if !interesting {
            continue;
        }
        let (ft, dt, entity, table) = match both(cx, CHECK, id.as_str(), (fenv, fset, denv, dset)).await {
            Ok(x) => x,
            Err(l) => {
                if !map.values.is_empty() {
                    out.push(l);
                }
                continue;
            }
        };
        for (key, ffield, dfield) in pairs {
            let subject = format!("{id}: {ffield} → {dfield}");
            let en = entity.enum_of(ffield).filter(|e| *e != "NoYes");
            let is_choice = table
                .attribute(dfield)
                .is_some_and(|a| a.attribute_type == "Picklist");
            let vm = map.values.get(key);
            if vm.is_none() && !(en.is_some() && is_choice) {
                continue;
            }
            let Some(en) = en else {
                out.push(fix(
                    line(CHECK, subject, CheckStatus::Error, format!("`{ffield}` is not an enum field of {} (the metadata service gives it no enumeration)", entity.name)),
                    format!("a value map is for an F&O enum field: remove `values.{key}` from map `{id}`, or name the enum field"),
                ));
                continue;
            };
            let members = match metadata::fno_enum_members(&ft, en, &cx.cancel).await {
                Ok(Some(m)) => m,
                Ok(None) => {
                    out.push(line(
                        CHECK,
                        subject,
                        CheckStatus::Error,
                        format!("the metadata service lists no enumeration `{en}`"),
                    ));
                    continue;
                }
                Err(e) => {
                    out.push(line(CHECK, subject, CheckStatus::Error, e.to_string()));
                    continue;
                }
            };
            let options = match metadata::dataverse_options(&dt, &table.logical_name, dfield, &cx.cancel)
                .await
            {
                Ok(Some(o)) => o,
                Ok(None) => {
                    out.push(fix(
                        line(CHECK, subject, CheckStatus::Error, format!("`{dfield}` of {} is not a choice column: F&O enum {en} has nothing to map to", table.logical_name)),
                        format!("compare `{ffield}` with the choice column dual-write maps it to, or remove `values.{key}`"),
                    ));
                    continue;
                }
                Err(e) => {
                    out.push(line(CHECK, subject, CheckStatus::Error, e.to_string()));
                    continue;
                }
            };
            out.extend(judge(
                id.as_str(),
                key,
                &subject,
                en,
                &members,
                dfield,
                &options,
                vm,
            ));
        }
    }
    out
}

fn option_list(options: &[(i64, String)]) -> String {
    options
        .iter()
        .map(|(v, l)| format!("{v} {l}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The lines of one enum ↔ choice pair.
#[allow(clippy::too_many_arguments)]
fn judge(
    id: &str,
    key: &str,
    subject: &str,
    en: &str,
    members: &[(String, i64)],
    dfield: &str,
    options: &[(i64, String)],
    vm: Option<&BTreeMap<String, i64>>,
) -> Vec<PreflightCheck> {
    let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
    let Some(vm) = vm else {
        return vec![fix(
            line(
                CHECK,
                subject,
                CheckStatus::Warning,
                format!(
                    "F&O enum {en} ({}) is compared with choice `{dfield}` ({}) with no value map: parity would call every row different",
                    names.join(", "),
                    option_list(options)
                ),
            ),
            format!(
                "copy the dual-write map's value map into map `{id}`: `values: {{ {key}: {{ {}: <option>, … }} }}`",
                names.first().unwrap_or(&"Value")
            ),
        )];
    };
    let mut out = Vec::new();
    let unmapped: Vec<&str> = names.iter().copied().filter(|n| !vm.contains_key(*n)).collect();
    if !unmapped.is_empty() {
        out.push(fix(
            line(CHECK, subject, CheckStatus::Warning, format!("F&O values of {en} mapped to no option: {}", unmapped.join(", "))),
            format!(
                "add them to the dual-write map's value map and to `values.{key}` of map `{id}` (options: {}); a row with one fails or syncs empty",
                option_list(options)
            ),
        ));
    }
    for (fno, dv) in vm {
        if !names.contains(&fno.as_str()) {
            out.push(fix(
                line(
                    CHECK,
                    subject,
                    CheckStatus::Error,
                    format!("`values.{key}` maps `{fno}`, which enum {en} does not have"),
                ),
                format!(
                    "correct the name to one of {} (names are case-sensitive)",
                    names.join(", ")
                ),
            ));
        }
        if !options.iter().any(|(v, _)| v == dv) {
            out.push(fix(
                line(
                    CHECK,
                    subject,
                    CheckStatus::Error,
                    format!("`values.{key}` maps `{fno}` to option {dv}, which `{dfield}` does not have"),
                ),
                format!(
                    "map it to one of {}, or add option {dv} to the choice",
                    option_list(options)
                ),
            ));
        }
    }
    let mut by_option: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for (fno, dv) in vm {
        by_option.entry(*dv).or_default().push(fno);
    }
    for (dv, fnos) in &by_option {
        if fnos.len() > 1 {
            out.push(fix(
                line(CHECK, subject, CheckStatus::Warning, format!("option {dv} is mapped twice: from {}", fnos.join(" and "))),
                format!("give each of {} its own option: a row written in Dataverse with {dv} cannot go back to F&O unambiguously", fnos.join(", ")),
            ));
        }
    }
    let unused: Vec<(i64, String)> = options
        .iter()
        .filter(|(v, _)| !by_option.contains_key(v))
        .cloned()
        .collect();
    if !unused.is_empty() {
        out.push(fix(
            line(CHECK, subject, CheckStatus::Warning, format!("options of `{dfield}` no F&O value maps to: {}", option_list(&unused))),
            format!("map an F&O value of {en} to each in `values.{key}` (and the dual-write map), or retire the option: a Dataverse row with one cannot be written to F&O"),
        ));
    }
    if out.is_empty() {
        out.push(line(
            CHECK,
            subject,
            CheckStatus::Ok,
            format!(
                "{} values of {en} map one to one onto the options of `{dfield}`",
                vm.len()
            ),
        ));
    }
    out
}
