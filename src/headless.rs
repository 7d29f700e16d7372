//! Headless output: the same engine and reducer as the console, printing lines (or JSON) instead of
//! drawing.
//!
//! Text output is one line per event a person wants to read (steps starting and finishing with
//! their duration, gate verdicts, parity samples, decisions, alerts, install records); jsonl is
//! every journaled envelope as one JSON object per line. Both come from the journal subscription,
//! so they show only what is already durable.

use std::io::Write;

use tokio_util::sync::CancellationToken;

use crate::engine::runner::{RunOptions, SetupError, start_engine};
use crate::engine::{Envelope, RunEnd, RunState};
use crate::state::wording::{self, Class, Form};

/// What headless mode prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One readable line per meaningful event.
    #[default]
    Text,
    /// Every journaled envelope as one JSON object per line.
    Jsonl,
}

/// The text line for one envelope (after `state` applied it): the time and the event's wording
/// (see [`crate::state::wording`]), or `None` for events a person does not need to read one by one
/// (requests, progress, error counts with nothing to say).
pub fn text_line(env: &Envelope, state: &RunState) -> Option<String> {
    let w = wording::describe_in(env, state, Form::Line);
    if w.class == Class::Detail {
        return None;
    }
    // Every value in the line may come from outside (a service's message, a record, a file name): no
    // control, escape or bidi character reaches the terminal, and no newline starts a line of its own.
    Some(format!(
        "{} {}",
        env.at.format("%H:%M:%S"),
        crate::util::inert_line(&w.columns())
    ))
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
                    Format::Jsonl => serde_json::to_string(&*env).ok(),
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
            Format::Jsonl => serde_json::to_string(&*env).ok(),
            Format::Text => text_line(&env, &state),
        };
        if let Some(l) = line {
            let _ = writeln!(out, "{l}");
        }
    }
    let _ = out.flush();
    Ok(end)
}
