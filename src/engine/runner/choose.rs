//! Which run a process drives: a new one, or the journal's unfinished last run (with its
//! rebuilt state, its resume record and the runbook file it was started from).

use std::path::{Path, PathBuf};

use super::{RUNBOOK_FILE_LOG, RunOptions, SetupError, invalid};
use crate::engine::event::Event;
use crate::engine::resume::Resumable;
use crate::engine::{Envelope, RunId, RunState};
use crate::journal::JournalReader;

/// The run to drive: a new one, or the journal's unfinished last run.
pub(super) enum Chosen {
    New,
    Resume {
        run_id: RunId,
        started: Box<Envelope>,
        record: Resumable,
        state: Box<RunState>,
        file: Option<PathBuf>,
    },
}

pub(super) fn choose(journal: &Path, opts: &RunOptions) -> Result<Chosen, SetupError> {
    let reader = JournalReader::open_read_only(journal)?;
    let runs = reader.runs()?;
    let Some(last) = runs.last() else {
        if opts.resume_only {
            return Err(invalid(format!(
                "{}: the journal holds no run to resume",
                journal.display()
            )));
        }
        return Ok(Chosen::New);
    };
    if let Some(outcome) = &last.outcome {
        if opts.new_run && !opts.resume_only {
            return Ok(Chosen::New);
        }
        return Err(SetupError::AlreadyFinished {
            run_id: last.run_id.clone(),
            journal: journal.display().to_string(),
            outcome: serde_json::to_value(outcome)
                .ok()
                .and_then(|v| v["status"].as_str().map(str::to_owned))
                .unwrap_or_default(),
            succeeded: matches!(outcome, crate::engine::event::RunOutcome::Succeeded),
        });
    }
    let run_id = last.run_id.clone();
    let mut envelopes = Vec::new();
    for e in reader.events(&run_id) {
        envelopes.push(e?);
    }
    let Some(started) = envelopes.first().cloned() else {
        return Err(invalid("the unfinished run has no events"));
    };
    let mut state = RunState::default();
    let mut file = None;
    for e in &envelopes {
        state.apply(e);
        if let Event::Log { message, .. } = &e.event
            && let Some(f) = message.strip_prefix(RUNBOOK_FILE_LOG)
        {
            file = Some(PathBuf::from(f));
        }
    }
    let record = Resumable::from_state(&state);
    Ok(Chosen::Resume {
        run_id,
        started: Box::new(started),
        record,
        state: Box::new(state),
        file,
    })
}
