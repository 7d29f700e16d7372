//! Fast decoding of a journal payload into an [`Event`], for replay.
//!
//! `Event` is internally tagged (`{"kind": "request", ...}`), and serde decodes such enums by first
//! buffering the whole object into an intermediate tree, then decoding the variant from it: most of
//! a replay's time went there. Here the tag is read first (one pass that skips everything else),
//! then the payload is decoded straight into that variant through [`Wire`], an externally tagged
//! twin of `Event` with the same fields and types (the payload's `kind` key is an unknown field to
//! it and is skipped). Whenever this path fails (an unknown kind, a malformed or hostile payload),
//! [`decode_event`] falls back to `serde_json::from_str::<Event>`, so its result and its error are
//! always exactly those of the plain decode. `tests/journal_encoding.rs` checks both give equal
//! events for every kind.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer as _, IntoDeserializer as _, Visitor};

use crate::engine::event::{
    DecisionKind, ErrorEntry, FreezeWindow, GateFailure, Handle, LogLevel, MapInfo, OperatorAction,
    PlannedStepInfo, RunOutcome, RunbookInfo, Severity, StepOutcome,
};
use crate::engine::{Event, RunId, StepId};

/// Decode one stored payload (see the module docs): equal to `serde_json::from_str::<Event>`.
pub fn decode_event(payload: &str) -> Result<Event, serde_json::Error> {
    fast(payload).or_else(|_| serde_json::from_str(payload))
}

#[derive(Deserialize)]
struct Tag<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
}

fn fast(payload: &str) -> Result<Event, serde_json::Error> {
    let tag: Tag<'_> = serde_json::from_str(payload)?;
    let mut de = serde_json::Deserializer::from_str(payload);
    let wire = Wire::deserialize(ByKind {
        kind: &tag.kind,
        de: &mut de,
    })?;
    de.end()?;
    Ok(wire.into())
}

/// Presents `{"kind": K, fields...}` to `Wire` as the externally tagged `{K: {fields...}}`.
struct ByKind<'a, 'de> {
    kind: &'a str,
    de: &'a mut serde_json::Deserializer<serde_json::de::StrRead<'de>>,
}

impl<'de> de::Deserializer<'de> for ByKind<'_, 'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only an event enum decodes by kind"))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl<'de> de::EnumAccess<'de> for ByKind<'_, 'de> {
    type Error = serde_json::Error;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Self::Error> {
        let kind: de::value::StrDeserializer<'_, serde_json::Error> = self.kind.into_deserializer();
        Ok((seed.deserialize(kind)?, self))
    }
}

impl<'de> de::VariantAccess<'de> for ByKind<'_, 'de> {
    type Error = serde_json::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        Err(de::Error::custom("every event variant has fields"))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _: T) -> Result<T::Value, Self::Error> {
        Err(de::Error::custom("every event variant has named fields"))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("every event variant has named fields"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.de.deserialize_struct("", fields, visitor)
    }
}

// `Event`'s variants, field for field (same names, same types, same order), externally tagged.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Wire {
    RunStarted {
        run_id: RunId,
        runbook: RunbookInfo,
        operator: String,
        host: String,
        started_at: DateTime<Utc>,
        freeze_window: Option<FreezeWindow>,
        steps: Vec<PlannedStepInfo>,
        maps: Vec<MapInfo>,
        time_scale: f64,
    },
    RunResumed {
        operator: String,
        host: String,
        accepted_changed_runbook: bool,
    },
    StepIntent {
        step: StepId,
        attempt: u32,
        handle: Option<Handle>,
    },
    StepProgress {
        step: StepId,
        done: u64,
        total: Option<u64>,
        note: Option<String>,
    },
    Request {
        step: Option<StepId>,
        env: String,
        method: String,
        path: String,
        status: Option<u16>,
        duration_ms: u64,
        error: Option<String>,
    },
    StepFinished {
        step: StepId,
        outcome: StepOutcome,
        outputs: BTreeMap<String, String>,
    },
    AwaitingOperator {
        step: Option<StepId>,
        decision: DecisionKind,
        prompt: String,
        checklist: Vec<String>,
        deadline: Option<DateTime<Utc>>,
    },
    OperatorDecision {
        step: Option<StepId>,
        action: OperatorAction,
        operator: String,
        reason: Option<String>,
        checklist_done: Vec<String>,
    },
    GateEvaluated {
        step: StepId,
        wave: Option<String>,
        passed: bool,
        failures: Vec<GateFailure>,
    },
    ParitySample {
        step: Option<StepId>,
        map: String,
        company: Option<String>,
        source: u64,
        target: u64,
    },
    ErrorEntries {
        map: String,
        entries: Vec<ErrorEntry>,
    },
    ErrorCounts {
        map: String,
        by_category: BTreeMap<String, u64>,
    },
    Alert {
        severity: Severity,
        message: String,
        map: Option<String>,
    },
    InstallRecord {
        step: StepId,
        package: String,
        version: String,
        sha256: String,
        execution_id: String,
        result: String,
    },
    LeaseTakenOver {
        previous_holder: String,
        previous_host: String,
        previous_pid: u32,
        previous_heartbeat_at: DateTime<Utc>,
        holder: String,
        host: String,
        pid: u32,
    },
    Log {
        level: LogLevel,
        message: String,
    },
    RunFinished {
        outcome: RunOutcome,
    },
}

