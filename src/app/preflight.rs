//! `cutover preflight RUNBOOK`: the read-only checks of `engine::preflight` against the runbook's environments
//! (or the simulator), one line each; `--format json`; journaled with `--journal`. Exit 0 all ok, 1 warnings
//! only, 2 an error (or invalid input).
//!
//! With `--sim[=SCENARIO]` an in-process simulator stands in for every environment (stopped at the end), and
//! with `--sim-url` one already running. In both, a `${VAR}` the runbook's environments or webhooks use that is
//! not set gets a stand-in (the scenario's resource URL for the environment's kind, a made-up id or secret, the
//! simulator's webhook sink), and the output says which.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use color_eyre::eyre::WrapErr;

use super::{OutputFormat, exit};
use crate::engine::preflight::{self, PreflightOptions};
use crate::journal::{Journal, Redactor};
use crate::model::event::{CheckStatus, PreflightCheck};
use crate::model::{Event, RunId};
use crate::runbook::steps::StepKind;
use crate::runbook::vars::{Piece, VarRef, parse};
use crate::runbook::{EnvLookup, Runbook};

#[derive(Debug, Args)]
pub struct PreflightArgs {
    /// The runbook whose environments to check.
    pub runbook: PathBuf,
    /// Check against an in-process simulator (the demo scenario, or a scenario file) instead of the runbook's
    /// environments.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "demo", value_name = "SCENARIO")]
    pub sim: Option<String>,
    /// Check against a simulator already running at this URL.
    #[arg(long, conflicts_with = "sim", value_name = "URL")]
    pub sim_url: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
    /// Journal the results (a `preflight_checked` event) in this journal; the evidence report shows them.
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Operator name journaled with the results (default: $USER).
    #[arg(long)]
    pub operator: Option<String>,
    /// Create a missing Dataverse install table that a `dmf.import`'s `record_install` names (columns in the
    /// README). Without it a missing table is only reported.
    #[arg(long)]
    pub create_install_table: bool,
}

/// The exit code of a preflight's lines.
pub fn exit_code(checks: &[PreflightCheck]) -> i32 {
    match preflight::worst(checks) {
        CheckStatus::Ok | CheckStatus::Skipped => exit::OK,
        CheckStatus::Warning => exit::FAILED,
        CheckStatus::Error => exit::INVALID,
    }
}

fn var_names(text: &str, out: &mut Vec<String>) {
    if let Ok(pieces) = parse(text) {
        for p in pieces {
            if let Piece::Var {
                var: VarRef::Env(n), ..
            } = p
            {
                out.push(n);
            }
        }
    }
}

fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => var_names(s, out),
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Stand-ins for the unset variables of the environments and webhooks, when the simulator is the target.
fn sim_overlay(
    rb: &Runbook,
    sim_url: &str,
    scenario: Option<&crate::sim::Scenario>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let unset = |n: &str| {
        std::env::var(n).map_or(true, |v| v.is_empty()) && std::env::var(format!("{n}_FILE")).is_err()
    };
    for (name, env) in &rb.environments {
        let mut urls = Vec::new();
        if let Some(u) = &env.url {
            var_names(u, &mut urls);
        }
        let res = scenario.and_then(|s| match env.kind {
            crate::runbook::EnvKind::Fno => s.auth.resources.fno.clone(),
            crate::runbook::EnvKind::Dataverse => s.auth.resources.dataverse.clone(),
            crate::runbook::EnvKind::Dualwrite => s.auth.resources.dualwrite.clone(),
            crate::runbook::EnvKind::Http
            | crate::runbook::EnvKind::Adls
            | crate::runbook::EnvKind::Databricks
            | crate::runbook::EnvKind::Keyvault => None,
        });
        for n in urls.into_iter().filter(|n| unset(n)) {
            let v = res
                .clone()
                .unwrap_or_else(|| format!("https://{name}.sim.invalid"));
            out.insert(n, v);
        }
        let mut auth = Vec::new();
        if let Some(a) = &env.auth
            && let Ok(v) = serde_json::to_value(a)
        {
            strings(&v, &mut auth);
        }
        for n in auth.into_iter().filter(|n| unset(n)) {
            out.entry(n).or_insert_with(|| uuid::Uuid::new_v4().to_string());
        }
    }
    for phase in &rb.phases {
        for step in phase.steps.iter().flatten() {
            if let StepKind::Notify(n) = &step.kind
                && let Some(url) = &n.url
            {
                let mut names = Vec::new();
                var_names(url, &mut names);
                for v in names.into_iter().filter(|v| unset(v)) {
                    out.insert(v, format!("{}/_sim/webhook", sim_url.trim_end_matches('/')));
                }
            }
        }
    }
    for t in rb.notify_targets.values() {
        let mut names = Vec::new();
        var_names(&t.url, &mut names);
        for v in names.into_iter().filter(|v| unset(v)) {
            out.insert(v, format!("{}/_sim/webhook", sim_url.trim_end_matches('/')));
        }
    }
    out
}

