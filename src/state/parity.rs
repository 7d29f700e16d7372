//! The parity table: the latest counts per (map, company), judged against the map's tolerance, with
//! a bounded history of differences for the sparkline.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::event::Tolerance;

/// How many differences each row keeps for its sparkline (oldest dropped first).
pub const PARITY_HISTORY: usize = 240;

/// One map, optionally narrowed to one company (legal entity).
#[derive(Serialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParityKey {
    pub map: String,
    pub company: Option<String>,
}

#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParityStatus {
    /// |source - target| is within the map's tolerance.
    Within,
    /// Outside tolerance.
    Drift,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct ParityRow {
    pub source: u64,
    pub target: u64,
    /// `source - target` (positive: rows still missing on the target).
    pub difference: i64,
    /// |difference| as a percentage of the source count (0 when both are 0; 100 when only the source is 0).
    pub percent: f64,
    /// The allowed absolute difference at this source count.
    pub allowed: u64,
    pub status: ParityStatus,
    pub at: DateTime<Utc>,
    /// The first sample of this row (the baseline), as (source, target).
    pub baseline: (u64, u64),
    pub samples: u64,
    /// The last [`PARITY_HISTORY`] (time, difference) pairs, oldest first.
    pub history: VecDeque<(DateTime<Utc>, i64)>,
}

/// Rows keyed by (map, company), ordered by key; [`ParityTable::worst_first`] gives the console's default.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ParityTable {
    pub rows: BTreeMap<ParityKey, ParityRow>,
}

fn signed_difference(source: u64, target: u64) -> i64 {
    let d = i128::from(source) - i128::from(target);
    i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX })
}

impl ParityTable {
    /// Record one sample. `tolerance` is the map's (count 0 when the map is unknown: strictest).
    pub fn record(
        &mut self,
        map: &str,
        company: Option<&str>,
        source: u64,
        target: u64,
        tolerance: Tolerance,
        at: DateTime<Utc>,
    ) {
        let difference = signed_difference(source, target);
        let abs = difference.unsigned_abs();
        #[allow(clippy::cast_precision_loss)]
        let percent = match (source, abs) {
            (_, 0) => 0.0,
            (0, _) => 100.0,
            (s, a) => a as f64 * 100.0 / s as f64,
        };
        let allowed = tolerance.allowed(source);
        let status = if abs <= allowed {
            ParityStatus::Within
        } else {
            ParityStatus::Drift
        };
        // Look up by borrowed parts first so the steady state allocates nothing.
        let key = ParityKey {
            map: map.to_owned(),
            company: company.map(str::to_owned),
        };
        let row = self.rows.entry(key).or_insert_with(|| ParityRow {
            source,
            target,
            difference,
            percent,
            allowed,
            status,
            at,
            baseline: (source, target),
            samples: 0,
            history: VecDeque::with_capacity(16),
        });
        row.source = source;
        row.target = target;
        row.difference = difference;
        row.percent = percent;
        row.allowed = allowed;
        row.status = status;
        row.at = at;
        row.samples += 1;
        if row.history.len() == PARITY_HISTORY {
            row.history.pop_front();
        }
        row.history.push_back((at, difference));
    }

    /// Rows sorted worst first: drifting before within, then by |difference|, then by percent, then key.
    pub fn worst_first(&self) -> Vec<(&ParityKey, &ParityRow)> {
        self.worst_first_flagging(&BTreeSet::new())
    }

    /// Worst first, with the rows in `flagged` (those a gate is failing on now) above the rest:
    /// a map that has not been synced yet is 100% apart and expected to be, while the map that
    /// stops the run is what the operator must see first.
    pub fn worst_first_flagging(&self, flagged: &BTreeSet<ParityKey>) -> Vec<(&ParityKey, &ParityRow)> {
        self.worst_first_pending(flagged, &BTreeSet::new())
    }

    /// [`ParityTable::worst_first_flagging`], with the maps still awaiting their initial sync
    /// (`pending`) below every other drifting row: they are apart by design until it runs.
    pub fn worst_first_pending(
        &self,
        flagged: &BTreeSet<ParityKey>,
        pending: &BTreeSet<&str>,
    ) -> Vec<(&ParityKey, &ParityRow)> {
        let mut v: Vec<_> = self.rows.iter().collect();
        v.sort_by(|(ka, a), (kb, b)| {
            let drift = |k: &ParityKey, r: &ParityRow| {
                r.status == ParityStatus::Drift && !pending.contains(k.map.as_str())
            };
            flagged
                .contains(*kb)
                .cmp(&flagged.contains(*ka))
                .then(drift(kb, b).cmp(&drift(ka, a)))
                .then(
                    pending
                        .contains(ka.map.as_str())
                        .cmp(&pending.contains(kb.map.as_str())),
                )
                .then(b.difference.unsigned_abs().cmp(&a.difference.unsigned_abs()))
                .then(b.percent.total_cmp(&a.percent))
                .then(ka.cmp(kb))
        });
        v
    }

    /// Rows currently outside tolerance.
    pub fn drifting(&self) -> usize {
        self.rows
            .values()
            .filter(|r| r.status == ParityStatus::Drift)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn judges_against_tolerance_and_keeps_baseline_and_bounded_history() {
        let mut p = ParityTable::default();
        p.record("customers", Some("USMF"), 100, 90, Tolerance::Count(5), t(0));
        let k = ParityKey {
            map: "customers".into(),
            company: Some("USMF".into()),
        };
        assert_eq!(p.rows[&k].status, ParityStatus::Drift);
        assert_eq!(p.rows[&k].difference, 10);
        assert!((p.rows[&k].percent - 10.0).abs() < 1e-9);
        for i in 1..=(PARITY_HISTORY as i64 + 5) {
            p.record("customers", Some("USMF"), 100, 97, Tolerance::Count(5), t(i));
        }
        let row = &p.rows[&k];
        assert_eq!(row.status, ParityStatus::Within);
        assert_eq!(row.baseline, (100, 90));
        assert_eq!(row.history.len(), PARITY_HISTORY);
        assert_eq!(row.history.back().unwrap().0, t(PARITY_HISTORY as i64 + 5));
        assert_eq!(row.samples, PARITY_HISTORY as u64 + 6);
    }

    #[test]
    fn worst_first_puts_drift_on_top() {
        let mut p = ParityTable::default();
        p.record("a", None, 100, 100, Tolerance::Count(0), t(0));
        p.record("b", None, 100, 99, Tolerance::Count(0), t(0));
        p.record("c", None, 100, 50, Tolerance::Percent(60.0), t(0));
        let order: Vec<_> = p.worst_first().iter().map(|(k, _)| k.map.clone()).collect();
        assert_eq!(order, ["b", "c", "a"]);
        assert_eq!(p.drifting(), 1);
        // A map a gate is failing on goes above one that is merely further apart (not synced yet).
        p.record("unsynced", None, 100, 0, Tolerance::Count(0), t(0));
        let gate = BTreeSet::from([ParityKey {
            map: "b".into(),
            company: None,
        }]);
        let order: Vec<_> = p
            .worst_first_flagging(&gate)
            .iter()
            .map(|(k, _)| k.map.clone())
            .collect();
        assert_eq!(order, ["b", "unsynced", "c", "a"]);
        let order: Vec<_> = p.worst_first().iter().map(|(k, _)| k.map.clone()).collect();
        assert_eq!(order, ["unsynced", "b", "c", "a"]);
    }
}
