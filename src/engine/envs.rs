//! The environments of a run: one transport (and typed clients) per runbook environment, with tokens,
//! retry policy and request journaling wired in. Built once per run; `--sim` points them at the simulator.

/// The environments of a run.
pub struct Envs {}