fn print_text(rb: &Runbook, target: &str, checks: &[PreflightCheck], code: i32) {
    println!("preflight {} {} against {target}", rb.runbook, rb.version);
    let subject_w = checks
        .iter()
        .map(|c| c.subject.chars().count())
        .max()
        .unwrap_or(0)
        .min(48);
    for c in checks {
        println!(
            "{:<8} {:<15} {:<subject_w$}  {}",
            c.status.label(),
            c.check,
            c.subject,
            c.message
        );
        if let Some(f) = &c.fix {
            println!("{:<8} {:<15} {:<subject_w$}  fix: {f}", "", "", "");
        }
    }
    let n = |s: CheckStatus| checks.iter().filter(|c| c.status == s).count();
    println!(
        "{} ok, {} warnings, {} errors, {} skipped: exit {code}",
        n(CheckStatus::Ok),
        n(CheckStatus::Warning),
        n(CheckStatus::Error),
        n(CheckStatus::Skipped)
    );
}

fn journal_it(
    path: &Path,
    rb: &Runbook,
    text: &str,
    target: &str,
    operator: &str,
    checks: &[PreflightCheck],
) -> color_eyre::Result<String> {
    let journal = Journal::open(path, Redactor::new())
        .wrap_err_with(|| format!("opening the journal {}", path.display()))?;
    let run_id = RunId(format!("preflight-{}", uuid::Uuid::new_v4().simple()));
    let host = crate::journal::LeaseHolder::this_process(operator).host;
    let event = Event::PreflightChecked {
        runbook: rb.runbook.clone(),
        version: rb.version.clone(),
        runbook_sha256: crate::util::sha256_hex(text),
        operator: operator.to_owned(),
        host,
        target: target.to_owned(),
        checks: checks.to_vec(),
    };
    journal
        .writer()
        .append_blocking(run_id.clone(), event)
        .wrap_err_with(|| format!("journaling the preflight in {}", path.display()))?;
    journal
        .close()
        .wrap_err_with(|| format!("closing the journal {}", path.display()))?;
    Ok(run_id.0)
}

