//! Live writes and propagation through Running maps.
//!
//! Our model: a change on one side of a Running map shows on the other side `dual_write.lag`
//! (simulated) later; on a Paused map it is queued (at most `queue_max_bytes` at `queued_row_bytes`
//! per change, and `queue_max_age` after the pause: beyond either, changes are blocked, counted in
//! `queueBlocked`, and never arrive); Resume replays the queue at `replay_rate`. Maps in any other
//! state do not propagate. Scenario live writes create rows (`burst` at once, then
//! `creates_per_hour`) and update rows (a new revision changes generated field values) in a window
//! that can wait for maps to be Running.

use serde_json::{Map, Value, json};

use super::dual_write::{PAUSED, RESUMING, RUNNING};
use super::faults::{hash_str, mix};
use super::scenario::{LiveWrite, Side};
use super::tables::{NO_COMPANY, Row};
use super::world::SimState;

#[derive(Debug, Clone)]
pub enum ChangeKind {
    Create(Row),
    Update {
        company: u16,
        n: u32,
        rev: u32,
    },
    /// The deleted row as it was on its own side.
    Delete {
        row: Map<String, Value>,
    },
}

/// A change travelling through a map; `to_dv` is its direction.
#[derive(Debug, Clone)]
pub struct Change {
    pub to_dv: bool,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone)]
pub struct Pending {
    pub due: f64,
    pub map: usize,
    pub change: Change,
}

#[derive(Debug, Clone)]
pub struct LiveRt {
    pub def: LiveWrite,
    opened: Option<f64>,
    created: u64,
    updated: u64,
}

impl LiveRt {
    pub fn new(def: LiveWrite) -> LiveRt {
        LiveRt {
            def,
            opened: None,
            created: 0,
            updated: 0,
        }
    }
}

/// Copies a JSON row across a map (source field names ↔ target field names).
pub fn translate(
    st: &SimState,
    m: &super::dual_write::MapRt,
    obj: &Map<String, Value>,
    to_dv: bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    let tgt = &st.dv[m.tgt];
    let mut pairs: Vec<(String, String)> = m.def.fields.iter().map(|(a, b)| (a.clone(), b.clone())).collect();
    if let Some(k) = &m.def.key {
        pairs.push((k.source.clone(), k.target.clone()));
    }
    let company_field = tgt.company_field.clone();
    if to_dv {
        if let Some(id) = &tgt.id_field {
            let seed = hash_str(&serde_json::to_string(obj).unwrap_or_default());
            out.insert(
                id.clone(),
                json!(super::tables::guid_from(mix(tgt.salt, seed), seed)),
            );
        }
        if let (Some(cf), Some(c)) = (&company_field, obj.get("dataAreaId").and_then(Value::as_str)) {
            let v = if tgt.company_is_lookup() {
                super::tables::company_guid(c)
            } else {
                c.to_uppercase()
            };
            out.insert(cf.clone(), json!(v));
        }
        for (s, t) in pairs {
            if let Some(v) = obj.get(&s) {
                let v = match m.def.values.get(&s) {
                    Some(vm) => v
                        .as_str()
                        .and_then(|x| vm.get(x))
                        .map_or(Value::Null, |n| json!(n)),
                    None => v.clone(),
                };
                out.insert(t, v);
            }
        }
    } else {
        if let (Some(cf), true) = (&company_field, st.fno[m.src].company_specific) {
            if let Some(i) = obj
                .get(cf)
                .and_then(Value::as_str)
                .and_then(|v| tgt.company_of_value(v, &st.companies))
            {
                let code = st.companies.get(i as usize).cloned().unwrap_or_default();
                out.insert("dataAreaId".into(), json!(code.to_lowercase()));
            }
        }
        for (s, t) in pairs {
            if let Some(v) = obj.get(&t) {
                out.insert(s, v.clone());
            }
        }
    }
    out
}

impl SimState {
    /// A row was created/updated/deleted on `side` in table `table`: send it through its maps.
    pub fn propagate(&mut self, side: Side, table: usize, kind: ChangeKind) {
        let lag = self.scenario.dual_write.lag.0;
        self.propagate_after(side, table, kind, lag);
    }

