//! Dual-write errors as the console shows them: each error source's figure per map (or why it is not
//! available), exact totals by map × category, the newest entries
//! (bounded), and the rate per hour over the last hour.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::event::ErrorEntry;

/// Entries kept for the list (newest first); totals stay exact beyond it.
pub const ERROR_ENTRIES_KEPT: usize = 100_000;

#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct ErrorQueue {
    /// Every entry ever seen in this run (exact).
    pub seen_total: u64,
    /// Entries seen, by map then category (exact).
    pub seen_by: BTreeMap<String, BTreeMap<String, u64>>,
    /// The latest service-reported totals per map (from `ErrorCounts`), by category: the sum over the
    /// map's available sources. A map none of whose sources is available has no entry here.
    pub reported: BTreeMap<String, BTreeMap<String, u64>>,
    /// The latest figure of every error source per map (map → source name → figure).
    pub sources: BTreeMap<String, BTreeMap<String, SourceFigure>>,
    /// The newest [`ERROR_ENTRIES_KEPT`] entries, newest first.
    pub newest: VecDeque<ErrorEntry>,
    /// Entries per minute (minute index since the epoch, count), for the hourly rate; at most 61 buckets.
    minutes: VecDeque<(i64, u64)>,
}

/// The name journals written before error sources give the old F&O error queue.
pub const LEGACY_SOURCE: &str = "error_queue";

/// One source's latest figure for one map.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub enum SourceFigure {
    Available(BTreeMap<String, u64>),
    /// Not readable, with why: never shown as zero.
    Unavailable(String),
}

impl SourceFigure {
    /// "3 (dataverse.asyncoperations)" or "not available (<reason>) (dataverse.plugintracelogs)".
    pub fn describe(&self, source: &str) -> String {
        match self {
            SourceFigure::Available(by) => format!("{} ({source})", by.values().sum::<u64>()),
            SourceFigure::Unavailable(why) => format!("not available ({why}) ({source})"),
        }
    }
}

impl ErrorQueue {
    pub(super) fn add_entries(&mut self, entries: &[ErrorEntry]) {
        for e in entries {
            self.seen_total += 1;
            // Allocate the key only for a (map, category) pair not seen before.
            let by_cat = match self.seen_by.get_mut(e.map.as_str()) {
                Some(m) => m,
                None => self.seen_by.entry(e.map.clone()).or_default(),
            };
            match by_cat.get_mut(e.category.as_str()) {
                Some(n) => *n += 1,
                None => {
                    by_cat.insert(e.category.clone(), 1);
                }
            }
            self.bump_minute(e.at);
            // At capacity, reuse the evicted entry's buffers: no allocation in the steady state.
            let evicted = if self.newest.len() >= ERROR_ENTRIES_KEPT {
                self.newest.pop_back()
            } else {
                None
            };
            match evicted {
                Some(mut old) => {
                    old.id.clone_from(&e.id);
                    old.at = e.at;
                    old.map.clone_from(&e.map);
                    old.key.clone_from(&e.key);
                    old.category.clone_from(&e.category);
                    old.message.clone_from(&e.message);
                    self.newest.push_front(old);
                }
                None => self.newest.push_front(e.clone()),
            }
        }
    }

    pub(super) fn set_reported(
        &mut self,
        map: &str,
        source: Option<&str>,
        unavailable: Option<&str>,
        by_category: &BTreeMap<String, u64>,
    ) {
        let figure = match unavailable {
            Some(why) => SourceFigure::Unavailable(why.to_owned()),
            None => SourceFigure::Available(by_category.clone()),
        };
        let per = self.sources.entry(map.to_owned()).or_default();
        per.insert(source.unwrap_or(LEGACY_SOURCE).to_owned(), figure);
        let mut sum: Option<BTreeMap<String, u64>> = None;
        for f in per.values() {
            if let SourceFigure::Available(by) = f {
                let acc = sum.get_or_insert_with(BTreeMap::new);
                for (c, n) in by {
                    *acc.entry(c.clone()).or_default() += n;
                }
            }
        }
        match sum {
            Some(by) => {
                self.reported.insert(map.to_owned(), by);
            }
            None => {
                self.reported.remove(map);
            }
        }
    }

