//! The scenario file: what the simulated estate holds and how it misbehaves.
//!
//! Every struct denies unknown fields so a typo is an error with its line and column, not a silently
//! ignored setting. Durations are either a number of seconds or a string `30s`, `10m`, `2h`, `1d`.
//! Durations of *simulated* things (sync rates, DMF jobs, live writes, lags) are scaled by
//! `time_scale`; latency, token TTL, Retry-After and throttling windows are real time.
//! The format is described for users in `docs/simulator.md`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::SimError;
use super::faults::Faults;
pub use super::sections::*;

/// The demo estate (see `runbooks/scenarios/demo.yaml`), embedded so `cutover sim` needs no file.
pub const DEMO_YAML: &str = include_str!("../../runbooks/scenarios/demo.yaml");

/// A parsed, validated scenario.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub name: String,
    /// Seed of every pseudo-random choice (row values, corrupt rows, fault points).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Simulated seconds per real second.
    #[serde(default = "one")]
    pub time_scale: f64,
    /// The simulated clock's value when the server starts.
    #[serde(default = "default_start")]
    pub start: DateTime<Utc>,
    #[serde(default)]
    pub latency: Latency,
    #[serde(default)]
    pub auth: AuthConfig,
    /// Legal entities, upper case (`USMF`). F&O rows carry them lower case in `dataAreaId`.
    pub companies: Vec<String>,
    /// The caller's default company (F&O queries without `cross-company=true` see only it).
    #[serde(default)]
    pub default_company: Option<String>,
    #[serde(default)]
    pub fno: FnoConfig,
    #[serde(default)]
    pub dataverse: DataverseConfig,
    pub entities: Entities,
    #[serde(default)]
    pub maps: Vec<MapDef>,
    #[serde(default)]
    pub dual_write: DualWriteConfig,
    #[serde(default)]
    pub dmf: DmfConfig,
    #[serde(default)]
    pub live_writes: Vec<LiveWrite>,
    #[serde(default)]
    pub faults: Faults,
    /// How the `/_sim/webhook` sink answers (also set at run time with `POST /_sim/webhook/behaviour`).
    #[serde(default)]
    pub webhook: WebhookBehaviour,
    /// The Synapse Link export of the tables and the Databricks workspace ingesting it (none: no lake).
    #[serde(default)]
    pub lake: Option<super::lake::LakeConfig>,
}

/// How the simulator's webhook sink answers: `status` (default 200, with body `1` as a Teams incoming webhook
/// answers) after `delay_ms` real milliseconds. A non-2xx status records nothing.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookBehaviour {
    pub status: Option<u16>,
    pub delay_ms: u64,
}

fn default_seed() -> u64 {
    42
}
fn one() -> f64 {
    1.0
}
fn default_start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-27T18:00:00Z")
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_default()
}

/// A duration in seconds; YAML accepts `90`, `90s`, `10m`, `2h`, `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(try_from = "DurRepr", into = "f64")]
pub struct Dur(pub f64);

#[derive(Deserialize)]
#[serde(untagged)]
enum DurRepr {
    Num(f64),
    Text(String),
}

impl From<Dur> for f64 {
    fn from(d: Dur) -> f64 {
        d.0
    }
}

impl TryFrom<DurRepr> for Dur {
    type Error = String;
    fn try_from(r: DurRepr) -> Result<Self, String> {
        match r {
            DurRepr::Num(n) if n >= 0.0 => Ok(Dur(n)),
            DurRepr::Num(n) => Err(format!("a duration cannot be negative ({n})")),
            DurRepr::Text(t) => parse_duration(&t).map(Dur),
        }
    }
}

/// Parses `90`, `1.5s`, `10m`, `2h`, `1d` (the crate's one duration grammar, with a scenario's
/// rules: fractions and bare seconds) into seconds.
pub fn parse_duration(text: &str) -> Result<f64, String> {
    crate::util::duration::parse_secs(text, crate::util::duration::Rules::SCENARIO)
        .ok_or_else(|| format!("`{text}` is not a duration (use 90, 30s, 10m, 2h or 1d)"))
}

