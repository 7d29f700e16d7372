//! No secret leaves the process: the demo runs with a distinctive client secret, headless (text and
//! `--format jsonl`) and in the console (a pseudo-terminal), and every byte it leaves behind is
//! scanned for that secret and for any bearer token the simulator issued: the journal files (raw
//! bytes, the -wal and -shm included, while the writer is open and after it closed), the console's
//! log file, every report format (md, html, json, csv directory), the headless stdout and stderr, and
//! the console's output (the raw terminal stream, which holds every screen drawn, plus the parsed
//! screen sampled while the run goes on). The journal and the log must be mode 0600.
//!
//! The simulator's tokens are `sim.` followed by 32 hex digits (`sim::auth`); the scan looks for that
//! shape rather than for a list, so it catches every token of the run, including ones issued to a
//! process of the demo that the test never sees. `issued_tokens_have_the_shape_the_scan_finds`
//! keeps that assumption true.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

/// Distinctive, and changed by URL encoding and base64 (the token request sends it form-encoded): the scan
/// looks for every form ([`encoded_forms`]), not only the value as written.
const SECRET: &str = "ScanS3cret+4c1f/9a7e=2b6d-never-print-me";

/// The forms of [`SECRET`] a leak could take, written out independently of the product's redactor: URL
/// form and query encodings (both hex cases), and base64 (alone, and as a Basic credential).
fn encoded_forms() -> Vec<String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let basic = b64.encode(format!("client:{SECRET}"));
    vec![
        "ScanS3cret%2B4c1f%2F9a7e%3D2b6d-never-print-me".to_owned(),
        "ScanS3cret%2b4c1f%2f9a7e%3d2b6d-never-print-me".to_owned(),
        b64.encode(SECRET),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(SECRET),
        // Inside a Basic credential the secret's own characters start after `client:` (7 bytes).
        basic[12..basic.len() - 4].to_owned(),
    ]
}
const DEADLINE: Duration = Duration::from_secs(240);

/// Every simulator token in `bytes`: `sim.` + 32 hex digits.
fn tokens_in(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, w) in bytes.windows(36).enumerate() {
        if w.starts_with(b"sim.") && w[4..].iter().all(u8::is_ascii_hexdigit) {
            let before_ok = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
            if before_ok {
                out.push(String::from_utf8_lossy(w).into_owned());
            }
        }
    }
    out
}

#[derive(Default)]
struct Scan {
    /// What was scanned: (name, bytes).
    scanned: Vec<(String, usize)>,
    leaks: Vec<String>,
}

impl Scan {
    fn bytes(&mut self, name: &str, bytes: &[u8]) {
        if bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()) {
            self.leaks.push(format!("{name}: the client secret"));
        }
        for form in encoded_forms() {
            if bytes.windows(form.len()).any(|w| w == form.as_bytes()) {
                self.leaks
                    .push(format!("{name}: the client secret, encoded as {}…", &form[..6]));
            }
        }
        for t in tokens_in(bytes) {
            self.leaks.push(format!("{name}: bearer token {}…", &t[..8]));
        }
        self.scanned.push((name.to_owned(), bytes.len()));
    }

    fn file(&mut self, path: &Path) {
        let bytes = std::fs::read(path).unwrap();
        self.bytes(&path.display().to_string(), &bytes);
    }

    /// Every file under `dir` whose name starts with `prefix`.
    fn files(&mut self, dir: &Path, prefix: &str) -> usize {
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_file() && name.starts_with(prefix) {
                self.file(&p);
                n += 1;
            }
        }
        n
    }
}

fn cutover(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cutover"));
    c.current_dir(dir)
        .env("DEMO_CLIENT_SECRET", SECRET)
        .env("TMPDIR", dir)
        .env("CUTOVER_LOG", "debug")
        .env_remove("NO_COLOR");
    c
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn events(journal: &Path) -> i64 {
    cutover::journal::JournalReader::open_read_only(journal)
        .ok()
        .and_then(|r| {
            r.connection()
                .query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |row| row.get(0))
                .ok()
        })
        .unwrap_or(0)
}

/// Token requests journaled (method and path only): the run did obtain tokens the scan must not find.
fn token_requests(journal: &Path) -> usize {
    let r = cutover::journal::JournalReader::open_read_only(journal).unwrap();
    let run = r.runs().unwrap().pop().unwrap();
    r.events(&run.run_id)
        .filter(|e| {
            matches!(&e.as_ref().unwrap().event,
                cutover::engine::Event::Request { path, .. } if path.ends_with("/oauth2/v2.0/token"))
        })
        .count()
}

