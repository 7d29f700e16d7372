//! Hostile files beside a journal: a symbolic link in place of the journal or a side file is refused and its
//! target left as it was (never written, never chmodded); an SQLite file that is not a journal is refused and
//! left untouched (not converted to WAL); `verify` runs SQLite's own check and leaves a copy as it found it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::journal::{run_id, run_started};
use cutover::journal::{Journal, JournalReader, Redactor};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_journal_that_is_a_symlink_is_refused_and_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.path().join("run.journal");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let e = Journal::open(&link, Redactor::new())
        .err()
        .expect("a link is refused");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(mode(&victim), 0o644, "the victim was chmodded through the link");
}

#[tokio::test]
async fn a_side_file_that_is_a_symlink_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.journal");
    let j = Journal::open(&path, Redactor::new()).unwrap();
    j.writer().append(run_id("r"), run_started("r", 1)).await.unwrap();
    j.close().unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("run.journal-wal")).unwrap();
    let e = Journal::open(&path, Redactor::new())
        .err()
        .expect("a linked -wal is refused");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

#[test]
fn a_planted_sim_log_link_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = dir.path().join("run.journal.sim.log");
    std::os::unix::fs::symlink(&victim, &log).unwrap();
    assert!(cutover::journal::open_private(&log, false).is_err());
    assert!(cutover::journal::open_private(&log, true).is_err());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(mode(&victim), 0o644);
}

#[test]
fn a_foreign_sqlite_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('Contoso');")
            .unwrap();
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = std::fs::read(&path).unwrap();
    let e = Journal::open(&path, Redactor::new())
        .err()
        .expect("not a journal");
    assert!(e.to_string().contains("not a cutover journal"), "{e}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the file was changed (converted to WAL?)"
    );
    assert_eq!(mode(&path), 0o644, "the file was chmodded");
    assert!(!dir.path().join("app.db-wal").exists());
}

#[tokio::test]
async fn verify_runs_sqlites_own_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.journal");
    let j = Journal::open(&path, Redactor::new()).unwrap();
    for i in 0..400 {
        j.writer()
            .append_batched(
                run_id("r"),
                if i == 0 {
                    run_started("r", 1)
                } else {
                    cutover::engine::Event::Log {
                        level: cutover::engine::event::LogLevel::Info,
                        message: format!("line {i}"),
                    }
                },
            )
            .unwrap();
    }
    j.writer().flush().await.unwrap();
    j.close().unwrap();
    crate::support::rechain::damage_an_index_root_page(&path);
    let r = JournalReader::open_read_only(&path).unwrap();
    let verdict = r.verify().unwrap();
    let f = verdict.expect_err("a damaged SQLite file must not verify");
    assert!(f.reason.contains("quick_check"), "{}", f.reason);
}

#[tokio::test]
async fn verify_leaves_a_copy_as_it_found_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.journal");
    let j = Journal::open(&path, Redactor::new()).unwrap();
    j.writer().append(run_id("r"), run_started("r", 1)).await.unwrap();
    j.close().unwrap();
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join("copy.journal");
    std::fs::copy(&path, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o400)).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let verdict = cutover::audit::verify_journal(&copy).unwrap();
    assert!(verdict.result.is_ok(), "{:?}", verdict.result);
    assert_eq!(std::fs::read(&copy).unwrap(), before);
    let names: Vec<String> = std::fs::read_dir(copy_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["copy.journal".to_owned()],
        "files created beside a read-only copy"
    );
}
