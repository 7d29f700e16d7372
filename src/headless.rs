//! Headless output: the same engine and reducer as the console, printing lines (or JSON) instead of
//! drawing.
//!
//! Text output is one line per event a person wants to read (steps starting and finishing with
//! their duration, gate verdicts, parity samples, decisions, alerts, install records); jsonl is
//! every journaled envelope as one JSON object per line. Both come from the journal subscription,
//! so they show only what is already durable.

use std::io::Write;

use tokio_util::sync::CancellationToken;

use crate::engine::event::{Event, RunOutcome, StepOutcome};
use crate::engine::runner::{RunOptions, SetupError, start_engine};
use crate::engine::{Envelope, RunEnd, RunState};

/// What headless mode prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One readable line per meaningful event.
    #[default]
    Text,
    /// Every journaled envelope as one JSON object per line.
    Jsonl,
}

/// The text line for one envelope (after `state` applied it), or `None` for events a person does
/// not need to read one by one (requests, progress, error counts).
pub fn text_line(env: &Envelope, state: &RunState) -> Option<String> {
    let t = env.at.format("%H:%M:%S");
    let line = match &env.event {
        Event::RunStarted {
            runbook,
            operator,
            host,
            steps,
            ..
        } => format!(
            "run {} started: {} {} by {operator} on {host}, {} steps",
            env.run_id,
            runbook.name,
            runbook.version,
            steps.len()
        ),
        Event::RunResumed {
            operator,
            host,
            accepted_changed_runbook,
        } => format!(
            "run {} resumed by {operator} on {host}{}",
            env.run_id,
            if *accepted_changed_runbook {
                " (changed runbook accepted)"
            } else {
                ""
            }
        ),
        Event::StepIntent {
            step,
            attempt,
            handle,
        } => {
            let h = handle
                .as_ref()
                .map(|h| format!(" [{} {}]", h.kind, h.id))
                .unwrap_or_default();
            let a = if *attempt > 1 {
                format!(" (attempt {attempt})")
            } else {
                String::new()
            };
            format!("start   {step}{a}{h}")
        }
        Event::StepFinished { step, outcome, .. } => {
            let d = state
                .step(step.as_str())
                .and_then(|s| s.duration_ms)
                .map(crate::util::duration::readable_ms)
                .unwrap_or_default();
            match outcome {
                StepOutcome::Succeeded => format!("done    {step} in {d}"),
                StepOutcome::Failed { message, reason } => format!(
                    "FAILED  {step} after {d}: {}",
                    StepOutcome::failure_text(message, reason.as_deref())
                ),
                StepOutcome::Skipped { reason } => format!("skipped {step}: {reason}"),
            }
        }
        Event::GateEvaluated {
            step,
            passed,
            failures,
            ..
        } => {
            if *passed {
                format!("gate    {step} passed")
            } else {
                let f: Vec<String> = failures
                    .iter()
                    .map(|f| {
                        let m = f
                            .company
                            .as_ref()
                            .map_or_else(|| f.map.clone(), |c| format!("{}/{c}", f.map));
                        format!(
                            "{m} source {} target {} allowed {} errors {}",
                            f.source, f.target, f.allowed, f.errors
                        )
                    })
                    .collect();
                format!("gate    {step} FAILED: {}", f.join("; "))
            }
        }
        Event::GateRecheck { step, check, of, at } => format!(
            "gate    {step}: re-check {check}/{of} at {}",
            at.format("%H:%M:%S")
        ),
        Event::ParitySample {
            map,
            company,
            source,
            target,
            ..
        } => {
            let m = company
                .as_ref()
                .map_or_else(|| map.clone(), |c| format!("{map}/{c}"));
            let mark = if source == target { "=" } else { "≠" };
            format!("parity  {m}: source {source} {mark} target {target}")
        }
        Event::AwaitingOperator {
            step,
            decision,
            prompt,
            ..
        } => format!(
            "waiting {} for {decision:?}: {}",
            step.as_ref().map_or("run", |s| s.as_str()),
            prompt.lines().next().unwrap_or("")
        ),
        Event::OperatorDecision {
            step,
            action,
            operator,
            reason,
            identity,
            ..
        } => format!(
            "decided {}: {action:?} by {operator}{}{}",
            step.as_ref().map_or("run", |s| s.as_str()),
            identity
                .as_ref()
                .map(|i| format!(" [signed in as {}]", i.label()))
                .unwrap_or_default(),
            reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()
        ),
        Event::ApprovalRefused {
            step, action, reason, ..
        } => format!(
            "REFUSED {}: {action:?}: {reason}",
            step.as_ref().map_or("run", |s| s.as_str())
        ),
        Event::ErrorEntries { map, entries, source } if !entries.is_empty() => format!(
            "errors  {map}: {} new entries ({})",
            entries.len(),
            source.as_deref().unwrap_or("error_queue")
        ),
        Event::ErrorCounts {
            map,
            by_category,
            source: Some(source),
            unavailable,
        } if unavailable.is_some() || by_category.values().any(|n| *n > 0) => match unavailable {
            Some(why) => format!("errors  {map}: not available ({why}) ({source})"),
            None => format!("errors  {map}: {} ({source})", by_category.values().sum::<u64>()),
        },
        Event::Alert {
            severity, message, ..
        } => format!("ALERT   [{severity:?}] {message}"),
        Event::InstallRecord {
            step,
            package,
            version,
            sha256,
            execution_id,
            result,
        } => format!(
            "install {step}: {package} {version} sha256 {} execution {execution_id}: {result}",
            &sha256[..sha256.len().min(12)]
        ),
        Event::RowsReconciled {
            step,
            map,
            company,
            source_rows,
            target_rows,
            matching,
            missing,
            extra,
            different,
            ..
        } => format!(
            "rows    {step}: {map}{} {source_rows} / {target_rows} rows: {matching} match, {missing} missing, {extra} extra, {different} different",
            company.as_ref().map(|c| format!("@{c}")).unwrap_or_default()
        ),
        Event::LeaseTakenOver {
            previous_holder,
            previous_host,
            previous_pid,
            holder,
            ..
        } => format!(
            "lease taken over by {holder} from {previous_holder} (pid {previous_pid} on {previous_host})"
        ),
        Event::Log { level, message } if *level >= crate::engine::event::LogLevel::Info => {
            format!("log     {message}")
        }
        Event::RunFinished { outcome } => match outcome {
            RunOutcome::Succeeded => format!("run {} finished: succeeded", env.run_id),
            RunOutcome::Failed { message } => format!("run {} finished: FAILED: {message}", env.run_id),
            RunOutcome::Aborted { reason } => format!("run {} finished: aborted: {reason}", env.run_id),
        },
        _ => return None,
    };
    // Every value in the line may come from outside (a service's message, a record, a file name): no
    // control, escape or bidi character reaches the terminal, and no newline starts a line of its own.
    Some(format!("{t} {}", crate::util::inert_line(&line)))
}

