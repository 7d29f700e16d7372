//! The trend after the weekend (`cutover trend JOURNAL…` and the report's Trend section): per map, run by run
//! (a hypercare journal holds one run a day), the drift of the run's last counts, the dual-write errors by
//! category (the sources' last totals in the run, over the window its error sweep read: `since: 24h` in
//! `runbooks/hypercare.yaml`, so a day's errors), and the
//! `sample` results (records found differing or missing). A run is dated by its environment's clock
//! (`environment_time`: the simulator's in a rehearsal, so a time-scaled week reads as a week), else by when
//! it started.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;

use crate::journal::{JournalError, JournalReader};
use crate::model::Event;

/// One map in one run.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct TrendRow {
    /// The run's day (`YYYY-MM-DD`, environment time).
    pub day: String,
    /// When the run started, environment time (RFC 3339, UTC: sorts as text).
    pub at: String,
    pub run_id: String,
    pub runbook: String,
    pub map: String,
    /// The run's last counts, summed over the map's companies (`None`: not counted in this run).
    pub source: Option<u64>,
    pub target: Option<u64>,
    /// `source − target` (positive: rows missing on the target).
    pub drift: Option<i64>,
    /// Dual-write errors the run last read, all available sources, over that read's window (`None`: not read,
    /// or no source available).
    pub errors: Option<u64>,
    /// `errors` by category.
    pub by_category: BTreeMap<String, u64>,
    /// Records a `sample` in this run found differing or missing (persisting).
    pub sample_differ: u64,
    /// Whether a `sample` step ran in this run.
    pub sampled: bool,
}

/// Every map of every run of `journals`, ordered by time, then map.
pub fn trend(journals: &[&Path]) -> Result<Vec<TrendRow>, JournalError> {
    let mut rows: Vec<TrendRow> = Vec::new();
    for path in journals {
        let reader = JournalReader::open_read_only(path)?;
        for run in reader.runs()? {
            let mut at = run.started_at;
            let mut maps: Vec<String> = Vec::new();
            let mut counts: BTreeMap<(String, Option<String>), (u64, u64)> = BTreeMap::new();
            let mut errors: BTreeMap<(String, String), Option<BTreeMap<String, u64>>> = BTreeMap::new();
            let mut differ: BTreeMap<String, u64> = BTreeMap::new();
            let mut sampled = false;
            for env in reader.events(&run.run_id) {
                match env?.event {
                    Event::RunStarted { maps: m, .. } => maps = m.into_iter().map(|m| m.id).collect(),
                    Event::EnvironmentTime { at: t } => at = t,
                    Event::ParitySample {
                        map,
                        company,
                        source,
                        target,
                        ..
                    } => {
                        counts.insert((map, company), (source, target));
                    }
                    Event::ErrorCounts {
                        map,
                        by_category,
                        source,
                        unavailable,
                        ..
                    } => {
                        let key = (map, source.unwrap_or_default());
                        errors.insert(key, unavailable.is_none().then_some(by_category));
                    }
                    Event::ErrorEntries {
                        map,
                        entries,
                        source: Some(s),
                    } if s == "sample" => *differ.entry(map).or_default() += entries.len() as u64,
                    Event::StepIntent { step, .. } if step.as_str().contains("sample") => sampled = true,
                    Event::StepFinished { outputs, .. } if outputs.contains_key("differ") => sampled = true,
                    _ => {}
                }
            }
            for map in maps {
                let per: Vec<(u64, u64)> = counts
                    .iter()
                    .filter(|((m, c), _)| {
                        *m == map
                            && (c.is_some() || !counts.keys().any(|(m2, c2)| *m2 == map && c2.is_some()))
                    })
                    .map(|(_, v)| *v)
                    .collect();
                let (source, target) = if per.is_empty() {
                    (None, None)
                } else {
                    (
                        Some(per.iter().map(|p| p.0).sum::<u64>()),
                        Some(per.iter().map(|p| p.1).sum::<u64>()),
                    )
                };
                let mut by_category: BTreeMap<String, u64> = BTreeMap::new();
                let mut any = false;
                for ((m, _), figures) in &errors {
                    if *m != map {
                        continue;
                    }
                    if let Some(f) = figures {
                        any = true;
                        for (c, n) in f {
                            *by_category.entry(c.clone()).or_default() += n;
                        }
                    }
                }
                rows.push(TrendRow {
                    day: at.format("%Y-%m-%d").to_string(),
                    at: stamp(at),
                    run_id: run.run_id.0.clone(),
                    runbook: run.runbook.clone(),
                    drift: source
                        .zip(target)
                        .map(|(s, t)| i64::try_from(i128::from(s) - i128::from(t)).unwrap_or(i64::MAX)),
                    source,
                    target,
                    errors: any.then(|| by_category.values().sum()),
                    by_category,
                    sample_differ: differ.get(&map).copied().unwrap_or(0),
                    sampled,
                    map,
                });
            }
        }
    }
    rows.sort_by(|a, b| (&a.at, &a.map).cmp(&(&b.at, &b.map)));
    Ok(rows)
}

fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn categories(r: &TrendRow) -> String {
    if r.by_category.is_empty() {
        return "-".into();
    }
    r.by_category
        .iter()
        .map(|(c, n)| format!("{c}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The table as text: one line per map and run.
pub fn text(rows: &[TrendRow]) -> String {
    let mut out = format!(
        "{:<10}  {:<20} {:>9} {:>9} {:>7} {:>7} {:>7}  by category\n",
        "day", "map", "source", "target", "drift", "errors", "sample"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<10}  {:<20} {:>9} {:>9} {:>7} {:>7} {:>7}  {}\n",
            r.day,
            r.map,
            opt(r.source),
            opt(r.target),
            opt(r.drift),
            opt(r.errors),
            if r.sampled {
                r.sample_differ.to_string()
            } else {
                "-".into()
            },
            categories(r)
        ));
    }
    out
}

/// The table as CSV (RFC 4180), one line per map and run.
pub fn csv(rows: &[TrendRow]) -> String {
    let q = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    };
    let mut out = String::from(
        "day,at,run_id,runbook,map,source,target,drift,errors,by_category,sampled,sample_differ\n",
    );
    let e = |v: Option<String>| v.unwrap_or_default();
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            r.day,
            r.at,
            q(&r.run_id),
            q(&r.runbook),
            q(&r.map),
            e(r.source.map(|v| v.to_string())),
            e(r.target.map(|v| v.to_string())),
            e(r.drift.map(|v| v.to_string())),
            e(r.errors.map(|v| v.to_string())),
            q(&categories(r)),
            r.sampled,
            r.sample_differ
        ));
    }
    out
}
