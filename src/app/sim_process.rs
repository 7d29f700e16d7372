//! The simulator of `cutover demo` and `--sim` outlives the console, as a real environment does.
//!
//! Killing the console must not reset the environment it was changing: a resumed run asks the
//! environment what became of its in-flight step, and a fresh simulator would answer for a world
//! where nothing ever ran (the sync it started is unknown, the rows it copied are gone). So the CLI
//! does not serve the simulator in its own process: it starts `cutover sim` as a child in a process
//! group of its own (Ctrl-C and SIGKILL of the console leave it running), records where it listens in
//! `<journal>.sim` (mode 0600) and reuses it when the journal is driven again. The child logs to
//! `<journal>.sim.log`, exits by itself after [`IDLE_EXIT`] without a request (the driving console
//! pings it every [`KEEPALIVE`]), and is stopped when the journal's run finishes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::journal::lease::process_alive;
use crate::journal::open_private;

/// A detached simulator that no console has used for this long exits.
pub const IDLE_EXIT: Duration = Duration::from_secs(30 * 60);
/// How often a driving process touches its simulator so a console waiting on an operator for hours
/// keeps its environment.
pub const KEEPALIVE: Duration = Duration::from_secs(60);

/// What `<journal>.sim` holds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Record {
    url: String,
    pid: u32,
    /// `demo`, or the sha256 of the scenario file's text: another scenario needs another simulator.
    scenario: String,
    started_at: DateTime<Utc>,
}

/// A simulator serving a journal's runs.
#[derive(Clone, Debug)]
pub struct Detached {
    pub url: String,
    pub pid: u32,
    /// It was already running (a resumed run meets the environment it left).
    pub reused: bool,
    pub log: PathBuf,
    record: PathBuf,
}

/// Stops the simulator recorded beside `journal`, if any (tests clean up with it).
pub fn stop_recorded(journal: &Path) {
    let record = record_path(journal);
    if let Some(r) = read_record(&record) {
        if process_alive(r.pid) {
            terminate(r.pid);
        }
        let _ = std::fs::remove_file(&record);
    }
}

/// `<journal>.sim`.
pub fn record_path(journal: &Path) -> PathBuf {
    suffixed(journal, ".sim")
}

fn suffixed(journal: &Path, suffix: &str) -> PathBuf {
    let mut s = journal.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn scenario_id(scenario: Option<&Path>) -> Result<String, String> {
    match scenario {
        None => Ok("demo".into()),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("--sim={}: {e}", p.display()))?;
            // Refuse a broken scenario here, with its line, rather than in the child's log.
            crate::sim::Scenario::from_yaml(&text).map_err(|e| format!("--sim={}: {e}", p.display()))?;
            Ok(crate::util::sha256_hex(&text))
        }
    }
}

fn read_record(path: &Path) -> Option<Record> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// One plain `GET /_sim/clock` over loopback: does a simulator answer at `url`?
fn answers(url: &str) -> bool {
    let Some(addr) = url
        .strip_prefix("http://")
        .and_then(|h| h.trim_end_matches('/').parse::<SocketAddr>().ok())
    else {
        return false;
    };
    let probe = || -> std::io::Result<bool> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(format!("GET /_sim/clock HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1.") && &head[9..12] == b"200")
    };
    probe().unwrap_or(false)
}

/// The journal's simulator: the recorded one when it still runs the same scenario and answers,
/// else a new one (an old one serving another scenario is stopped first). `note` says which.
pub fn ensure(
    journal: &Path,
    scenario: Option<&Path>,
    note: &mut dyn FnMut(&str),
) -> Result<Detached, String> {
    let id = scenario_id(scenario)?;
    let record = record_path(journal);
    let log = suffixed(journal, ".sim.log");
    if let Some(r) = read_record(&record) {
        if r.scenario == id && process_alive(r.pid) && answers(&r.url) {
            note(&format!(
                "simulator at {} (pid {}) still holds this journal's environment; using it",
                r.url, r.pid
            ));
            return Ok(Detached {
                url: r.url,
                pid: r.pid,
                reused: true,
                log,
                record,
            });
        }
        if process_alive(r.pid) && r.scenario != id {
            terminate(r.pid);
        }
        let _ = std::fs::remove_file(&record);
    }
    spawn(journal, scenario, id, record, log)
}