impl From<Wire> for Event {
    fn from(w: Wire) -> Event {
        match w {
            Wire::RunStarted {
                run_id,
                runbook,
                operator,
                host,
                started_at,
                freeze_window,
                steps,
                maps,
                time_scale,
            } => Event::RunStarted {
                run_id,
                runbook,
                operator,
                host,
                started_at,
                freeze_window,
                steps,
                maps,
                time_scale,
            },
            Wire::RunResumed {
                operator,
                host,
                accepted_changed_runbook,
            } => Event::RunResumed {
                operator,
                host,
                accepted_changed_runbook,
            },
            Wire::StepIntent {
                step,
                attempt,
                handle,
            } => Event::StepIntent {
                step,
                attempt,
                handle,
            },
            Wire::StepProgress {
                step,
                done,
                total,
                note,
            } => Event::StepProgress {
                step,
                done,
                total,
                note,
            },
            Wire::Request {
                step,
                env,
                method,
                path,
                status,
                duration_ms,
                error,
            } => Event::Request {
                step,
                env,
                method,
                path,
                status,
                duration_ms,
                error,
            },
            Wire::StepFinished {
                step,
                outcome,
                outputs,
            } => Event::StepFinished {
                step,
                outcome,
                outputs,
            },
            Wire::AwaitingOperator {
                step,
                decision,
                prompt,
                checklist,
                deadline,
            } => Event::AwaitingOperator {
                step,
                decision,
                prompt,
                checklist,
                deadline,
            },
            Wire::OperatorDecision {
                step,
                action,
                operator,
                reason,
                checklist_done,
            } => Event::OperatorDecision {
                step,
                action,
                operator,
                reason,
                checklist_done,
            },
            Wire::GateEvaluated {
                step,
                wave,
                passed,
                failures,
            } => Event::GateEvaluated {
                step,
                wave,
                passed,
                failures,
            },
            Wire::ParitySample {
                step,
                map,
                company,
                source,
                target,
            } => Event::ParitySample {
                step,
                map,
                company,
                source,
                target,
            },
            Wire::ErrorEntries { map, entries } => Event::ErrorEntries { map, entries },
            Wire::ErrorCounts { map, by_category } => Event::ErrorCounts { map, by_category },
            Wire::Alert {
                severity,
                message,
                map,
            } => Event::Alert {
                severity,
                message,
                map,
            },
            Wire::InstallRecord {
                step,
                package,
                version,
                sha256,
                execution_id,
                result,
            } => Event::InstallRecord {
                step,
                package,
                version,
                sha256,
                execution_id,
                result,
            },
            Wire::LeaseTakenOver {
                previous_holder,
                previous_host,
                previous_pid,
                previous_heartbeat_at,
                holder,
                host,
                pid,
            } => Event::LeaseTakenOver {
                previous_holder,
                previous_host,
                previous_pid,
                previous_heartbeat_at,
                holder,
                host,
                pid,
            },
            Wire::Log { level, message } => Event::Log { level, message },
            Wire::RunFinished { outcome } => Event::RunFinished { outcome },
        }
    }
}
