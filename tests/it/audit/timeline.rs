//! What replay builds on: landmarks to jump between, lookups by seq and time, and the state at any
//! sampled event equal to the live state at that moment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::audit as support;

use chrono::Duration;
use cutover::audit::timeline::{
    LandmarkKind as K, event_at_or_after, event_by_seq, landmarks, next_landmark, previous_landmark,
};
use cutover::engine::{RunId, RunState};
use cutover::journal::JournalReader;
use support::{WEEKEND, build_demo, build_demo_live, t0};

#[test]
fn landmarks_name_every_decision_gate_failure_and_alert_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_demo(dir.path(), None);
    let reader = JournalReader::open_read_only(&path).unwrap();
    let run = RunId::from(WEEKEND);
    let marks = landmarks(&reader, &run).unwrap();
    let kinds: Vec<K> = marks.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [
            K::Question,
            K::Decision,
            K::Gate,
            K::Alert,
            K::Question,
            K::Resume,
            K::Decision,
            K::Gate,
            K::Failure,
            K::Question,
            K::Decision,
            K::Question,
            K::Decision,
            K::Finish
        ]
    );
    assert!(marks.windows(2).all(|w| w[0].seq < w[1].seq));
    let waiver = next_landmark(&marks, marks[2].event_id, &[K::Decision]).unwrap();
    assert!(
        waiver.label.starts_with("decided wave-1:gate: waive by bob"),
        "{}",
        waiver.label
    );
    assert_eq!(waiver.at, "2027-01-15T08:52:00.000Z");
    let gate = previous_landmark(&marks, waiver.event_id, &[K::Gate]).unwrap();
    assert_eq!(
        gate.label,
        "gate wave-1:gate FAILED: vendors/USMF source 300 target 290 allowed 0 errors 1"
    );
    // The same words as headless text (one wording per event: state::wording).
    let failure = next_landmark(&marks, gate.event_id, &[K::Failure]).unwrap();
    assert_eq!(failure.label, "FAILED validate.sample: 3 of 100 records differ");
    assert_eq!(
        marks.last().unwrap().label,
        "run weekend-7f3a finished: succeeded"
    );
    assert!(next_landmark(&marks, marks.last().unwrap().event_id, &[]).is_none());
}

#[test]
fn lookups_by_seq_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_demo(dir.path(), None);
    let reader = JournalReader::open_read_only(&path).unwrap();
    let run = RunId::from(WEEKEND);
    let first = event_by_seq(&reader, &run, 1).unwrap().unwrap();
    assert_eq!((first.id, first.event.kind()), (9, "run_started"));
    assert!(event_by_seq(&reader, &run, 10_000).unwrap().is_none());
    // The waiver is the first event at or after 08:51:30.
    let (id, seq) = event_at_or_after(&reader, &run, t0() + Duration::seconds(51 * 60 + 30))
        .unwrap()
        .unwrap();
    let env = event_by_seq(&reader, &run, seq).unwrap().unwrap();
    assert_eq!((env.id, env.event.kind()), (id, "operator_decision"));
    assert!(
        event_at_or_after(&reader, &run, t0() + Duration::days(1))
            .unwrap()
            .is_none()
    );
}

#[test]
fn the_state_at_sampled_events_equals_the_live_state_then() {
    let dir = tempfile::tempdir().unwrap();
    let (path, written) = build_demo_live(dir.path(), None);
    let reader = JournalReader::open_read_only(&path).unwrap();
    let run = RunId::from(WEEKEND);
    // Live: the envelopes the writer handed back, folded as the console folds them, every state kept.
    let mut live = RunState::default();
    let mut states = Vec::new();
    for env in &written {
        live.apply(env);
        states.push((env.id, live.clone()));
    }
    assert!(states.len() >= 20);
    let step = states.len() / 20;
    for (id, expected) in states.iter().step_by(step.max(1)).take(20) {
        let replayed = reader.state_at(&run, Some(*id)).unwrap();
        assert_eq!(&replayed, expected, "state differs at event {id}");
    }
}
