//! Durations (`30s`, `10m`, `24h`, `1h30m`, `2d`) and RFC 3339 timestamps as they appear in a runbook.
//!
//! Both keep the text the author wrote, so a runbook serialised from the model reads like the original
//! (and the "serialise → reload → same model" property holds exactly).

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, FixedOffset};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A length of time written as one or more `<number><unit>` parts, units `d`, `h`, `m`, `s`, in that order
/// (`2d`, `1h30m`, `45s`). Zero is allowed (`0s`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Duration {
    secs: u64,
    text: String,
}

/// Why a duration or timestamp did not parse; the message is shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("invalid duration `{0}`: write a number and a unit, e.g. `30s`, `10m`, `24h`, `1h30m`, `2d`")]
    Duration(String),
    #[error("invalid timestamp `{0}`: write RFC 3339 with a zone, e.g. `2026-11-27T18:00:00Z`")]
    Timestamp(String),
}

impl Duration {
    /// Parses the runbook text form.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        let trimmed = text.trim();
        // The crate's one grammar, with a runbook's rules (whole parts, units, at most a year).
        let secs = crate::util::duration::parse_secs(trimmed, crate::util::duration::Rules::WHOLE)
            .ok_or_else(|| TimeError::Duration(text.to_owned()))?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(Self {
            // Whole and at most a year: exact in an f64 and in a u64.
            secs: secs as u64,
            text: trimmed.to_owned(),
        })
    }

    /// Builds a duration from seconds, in the canonical text form (`1h30m`).
    pub fn from_secs(secs: u64) -> Self {
        let mut text = String::new();
        let mut rest = secs;
        for (unit, name) in [(86_400, 'd'), (3_600, 'h'), (60, 'm'), (1, 's')] {
            if rest >= unit {
                text.push_str(&format!("{}{name}", rest / unit));
                rest %= unit;
            }
        }
        if text.is_empty() {
            text.push_str("0s");
        }
        Self { secs, text }
    }

    pub fn as_secs(&self) -> u64 {
        self.secs
    }

    pub fn as_std(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.secs)
    }

    /// The text as written in the runbook.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$",
            "description": "A duration: `30s`, `10m`, `24h`, `1h30m`, `2d`.",
        })
    }
}

/// An RFC 3339 timestamp with an explicit offset (`2026-11-27T18:00:00Z`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Timestamp {
    at: DateTime<FixedOffset>,
    text: String,
}

impl Timestamp {
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        let trimmed = text.trim();
        DateTime::parse_from_rfc3339(trimmed)
            .map(|at| Self {
                at,
                text: trimmed.to_owned(),
            })
            .map_err(|_| TimeError::Timestamp(text.to_owned()))
    }

    pub fn from_datetime(at: DateTime<FixedOffset>) -> Self {
        Self {
            at,
            text: at.to_rfc3339(),
        }
    }

    pub fn at(&self) -> DateTime<FixedOffset> {
        self.at
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "An RFC 3339 timestamp with a zone, e.g. `2026-11-27T18:00:00Z`.",
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        for (text, secs) in [
            ("30s", 30),
            ("10m", 600),
            ("24h", 86_400),
            ("1h30m", 5_400),
            ("2d", 172_800),
        ] {
            let d = Duration::parse(text).unwrap();
            assert_eq!(d.as_secs(), secs, "{text}");
            assert_eq!(d.to_string(), text);
        }
    }

    #[test]
    fn rejects_malformed_durations() {
        for text in [
            "",
            "10",
            "m",
            "10x",
            "30m1h",
            "1h1h",
            "-5m",
            "99999999999999999999d",
            "400d",
        ] {
            assert!(Duration::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn canonical_form_from_seconds() {
        assert_eq!(Duration::from_secs(5_400).as_str(), "1h30m");
        assert_eq!(Duration::from_secs(0).as_str(), "0s");
    }

    #[test]
    fn timestamps_need_a_zone() {
        assert!(Timestamp::parse("2026-11-27T18:00:00Z").is_ok());
        assert!(Timestamp::parse("2026-11-27T18:00:00").is_err());
        assert!(Timestamp::parse("Friday").is_err());
    }
}
