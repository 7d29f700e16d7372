//! `cutover replay` end to end: the real binary in a pseudo-terminal on a small journal (the audit
//! tests' demo-like journal), its output parsed by a `vt100` screen. It opens at the run's first
//! event saying REPLAY, steps forward, jumps to the first landmark, shows its help, refuses a
//! decision key, goes to the end, and quits with the terminal restored and the journal unchanged.
//!
//! `cutover watch` on a journal this test appends to shows each event as it is committed.
//!
//! Every wait polls the parsed screen against a deadline (no fixed sleeps).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::audit as support;

use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};

const DEADLINE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(20);

struct Pty {
    parser: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn Child + Send + Sync>,
    _master: Box<dyn MasterPty + Send>,
    reader: Option<thread::JoinHandle<()>>,
}

impl Pty {
    fn start(args: &[&str], cols: u16, rows: u16) -> Self {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_cutover"));
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("NO_COLOR");
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let parser = Arc::new(Mutex::new(vt100::Parser::new(
            NonZeroU16::new(rows).unwrap(),
            NonZeroU16::new(cols).unwrap(),
            0,
        )));
        let mut out = pair.master.try_clone_reader().unwrap();
        let sink = Arc::clone(&parser);
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().process(&buf[..n]);
            }
        });
        let writer = pair.master.take_writer().unwrap();
        Self {
            parser,
            writer,
            child,
            _master: pair.master,
            reader: Some(reader),
        }
    }

    fn screen(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    fn wait_for(&self, text: &str) -> String {
        self.wait_all(&[text])
    }

    /// Waits until every text is on screen at once (a frame may be half written when polled).
    fn wait_all(&self, texts: &[&str]) -> String {
        let stop = Instant::now() + DEADLINE;
        loop {
            let s = self.screen();
            if texts.iter().all(|t| s.contains(t)) {
                return s;
            }
            assert!(
                Instant::now() < stop,
                "timed out waiting for {texts:?}; the screen:\n{s}"
            );
            thread::sleep(POLL);
        }
    }

    fn wait_gone(&self, text: &str) -> String {
        let stop = Instant::now() + DEADLINE;
        loop {
            let s = self.screen();
            if !s.contains(text) {
                return s;
            }
            assert!(
                Instant::now() < stop,
                "timed out waiting for {text:?} to go; the screen:\n{s}"
            );
            thread::sleep(POLL);
        }
    }

    fn keys(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    fn exit_code(&mut self) -> u32 {
        let stop = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < stop,
                "did not exit; the screen:\n{}",
                self.screen()
            );
            thread::sleep(POLL);
        };
        let reader = self.reader.take().unwrap();
        let stop = Instant::now() + DEADLINE;
        while !reader.is_finished() {
            assert!(Instant::now() < stop, "the terminal output did not end");
            thread::sleep(POLL);
        }
        reader.join().unwrap();
        status.exit_code()
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn fingerprint(path: &Path) -> (Vec<u8>, std::time::SystemTime) {
    (
        std::fs::read(path).unwrap(),
        std::fs::metadata(path).unwrap().modified().unwrap(),
    )
}

fn header(screen: &str) -> String {
    screen.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn replay_in_a_terminal_steps_jumps_to_a_landmark_and_quits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let journal = support::build_demo(dir.path(), None);
    let before = fingerprint(&journal);
    let mut c = Pty::start(&["replay", journal.to_str().unwrap()], 120, 36);

    // The latest run (the weekend), at its first event.
    let first = c.wait_all(&["event 1/", "contoso-weekend v2.1.0", " REPLAY ", "q quit"]);
    let top = header(&first);
    assert!(top.contains(" REPLAY "), "{first}");
    assert!(!top.contains("UNVERIFIED"), "{first}");
    assert!(c.parser.lock().unwrap().screen().alternate_screen());

    // Step forward one event: the first step starts.
    c.keys(".");
    c.wait_all(&["event 2/", "#2 start"]);

    // Next landmark: the engine asks for the freeze approval; the banner shows it as it was.
    c.keys("n");
    let s = c.wait_all(&[
        "landmark 1/",
        "event 3/",
        "WAITING ON THE OPERATOR · APPROVE freeze.approve",
    ]);
    assert!(header(&s).contains("event 3/"), "{s}");
    // Shown with --nocapture: the README's capture of a replay at a landmark.
    println!("{s}");

    // A decision key does nothing but say so.
    c.keys("a");
    let s = c.wait_for("read-only replay");
    assert!(!s.contains("Approve step"), "{s}");

    // The help lists the timeline's keys.
    c.keys("?");
    c.wait_all(&[
        "next landmark",
        "jump to a time",
        "decisions: inert; the journal is open read-only",
    ]);
    c.keys("\x1b");
    c.wait_gone("next landmark");

    // The end of the run.
    c.keys("\x1b[F");
    let s = c.wait_all(&["FINISHED ✓ succeeded", " REPLAY ", "q quit"]);
    assert!(header(&s).contains(" REPLAY "), "{s}");

    c.keys("q");
    assert_eq!(c.exit_code(), 0);
    {
        let p = c.parser.lock().unwrap();
        assert!(!p.screen().alternate_screen(), "left the alternate screen");
        assert!(!p.screen().hide_cursor(), "cursor shown again");
    }
    assert!(before == fingerprint(&journal), "the journal is unchanged");
}

#[test]
fn watch_in_a_terminal_shows_events_as_another_process_appends_them() {
    use cutover::engine::event::{DecisionKind, OperatorAction};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.journal");
    let (journal, mut rec) = support::recorder(&path, support::WEEKEND, support::t0(), None);
    rec.at_min(0.0)
        .ev(support::run_started(support::WEEKEND, "alice", support::t0()));
    rec.at_min(0.5).intent("freeze.approve", 1);

    let mut c = Pty::start(&["watch", path.to_str().unwrap()], 120, 36);
    let s = c.wait_all(&["event 2/2", "contoso-weekend v2.1.0", " WATCH ", "q quit"]);
    assert!(header(&s).contains(" WATCH "), "{s}");

    // The driving process asks for an approval: the watch shows the question as it is journaled.
    rec.at_min(1.0).ask(
        "freeze.approve",
        DecisionKind::ApproveManual,
        "Confirm the F&O freeze",
    );
    c.wait_all(&["event 3/3", "WAITING ON THE OPERATOR · APPROVE freeze.approve"]);
    // Nobody can answer it from here.
    c.keys("a");
    c.wait_for("read-only watch");
    rec.at_min(4.0)
        .decide("freeze.approve", OperatorAction::Approve, "alice", "ok")
        .done("freeze.approve");
    let s = c.wait_all(&["event 5/5", "nothing is waiting on you"]);
    assert!(!s.contains("WAITING ON YOU"), "{s}");

    c.keys("q");
    assert_eq!(c.exit_code(), 0);
    assert!(!c.parser.lock().unwrap().screen().alternate_screen());
    drop(rec);
    journal.close().unwrap();
}
