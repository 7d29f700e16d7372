//! One wording per event: the words that headless text, the console's per-step event lines and
//! the audit timeline's landmarks all print for an envelope, so the operator at the console, the
//! CI log and the auditor replaying the journal months later read the same words for the same fact.
//!
//! A wording is a verb (`start`, `done`, `FAILED`, `gate`, `decided`, ...; empty for sentences that
//! start with their subject, `run … started`) and the text after it. Enum values are written as the
//! journal spells them (`approve_manual`, `waive`), never as Rust `Debug` text. A failure, a refusal
//! and an alert are written in capitals, so they stand out where there is no colour.
//!
//! Each sink adds only its frame (a time column and a padded verb column in headless text, a
//! sequence number in the console, credential scrubbing in the timeline) and picks the events it
//! shows by their [`Class`]; the console's event list, already under the step's name, asks for
//! [`Form::UnderStep`], which leaves the step out. The match in [`describe`] is exhaustive: a new
//! kind of event does not compile until it has words.

use serde::Serialize;

use super::RunState;
use crate::model::StepId;
use crate::model::event::{CheckStatus, Envelope, Event, LogLevel, RunOutcome, StepOutcome};
use crate::util::duration::readable_ms;

/// How much an event matters to a reader, which decides the sinks that show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Routine detail, read when looking at one step or at the journal itself: requests, progress,
    /// error totals with nothing to say, debug logs, checkpoints. Headless text leaves it out.
    Detail,
    /// What a person follows a run by: steps starting and finishing, parity samples, installs, logs.
    Fact,
    /// A fact a replay stops at and an auditor looks for.
    Landmark(LandmarkKind),
}

/// Why a replay would stop at an event.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum LandmarkKind {
    Decision,
    Question,
    Gate,
    Failure,
    Alert,
    Resume,
    Finish,
}

/// How much of the sentence a sink needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// The sentence stands alone (headless text, a replay's landmark): it names its step.
    Line,
    /// The sentence sits in a list under its step's name (the console's event pane), so the step is
    /// left out: `FAILED after 4m 05s: …` rather than `FAILED wave-1:vendors after 4m 05s: …`.
    /// Events about no step read as in [`Form::Line`].
    UnderStep,
}

/// One event in words.
#[derive(Clone, Debug, PartialEq)]
pub struct Wording<'a> {
    /// The step the event is about, if any (the console lists a step's events under it).
    pub step: Option<&'a StepId>,
    pub class: Class,
    /// What happened, first (`start`, `FAILED`, `gate`); empty when the text starts with its subject.
    pub verb: &'static str,
    /// The rest of the sentence.
    pub text: String,
}

impl Wording<'_> {
    /// The sentence on its own: `FAILED wave-1:vendors after 4m 05s: …`, `skipped: not needed`.
    pub fn sentence(&self) -> String {
        let t = self.text.trim_start();
        match (self.verb, t) {
            ("", t) => t.to_owned(),
            (v, "") => v.to_owned(),
            (v, t) if t.starts_with(':') => format!("{v}{t}"),
            (v, t) => format!("{v} {t}"),
        }
    }

    /// The sentence with its verb in a column of its own (headless text): `FAILED  wave-1:vendors …`.
    pub fn columns(&self) -> String {
        if self.verb.is_empty() {
            self.sentence()
        } else {
            format!("{:<7} {}", self.verb, self.text.trim_start())
        }
    }
}

/// The wording of `env`, with the duration of a finished step read from `state`, which has applied
/// `env` (the live console and headless mode fold before they print).
pub fn describe_in<'a>(env: &'a Envelope, state: &RunState, form: Form) -> Wording<'a> {
    let ran_ms = match &env.event {
        Event::StepFinished { step, .. } => state.step(step.as_str()).and_then(|s| s.duration_ms),
        _ => None,
    };
    describe(env, ran_ms, form)
}

/// The journal's name of an enum value (`approve_manual`, `waive`, `critical`).
fn name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// `customers` or `customers/USMF`.
fn map_of(map: &str, company: Option<&String>) -> String {
    company.map_or_else(|| map.to_owned(), |c| format!("{map}/{c}"))
}

