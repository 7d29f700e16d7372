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
