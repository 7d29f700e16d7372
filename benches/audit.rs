//! Audit at scale: a 1,000,000-event journal (the realistic mix of `tests/journal_support.rs`),
//! then `verify` and `report --format json` as the CLI runs them (targets < 5 s each), and the
//! process's peak memory, which must stay far below the journal's size (reports stream events).
//!
//! `cargo bench --bench audit` (release). Knobs: `AUDIT_BENCH_EVENTS` (default 1,000,000),
//! `AUDIT_BENCH_MAPS` (default 500), `AUDIT_BENCH_KEEP=DIR` keeps the journal and writes the HTML
//! report there; `AUDIT_BENCH_DEMO=DIR` only writes the demo-like journal of the audit tests and its
//! HTML report into DIR (for `scripts/check-report-html`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

#[path = "../tests/it/support/audit.rs"]
mod demo;
#[path = "../tests/it/support/journal.rs"]
mod support;

#[path = "figure.rs"]
mod figure;
use std::path::Path;
use std::time::Instant;

use cutover::audit::build::Fold;
use cutover::audit::{build_report, html, verify_journal};
use cutover::journal::{Journal, Redactor};
use support::{Gen, run_id, run_started};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Run the `cutover` binary; returns (wall seconds, peak RSS in MB, polled from /proc every 5 ms).
fn child(args: &[&str]) -> (f64, f64) {
    let start = Instant::now();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", c.id());
    let mut peak_kb = 0f64;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_path)
            && let Some(kb) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(st) = c.try_wait().unwrap() {
            assert!(st.success(), "cutover {args:?} failed: {st}");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    (start.elapsed().as_secs_f64(), peak_kb / 1024.0)
}

fn write_html(dir: &Path, journal: &Path, name: &str) {
    let report = build_report(journal, None, false).unwrap();
    let out = dir.join(name);
    std::fs::write(&out, html::render(&report)).unwrap();
    println!("wrote {}", out.display());
}

