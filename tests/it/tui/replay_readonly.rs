//! Replay and watch cannot change anything: the journal's bytes, mtime and WAL are the same after a
//! replay driven through its real event loop with every key, decision keys included, and no
//! command ever leaves it. A tampered journal is refused naming the bad event, and with
//! `--unverified` every screen says UNVERIFIED. A watch sees the events another process appends,
//! and stops at an appended row that does not chain on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::audit as support;

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use cutover::engine::event::DecisionKind;
use cutover::engine::state::StepStatus;
use cutover::tui::event_loop::{ConsoleExit, Timing};
use cutover::tui::replay::event_loop::drive_replay;
use cutover::tui::replay::open::{ReplayError, prepare};
use cutover::tui::replay::source as replay_source;
use cutover::tui::replay::{Jump, Replay, ReplayMode, settle};
use cutover::tui::{ConsoleConfig, Theme};
use futures::channel::mpsc as fmpsc;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use support::*;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(30);

fn cfg() -> ConsoleConfig {
    let mut c = ConsoleConfig::new("auditor");
    c.theme = Theme { color: false };
    c
}

/// The journal's sha256 and mtime, and the WAL's bytes. A missing WAL counts as an empty one:
/// SQLite creates an empty `-wal` (and the `-shm` index) for any reader of a WAL database, also a
/// read-only one (`cutover verify` does the same); what matters is that no frame is ever in it.
fn fingerprint(path: &Path) -> (String, SystemTime, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let wal = std::fs::read(format!("{}-wal", path.display())).unwrap_or_default();
    (hex_sha(&bytes), mtime, wal)
}

fn hex_sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn screen(r: &Replay, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| cutover::tui::replay::view::draw(f, r)).unwrap();
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn open(
    path: &Path,
    mode: ReplayMode,
    unverified: bool,
) -> (Replay, tokio::sync::mpsc::UnboundedReceiver<replay_source::Reply>) {
    let prep = prepare(path, None, unverified).unwrap();
    assert_eq!(prep.unverified, unverified);
    let (requests, replies) =
        replay_source::spawn(path.to_path_buf(), prep.run.run_id, mode == ReplayMode::Watch);
    (Replay::new(cfg(), mode, unverified, requests, None), replies)
}

