//! Numbering, timing and hashing the rows of one append transaction (the writer thread's part of
//! [`super::store::Store::append`]).
//!
//! A row's hash covers the previous row's hash, so the hashes of a batch form one chain that only
//! this transaction can compute. But every input but the previous hash (id, seq, time, kind,
//! payload) is known before any row is written, so a long run of rows (a *segment*: up to the next
//! row a checkpoint is due after) is numbered and timed first, and then hashed on a helper thread
//! while the writer inserts: the writer takes row `k`'s hash as soon as the helper has it, and the
//! helper, some six times faster than SQLite's insert, stays ahead. Short segments (durable appends)
//! are hashed in place, where a thread would cost more than it saves. The rows, their hashes and
//! their order are exactly what hashing in place gives; only where the work runs differs.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::thread::ScopedJoinHandle;

use chrono::{DateTime, Utc};

use super::JournalError;
use super::chain::{canonical_envelope, chain_hash, envelope_digest, format_at};
use super::store::Encoded;
use crate::model::RunId;

/// Segments of at least this many rows are hashed on a helper thread beside their inserts.
pub(super) const HASH_BESIDE: usize = 512;

/// A row's number and time, fixed before it is hashed.
#[derive(Clone)]
pub(super) struct Plan {
    /// Its run's place in [`Chain::runs`].
    run: usize,
    seq: u64,
    when: DateTime<Utc>,
    at: Arc<str>,
}

/// What an item became once written.
#[derive(Clone, Copy)]
pub(super) struct Placed {
    pub id: i64,
    pub seq: u64,
    pub at: DateTime<Utc>,
}

/// One row as it is inserted.
pub(super) struct Row<'a> {
    /// Its place in the segment given to [`Chain::write`].
    pub index: usize,
    pub id: i64,
    pub seq: u64,
    pub at: &'a Arc<str>,
    pub prev_hash: &'a str,
    pub hash: &'a str,
}

impl Row<'_> {
    pub fn seq_i64(&self) -> Result<i64, JournalError> {
        i64::try_from(self.seq).map_err(|e| JournalError::Encode(e.to_string()))
    }
}

/// A run's place in this batch: its last seq and the id of its last row written.
struct RunMark {
    run: RunId,
    seq: u64,
    last_id: Option<i64>,
}

/// The chain as this transaction extends it.
pub(super) struct Chain {
    /// Last seq per run before this batch (valid while the chain head is this writer's).
    seqs: HashMap<RunId, u64>,
    /// The runs this batch writes, in the order met, and where each is in that list: a row of the
    /// same run as the row before it (nearly every row) finds its run without hashing its id.
    runs: Vec<RunMark>,
    run_index: HashMap<RunId, usize>,
    last_hit: usize,
    last_at: DateTime<Utc>,
    at: Option<Arc<str>>,
    at_ms: i64,
    last_id: i64,
    /// The head's hash: its bytes once they are known (a head that is not 64 hex digits hashes as its
    /// text, as [`chain_hash`] does), and its text.
    head_raw: Option<[u8; 32]>,
    head_hex: String,
    scratch: String,
    beside: usize,
}

impl Chain {
    pub fn new(seqs: HashMap<RunId, u64>, last_at: DateTime<Utc>, last_id: i64, head_hash: String) -> Self {
        let mut raw = [0u8; 32];
        let head_raw = hex::decode_to_slice(&head_hash, &mut raw).ok().map(|()| raw);
        Self {
            seqs,
            runs: Vec::new(),
            run_index: HashMap::new(),
            last_hit: 0,
            last_at,
            at: None,
            at_ms: i64::MIN,
            last_id,
            head_raw,
            head_hex: head_hash,
            scratch: String::with_capacity(64),
            beside: HASH_BESIDE,
        }
    }

    /// Number and time the next row of `run`. `last_seq` reads a run's last seq from the file, the
    /// first time this writer meets the run.
    pub fn plan(
        &mut self,
        run: &RunId,
        now: &dyn Fn() -> DateTime<Utc>,
        last_seq: &mut dyn FnMut(&RunId) -> Result<u64, JournalError>,
    ) -> Result<Plan, JournalError> {
        let (index, seq) = self.next_seq(run, last_seq)?;
        let (when, at) = self.stamp(now);
        Ok(Plan {
            run: index,
            seq,
            when,
            at,
        })
    }

