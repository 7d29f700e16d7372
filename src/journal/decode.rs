//! Fast decoding of a journal payload into an [`Event`], for replay.
//!
//! `Event` is internally tagged (`{"kind": "request", ...}`), and serde decodes such enums by first
//! buffering the whole object into an intermediate tree, then decoding the variant from it: most of
//! a replay's time went there. Here the row's `kind` column names the variant and the payload is
//! decoded straight into it through `Wire`, an externally tagged twin of `Event` with the same
//! fields and types; the payload's own `kind` key is checked on the way (exactly one, equal to the
//! column). Whenever this path fails (an unknown kind, a kind that disagrees, a malformed payload),
//! [`decode_event`] falls back to `serde_json::from_str::<Event>`, so its result and its error are
//! always exactly those of the plain decode. `tests/it/journal/encoding.rs` checks both give equal
//! events for every kind.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer as _, IntoDeserializer as _, Visitor};

use crate::model::event::{
    AlertSubject, DecisionKind, ErrorEntry, FreezeWindow, GateFailure, Handle, LogLevel, MapInfo,
    OperatorAction, PlannedStepInfo, RunOutcome, RunbookInfo, Severity, StepOutcome,
};
use crate::model::{Event, RunId, StepId};

/// Decode one stored payload whose `kind` column is `kind` (see the module docs): always equal
/// to `serde_json::from_str::<Event>(payload)`, result and error alike.
pub fn decode_event(kind: &str, payload: &str) -> Result<Event, serde_json::Error> {
    fast(kind, payload).or_else(|_| serde_json::from_str(payload))
}

fn fast(kind: &str, payload: &str) -> Result<Event, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(payload);
    let wire = Wire::deserialize(ByKind { kind, de: &mut de })?;
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
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.de.deserialize_map(KindChecked {
            kind: self.kind,
            inner: visitor,
        })
    }
}

/// Hands the variant's fields to its visitor and takes the `kind` keys out on the way: there must
/// be exactly one, equal to the `kind` column, or the fast path gives up (the plain decode then
/// decides, from the payload alone, as it always did).
struct KindChecked<'a, V> {
    kind: &'a str,
    inner: V,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for KindChecked<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let mut fields = Fields {
            map,
            kind: self.kind,
            seen: 0,
        };
        let value = self.inner.visit_map(&mut fields)?;
        if fields.seen != 1 {
            return Err(de::Error::custom("an event needs exactly one kind"));
        }
        Ok(value)
    }
}

struct Fields<'a, A> {
    map: A,
    kind: &'a str,
    seen: usize,
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for &mut Fields<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        loop {
            let Some(key) = self.map.next_key_seed(CowStr)? else {
                return Ok(None);
            };
            if key == "kind" {
                let value = self.map.next_value_seed(CowStr)?;
                if value != self.kind {
                    return Err(de::Error::custom("the payload's kind is not the row's"));
                }
                self.seen += 1;
                continue;
            }
            let key: de::value::CowStrDeserializer<'_, A::Error> = key.into_deserializer();
            return seed.deserialize(key).map(Some);
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// A string, borrowed from the input when it has no escapes.
struct CowStr;

impl<'de> DeserializeSeed<'de> for CowStr {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for CowStr {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// The kind names `Wire` knows, as `'static` strings (so a row's kind needs no allocation).
pub(crate) fn known_kind(kind: &str) -> Option<&'static str> {
    KINDS.iter().copied().find(|k| *k == kind)
}

const KINDS: [&str; 18] = [
    "run_started",
    "run_resumed",
    "step_intent",
    "step_progress",
    "request",
    "step_finished",
    "awaiting_operator",
    "operator_decision",
    "gate_evaluated",
    "gate_recheck",
    "parity_sample",
    "error_entries",
    "error_counts",
    "alert",
    "install_record",
    "lease_taken_over",
    "log",
    "run_finished",
];

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
        steps: Vec<std::sync::Arc<PlannedStepInfo>>,
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
        #[serde(default)]
        identity: Option<crate::model::Identity>,
    },
    ApprovalRefused {
        step: Option<StepId>,
        action: OperatorAction,
        operator: String,
        #[serde(default)]
        identity: Option<crate::model::Identity>,
        reason: String,
    },
    GateEvaluated {
        step: StepId,
        wave: Option<String>,
        passed: bool,
        failures: Vec<GateFailure>,
    },
    GateRecheck {
        step: StepId,
        check: u32,
        of: u32,
        at: DateTime<Utc>,
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
        #[serde(default)]
        source: Option<String>,
    },
    ErrorCounts {
        map: String,
        by_category: BTreeMap<String, u64>,
        #[serde(default)]
        source: Option<String>,
        #[serde(default)]
        unavailable: Option<String>,
        #[serde(default)]
        present: Option<Vec<String>>,
    },
    Alert {
        severity: Severity,
        message: String,
        map: Option<String>,
        #[serde(default)]
        subject: Option<AlertSubject>,
    },
    InstallRecord {
        step: StepId,
        package: String,
        version: String,
        sha256: String,
        execution_id: String,
        result: String,
        #[serde(default)]
        environment: String,
        #[serde(default)]
        record_count: Option<u64>,
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
                identity,
            } => Event::OperatorDecision {
                step,
                action,
                operator,
                reason,
                checklist_done,
                identity,
            },
            Wire::ApprovalRefused {
                step,
                action,
                operator,
                identity,
                reason,
            } => Event::ApprovalRefused {
                step,
                action,
                operator,
                identity,
                reason,
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
            Wire::GateRecheck { step, check, of, at } => Event::GateRecheck { step, check, of, at },
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
            Wire::ErrorEntries { map, entries, source } => Event::ErrorEntries { map, entries, source },
            Wire::ErrorCounts {
                map,
                by_category,
                source,
                unavailable,
                present,
            } => Event::ErrorCounts {
                map,
                by_category,
                source,
                unavailable,
                present,
            },
            Wire::Alert {
                severity,
                message,
                map,
                subject,
            } => Event::Alert {
                severity,
                message,
                map,
                subject,
            },
            Wire::InstallRecord {
                step,
                package,
                version,
                sha256,
                execution_id,
                result,
                environment,
                record_count,
            } => Event::InstallRecord {
                step,
                package,
                version,
                sha256,
                execution_id,
                result,
                environment,
                record_count,
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