/// The wording of `env`. `ran_ms`: how long the step of a `StepFinished` ran, when the caller knows
/// it; ignored for other events.
pub fn describe(env: &Envelope, ran_ms: Option<u64>, form: Form) -> Wording<'_> {
    use Class::{Detail, Fact, Landmark};
    use LandmarkKind as L;
    let run = env.run_id.as_str();
    // The step as the subject, or nothing under the step's name.
    let who = |step: &StepId| match form {
        Form::Line => step.to_string(),
        Form::UnderStep => String::new(),
    };
    // An optional step: `run` when there is none.
    let who_or_run = |step: Option<&StepId>| step.map_or_else(|| "run".to_owned(), who);
    let (step, class, verb, text): (Option<&StepId>, Class, &'static str, String) = match &env.event {
        Event::RunStarted {
            runbook,
            operator,
            host,
            steps,
            ..
        } => (
            None,
            Fact,
            "",
            format!(
                "run {run} started: {} {} by {operator} on {host}, {} steps",
                runbook.name,
                runbook.version,
                steps.len()
            ),
        ),
        Event::RunResumed {
            operator,
            host,
            accepted_changed_runbook,
        } => (
            None,
            Landmark(L::Resume),
            "",
            format!(
                "run {run} resumed by {operator} on {host}{}",
                if *accepted_changed_runbook {
                    " (changed runbook accepted)"
                } else {
                    ""
                }
            ),
        ),
        Event::StepIntent {
            step,
            attempt,
            handle,
        } => {
            let a = if *attempt > 1 {
                format!(" (attempt {attempt})")
            } else {
                String::new()
            };
            let h = handle
                .as_ref()
                .map(|h| format!(" [{} {}]", h.kind, h.id))
                .unwrap_or_default();
            (Some(step), Fact, "start", format!("{}{a}{h}", who(step)))
        }
        Event::StepProgress {
            step, done, total, ..
        } => (
            Some(step),
            Detail,
            "progress",
            match total {
                Some(t) => format!("{} {done}/{t}", who(step)),
                None => format!("{} {done}", who(step)),
            },
        ),
        Event::Request {
            step,
            env: target,
            method,
            path,
            status,
            duration_ms,
            error,
        } => {
            let by = match (step, form) {
                (Some(_), Form::UnderStep) => String::new(),
                (Some(s), Form::Line) => format!("{s}: "),
                (None, _) => format!("{target}: "),
            };
            (
                step.as_ref(),
                Detail,
                "",
                format!(
                    "{by}{method} {path} → {} {duration_ms}ms{}",
                    status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                    error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
                ),
            )
        }
        Event::StepFinished { step, outcome, .. } => {
            let d = |word: &str| {
                ran_ms
                    .map(|ms| format!(" {word} {}", readable_ms(ms)))
                    .unwrap_or_default()
            };
            match outcome {
                StepOutcome::Succeeded => (Some(step), Fact, "done", format!("{}{}", who(step), d("in"))),
                StepOutcome::Failed { message, reason } => (
                    Some(step),
                    Landmark(L::Failure),
                    "FAILED",
                    format!(
                        "{}{}: {}",
                        who(step),
                        d("after"),
                        StepOutcome::failure_text(message, reason.as_deref())
                    ),
                ),
                StepOutcome::Skipped { reason } => {
                    (Some(step), Fact, "skipped", format!("{}: {reason}", who(step)))
                }
            }
        }
        Event::AwaitingOperator {
            step,
            decision,
            prompt,
            ..
        } => (
            step.as_ref(),
            Landmark(L::Question),
            "waiting",
            format!(
                "{} for {}: {}",
                who_or_run(step.as_ref()),
                name(decision),
                prompt.lines().next().unwrap_or("")
            ),
        ),
        Event::OperatorDecision {
            step,
            action,
            operator,
            reason,
            identity,
            ..
        } => (
            step.as_ref(),
            Landmark(L::Decision),
            "decided",
            format!(
                "{}: {} by {operator}{}{}",
                who_or_run(step.as_ref()),
                name(action),
                identity
                    .as_ref()
                    .map(|i| format!(" [signed in as {}]", i.label()))
                    .unwrap_or_default(),
                reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()
            ),
        ),
        Event::ApprovalRefused {
            step,
            action,
            operator,
            reason,
            ..
        } => (
            step.as_ref(),
            Landmark(L::Decision),
            "REFUSED",
            format!(
                "{}: {} by {operator}: {reason}",
                who_or_run(step.as_ref()),
                name(action)
            ),
        ),
        Event::GateEvaluated {
            step,
            passed,
            failures,
            ..
        } => (
            Some(step),
            Landmark(L::Gate),
            "gate",
            if *passed {
                format!("{} passed", who(step))
            } else if failures.is_empty() {
                format!("{} FAILED", who(step))
            } else {
                let f: Vec<String> = failures
                    .iter()
                    .map(|f| {
                        format!(
                            "{} source {} target {} allowed {} errors {}",
                            map_of(&f.map, f.company.as_ref()),
                            f.source,
                            f.target,
                            f.allowed,
                            f.errors
                        )
                    })
                    .collect();
                format!("{} FAILED: {}", who(step), f.join("; "))
            },
        ),
        Event::GateRecheck { step, check, of, at } => (
            Some(step),
            Fact,
            "gate",
            format!(
                "{}: re-check {check}/{of} at {}",
                who(step),
                at.format("%H:%M:%S")
            ),
        ),
        Event::ParitySample {
            step,
            map,
            company,
            source,
            target,
        } => {
            let mark = if source == target { "=" } else { "≠" };
            (
                step.as_ref(),
                Fact,
                "parity",
                format!(
                    "{}: source {source} {mark} target {target}",
                    map_of(map, company.as_ref())
                ),
            )
        }
        Event::ErrorEntries { map, entries, source } => (
            None,
            if entries.is_empty() { Detail } else { Fact },
            "errors",
            format!(
                "{map}: {} new entries ({})",
                entries.len(),
                source.as_deref().unwrap_or("error_queue")
            ),
        ),
        Event::ErrorCounts {
            map,
            by_category,
            source,
            unavailable,
            ..
        } => {
            // Only what a source said is worth a line: an available zero is not, and neither are the
            // old error queue's totals (its entries are).
            let worth = source.is_some() && (unavailable.is_some() || by_category.values().any(|n| *n > 0));
            let from = source.as_deref().unwrap_or("error_queue");
            (
                None,
                if worth { Fact } else { Detail },
                "errors",
                match unavailable {
                    Some(why) => format!("{map}: not available ({why}) ({from})"),
                    None => format!("{map}: {} ({from})", by_category.values().sum::<u64>()),
                },
            )
        }
        Event::Alert {
            severity, message, ..
        } => (
            None,
            Landmark(L::Alert),
            "ALERT",
            format!("[{}] {message}", name(severity)),
        ),
        Event::PackageDownloaded {
            step,
            execution_id,
            package,
            file,
            sha256,
            bytes,
        } => (
            Some(step),
            Fact,
            "download",
            format!(
                "{}: exported package {package} ({execution_id}) kept as {file}, {bytes} bytes, sha256 {sha256}",
                who(step)
            ),
        ),
        Event::InstallRecordWrite {
            step,
            execution_id,
            target,
            status,
            detail,
        } => (
            Some(step),
            Fact,
            "install",
            format!(
                "{}: install record of execution {execution_id} to {target}: {status}{}",
                who(step),
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                }
            ),
        ),
        Event::InstallRecord {
            step,
            package,
            version,
            sha256,
            execution_id,
            result,
            ..
        } => (
            Some(step),
            Fact,
            "install",
            format!(
                "{}: {package} {version} sha256 {} execution {execution_id}: {result}",
                who(step),
                &sha256[..sha256.len().min(12)]
            ),
        ),
        Event::AutomationOff {
            step,
            env,
            what: kind,
            name,
            table,
            prior_statecode,
            ..
        } => (
            Some(step),
            Fact,
            "automation",
            format!(
                "{}: turning off {} `{name}` on {table} ({env}; it was {})",
                who(step),
                kind.replace('_', " "),
                if (kind == "flow" && *prior_statecode == 1) || (kind != "flow" && *prior_statecode == 0) {
                    "on"
                } else {
                    "already off"
                }
            ),
        ),
        Event::AutomationRestored {
            step,
            env,
            what: kind,
            name,
            ..
        } => (
            step.as_ref(),
            Fact,
            "automation",
            format!(
                "{}: {} `{name}` ({env}) is back in the state it had before the run",
                step.as_ref().map_or_else(|| "abort".to_owned(), who),
                kind.replace('_', " ")
            ),
        ),
        Event::BatchWindow {
            step,
            phase,
            maps,
            by_abort,
            ..
        } => (
            Some(step),
            Fact,
            "batch window",
            format!(
                "{}: {} {}",
                who(step),
                maps.join(", "),
                match (phase.as_str(), by_abort) {
                    ("paused", _) =>
                        "paused for the batch window (dual-write queues their changes, for at most 1 day)",
                    ("confirmed", _) => "still paused: the operator confirmed the batch job",
                    ("resumed", true) => "resumed by the abort of the run (the queued changes play back)",
                    ("resumed", false) => "resumed (the queued changes play back)",
                    _ => "in an unknown phase of the batch window",
                }
            ),
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
        } => (
            Some(step),
            Fact,
            "rows",
            format!(
                "{}: {map}{} {source_rows} / {target_rows} rows: {matching} match, {missing} missing, {extra} extra, {different} different",
                who(step),
                company.as_ref().map(|c| format!("@{c}")).unwrap_or_default()
            ),
        ),
        Event::SampleDiffered { step, map, keys } => (
            Some(step),
            Fact,
            "sample",
            format!(
                "{}: {map}: {} sampled key(s) still differ or are missing after the settle",
                who(step),
                keys.len()
            ),
        ),
        Event::RowsRangeRead {
            step,
            map,
            company,
            side,
            range,
            rows,
            resumed,
        } => (
            Some(step),
            Fact,
            "rows",
            format!(
                "{}: {map}{} {side} range {range} read: {rows} rows{}",
                who(step),
                company.as_ref().map(|c| format!("@{c}")).unwrap_or_default(),
                if *resumed {
                    " (went on from where a stopped run left it)"
                } else {
                    ""
                }
            ),
        ),
        Event::LeaseTakenOver {
            previous_holder,
            previous_host,
            previous_pid,
            holder,
            ..
        } => (
            None,
            Fact,
            "",
            format!(
                "lease taken over by {holder} from {previous_holder} (pid {previous_pid} on {previous_host})"
            ),
        ),
        Event::EnvironmentTime { at } => (
            None,
            Detail,
            "clock",
            format!("environment time {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
        ),
        Event::Notified {
            target,
            key,
            state,
            attempt,
            status,
            error,
            delivered,
        } => (
            None,
            if *delivered { Fact } else { Detail },
            "notify",
            format!(
                "{state} `{key}` to {target} (attempt {attempt}): {}",
                match (status, error) {
                    (Some(s), _) if *delivered => format!("delivered, HTTP {s}"),
                    (Some(s), _) => format!("NOT delivered, HTTP {s}"),
                    (None, Some(e)) => format!("NOT delivered: {e}"),
                    (None, None) => "NOT delivered".to_owned(),
                }
            ),
        ),
        Event::Log { level, message } => (
            None,
            if *level >= LogLevel::Info { Fact } else { Detail },
            "log",
            message.clone(),
        ),
        Event::RunFinished { outcome } => (
            None,
            Landmark(L::Finish),
            "",
            format!("run {run} finished: {}", run_outcome(outcome)),
        ),
        Event::Checkpoint {
            event_id,
            key_fingerprint,
            reason,
            ..
        } => (
            None,
            Detail,
            "",
            format!("checkpoint of event {event_id} ({reason}) signed by key {key_fingerprint}"),
        ),
        Event::CheckpointKey {
            key_fingerprint,
            alg,
            kid,
            ..
        } => (
            None,
            Detail,
            "",
            format!("checkpoints are signed in the vault with {alg} key {key_fingerprint} ({kid})"),
        ),
        Event::RunbookChanged {
            old_sha256,
            new_sha256,
            added,
            removed,
            changed,
            ..
        } => (
            None,
            Detail,
            "",
            format!(
                "runbook changed (sha256 {} → {}): {} added, {} removed, {} changed",
                &old_sha256[..old_sha256.len().min(12)],
                &new_sha256[..new_sha256.len().min(12)],
                added.len(),
                removed.len(),
                changed.len()
            ),
        ),
        Event::PreflightChecked {
            runbook,
            version,
            operator,
            host,
            target,
            checks,
            ..
        } => {
            let count = |s: CheckStatus| checks.iter().filter(|c| c.status == s).count();
            (
                None,
                Detail,
                "",
                format!(
                    "preflight of {runbook} {version} ({target}) by {operator} on {host}: {} checks, {} warnings, {} errors",
                    checks.len(),
                    count(CheckStatus::Warning),
                    count(CheckStatus::Error)
                ),
            )
        }
    };
    Wording {
        step,
        class,
        verb,
        text,
    }
}