/// The simulator recorded beside the journal, when it still runs and answers.
pub fn recorded(journal: &Path) -> Option<Detached> {
    let record = record_path(journal);
    let r = read_record(&record)?;
    (process_alive(r.pid) && answers(&r.url)).then(|| Detached {
        url: r.url,
        pid: r.pid,
        reused: true,
        log: suffixed(journal, ".sim.log"),
        record,
    })
}

fn spawn(
    journal: &Path,
    scenario: Option<&Path>,
    id: String,
    record: PathBuf,
    log: PathBuf,
) -> Result<Detached, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the cutover binary: {e}"))?;
    let out = open_private(&log, false).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| format!("{}: {e}", log.display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("sim")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--exit-when-idle")
        .arg(IDLE_EXIT.as_secs().to_string())
        .arg("--exit-without")
        .arg(&record);
    if let Some(s) = scenario {
        cmd.arg("--scenario").arg(s);
    }
    // A minimal environment: the simulator needs no secret of the operator's shell.
    cmd.env_clear();
    for name in crate::runbook::vars::MINIMAL_ENV
        .iter()
        .chain(&["CUTOVER_LOG", "RUST_LOG", "RUST_BACKTRACE"])
    {
        if let Some(v) = std::env::var_os(name) {
            cmd.env(name, v);
        }
    }
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Its own process group: the terminal's Ctrl-C goes to the console, not to the environment.
        cmd.process_group(0);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the simulator: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let url = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(url) = text
            .lines()
            .find_map(|l| l.strip_prefix("listening on "))
            .map(|u| u.trim().to_owned())
        {
            break url;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the simulator exited ({status}) before listening; see {}:\n{}",
                log.display(),
                text.trim_end()
            ));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!(
                "the simulator did not start within 20 s; see {}",
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let r = Record {
        url: url.clone(),
        pid: child.id(),
        scenario: id,
        started_at: Utc::now(),
    };
    let bytes = serde_json::to_vec_pretty(&r).map_err(|e| e.to_string())?;
    let tmp = suffixed(journal, ".sim.tmp");
    open_private(&tmp, false)
        .and_then(|mut f| f.write_all(&bytes))
        .and_then(|()| std::fs::rename(&tmp, &record))
        .map_err(|e| format!("{}: {e}", record.display()))?;
    Ok(Detached {
        url,
        pid: r.pid,
        reused: false,
        log,
        record,
    })
}

fn terminate(pid: u32) {
    #[cfg(unix)]
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
    }
}

impl Detached {
    /// Stops the simulator and forgets it (record and log): the journal's run is over.
    pub fn stop(&self) {
        if read_record(&self.record).is_some_and(|r| r.pid == self.pid) {
            terminate(self.pid);
            let _ = std::fs::remove_file(&self.record);
            let _ = std::fs::remove_file(&self.log);
        }
    }

    /// Touches the simulator every [`KEEPALIVE`] until the process ends, so its idle exit only
    /// fires once no console drives it.
    pub fn keep_alive(&self) {
        let url = self.url.clone();
        let _ = std::thread::Builder::new()
            .name("sim-keepalive".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(KEEPALIVE);
                    let _ = answers(&url);
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_free_pid_is_not() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(u32::MAX - 7));
    }

    #[test]
    fn the_record_sits_beside_the_journal() {
        assert_eq!(
            record_path(Path::new("/x/demo.journal")),
            PathBuf::from("/x/demo.journal.sim")
        );
    }

    #[test]
    fn nothing_answers_on_a_closed_port() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        assert!(!answers(&format!("http://127.0.0.1:{port}")));
        assert!(!answers("https://example.invalid"));
    }
}
