//! The run's figures (`runbook::vars::FIGURES`) as text, for `${parity.worst}` and the like in a `notify`
//! text: computed from the state, so a figure is what the console shows at that moment. A figure with
//! nothing measured yet is absent (interpolation writes `n/a`, never 0).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::RunState;

impl RunState {
    /// Every figure that has been measured in this run, by name.
    pub fn figures(&self, now: DateTime<Utc>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            out.insert(k.to_owned(), v);
        };
        if let Some((key, row)) = self
            .parity
            .rows
            .iter()
            .max_by_key(|(k, r)| (r.difference.unsigned_abs(), std::cmp::Reverse(*k)))
        {
            put("parity.worst", row.difference.unsigned_abs().to_string());
            put(
                "parity.worst_map",
                match &key.company {
                    Some(c) => format!("{}/{c}", key.map),
                    None => key.map.clone(),
                },
            );
            put("parity.drifting", self.parity.drifting().to_string());
            put("parity.maps", self.parity.rows.len().to_string());
        }
        let maps: Vec<&String> = self.maps.keys().collect();
        if !maps.is_empty() && !self.errors.counts().is_empty() {
            let total: u64 = maps.iter().map(|m| self.errors.total_for_map(m)).sum();
            put("errors.total", total.to_string());
        }
        if self.errors.seen_total > 0 || !self.errors.counts().is_empty() {
            put("errors.per_hour", self.errors.rate_per_hour(now).to_string());
        }
        let (mut checked, mut differ, mut any) = (0u64, 0u64, false);
        for s in self.steps.iter().filter(|s| s.info.kind == "sample") {
            let n = |k: &str| s.outputs.get(k).and_then(|v| v.parse::<u64>().ok());
            if let (Some(c), Some(d)) = (n("checked"), n("differ")) {
                checked += c;
                differ += d;
                any = true;
            }
        }
        if any {
            put("sample.checked", checked.to_string());
            put("sample.differ", differ.to_string());
        }
        put("alerts.total", self.alerts_total.to_string());
        out
    }
}