/// The demo in a pseudo-terminal: approves the two manual steps, lets the run go to the failing gate
/// after wave-3, samples the screen all along, quits. Returns (raw output, sampled screens).
fn console(dir: &Path, journal: &Path) -> (Vec<u8>, Vec<String>) {
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 36,
            cols: 120,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_cutover"));
    cmd.args(["demo", "--operator", "scan", "--journal"]);
    cmd.arg(journal);
    cmd.cwd(dir);
    cmd.env("TERM", "xterm-256color");
    cmd.env("DEMO_CLIENT_SECRET", SECRET);
    cmd.env("TMPDIR", dir);
    cmd.env("CUTOVER_LOG", "debug");
    let mut child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let parser = Arc::new(Mutex::new(vt100::Parser::new(
        NonZeroU16::new(36).unwrap(),
        NonZeroU16::new(120).unwrap(),
        0,
    )));
    let raw = Arc::new(Mutex::new(Vec::new()));
    let mut out = pair.master.try_clone_reader().unwrap();
    let (sink, raw_sink) = (parser.clone(), raw.clone());
    let reader = thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            raw_sink.lock().unwrap().extend_from_slice(&buf[..n]);
            sink.lock().unwrap().process(&buf[..n]);
        }
    });
    let mut writer = pair.master.take_writer().unwrap();
    let mut keys = |k: &str| {
        writer.write_all(k.as_bytes()).unwrap();
        writer.flush().unwrap();
    };
    let mut screens = Vec::new();
    let stop = Instant::now() + DEADLINE;
    // (text that must be on screen, keys to send once it is)
    let mut script: Vec<(&str, &str)> = vec![
        ("APPROVE announce-freeze", "a"),
        ("[ ] Finance sign-off", " \x1b[B \x1b[B \r"),
        ("APPROVE dataverse-admin-mode", "a"),
        ("Approve step", "y"),
        ("/6 in", "q"),
    ];
    script.reverse();
    while let Some((want, send)) = script.last().copied() {
        let screen = parser.lock().unwrap().screen().contents();
        if screens.last() != Some(&screen) {
            screens.push(screen.clone());
        }
        assert!(
            Instant::now() < stop,
            "timed out waiting for {want:?}; the screen:\n{screen}"
        );
        if screen.contains(want) {
            keys(send);
            script.pop();
        }
        thread::sleep(Duration::from_millis(50));
    }
    // Quit (answering the question if a step runs), then collect the last output.
    let quit_by = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < quit_by, "the console did not quit");
        if parser
            .lock()
            .unwrap()
            .screen()
            .contents()
            .contains("Quit the console?")
        {
            keys("y");
        }
        thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap();
    screens.push(parser.lock().unwrap().screen().contents());
    let raw = raw.lock().unwrap().clone();
    (raw, screens)
}

#[test]
fn issued_tokens_have_the_shape_the_scan_finds() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let sim = cutover::sim::start(cutover::sim::Scenario::demo(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let resp = cutover::connectors::net::client()
            .unwrap()
            .post(format!("{}/tenant/oauth2/v2.0/token", sim.url()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "00000000-0000-0000-0000-0000000fno01"),
                ("client_secret", SECRET),
                ("scope", "https://contoso-demo.operations.dynamics.com/.default"),
            ])
            .send()
            .await
            .unwrap();
        let body = resp.bytes().await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let token = v["access_token"].as_str().unwrap();
        assert_eq!(tokens_in(&body), [token]);
        assert_eq!(
            tokens_in(format!("Authorization: Bearer {token}\n").as_bytes()),
            [token]
        );
        let mut scan = Scan::default();
        scan.bytes("control", format!("x{SECRET}y").as_bytes());
        assert_eq!(scan.leaks.len(), 1);
        for form in encoded_forms() {
            let mut scan = Scan::default();
            scan.bytes("control", format!("x{form}y").as_bytes());
            assert!(!scan.leaks.is_empty(), "the scan finds {form}");
        }
    });
}

