//! Package installs across journals and environments (`cutover installs`, and the report's "Package installs"
//! section): every `install_record` of every run, with drift flagged: a package whose latest install is at
//! different versions in two environments.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::journal::JournalReader;
use crate::model::Event;

/// One install, as a journal recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Install {
    /// RFC 3339 (UTC), when the record was journaled.
    pub at: String,
    /// `<env>@<host>` of the F&O environment imported into (`(unrecorded)` in journals older than the field).
    pub environment: String,
    pub package: String,
    pub version: String,
    pub sha256: String,
    pub execution_id: String,
    pub result: String,
    pub record_count: Option<u64>,
    pub journal: String,
    pub run_id: String,
    pub runbook: String,
    pub step: String,
    /// The package's latest installs are at different versions in two environments.
    pub drift: bool,
}

/// A package whose latest installs differ by environment: (environment, version), sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Drift {
    pub package: String,
    pub versions: Vec<(String, String)>,
}

/// How to order the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SortBy {
    /// Newest first.
    #[default]
    Time,
    /// By package name, then newest first.
    Package,
    /// By package, then version (numeric parts compared as numbers, highest first), then newest first.
    Version,
}

/// Every install record of every run of `journal`.
pub fn read(journal: &Path) -> Result<Vec<Install>, String> {
    let name = journal.display().to_string();
    let r = JournalReader::open_read_only(journal).map_err(|e| format!("{name}: {e}"))?;
    read_with(&r, &name).map_err(|e| format!("{name}: {e}"))
}

/// [`read`] on an open journal, `name` being what the rows call it.
pub fn read_with(r: &JournalReader, name: &str) -> Result<Vec<Install>, crate::journal::JournalError> {
    let runs = r.runs()?;
    // Only the install rows are read and decoded (a million-event run holds a handful), then taken
    // run by run in the runs' order and each run's in seq order, as a walk of every run would meet them.
    let mut records = r.envelopes_of_kind("install_record")?;
    records.sort_by_key(|e| e.seq);
    let mut out = Vec::new();
    for run in runs {
        let of_run = records.iter().filter(|e| e.run_id == run.run_id);
        for env in of_run.cloned() {
            if let Event::InstallRecord {
                step,
                package,
                version,
                sha256,
                execution_id,
                result,
                environment,
                record_count,
            } = env.event
            {
                out.push(Install {
                    at: env.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    environment: if environment.is_empty() {
                        "(unrecorded)".to_owned()
                    } else {
                        environment
                    },
                    package,
                    version,
                    sha256,
                    execution_id,
                    result,
                    record_count,
                    journal: name.to_owned(),
                    run_id: run.run_id.as_str().to_owned(),
                    runbook: run.runbook.clone(),
                    step: step.as_str().to_owned(),
                    drift: false,
                });
            }
        }
    }
    Ok(out)
}

/// Flags drift on `installs` and returns the drifted packages: per package, the latest successful install in
/// each environment (the latest install when none succeeded); two environments at different versions drift.
pub fn flag_drift(installs: &mut [Install]) -> Vec<Drift> {
    let mut latest: BTreeMap<(&str, &str), (&str, bool, &str)> = BTreeMap::new();
    for i in installs.iter() {
        let ok = i.result == "Succeeded";
        let e = latest
            .entry((i.package.as_str(), i.environment.as_str()))
            .or_insert((i.at.as_str(), ok, i.version.as_str()));
        // A success beats a failure; then the newer wins.
        if (ok, i.at.as_str()) > (e.1, e.0) {
            *e = (i.at.as_str(), ok, i.version.as_str());
        }
    }
    let mut by_package: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for ((p, env), (_, _, v)) in &latest {
        by_package
            .entry(p)
            .or_default()
            .push(((*env).to_owned(), (*v).to_owned()));
    }
    let drifts: Vec<Drift> = by_package
        .into_iter()
        .filter(|(_, vs)| vs.iter().map(|(_, v)| v).collect::<BTreeSet<_>>().len() > 1)
        .map(|(p, versions)| Drift {
            package: p.to_owned(),
            versions,
        })
        .collect();
    for i in installs.iter_mut() {
        i.drift = drifts.iter().any(|d| d.package == i.package);
    }
    drifts
}

/// Version order: numeric dot-parts as numbers, others as text.
fn version_key(v: &str) -> Vec<(u64, String)> {
    v.split(['.', '-', '+'])
        .map(|p| match p.parse::<u64>() {
            Ok(n) => (n, String::new()),
            Err(_) => (0, p.to_owned()),
        })
        .collect()
}

/// Sorts in place (see [`SortBy`]).
pub fn sort(installs: &mut [Install], by: SortBy) {
    installs.sort_by(|a, b| {
        let newest = b.at.cmp(&a.at);
        match by {
            SortBy::Time => newest,
            SortBy::Package => a.package.cmp(&b.package).then(newest),
            SortBy::Version => a
                .package
                .cmp(&b.package)
                .then_with(|| version_key(&b.version).cmp(&version_key(&a.version)))
                .then(newest),
        }
    });
}

/// Reads every journal, flags drift and sorts.
pub fn collect(journals: &[impl AsRef<Path>], by: SortBy) -> Result<(Vec<Install>, Vec<Drift>), String> {
    let mut all = Vec::new();
    for j in journals {
        all.extend(read(j.as_ref())?);
    }
    let drifts = flag_drift(&mut all);
    sort(&mut all, by);
    Ok((all, drifts))
}
