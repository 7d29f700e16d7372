//! `cutover sim`: serve the simulated F&O, Dataverse, dual-write and Entra ID endpoints on
//! loopback until SIGINT/SIGTERM, or (the detached simulator of `demo`/`--sim`, see
//! [`super::sim_process`]) until idle or until the record beside its journal no longer names it.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::{exit, runtime};
use crate::sim::{Scenario, SimError, start};

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Scenario file (YAML). Without it (and without --from-runbook) the demo scenario is served.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Serve the estate a runbook names (its maps, companies, row estimates, DMF projects), to rehearse a
    /// runbook before writing a scenario for it.
    #[arg(long, value_name = "RUNBOOK", conflicts_with = "scenario")]
    pub from_runbook: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Exit after this many seconds without a request (the detached simulator of `demo`/`--sim`).
    #[arg(long, value_name = "SECS")]
    pub exit_when_idle: Option<u64>,
    /// Exit once this file (the `<journal>.sim` record naming this process) is gone: the journal was
    /// deleted or its run finished.
    #[arg(long, value_name = "FILE", hide = true)]
    pub exit_without: Option<PathBuf>,
}

/// `cutover sim`: prints `listening on http://HOST:PORT` first, serves until SIGINT/SIGTERM.
pub fn run(args: &SimArgs) -> color_eyre::Result<i32> {
    let scenario = match (&args.scenario, &args.from_runbook) {
        (None, Some(rb)) => {
            let file = rb.display().to_string();
            let text = match std::fs::read_to_string(rb) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("cutover: {file}: {e}");
                    return Ok(exit::INVALID);
                }
            };
            let loaded = crate::runbook::load(&text, &file);
            let diags = crate::runbook::validate_loaded(&loaded, &file, &crate::runbook::ProcessEnv, false);
            let Some(runbook) = loaded.runbook.filter(|_| !diags.iter().any(|d| d.is_error())) else {
                eprintln!("cutover: {file} does not validate (see `cutover validate {file}`)");
                return Ok(exit::INVALID);
            };
            match crate::sim::from_runbook::scenario_from_runbook(&runbook) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("cutover: the estate of {file}: {e}");
                    return Ok(exit::INVALID);
                }
            }
        }
        (None, None) => Scenario::demo(),
        (Some(path), _) => match std::fs::read_to_string(path)
            .map_err(SimError::from)
            .and_then(|t| Scenario::from_yaml(&t))
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cutover: {}: {e}", path.display());
                return Ok(exit::INVALID);
            }
        },
    };
    let addr: SocketAddr = match args.listen.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cutover: --listen {}: {e}", args.listen);
            return Ok(exit::INVALID);
        }
    };
    runtime::block_on(|interrupt| async move {
        let handle = match start(scenario, addr).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("cutover: {e}");
                return exit::INVALID;
            }
        };
        let mut out = std::io::stdout();
        let _ = writeln!(out, "listening on {}", handle.url());
        let _ = out.flush();
        let idle = args.exit_when_idle.map(std::time::Duration::from_secs);
        let record = args.exit_without.clone();
        let mut seen_record = false;
        let started = std::time::Instant::now();
        let mut every = tokio::time::interval(std::time::Duration::from_millis(500));
        loop {
            tokio::select! {
                () = interrupt.cancelled() => break,
                _ = every.tick() => {}
            }
            if let Some(limit) = idle
                && handle.idle_for() >= limit
            {
                let _ = writeln!(out, "no request for {} s: exiting", limit.as_secs());
                break;
            }
            if let Some(r) = &record {
                // The record is written just after this process starts listening.
                let names_me = std::fs::read(r)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .and_then(|v| v["pid"].as_u64())
                    == Some(u64::from(std::process::id()));
                seen_record |= names_me;
                if (seen_record && !names_me)
                    || (!seen_record && started.elapsed() > std::time::Duration::from_secs(60))
                {
                    let _ = writeln!(out, "{} no longer names this simulator: exiting", r.display());
                    break;
                }
            }
        }
        handle.shutdown().await;
        exit::OK
    })
}