#[test]
fn no_secret_or_token_in_the_journal_log_reports_output_or_screens() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (text_j, jsonl_j, tui_j) = (
        dir.join("text.journal"),
        dir.join("jsonl.journal"),
        dir.join("tui.journal"),
    );
    let spawn = |journal: &PathBuf, format: &str| {
        cutover(dir)
            .args([
                "demo",
                "--headless",
                "--operator",
                "scan",
                "--format",
                format,
                "--journal",
            ])
            .arg(journal)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let text_run = spawn(&text_j, "text");
    let jsonl_run = spawn(&jsonl_j, "jsonl");
    let mut scan = Scan::default();

    // The journal's raw files while its writer is open (WAL frames not yet checkpointed).
    let stop = Instant::now() + DEADLINE;
    while events(&jsonl_j) < 300 {
        assert!(Instant::now() < stop, "the jsonl demo did not get going");
        thread::sleep(Duration::from_millis(100));
    }
    assert!(dir.join("jsonl.journal-wal").exists());
    let open_files = scan.files(dir, "jsonl.journal");
    assert!(open_files >= 2, "journal and WAL scanned while open");

    let (raw, screens) = console(dir, &tui_j);
    scan.bytes("console output (raw terminal stream)", &raw);
    for (i, s) in screens.iter().enumerate() {
        scan.bytes(&format!("console screen {i}"), s.as_bytes());
    }
    assert!(
        screens.len() >= 5,
        "only {} distinct screens sampled",
        screens.len()
    );
    assert!(
        screens.iter().any(|s| s.contains("/6 in")),
        "the console reached the failing gate's re-check countdown"
    );
    let log = tui_j.with_extension("log");
    assert!(std::fs::metadata(&log).unwrap().len() > 0, "the console logged");

    let wait = |c: std::process::Child| -> Output { c.wait_with_output().unwrap() };
    let (text_out, jsonl_out) = (wait(text_run), wait(jsonl_run));
    for (name, o) in [("text", &text_out), ("jsonl", &jsonl_out)] {
        assert!(
            o.status.success(),
            "{name} demo: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        scan.bytes(&format!("headless {name} stdout"), &o.stdout);
        scan.bytes(&format!("headless {name} stderr"), &o.stderr);
    }
    assert!(jsonl_out.stdout.len() > 100_000, "jsonl carried every envelope");

    // Reports of the finished run, every format.
    let reports = dir.join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    for (format, out) in [
        ("md", "r.md"),
        ("html", "r.html"),
        ("json", "r.json"),
        ("csv", "csv"),
    ] {
        let o = cutover(dir)
            .args(["report", "--format", format, "-o"])
            .arg(reports.join(out))
            .arg(&text_j)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "report {format}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let csv_files = scan.files(&reports.join("csv"), "");
    assert!(csv_files >= 3, "csv report files: {csv_files}");
    assert_eq!(scan.files(&reports, "r."), 3);

    // Every journal file after the writers closed, and the console's log.
    for prefix in ["text.journal", "jsonl.journal", "tui.journal", "tui.log"] {
        assert!(scan.files(dir, prefix) >= 1, "{prefix}");
    }
    for j in [&text_j, &jsonl_j, &tui_j] {
        assert!(token_requests(j) >= 1, "{}: no token was requested", j.display());
        assert_eq!(mode(j), 0o600, "{}", j.display());
    }
    assert_eq!(mode(&log), 0o600, "the console log");

    let total: usize = scan.scanned.iter().map(|(_, n)| n).sum();
    eprintln!(
        "SECRETS scanned {} outputs ({total} bytes): {} leak(s)",
        scan.scanned.len(),
        scan.leaks.len()
    );
    assert!(scan.leaks.is_empty(), "leaks:\n{}", scan.leaks.join("\n"));
}

const INSECURE: &str = r#"
runbook: insecure
version: 1.0.0
environments:
  fno:
    kind: fno
    url: ${FNO_URL}
    auth: { tenant: t, client_id: c, client_secret: "${FNO_SECRET}" }
phases:
  - id: p
    steps:
      - { id: count, kind: parity, maps: all }
"#;

/// Plain http to a host that is not loopback is refused before anything is sent: by validation
/// (`cutover validate` and `run`), and for `--sim-url` when the run starts; loopback http is fine.
#[test]
fn plain_http_off_loopback_is_refused_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("r.yaml"), INSECURE).unwrap();
    let run = |url: &str, journal: &str, extra: &[&str]| {
        let o = cutover(dir)
            .args(["run", "r.yaml", "--headless", "--journal", journal])
            .args(extra)
            .env("FNO_URL", url)
            .env("FNO_SECRET", SECRET)
            .output()
            .unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (code, err) = run("http://contoso.operations.dynamics.com", "a.journal", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("insecure-url")
            || err.contains("is refused: the console sends tokens and data only over https"),
        "{err}"
    );
    assert!(err.contains("r.yaml:7:10"), "names the line: {err}");
    let o = cutover(dir)
        .args(["validate", "--strict", "r.yaml"])
        .env("FNO_URL", "http://10.0.0.7:8080")
        .env("FNO_SECRET", SECRET)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("`http://10.0.0.7` is refused"), "{err}");
    // A simulator address off this machine: refused before any request goes out.
    let (code, err) = run(
        "https://contoso.operations.dynamics.com",
        "b.journal",
        &["--sim-url", "http://192.0.2.1:9"],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--sim-url http://192.0.2.1:9: refused"), "{err}");
    assert!(!err.contains("error sending request"), "nothing was sent: {err}");
    // Loopback http is accepted (validation passes; the closed port then fails the call, not the URL).
    let o = cutover(dir)
        .args(["validate", "--strict", "r.yaml"])
        .env("FNO_URL", "http://127.0.0.1:9")
        .env("FNO_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut scan = Scan::default();
    scan.bytes("validate stderr", &o.stderr);
    assert!(scan.leaks.is_empty(), "{:?}", scan.leaks);
}