    /// The run's place in `runs` and its next seq.
    fn next_seq(
        &mut self,
        run: &RunId,
        last_seq: &mut dyn FnMut(&RunId) -> Result<u64, JournalError>,
    ) -> Result<(usize, u64), JournalError> {
        let known = if self.runs.get(self.last_hit).is_some_and(|m| m.run == *run) {
            Some(self.last_hit)
        } else {
            self.run_index.get(run).copied()
        };
        if let Some(i) = known {
            self.last_hit = i;
            let m = &mut self.runs[i];
            m.seq += 1;
            return Ok((i, m.seq));
        }
        let seq = match self.seqs.get(run) {
            Some(s) => *s,
            None => last_seq(run)?,
        } + 1;
        let i = self.runs.len();
        self.last_hit = i;
        self.run_index.insert(run.clone(), i);
        self.runs.push(RunMark {
            run: run.clone(),
            seq,
            last_id: None,
        });
        Ok((i, seq))
    }

    /// The clock, truncated to milliseconds and never going backwards; the text is made only when
    /// the millisecond changes.
    fn stamp(&mut self, now: &dyn Fn() -> DateTime<Utc>) -> (DateTime<Utc>, Arc<str>) {
        let t = now();
        let ms = t.timestamp_millis();
        if let Some(at) = &self.at
            && ms <= self.at_ms
        {
            return (self.last_at, Arc::clone(at));
        }
        let t = DateTime::from_timestamp_millis(ms).unwrap_or(t);
        self.last_at = self.last_at.max(t);
        let at: Arc<str> = format_at(self.last_at).into();
        self.at_ms = self.last_at.timestamp_millis();
        self.at = Some(Arc::clone(&at));
        (self.last_at, at)
    }

