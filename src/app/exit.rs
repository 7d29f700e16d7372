//! Process exit codes, documented in the README and in `cutover --help`.

/// The run finished (or the command succeeded).
pub const OK: i32 = 0;
/// A step or a gate failed; the journal says which.
pub const FAILED: i32 = 1;
/// The input was invalid: a runbook that does not validate, a bad flag, an unreadable file.
pub const INVALID: i32 = 2;
/// The run is waiting for an operator decision that headless mode cannot take.
pub const WAITING: i32 = 3;
/// Another process is driving the journal (its lease is held): nothing was done; watch it
/// read-only with `cutover watch`, or take a dead holder's lease over with `--take-over`.
pub const BUSY: i32 = 4;
/// Interrupted by SIGINT/SIGTERM; the journal is consistent and the run can be resumed.
pub const INTERRUPTED: i32 = 130;

/// The exit code of a run that could not be set up.
pub fn of_setup(e: &crate::engine::SetupError) -> i32 {
    use crate::engine::SetupError;
    match e {
        SetupError::Invalid(_)
        | SetupError::Journal(_)
        | SetupError::Envs(_)
        | SetupError::SimUrl { .. }
        | SetupError::RunbookFile { .. } => INVALID,
        SetupError::Lease(_) | SetupError::LeaseFailed(_) => BUSY,
        SetupError::AlreadyFinished { succeeded: true, .. } => OK,
        SetupError::AlreadyFinished { succeeded: false, .. }
        | SetupError::Failed(_)
        | SetupError::Client(_) => FAILED,
    }
}

/// The exit code of a replay or watch that does not start: 1 refused (the journal does not
/// verify), 2 invalid input.
pub fn of_replay(e: &crate::tui::replay::open::ReplayError) -> i32 {
    match e {
        crate::tui::replay::open::ReplayError::Unverified(_) => FAILED,
        _ => INVALID,
    }
}

/// The exit code of how a run ended for this process.
pub fn of_end(end: &crate::engine::RunEnd) -> i32 {
    use crate::engine::RunEnd;
    use crate::engine::event::RunOutcome;
    match end {
        RunEnd::Finished(RunOutcome::Succeeded) => OK,
        RunEnd::Finished(_) | RunEnd::Halted { .. } | RunEnd::Broken(_) => FAILED,
        RunEnd::Waiting { .. } => WAITING,
        RunEnd::Interrupted => INTERRUPTED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::event::RunOutcome;
    use crate::engine::{RunEnd, SetupError};

    /// Moved from the scheduler's tests (a halted gate exits 1, a headless wait exits 3) when exit
    /// codes moved to the edge; the rest of the table beside them.
    #[test]
    fn every_end_and_setup_failure_has_its_documented_code() {
        let halted = RunEnd::Halted {
            step: "w1:gate".into(),
            message: "m".into(),
        };
        assert_eq!(of_end(&halted), FAILED);
        let waiting = RunEnd::Waiting {
            step: Some("approve".into()),
            message: "m".into(),
        };
        assert_eq!(of_end(&waiting), WAITING);
        assert_eq!(of_end(&RunEnd::Finished(RunOutcome::Succeeded)), OK);
        assert_eq!(
            of_end(&RunEnd::Finished(RunOutcome::Aborted { reason: "r".into() })),
            FAILED
        );
        assert_eq!(of_end(&RunEnd::Interrupted), INTERRUPTED);
        assert_eq!(of_end(&RunEnd::Broken("b".into())), FAILED);
        assert_eq!(of_setup(&SetupError::Invalid("i".into())), INVALID);
        assert_eq!(of_setup(&SetupError::Lease("l".into())), BUSY);
        assert_eq!(of_setup(&SetupError::Failed("f".into())), FAILED);
        let finished = |succeeded| SetupError::AlreadyFinished {
            run_id: "r".into(),
            journal: "j".into(),
            outcome: "o".into(),
            succeeded,
        };
        assert_eq!(of_setup(&finished(true)), OK);
        assert_eq!(of_setup(&finished(false)), FAILED);
    }
}