/// How a run ended: `succeeded`, `FAILED: <message>`, `aborted: <reason>`.
pub fn run_outcome(o: &RunOutcome) -> String {
    match o {
        RunOutcome::Succeeded => "succeeded".to_owned(),
        RunOutcome::Failed { message } => format!("FAILED: {message}"),
        RunOutcome::Aborted { reason } => format!("aborted: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use super::*;
    use crate::model::event::{OperatorAction, Severity};

    fn env(event: Event) -> Envelope {
        Envelope {
            id: 7,
            seq: 3,
            at: chrono::DateTime::UNIX_EPOCH,
            run_id: "r1".into(),
            event,
        }
    }

    fn failed() -> Envelope {
        env(Event::StepFinished {
            step: "wave-1:vendors".into(),
            outcome: StepOutcome::Failed {
                message: "12 rows rejected".into(),
                reason: None,
            },
            outputs: BTreeMap::new(),
        })
    }

    #[test]
    fn a_line_names_its_step_and_under_the_step_it_is_left_out() {
        let e = failed();
        let line = describe(&e, Some(245_000), Form::Line);
        assert_eq!(line.class, Class::Landmark(LandmarkKind::Failure));
        assert_eq!(line.step.map(StepId::as_str), Some("wave-1:vendors"));
        assert_eq!(
            line.sentence(),
            "FAILED wave-1:vendors after 4m 05s: 12 rows rejected"
        );
        assert_eq!(
            line.columns(),
            "FAILED  wave-1:vendors after 4m 05s: 12 rows rejected"
        );
        let under = describe(&e, Some(245_000), Form::UnderStep);
        assert_eq!(under.sentence(), "FAILED after 4m 05s: 12 rows rejected");
        // Without a known duration the sentence says none.
        assert_eq!(
            describe(&e, None, Form::Line).sentence(),
            "FAILED wave-1:vendors: 12 rows rejected"
        );
        let skipped = env(Event::StepFinished {
            step: "x".into(),
            outcome: StepOutcome::Skipped {
                reason: "not needed".into(),
            },
            outputs: BTreeMap::new(),
        });
        assert_eq!(
            describe(&skipped, None, Form::UnderStep).sentence(),
            "skipped: not needed"
        );
        assert_eq!(
            describe(&skipped, None, Form::Line).columns(),
            "skipped x: not needed"
        );
    }

    #[test]
    fn enum_values_are_the_journals_names_not_debug_text() {
        let d = env(Event::OperatorDecision {
            step: None,
            action: OperatorAction::TakeOverLease,
            operator: "bob".into(),
            reason: None,
            checklist_done: Vec::new(),
            identity: None,
        });
        assert_eq!(
            describe(&d, None, Form::Line).sentence(),
            "decided run: take_over_lease by bob"
        );
        let a = env(Event::Alert {
            severity: Severity::Critical,
            message: "drift".into(),
            map: None,
            subject: None,
        });
        let w = describe(&a, None, Form::Line);
        assert_eq!(w.class, Class::Landmark(LandmarkKind::Alert));
        assert_eq!(w.columns(), "ALERT   [critical] drift");
    }

    #[test]
    fn detail_is_what_headless_text_leaves_out() {
        let log = |level| {
            env(Event::Log {
                level,
                message: "m".into(),
            })
        };
        assert_eq!(
            describe(&log(LogLevel::Debug), None, Form::Line).class,
            Class::Detail
        );
        assert_eq!(
            describe(&log(LogLevel::Warn), None, Form::Line).class,
            Class::Fact
        );
        let counts = env(Event::ErrorCounts {
            map: "customers".into(),
            by_category: BTreeMap::new(),
            source: Some("dmf.execution_errors".into()),
            unavailable: None,
            present: None,
        });
        assert_eq!(describe(&counts, None, Form::Line).class, Class::Detail);
    }
}