/// `cutover preflight`.
pub fn run(args: &PreflightArgs) -> color_eyre::Result<i32> {
    let file = args.runbook.display().to_string();
    let text = match std::fs::read_to_string(&args.runbook) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {file}: {e}");
            return Ok(exit::INVALID);
        }
    };
    let loaded = crate::runbook::load(&text, &file);
    let diags = crate::runbook::validate_loaded(&loaded, &file, &crate::runbook::ProcessEnv, false);
    let errors: Vec<String> = diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.render(Some(&text)))
        .collect();
    let Some(rb) = loaded.runbook.filter(|_| errors.is_empty()) else {
        for e in &errors {
            eprintln!("{e}");
        }
        eprintln!("error: {file} does not validate (see `cutover validate {file}`)");
        return Ok(exit::INVALID);
    };
    let scenario = match args.sim.as_deref() {
        None => None,
        Some("" | "demo") => Some(crate::sim::Scenario::demo()),
        Some(p) => {
            let t = match std::fs::read_to_string(p) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: scenario {p}: {e}");
                    return Ok(exit::INVALID);
                }
            };
            match crate::sim::Scenario::from_yaml(&t) {
                Ok(s) => Some(s),
                Err(e) => {
                    eprintln!("error: scenario {p}: {e}");
                    return Ok(exit::INVALID);
                }
            }
        }
    };
    let operator = args
        .operator
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "operator".into());
    let dir = args.runbook.parent().map(Path::to_path_buf).unwrap_or_default();
    let outcome = super::runtime::block_on(|cancel| async {
        let sim = match scenario.clone() {
            Some(s) => {
                let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
                Some(
                    crate::sim::start(s, addr)
                        .await
                        .map_err(|e| format!("cannot start the simulator: {e}"))?,
                )
            }
            None => None,
        };
        let sim_url = sim
            .as_ref()
            .map(crate::sim::SimHandle::url)
            .or_else(|| args.sim_url.clone());
        if let Some(u) = &args.sim_url {
            let ok = reqwest::Url::parse(u).is_ok_and(|p| crate::util::url_allowed(&p));
            if !ok {
                return Err(format!(
                    "--sim-url {u}: not a URL, or plain http to a host that is not loopback"
                ));
            }
        }
        let overlay = sim_url
            .as_deref()
            .map(|u| sim_overlay(&rb, u, scenario.as_ref()))
            .unwrap_or_default();
        let vars = move |n: &str| {
            overlay
                .get(n)
                .cloned()
                .or_else(|| crate::runbook::ProcessEnv.get(n))
        };
        let stood_in: Vec<String> = sim_url
            .as_deref()
            .map(|u| sim_overlay(&rb, u, scenario.as_ref()).into_keys().collect())
            .unwrap_or_default();
        let opts = PreflightOptions {
            runbook: &rb,
            dir: dir.clone(),
            file: file.clone(),
            vars: &vars,
            sim_url: sim_url.clone(),
            create_install_table: args.create_install_table,
        };
        let checks = preflight::run(&opts, cancel).await.map_err(|e| e.to_string());
        if let Some(s) = sim {
            s.shutdown().await;
        }
        Ok::<_, String>((checks?, sim_url, stood_in))
    })?;
    let (checks, sim_url, stood_in) = match outcome {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::INVALID);
        }
    };
    let target = match (&sim_url, &args.sim) {
        (Some(u), Some(s)) => format!(
            "the simulator ({} scenario) at {u}",
            if s.is_empty() { "demo" } else { s }
        ),
        (Some(u), None) => format!("the simulator at {u}"),
        _ => "the live environments".to_owned(),
    };
    if !stood_in.is_empty() {
        eprintln!(
            "cutover: not set, stood in for by the simulator's values: {}",
            stood_in.join(", ")
        );
    }
    let code = exit_code(&checks);
    if args.format == OutputFormat::Json {
        let n = |s: CheckStatus| checks.iter().filter(|c| c.status == s).count();
        let doc = serde_json::json!({
            "runbook": rb.runbook, "version": rb.version, "target": target,
            "checks": checks,
            "summary": {"ok": n(CheckStatus::Ok), "warning": n(CheckStatus::Warning), "error": n(CheckStatus::Error), "skipped": n(CheckStatus::Skipped)},
            "exit": code,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).wrap_err("printing the preflight as JSON")?
        );
    } else {
        print_text(&rb, &target, &checks, code);
    }
    if let Some(j) = &args.journal {
        let kind = if sim_url.is_some() { "simulator" } else { "live" };
        let id = journal_it(j, &rb, &text, kind, &operator, &checks)?;
        eprintln!("cutover: preflight journaled in {} as {id}", j.display());
    }
    Ok(code)
}