fn key(code: KeyCode) -> io::Result<TermEvent> {
    let mods = match code {
        KeyCode::Char(c) if c.is_ascii_uppercase() => KeyModifiers::SHIFT,
        _ => KeyModifiers::NONE,
    };
    Ok(TermEvent::Key(KeyEvent::new(code, mods)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_with_every_key_changes_nothing_and_sends_no_command() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_demo(dir.path(), None);
    let before = fingerprint(&path);

    let (mut replay, mut replies) = open(&path, ReplayMode::Replay, false);
    // Keys are read before replies: let the index arrive first so the keys move on the timeline.
    assert!(settle(&mut replay, &mut replies).await);
    let (keys, input) = fmpsc::unbounded::<io::Result<TermEvent>>();
    let mut script: Vec<KeyCode> = ".n.NN".chars().map(KeyCode::Char).collect();
    // Every decision key, with the keys that would confirm a dialog after each.
    for c in ['a', 'r', 's', 'w', 'p', 'P', 'X'] {
        script.extend([KeyCode::Char(c), KeyCode::Char('y'), KeyCode::Enter]);
    }
    script.extend([
        KeyCode::Char(' '),
        KeyCode::Char('+'),
        KeyCode::Char(' '),
        KeyCode::End,
        KeyCode::Char(','),
        KeyCode::Home,
        KeyCode::Char('t'),
    ]);
    script.extend("#20".chars().map(KeyCode::Char));
    script.extend([
        KeyCode::Enter,
        KeyCode::Char('?'),
        KeyCode::Esc,
        KeyCode::Tab,
        KeyCode::Char('/'),
    ]);
    script.extend("vendors".chars().map(KeyCode::Char));
    script.extend([KeyCode::Enter, KeyCode::Char('q')]);
    for k in script {
        keys.unbounded_send(key(k)).unwrap();
    }
    let mut term = Terminal::new(TestBackend::new(120, 36)).unwrap();
    let exit = tokio::time::timeout(
        DEADLINE,
        drive_replay(
            &mut term,
            &mut replay,
            input,
            replies,
            CancellationToken::new(),
            Timing::default(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(exit, ConsoleExit::Quit, "q quits a replay without asking");
    assert!(replay.take_commands().is_empty(), "no key produced a command");
    assert!(replay.app.modal.is_none(), "no decision dialog opened");
    assert_eq!(replay.app.filter, "vendors", "view keys still work");
    assert_eq!(replay.app.replay.as_ref().unwrap().total, replay.total());
    assert!(replay.position() >= 1);
    assert_eq!(
        before,
        fingerprint(&path),
        "the journal and its WAL are unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_keys_are_inert_and_say_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_demo(dir.path(), None);
    let (mut r, mut replies) = open(&path, ReplayMode::Replay, false);
    assert!(settle(&mut r, &mut replies).await);
    // The weekend run's first question: the freeze approval is waiting here.
    let ask = r
        .landmarks()
        .iter()
        .find(|(_, m)| m.label.contains("approve_manual"))
        .map(|(p, _)| *p)
        .unwrap();
    r.jump(Jump::Position(ask));
    assert!(settle(&mut r, &mut replies).await);
    assert_eq!(r.app.state.pending.len(), 1);
    assert_eq!(r.app.state.pending[0].decision, DecisionKind::ApproveManual);
    for c in ['a', 'r', 's', 'w', 'p', 'P', 'X'] {
        r.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        assert!(r.app.modal.is_none(), "{c} opened a dialog");
        let flash = r.app.flash.clone().unwrap_or_default();
        assert!(flash.contains("read-only replay"), "{c}: {flash}");
        r.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        r.on_key(KeyEvent::new(KeyCode::Char('y'), KeyModifiers::NONE));
    }
    assert!(r.take_commands().is_empty());
    let s = screen(&r, 120, 36);
    // The replay shows who was waited on, not "you", and no key that would answer.
    assert!(
        s.contains("WAITING ON THE OPERATOR · APPROVE freeze.approve"),
        "{s}"
    );
    assert!(!s.contains("WAITING ON YOU") && !s.contains("[a approve]"), "{s}");
    assert!(s.contains("REPLAY"), "{s}");
}

/// Types `t`, the text and enter, and waits for the replay to get there.
async fn prompt(
    r: &mut Replay,
    replies: &mut tokio::sync::mpsc::UnboundedReceiver<replay_source::Reply>,
    text: &str,
) {
    r.on_key(KeyEvent::new(KeyCode::Char('t'), KeyModifiers::NONE));
    assert!(screen(r, 120, 36).contains("jump to (HH:MM"));
    for c in text.chars() {
        r.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
    r.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert!(settle(r, replies).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jump_prompt_takes_times_and_event_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_demo(dir.path(), None);
    let (mut r, mut replies) = open(&path, ReplayMode::Replay, false);
    assert!(settle(&mut r, &mut replies).await);
    // The weekend starts at 08:00 UTC; by 08:05 nine events were recorded.
    assert_eq!(t0().format("%H:%M").to_string(), "08:00");
    prompt(&mut r, &mut replies, "08:05").await;
    assert_eq!(r.position(), 9);
    assert!(
        r.app
            .state
            .step("migrate.import")
            .is_some_and(|s| s.request_count == 1)
    );
    // Event ids are the journal's: the rehearsal holds #1 to #8, so #12 is the weekend's 4th.
    prompt(&mut r, &mut replies, "#12").await;
    assert_eq!(r.position(), 4);
    prompt(&mut r, &mut replies, "#3").await;
    assert_eq!(
        r.position(),
        4,
        "an event of another run does not move the replay"
    );
    assert!(
        r.app
            .flash
            .as_deref()
            .unwrap_or_default()
            .contains("not in this run")
    );
    prompt(&mut r, &mut replies, "later").await;
    assert!(r.app.flash.as_deref().unwrap_or_default().contains("HH:MM"));
}

fn tampered(dir: &Path) -> (PathBuf, i64) {
    let path = build_demo(dir, None);
    let id: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT id FROM events WHERE payload LIKE '%freeze confirmed with the business%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    tamper(
        &path,
        &format!("UPDATE events SET payload = replace(payload, 'confirmed', 'REJECTED') WHERE id = {id}"),
    );
    (path, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_journal_is_refused_unless_unverified_and_then_every_screen_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bad) = tampered(dir.path());

    match prepare(&path, None, false) {
        Err(e @ ReplayError::Unverified(_)) => {
            assert_eq!(cutover::app::exit::of_replay(&e), 1);
            let ReplayError::Unverified(f) = &e else {
                unreachable!()
            };
            assert_eq!(f.event_id, bad);
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a tampered journal must be refused"),
    }
    let p = path.to_str().unwrap();
    let (code, _, err) = cutover(&["replay", p]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("does not verify: event {bad}")), "{err}");
    assert!(err.contains("--unverified"), "{err}");
    let (code, _, err) = cutover(&["watch", p]);
    assert_eq!(code, 1, "{err}");
    // With --unverified the refusal is gone (here it stops at the missing terminal instead).
    let (code, _, err) = cutover(&["replay", "--unverified", p]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("needs a terminal"), "{err}");

    let (mut r, mut replies) = open(&path, ReplayMode::Replay, true);
    assert!(settle(&mut r, &mut replies).await);
    let total = r.total();
    for pos in [1, 4, total / 2, total] {
        r.jump(Jump::Position(pos));
        assert!(settle(&mut r, &mut replies).await);
        for (w, h) in [(200, 60), (80, 24)] {
            let s = screen(&r, w, h);
            let first = s.lines().next().unwrap();
            assert!(first.contains("REPLAY  UNVERIFIED"), "{w}x{h} at {pos}: {first}");
        }
    }
    // What was tampered is shown as recorded (the replay does not hide it).
    assert!(
        r.app
            .state
            .decisions
            .iter()
            .any(|d| d.reason.as_deref().is_some_and(|x| x.contains("REJECTED")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_shows_the_events_another_process_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.journal");
    let (journal, mut rec) = recorder(&path, WEEKEND, t0(), None);
    rec.at_min(0.0).ev(run_started(WEEKEND, "alice", t0()));
    rec.at_min(0.5).intent("freeze.approve", 1);

    // Verification of a journal being written is one consistent read.
    let (mut w, mut replies) = open(&path, ReplayMode::Watch, false);
    assert!(settle(&mut w, &mut replies).await);
    assert_eq!(w.position(), 2, "a watch opens at the end");
    let s = screen(&w, 120, 36);
    assert!(s.lines().next().unwrap().contains("WATCH"), "{s}");
    assert!(matches!(
        w.app.state.step("freeze.approve").unwrap().status,
        StepStatus::Running { .. }
    ));

    // The driving process goes on: the watch picks the new events up as they are committed.
    rec.at_min(1.0).ask(
        "freeze.approve",
        DecisionKind::ApproveManual,
        "Confirm the F&O freeze",
    );
    rec.at_min(4.0)
        .decide(
            "freeze.approve",
            cutover::engine::event::OperatorAction::Approve,
            "alice",
            "ok",
        )
        .done("freeze.approve");
    let stop = tokio::time::Instant::now() + DEADLINE;
    while w.position() < 5 {
        let reply = tokio::time::timeout_at(stop, replies.recv())
            .await
            .expect("the watch did not see the appended events")
            .unwrap();
        w.on_reply(reply);
        while w.has_work() {
            w.pump();
        }
        w.pump();
    }
    assert_eq!(w.position(), 5);
    assert_eq!(w.total(), 5);
    assert_eq!(
        w.app.state.step("freeze.approve").unwrap().status,
        StepStatus::Succeeded
    );
    assert_eq!(w.app.state.decisions.back().unwrap().operator, "alice");
    let s = screen(&w, 120, 36);
    assert!(s.lines().next().unwrap().contains("event 5/5"), "{s}");
    assert!(w.take_commands().is_empty());

    // A row slipped in behind the writer's back does not chain on: the watch says so and stops.
    tamper(
        &path,
        "INSERT INTO events (id, run_id, seq, at, kind, payload, prev_hash, hash) \
         SELECT MAX(id) + 1, run_id, MAX(seq) + 1, MAX(at), 'log', '{}', \
                (SELECT hash FROM events ORDER BY id DESC LIMIT 1), 'forged' FROM events",
    );
    while w.failure().is_none() {
        let reply = tokio::time::timeout_at(stop, replies.recv())
            .await
            .expect("the watch did not notice the forged row")
            .unwrap();
        w.on_reply(reply);
    }
    let failure = w.failure().unwrap().to_owned();
    assert!(failure.contains("appended event 6 does not verify"), "{failure}");
    assert_eq!(w.position(), 5, "the forged row is not shown");
    assert!(screen(&w, 120, 36).contains("does not verify"));
    drop(rec);
    journal.close().unwrap();
}