    /// Every source figure of one map, by source name.
    pub fn sources_of(&self, map: &str) -> Option<&BTreeMap<String, SourceFigure>> {
        self.sources.get(map)
    }

    /// One figure per source over every map, the source named first: `dataverse.asyncoperations 2`, or
    /// `dataverse.plugintracelogs not available (HTTP 403: ...)` (with `for 3 of 5 maps` when only some
    /// maps could not read it). The legacy error queue is left out.
    pub fn source_summary(&self) -> Vec<String> {
        let mut by: BTreeMap<&str, (u64, u64, Option<&str>, u64)> = BTreeMap::new();
        for per in self.sources.values() {
            for (source, f) in per {
                if source == LEGACY_SOURCE {
                    continue;
                }
                let e = by.entry(source.as_str()).or_insert((0, 0, None, 0));
                e.3 += 1;
                match f {
                    SourceFigure::Available(c) => e.0 += c.values().sum::<u64>(),
                    SourceFigure::Unavailable(why) => {
                        e.1 += 1;
                        e.2.get_or_insert(why.as_str());
                    }
                }
            }
        }
        by.into_iter()
            .map(|(source, (total, blind, why, maps))| match (blind, why) {
                (0, _) | (_, None) => format!("{source} {total}"),
                (b, Some(why)) if b == maps => format!("{source} not available ({why})"),
                (b, Some(why)) => {
                    format!("{source} {total}, not available for {b} of {maps} maps ({why})")
                }
            })
            .collect()
    }

    /// One line per map naming each source beside its figure, e.g.
    /// `customers: 2 (dataverse.asyncoperations), not available (HTTP 403) (dataverse.plugintracelogs)`.
    pub fn source_lines(&self) -> Vec<String> {
        self.sources
            .iter()
            .map(|(map, per)| {
                let parts: Vec<String> = per.iter().map(|(s, f)| f.describe(s)).collect();
                format!("{map}: {}", parts.join(", "))
            })
            .collect()
    }

    fn bump_minute(&mut self, at: DateTime<Utc>) {
        let minute = at.timestamp().div_euclid(60);
        match self.minutes.iter_mut().rev().find(|(m, _)| *m == minute) {
            Some((_, n)) => *n += 1,
            None => {
                // Keep buckets ordered; entries are nearly always in time order, so this is a push.
                let pos = self
                    .minutes
                    .iter()
                    .rposition(|(m, _)| *m < minute)
                    .map_or(0, |p| p + 1);
                self.minutes.insert(pos, (minute, 1));
            }
        }
        let newest = self.minutes.back().map_or(minute, |(m, _)| *m);
        while self.minutes.front().is_some_and(|(m, _)| *m < newest - 60) {
            self.minutes.pop_front();
        }
    }

    /// Entries per hour over the hour ending at `now` (counted by the entries' own times, per minute).
    /// When the service stamps entries ahead of `now` (the simulator's scaled clock, or a server whose
    /// clock runs fast), the hour ends at the newest entry instead, so fresh errors are never shown as
    /// a zero rate.
    pub fn rate_per_hour(&self, now: DateTime<Utc>) -> u64 {
        let newest = self.minutes.back().map_or(i64::MIN, |(m, _)| *m);
        let now_minute = now.timestamp().div_euclid(60).max(newest);
        self.minutes
            .iter()
            .filter(|(m, _)| *m > now_minute - 60 && *m <= now_minute)
            .map(|(_, n)| n)
            .sum()
    }