/// Drives a run headless, printing its events on stdout as they are journaled, until it ends or
/// `interrupt` is cancelled (the engine then stops; the journal is consistent).
pub async fn drive(
    opts: RunOptions,
    format: Format,
    interrupt: CancellationToken,
) -> Result<RunEnd, SetupError> {
    let (handle, mut state, mut sub) = start_engine(opts).await?;
    let cancel = handle.cancel.clone();
    tokio::spawn(async move {
        interrupt.cancelled().await;
        cancel.cancel();
    });
    let mut out = std::io::stdout().lock();
    let mut done = handle.done;
    let end = loop {
        tokio::select! {
            biased;
            Some(env) = sub.recv() => {
                state.apply(&env);
                let line = match format {
                    Format::Jsonl => serde_json::to_string(&env).ok(),
                    Format::Text => text_line(&env, &state),
                };
                if let Some(l) = line {
                    // A closed stdout must not stop the run; the journal is the record.
                    let _ = writeln!(out, "{l}");
                }
            }
            end = &mut done => break end.unwrap_or_else(|e| RunEnd::Broken(e.to_string())),
        }
    };
    // Whatever was committed before the end is still queued on the subscription.
    while let Ok(env) = sub.try_recv() {
        state.apply(&env);
        let line = match format {
            Format::Jsonl => serde_json::to_string(&env).ok(),
            Format::Text => text_line(&env, &state),
        };
        if let Some(l) = line {
            let _ = writeln!(out, "{l}");
        }
    }
    let _ = out.flush();
    Ok(end)
}