fn main() {
    if let Some(dir) = std::env::var_os("AUDIT_BENCH_DEMO") {
        let dir = Path::new(&dir);
        std::fs::create_dir_all(dir).unwrap();
        let _ = std::fs::remove_file(dir.join("demo.journal"));
        let journal = demo::build_demo(dir, None);
        write_html(dir, &journal, "demo.html");
        return;
    }
    let n = env_num("AUDIT_BENCH_EVENTS", 1_000_000);
    let maps = env_num("AUDIT_BENCH_MAPS", 500);
    let keep = std::env::var_os("AUDIT_BENCH_KEEP");
    let tmp = tempfile::tempdir().unwrap();
    let dir = keep.as_deref().map_or(tmp.path(), Path::new);
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("big.journal");
    let _ = std::fs::remove_file(&path);
    let r = run_id("big");

    let start = Instant::now();
    let journal = Journal::open(&path, Redactor::with_secrets(["client-secret-value-0001"])).unwrap();
    let w = journal.writer();
    w.append_blocking(r.clone(), run_started("big", maps)).unwrap();
    let mut g = Gen::new(7, maps);
    for _ in 1..n {
        w.append_batched(r.clone(), g.next_event()).unwrap();
    }
    w.flush_blocking().unwrap();
    journal.close().unwrap();
    let gen_secs = start.elapsed().as_secs_f64();
    let size = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;
    let rss_before = peak_rss_mb();
    // Reset the peak (VmHWM) so what follows measures verify and report alone.
    let _ = std::fs::write("/proc/self/clear_refs", "5");

    let start = Instant::now();
    let verdict = verify_journal(&path).unwrap();
    let verify_secs = start.elapsed().as_secs_f64();
    assert_eq!(verdict.result.as_ref().unwrap().events, n as u64);

    // `report` builds the report once (verify included), then renders JSON or HTML: each figure
    // is the build plus its own rendering, as `cutover report --format json|html` costs.
    let start = Instant::now();
    let report = build_report(&path, None, false).unwrap();
    let build_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let json = serde_json::to_string_pretty(&report).unwrap();
    std::fs::write(dir.join("report.json"), &json).unwrap();
    let report_secs = build_secs + start.elapsed().as_secs_f64();
    assert_eq!(report.run.events, n as u64);

    let start = Instant::now();
    std::fs::write(dir.join("report.html"), html::render(&report)).unwrap();
    let html_render_secs = start.elapsed().as_secs_f64();
    let html_secs = build_secs + html_render_secs;

    // Where the report's time goes: read+decode, + the reducer, + the audit fold (no verify).
    let reader = cutover::journal::JournalReader::open_read_only(&path).unwrap();
    let start = Instant::now();
    let mut count = 0u64;
    reader.for_each_envelope(&r, |_| count += 1).unwrap();
    let stream_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut state = cutover::engine::RunState::default();
    reader.for_each_envelope(&r, |e| state.apply(e)).unwrap();
    let reduce_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut fold = Fold::default();
    reader.for_each_envelope(&r, |e| fold.apply(e)).unwrap();
    let fold_secs = start.elapsed().as_secs_f64();
    assert_eq!(count, n as u64);

    // The CLI as a user runs it, in a child process: wall time and its own peak memory.
    let journal_arg = path.to_str().unwrap().to_owned();
    let json_out = dir.join("cli-report.json");
    let (cli_verify_secs, cli_verify_mb) = child(&["verify", &journal_arg]);
    let (cli_report_secs, cli_report_mb) = child(&[
        "report",
        "--format",
        "json",
        "-o",
        json_out.to_str().unwrap(),
        &journal_arg,
    ]);

    let verdict_of = |ok: bool| if ok { "MET" } else { "MISSED" };
    println!("audit bench: {n} events over {maps} maps, journal {size:.0} MB (written in {gen_secs:.1} s)");
    println!(
        "  verify                 : {verify_secs:>6.2} s (target < 5 s) {}",
        verdict_of(verify_secs < 5.0)
    );
    println!(
        "  report --format json   : {report_secs:>6.2} s (target < 5 s) {} ({:.1} MB of JSON)",
        verdict_of(report_secs < 5.0),
        json.len() as f64 / 1e6
    );
    println!(
        "  cutover verify (CLI)   : {cli_verify_secs:>6.2} s (target < 5 s) {}, peak RSS {cli_verify_mb:.0} MB",
        verdict_of(cli_verify_secs < 5.0)
    );
    println!(
        "  cutover report --format json (CLI): {cli_report_secs:.2} s (target < 5 s) {}, peak RSS {cli_report_mb:.0} MB",
        verdict_of(cli_report_secs < 5.0)
    );
    println!(
        "  report --format html   : {html_secs:>6.2} s (target < 5 s) {} (render alone {html_render_secs:.2} s)",
        verdict_of(html_secs < 5.0)
    );
    println!(
        "  breakdown (no verify)  : read+decode {stream_secs:.2} s, +reducer {reduce_secs:.2} s, +audit fold {fold_secs:.2} s"
    );
    println!(
        "  peak RSS of verify+report: {:>4.0} MB (writing the journal peaked at {rss_before:.0} MB)",
        peak_rss_mb()
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "  load average           : {} (2 cores, shared)",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    figure(
        "audit verify",
        verify_secs,
        "s",
        None,
        "",
        None,
        "< 5 s",
        verify_secs < 5.0,
    );
    figure(
        "audit report json",
        report_secs,
        "s",
        None,
        "",
        None,
        "< 5 s",
        report_secs < 5.0,
    );
    figure(
        "audit report html",
        html_secs,
        "s",
        None,
        "",
        None,
        "< 5 s",
        html_secs < 5.0,
    );
    if keep.is_some() {
        println!("kept {}", dir.display());
    }
}

/// One `FIGURE {json}` line for `scripts/bench`, through `benches/figure.rs`; the label is given
/// apart from the limit so the call sites read as a table.
#[allow(clippy::too_many_arguments)]
fn figure(
    name: &str,
    value: f64,
    unit: &str,
    limit: Option<f64>,
    limit_label: &str,
    ratio: Option<f64>,
    target: &str,
    pass: bool,
) {
    figure::emit(
        name,
        value,
        unit,
        limit.map(|l| (l, limit_label)),
        ratio,
        target,
        pass,
    );
}