    /// Counts by (map, category) as the console shows them: a map's service-reported totals when it
    /// has any, otherwise the entries this run has seen for it.
    pub fn counts(&self) -> BTreeMap<(String, String), u64> {
        let mut out = BTreeMap::new();
        let seen = self
            .seen_by
            .iter()
            .filter(|(m, _)| !self.reported.contains_key(*m));
        for (map, cats) in seen.chain(self.reported.iter()) {
            for (cat, n) in cats {
                out.insert((map.clone(), cat.clone()), *n);
            }
        }
        out
    }

    /// The total of [`ErrorQueue::counts`] for one map (what a gate's `max_errors` compares with).
    pub fn total_for_map(&self, map: &str) -> u64 {
        match self.reported.get(map) {
            Some(r) => r.values().sum(),
            None => self.seen_by.get(map).map_or(0, |c| c.values().sum()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: i64, map: &str, cat: &str) -> ErrorEntry {
        ErrorEntry {
            id: format!("e{i}"),
            at: DateTime::from_timestamp(1_800_000_000 + i * 30, 0).unwrap(),
            map: map.into(),
            key: format!("K{i}"),
            category: cat.into(),
            message: "boom".into(),
        }
    }

    #[test]
    fn totals_exact_newest_first_rate_over_last_hour() {
        let mut q = ErrorQueue::default();
        let entries: Vec<_> = (0..240)
            .map(|i| entry(i, "customers", if i % 2 == 0 { "a" } else { "b" }))
            .collect();
        q.add_entries(&entries);
        assert_eq!(q.seen_total, 240);
        assert_eq!(q.seen_by["customers"]["a"], 120);
        assert_eq!(q.newest.front().unwrap().id, "e239");
        // 240 entries 30 s apart span two hours; the last hour holds 120 of them.
        let now = entries[239].at;
        assert_eq!(q.rate_per_hour(now), 120);
        assert!(q.minutes.len() <= 61);
    }

    #[test]
    fn entries_stamped_ahead_of_now_still_count() {
        // The simulator's scaled clock stamps entries days ahead of the wall clock.
        let mut q = ErrorQueue::default();
        let entries: Vec<_> = (0..10).map(|i| entry(i, "vendors", "missing_lookup")).collect();
        q.add_entries(&entries);
        let four_days_earlier = entries[0].at - chrono::Duration::days(4);
        assert_eq!(q.rate_per_hour(four_days_earlier), 10);
        // Once now has moved two hours past the newest entry, the rate falls back to zero.
        assert_eq!(q.rate_per_hour(entries[9].at + chrono::Duration::hours(2)), 0);
    }

    #[test]
    fn reported_counts_override_seen_for_that_map() {
        let mut q = ErrorQueue::default();
        q.add_entries(&[entry(0, "customers", "a"), entry(1, "vendors", "x")]);
        q.set_reported(
            "customers",
            None,
            None,
            &BTreeMap::from([("a".to_string(), 7), ("c".to_string(), 2)]),
        );
        let c = q.counts();
        assert_eq!(c[&("customers".into(), "a".into())], 7);
        assert_eq!(c[&("vendors".into(), "x".into())], 1);
        assert_eq!(q.total_for_map("customers"), 9);
        assert_eq!(q.total_for_map("vendors"), 1);
    }

    #[test]
    fn sources_add_up_and_an_unavailable_one_is_never_zero() {
        let mut q = ErrorQueue::default();
        let two = BTreeMap::from([("other".to_string(), 2)]);
        q.set_reported("m", Some("dataverse.asyncoperations"), None, &two);
        q.set_reported(
            "m",
            Some("dataverse.plugintracelogs"),
            Some("HTTP 403"),
            &BTreeMap::new(),
        );
        assert_eq!(q.total_for_map("m"), 2);
        assert_eq!(
            q.source_lines(),
            vec![
                "m: 2 (dataverse.asyncoperations), not available (HTTP 403) (dataverse.plugintracelogs)"
                    .to_string()
            ]
        );
        q.set_reported(
            "m",
            Some("dataverse.asyncoperations"),
            Some("HTTP 404"),
            &BTreeMap::new(),
        );
        assert!(!q.reported.contains_key("m"));
    }
}