    /// Hash and insert `segment` (planned by [`Chain::plan`], in order), recording each row in `placed`.
    pub fn write(
        &mut self,
        segment: &[Encoded],
        plans: &[Plan],
        placed: &mut Vec<Placed>,
        mut insert: impl FnMut(&Row<'_>, &Encoded) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        let n = segment.len().min(plans.len());
        let mut from = 0;
        if self.head_raw.is_none() && n > 0 {
            // The head is not 64 hex digits: the first row hashes over its text.
            let (item, plan) = (&segment[0], &plans[0]);
            let canonical = canonical_envelope(
                &item.run_id.0,
                plan.seq,
                &plan.at,
                item.event.kind(),
                &item.payload,
            );
            let h = chain_hash(&self.head_hex, &canonical);
            let mut raw = [0u8; 32];
            hex::decode_to_slice(&h, &mut raw).map_err(|e| JournalError::Encode(e.to_string()))?;
            self.put(0, item, plan, raw, placed, &mut insert)?;
            from = 1;
        }
        let Some(prev) = self.head_raw else {
            return Ok(());
        };
        let (rest, rest_plans) = (&segment[from..n], &plans[from..n]);
        if rest.len() < self.beside {
            for (k, (item, plan)) in rest.iter().zip(rest_plans).enumerate() {
                let raw = digest(self.head_raw.unwrap_or(prev), item, plan);
                self.put(from + k, item, plan, raw, placed, &mut insert)?;
            }
            return Ok(());
        }
        let slots: Vec<OnceLock<[u8; 32]>> = rest.iter().map(|_| OnceLock::new()).collect();
        std::thread::scope(|s| {
            let helper = std::thread::Builder::new()
                .name("cutover-jr-hash".into())
                .spawn_scoped(s, || hash_rows(prev, rest, rest_plans, &slots))
                .ok();
            let written = (|| {
                for (k, ((item, plan), slot)) in rest.iter().zip(rest_plans).zip(&slots).enumerate() {
                    let raw = match helper.as_ref().and_then(|h| wait(slot, h)) {
                        Some(raw) => raw,
                        // No helper (the thread could not start, or it stopped): hash here.
                        None => digest(self.head_raw.unwrap_or(prev), item, plan),
                    };
                    self.put(from + k, item, plan, raw, placed, &mut insert)?;
                }
                Ok(())
            })();
            // Joined here, so a helper that panicked is only a slower batch, not a panic of the scope.
            if let Some(h) = helper {
                drop(h.join());
            }
            written
        })
    }

    fn put(
        &mut self,
        index: usize,
        item: &Encoded,
        plan: &Plan,
        raw: [u8; 32],
        placed: &mut Vec<Placed>,
        insert: &mut impl FnMut(&Row<'_>, &Encoded) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        self.scratch.clear();
        push_hex(&mut self.scratch, &raw);
        let id = self.last_id + 1;
        insert(
            &Row {
                index,
                id,
                seq: plan.seq,
                at: &plan.at,
                prev_hash: &self.head_hex,
                hash: &self.scratch,
            },
            item,
        )?;
        self.last_id = id;
        self.head_raw = Some(raw);
        std::mem::swap(&mut self.head_hex, &mut self.scratch);
        if let Some(m) = self.runs.get_mut(plan.run) {
            m.last_id = Some(id);
        }
        placed.push(Placed {
            id,
            seq: plan.seq,
            at: plan.when,
        });
        Ok(())
    }

    pub fn last_id(&self) -> i64 {
        self.last_id
    }

    /// The hash of the last row written (the head's before any).
    pub fn head_hex(&self) -> &str {
        &self.head_hex
    }

    /// The time text of the last row planned.
    pub fn last_at_text(&self) -> &str {
        self.at.as_deref().unwrap_or_default()
    }

    /// Each run written, with the id of its last row.
    pub fn touched(&self) -> impl Iterator<Item = (&RunId, i64)> {
        self.runs.iter().filter_map(|m| m.last_id.map(|id| (&m.run, id)))
    }

    /// The last seq per run and the last time, for the next batch.
    pub fn finish(mut self) -> (HashMap<RunId, u64>, DateTime<Utc>) {
        for m in self.runs {
            self.seqs.insert(m.run, m.seq);
        }
        (self.seqs, self.last_at)
    }
}

fn digest(prev: [u8; 32], item: &Encoded, plan: &Plan) -> [u8; 32] {
    envelope_digest(
        &prev,
        &item.run_id.0,
        plan.seq,
        &plan.at,
        item.event.kind(),
        &item.payload,
    )
}

/// The helper: the segment's hashes, in order, each published as soon as it is made.
fn hash_rows(mut prev: [u8; 32], items: &[Encoded], plans: &[Plan], slots: &[OnceLock<[u8; 32]>]) {
    for ((item, plan), slot) in items.iter().zip(plans).zip(slots) {
        prev = digest(prev, item, plan);
        // Each slot is set once, here.
        let _ = slot.set(prev);
    }
}

/// Row `k`'s hash from the helper: spin briefly (it is usually ahead), then yield the core to it.
/// `None` when the helper ended without it (it panicked): the caller hashes the row itself.
fn wait(slot: &OnceLock<[u8; 32]>, helper: &ScopedJoinHandle<'_, ()>) -> Option<[u8; 32]> {
    let mut spins = 0u32;
    loop {
        if let Some(raw) = slot.get() {
            return Some(*raw);
        }
        if helper.is_finished() {
            return slot.get().copied();
        }
        if spins < 64 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

fn push_hex(out: &mut String, raw: &[u8; 32]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in raw {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Event;

    fn items(n: usize) -> Vec<Encoded> {
        (0..n)
            .map(|i| {
                let run_id = RunId(if i % 3 == 0 { "a".into() } else { "b".into() });
                let event = Event::Log {
                    level: crate::model::event::LogLevel::Info,
                    message: format!("row {i}"),
                };
                let payload = super::super::canon::to_canonical_json(&event).unwrap_or_default();
                Encoded {
                    run_id,
                    event,
                    payload,
                }
            })
            .collect()
    }

    /// Every item planned in order; a run not met before starts after `file_seq`.
    fn plan_all(
        chain: &mut Chain,
        items: &[Encoded],
        now: &dyn Fn() -> DateTime<Utc>,
        file_seq: u64,
    ) -> Vec<Plan> {
        let mut last_seq = |_: &RunId| Ok(file_seq);
        items
            .iter()
            .map(|i| chain.plan(&i.run_id, now, &mut last_seq))
            .collect::<Result<_, _>>()
            .unwrap_or_default()
    }

    /// What a row's hash covers besides the previous hash: run id, seq, time, kind, payload.
    type Input = (String, u64, String, &'static str, String);

    /// Every row as the rule in `chain.rs` hashes it, from the head, in order.
    fn expected(head: &str, rows: &[Input]) -> Vec<String> {
        let mut prev = head.to_owned();
        rows.iter()
            .map(|(run, seq, at, kind, payload)| {
                prev = chain_hash(&prev, &canonical_envelope(run, *seq, at, kind, payload));
                prev.clone()
            })
            .collect()
    }

    /// Plan and write `n` rows from `head`, hashing beside the inserts from `beside` rows on: what
    /// each insert was given (inputs, then prev hash and hash).
    fn run(beside: usize, head: &str, n: usize) -> (Vec<Input>, Vec<(String, String)>) {
        let clock_ms = std::sync::atomic::AtomicI64::new(1_764_000_000_000);
        let now = move || {
            let ms = clock_ms.fetch_add(3, std::sync::atomic::Ordering::Relaxed) / 7;
            DateTime::from_timestamp_millis(ms * 7).unwrap_or_default()
        };
        let mut chain = Chain::new(
            HashMap::from([(RunId("a".into()), 41)]),
            DateTime::<Utc>::MIN_UTC,
            10,
            head.to_owned(),
        );
        chain.beside = beside;
        let items = items(n);
        let plans = plan_all(&mut chain, &items, &now, 7);
        let mut placed = Vec::new();
        let mut inputs = Vec::new();
        let mut written = Vec::new();
        let mut next_id = 11;
        let r = chain.write(&items, &plans, &mut placed, |row, item| {
            assert_eq!(row.id, next_id, "ids are contiguous");
            next_id += 1;
            inputs.push((
                item.run_id.0.clone(),
                row.seq,
                row.at.to_string(),
                item.event.kind(),
                item.payload.clone(),
            ));
            written.push((row.prev_hash.to_owned(), row.hash.to_owned()));
            Ok(())
        });
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(placed.len(), n);
        assert_eq!(chain.last_id(), 10 + i64::try_from(n).unwrap_or(0));
        let (seqs, _) = chain.finish();
        assert_eq!(
            seqs.get(&RunId("a".into())).copied(),
            Some(41 + n.div_ceil(3) as u64)
        );
        (inputs, written)
    }

    #[test]
    fn hashing_beside_the_inserts_writes_the_same_rows_as_hashing_in_place() {
        let head = "ab".repeat(32);
        let n = 2_000;
        let (in_place_inputs, in_place) = run(usize::MAX, &head, n);
        let (beside_inputs, beside) = run(16, &head, n);
        assert_eq!(in_place_inputs, beside_inputs, "same numbering and times");
        assert_eq!(in_place, beside, "same hashes");
        let hashes = expected(&head, &beside_inputs);
        for (i, ((prev, hash), want)) in beside.iter().zip(&hashes).enumerate() {
            assert_eq!(hash, want, "row {i}'s hash follows the rule");
            let want_prev = if i == 0 { &head } else { &hashes[i - 1] };
            assert_eq!(prev, want_prev, "row {i}'s prev_hash");
        }
        // Seqs: run a continues from its cached 41, run b from the file's 7.
        assert_eq!(beside_inputs[0].1, 42);
        assert_eq!(beside_inputs[1].1, 8);
    }

    #[test]
    fn a_head_that_is_not_hex_is_hashed_as_its_text_then_the_helper_takes_over() {
        let head = "not a hash";
        let (inputs, beside) = run(4, head, 50);
        let hashes = expected(head, &inputs);
        assert_eq!(beside.iter().map(|(_, h)| h.clone()).collect::<Vec<_>>(), hashes);
        assert_eq!(beside[0].0, head);
    }

    #[test]
    fn an_insert_that_fails_stops_the_segment_and_is_reported() {
        let mut chain = Chain::new(HashMap::new(), DateTime::<Utc>::MIN_UTC, 0, "00".repeat(32));
        chain.beside = 8;
        let items = items(100);
        let plans = plan_all(&mut chain, &items, &Utc::now, 0);
        let mut placed = Vec::new();
        let mut calls = 0;
        let r = chain.write(&items, &plans, &mut placed, |row, _| {
            calls += 1;
            if row.id == 40 {
                return Err(JournalError::Encode("disk full".into()));
            }
            Ok(())
        });
        assert!(
            matches!(r, Err(JournalError::Encode(ref m)) if m == "disk full"),
            "{r:?}"
        );
        assert_eq!(calls, 40, "nothing is inserted after the failure");
        assert_eq!(placed.len(), 39);
    }
}