impl Scenario {
    /// Parses and validates a scenario; errors carry the line and column.
    pub fn from_yaml(text: &str) -> Result<Scenario, SimError> {
        let scenario: Scenario = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
            SimError::Scenario {
                line,
                column,
                message: e.to_string(),
            }
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// The embedded demo scenario.
    pub fn demo() -> Scenario {
        match Scenario::from_yaml(DEMO_YAML) {
            Ok(s) => s,
            // The demo is tested (`demo_scenario_parses`); an empty estate is the safe fallback.
            Err(_) => Scenario::minimal(),
        }
    }

    fn minimal() -> Scenario {
        Scenario {
            name: "minimal".into(),
            seed: default_seed(),
            time_scale: 1.0,
            start: default_start(),
            latency: Latency::default(),
            auth: AuthConfig::default(),
            companies: vec!["USMF".into()],
            default_company: None,
            fno: FnoConfig::default(),
            dataverse: DataverseConfig::default(),
            entities: Entities::default(),
            maps: Vec::new(),
            dual_write: DualWriteConfig::default(),
            dmf: DmfConfig::default(),
            live_writes: Vec::new(),
            faults: Faults::default(),
            webhook: WebhookBehaviour::default(),
            lake: None,
        }
    }

    /// The default company (upper case).
    pub fn default_company(&self) -> String {
        self.default_company
            .clone()
            .or_else(|| self.companies.first().cloned())
            .unwrap_or_default()
            .to_uppercase()
    }

    /// Cross-reference checks that the YAML shape cannot express.
    fn validate(&self) -> Result<(), SimError> {
        let bad = |m: String| Err(SimError::Invalid(m));
        if self.time_scale <= 0.0 || !self.time_scale.is_finite() {
            return bad(format!("time_scale must be positive, got {}", self.time_scale));
        }
        if self.companies.is_empty() {
            return bad("companies must list at least one legal entity".into());
        }
        if self.fno.page_size == 0 || self.fno.page_size > 10_000 {
            return bad("fno.page_size must be 1..=10000".into());
        }
        if self.dataverse.page_size == 0 || self.dataverse.page_size > 5000 {
            return bad("dataverse.page_size must be 1..=5000".into());
        }
        let known = |c: &str| self.companies.iter().any(|k| k.eq_ignore_ascii_case(c));
        for (side, defs) in [
            ("fno", &self.entities.fno),
            ("dataverse", &self.entities.dataverse),
        ] {
            for (set, def) in defs {
                if let Rows::PerCompany(m) = &def.rows {
                    if let Some(c) = m.keys().find(|c| !known(c)) {
                        return bad(format!("entities.{side}.{set}: unknown company {c}"));
                    }
                }
                for (field, kind) in &def.fields {
                    super::tables::FieldKind::parse(kind).map_err(|e| {
                        SimError::Invalid(format!("entities.{side}.{set}.fields.{field}: {e}"))
                    })?;
                }
            }
        }
        let names: Vec<&str> = self.maps.iter().map(|m| m.name.as_str()).collect();
        for m in &self.maps {
            if !self.entities.fno.contains_key(&m.source) {
                return bad(format!(
                    "map {}: source {} is not an F&O entity",
                    m.name, m.source
                ));
            }
            if !self.entities.dataverse.contains_key(&m.target) {
                return bad(format!(
                    "map {}: target {} is not a Dataverse entity",
                    m.name, m.target
                ));
            }
            if let Some(d) = m.depends_on.iter().find(|d| !names.contains(&d.as_str())) {
                return bad(format!("map {}: depends_on names unknown map {d}", m.name));
            }
            if !(0.0..=1.0).contains(&m.corrupt_share) || m.rate <= 0.0 {
                return bad(format!(
                    "map {}: corrupt_share must be 0..1 and rate positive",
                    m.name
                ));
            }
            if m.fail_at_row.is_some() && m.category.is_none() {
                return bad(format!("map {}: fail_at_row needs a category", m.name));
            }
        }
        for lw in &self.live_writes {
            let defs = match lw.side {
                Side::Fno => &self.entities.fno,
                Side::Dataverse => &self.entities.dataverse,
            };
            if !defs.contains_key(&lw.entity) {
                return bad(format!("live_writes: unknown {:?} entity {}", lw.side, lw.entity));
            }
            if let Some(m) = lw.after_running.iter().find(|m| !names.contains(&m.as_str())) {
                return bad(format!("live_writes: after_running names unknown map {m}"));
            }
        }
        for (g, def) in &self.dmf.definition_groups {
            if let Some(e) = def
                .entities
                .iter()
                .find(|e| !self.entities.fno.contains_key(&e.entity_set))
            {
                return bad(format!(
                    "dmf.definition_groups.{g}: unknown F&O entity set {}",
                    e.entity_set
                ));
            }
        }
        if let Some(l) = &self.lake {
            if l.interval.0 < 1.0 {
                return bad("lake.interval must be at least 1s".into());
            }
            for c in &l.schema_changes {
                let defs = match c.side {
                    Side::Fno => &self.entities.fno,
                    Side::Dataverse => &self.entities.dataverse,
                };
                if !defs.contains_key(&c.entity) {
                    return bad(format!(
                        "lake.schema_changes: unknown {:?} entity {}",
                        c.side, c.entity
                    ));
                }
                super::tables::FieldKind::parse(&c.kind)
                    .map_err(|e| SimError::Invalid(format!("lake.schema_changes.{}: {e}", c.field)))?;
            }
            if let Some(t) = l.tables.iter().find(|t| {
                !self.entities.fno.contains_key(*t)
                    && !self.entities.dataverse.contains_key(*t)
                    && t.as_str() != "cdm_companies"
            }) {
                return bad(format!("lake.tables: unknown entity {t}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_scenario_parses() {
        let s = Scenario::from_yaml(DEMO_YAML).unwrap();
        assert_eq!(s.maps.len(), 13);
        assert_eq!(
            s.entities.fno.values().map(|e| e.rows.total()).sum::<u64>(),
            134_893
        );
        assert_eq!(Scenario::demo().name, "demo");
    }

    #[test]
    fn unknown_field_reports_line_and_column() {
        let err = Scenario::from_yaml("companies: [USMF]\nentities: {}\nlatencyy: 3\n").unwrap_err();
        match err {
            SimError::Scenario { line, .. } => assert_eq!(line, 3),
            other => panic!("unexpected {other}"),
        }
        assert!(matches!(
            Scenario::from_yaml("companies: []\nentities: {}\n"),
            Err(SimError::Invalid(_))
        ));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10m").unwrap(), 600.0);
        assert_eq!(parse_duration("90").unwrap(), 90.0);
        assert!(parse_duration("ten").is_err());
    }
}