    /// As [`SimState::propagate`], with an explicit lag (simulated seconds).
    pub fn propagate_after(&mut self, side: Side, table: usize, kind: ChangeKind, lag: f64) {
        let t = self.now;
        let (row_bytes, max_bytes, max_age) = (
            self.scenario.dual_write.queued_row_bytes.max(1),
            self.scenario.dual_write.queue_max_bytes,
            self.scenario.dual_write.queue_max_age.0,
        );
        for m in 0..self.maps.len() {
            let map = &self.maps[m];
            let to_dv = match side {
                Side::Fno if map.src == table => true,
                Side::Dataverse if map.tgt == table => false,
                _ => continue,
            };
            let change = Change {
                to_dv,
                kind: kind.clone(),
            };
            match map.status {
                RUNNING => self.pending.push(Pending {
                    due: t + lag,
                    map: m,
                    change,
                }),
                PAUSED | RESUMING => {
                    let map = &mut self.maps[m];
                    let full = (map.queue.len() as u64 + 1) * row_bytes > max_bytes;
                    if full || (map.status == PAUSED && t - map.paused_at > max_age) {
                        map.queue_blocked += 1;
                    } else {
                        map.queue.push(change);
                    }
                }
                _ => {}
            }
        }
    }

    /// Delivers pending changes whose lag has passed.
    pub fn advance_pending(&mut self, t: f64) {
        if self.pending.is_empty() {
            return;
        }
        let (due, later): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.due <= t);
        self.pending = later;
        for p in due {
            self.apply_change(p.map, p.change);
        }
    }

    /// Applies one change on the far side of map `m`.
    pub fn apply_change(&mut self, m: usize, change: Change) {
        let (src, tgt) = (self.maps[m].src, self.maps[m].tgt);
        match change.kind {
            ChangeKind::Create(row) => {
                let obj = match &row.owned {
                    Some(o) => Some((**o).clone()),
                    None if !change.to_dv => {
                        let tables = self.tables();
                        Some(tables.materialize(&self.dv[tgt], &row, &self.companies))
                    }
                    None => None,
                };
                if change.to_dv && self.live_fails(m, obj.as_ref()) {
                    return;
                }
                match (obj, change.to_dv) {
                    (Some(o), to_dv) => {
                        let mapped = translate(self, &self.maps[m], &o, to_dv);
                        let company = if to_dv {
                            self.company_of(o.get("dataAreaId"))
                        } else {
                            self.company_of(mapped.get("dataAreaId"))
                        };
                        let new = Row {
                            company,
                            owned: Some(Box::new(mapped)),
                            ..Row::generated(company, row.n)
                        };
                        if to_dv {
                            self.dv[tgt].push(new)
                        } else {
                            self.fno[src].push(new)
                        }
                    }
                    (None, _) => self.dv[tgt].push(Row {
                        via_origin: true,
                        corrupt: false,
                        ..row
                    }),
                }
            }
            ChangeKind::Update { company, n, rev } => {
                let rows = if change.to_dv {
                    &mut self.dv[tgt].rows
                } else {
                    &mut self.fno[src].rows
                };
                if let Some(r) = rows
                    .iter_mut()
                    .find(|r| r.owned.is_none() && r.company == company && r.n == n)
                {
                    r.rev = rev;
                }
            }
            ChangeKind::Delete { row } => {
                let Some(k) = self.maps[m].def.key.clone() else {
                    return;
                };
                let (from, field) = if change.to_dv {
                    (k.source, k.target)
                } else {
                    (k.target, k.source)
                };
                let Some(key) = row.get(&from).cloned() else {
                    return;
                };
                let tables = self.tables();
                let table = if change.to_dv {
                    &self.dv[tgt]
                } else {
                    &self.fno[src]
                };
                if let Some(pos) = table.find(&field, &key, &tables, &self.companies) {
                    if change.to_dv {
                        self.dv[tgt].remove(pos)
                    } else {
                        self.fno[src].remove(pos)
                    };
                }
            }
        }
    }

    /// Counts a create carried into Dataverse by map `m`; every `live_fail_every`th fails: it is not
    /// written and is recorded as a failed system job (our model of a live-sync failure).
    fn live_fails(&mut self, m: usize, obj: Option<&Map<String, Value>>) -> bool {
        let key_of = |st: &Self, n: u64| {
            st.maps[m]
                .def
                .key
                .as_ref()
                .and_then(|k| obj.and_then(|o| o.get(&k.source)))
                .map_or_else(
                    || format!("change {n}"),
                    |v| v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                )
        };
        // A lookup to a table no map has loaded cannot be resolved: every create through it fails.
        if let Some((lookup, set)) = self.unresolved_lookup(self.maps[m].tgt) {
            let n = self.live_to_dv.get(&m).copied().unwrap_or(0) + 1;
            let key = key_of(self, n);
            let msg = format!(
                "Lookup for '{lookup}' could not be resolved: {set} has no record to point at (no map has loaded it)."
            );
            self.record_error(
                m,
                super::world::ErrorOrigin::Live { plugin: false },
                &key,
                "missing_lookup",
                &msg,
            );
            return true;
        }
        // An enabled plug-in step that throws on what dual-write pushes fails every create into its table.
        if let Some(p) = self.throwing_plugin(&self.maps[m].def.target) {
            let n = self.live_to_dv.get(&m).copied().unwrap_or(0) + 1;
            let key = key_of(self, n);
            let msg = format!(
                "Plug-in step '{p}' threw an exception on Create of {}: the record was not written.",
                self.dv[self.maps[m].tgt].logical
            );
            self.record_error(
                m,
                super::world::ErrorOrigin::Live { plugin: true },
                &key,
                "plugin_exception",
                &msg,
            );
            return true;
        }
        let Some(every) = self.maps[m].def.live_fail_every.filter(|e| *e > 0) else {
            return false;
        };
        let n = self.live_to_dv.entry(m).or_insert(0);
        *n += 1;
        if *n % every != 0 {
            return false;
        }
        let n = *n;
        let key = key_of(self, n);
        let plugin = self.maps[m].def.live_fail_plugin;
        let (cat, msg) = match (&self.maps[m].def.category, &self.maps[m].def.message) {
            (c, Some(msg)) => (
                c.map_or("plugin_exception", |c| c.as_str()).to_owned(),
                msg.clone(),
            ),
            (c, None) => (
                c.map_or("plugin_exception", |c| c.as_str()).to_owned(),
                format!(
                    "The live-sync write of {key} into {} failed.",
                    self.maps[m].def.target
                ),
            ),
        };
        self.record_error(m, super::world::ErrorOrigin::Live { plugin }, &key, &cat, &msg);
        true
    }

    /// Runs the scenario's live writes up to `t`.
    pub fn advance_live(&mut self, t: f64) {
        for i in 0..self.live.len() {
            let def = self.live[i].def.clone();
            if self.live[i].opened.is_none() {
                let ready = def
                    .after_running
                    .iter()
                    .all(|n| self.maps.iter().any(|m| &m.def.name == n && m.status == RUNNING));
                if ready {
                    self.live[i].opened = Some(if def.after_running.is_empty() {
                        def.start.0
                    } else {
                        t + def.start.0
                    });
                }
            }
            let Some(open) = self.live[i].opened else { continue };
            if t < open {
                continue;
            }
            let end = def.duration.map_or(f64::INFINITY, |d| open + d.0);
            let span = t.min(end) - open;
            let creates = def.burst + (span * def.creates_per_hour / 3600.0) as u64;
            let updates = (span * def.updates_per_hour / 3600.0) as u64;
            let (side, idx) = match def.side {
                Side::Fno => (Side::Fno, self.fno_idx.get(&def.entity).copied()),
                Side::Dataverse => (Side::Dataverse, self.dv_idx.get(&def.entity).copied()),
            };
            let Some(idx) = idx else { continue };
            let lag = def.lag.map_or(self.scenario.dual_write.lag.0, |l| l.0);
            let company = def
                .company
                .as_deref()
                .and_then(|c| super::odata::company_index(&self.companies, c))
                .unwrap_or(self.default_company);
            while self.live[i].created < creates {
                self.live[i].created += 1;
                let table = if side == Side::Fno {
                    &mut self.fno[idx]
                } else {
                    &mut self.dv[idx]
                };
                let company = if table.company_specific {
                    company
                } else {
                    NO_COMPANY
                };
                let pos = table.add_generated(company, 1);
                let row = table.rows[pos].clone();
                self.propagate_after(side, idx, ChangeKind::Create(row), lag);
            }
            while self.live[i].updated < updates {
                self.live[i].updated += 1;
                let k = self.live[i].updated;
                let table = if side == Side::Fno {
                    &mut self.fno[idx]
                } else {
                    &mut self.dv[idx]
                };
                if table.rows.is_empty() {
                    break;
                }
                let pos = (mix(table.salt ^ 0x0BDA7E, k) % table.rows.len() as u64) as usize;
                let r = &mut table.rows[pos];
                if r.owned.is_some() {
                    continue;
                }
                r.rev += 1;
                let kind = ChangeKind::Update {
                    company: r.company,
                    n: r.n,
                    rev: r.rev,
                };
                self.propagate_after(side, idx, kind, lag);
            }
        }
    }
}
