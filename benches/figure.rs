//! The one way a benchmark reports a figure to `scripts/bench` (see the README's Performance
//! section): each figure is exactly one stdout line `FIGURE {json}` with the fields
//! `figure, value, unit, limit, limit_label, ratio, target, pass`. The bench keeps its own
//! human-readable lines; the driver only reads the `FIGURE ` lines.
//!
//! Use from a bench: `#[path = "figure.rs"] mod figure;` then `figure::emit(...)`. This file is not
//! a bench target itself (`autobenches = false` in Cargo.toml).

#![allow(dead_code)]

/// Prints one FIGURE line.
///
/// - `figure`: stable lower-case name without units (the key when comparing commits).
/// - `value` in `unit` (`"ms"`, `"s"`, `"events/s"`, `"MB"`, `"req/s"`, `"x"`).
/// - `limit`: `(value, what it is)` when the figure is held against something measured or
///   computed in the same run (plain insert rate, ideal sweep time, critical path); `None` when
///   the target is a fixed number.
/// - `ratio`: `value / limit`, or the figure's natural ratio; `None` when there is none.
/// - `target` as text (`"< 2 ms"`, `">= 0.7"`, `"<= 1.2"`), `pass`: whether this run met it.
pub fn emit(
    figure: &str,
    value: f64,
    unit: &str,
    limit: Option<(f64, &str)>,
    ratio: Option<f64>,
    target: &str,
    pass: bool,
) {
    println!("{}", line(figure, value, unit, limit, ratio, target, pass));
}

/// The FIGURE line [`emit`] prints (without the newline).
pub fn line(
    figure: &str,
    value: f64,
    unit: &str,
    limit: Option<(f64, &str)>,
    ratio: Option<f64>,
    target: &str,
    pass: bool,
) -> String {
    let v = serde_json::json!({
        "figure": figure,
        "value": value,
        "unit": unit,
        "limit": limit.map(|(l, _)| l),
        "limit_label": limit.map(|(_, label)| label),
        "ratio": ratio,
        "target": target,
        "pass": pass,
    });
    format!("FIGURE {v}")
}

/// Peak resident set size of this process so far, in MB (`VmHWM` of `/proc/self/status`);
/// `None` where procfs is not available.
pub fn peak_rss_mb() -> Option<f64> {
    status_kb("/proc/self/status", "VmHWM:").map(|kb| kb as f64 / 1024.0)
}

/// Current resident set size of this process, in MB (`VmRSS`).
pub fn rss_mb() -> Option<f64> {
    status_kb("/proc/self/status", "VmRSS:").map(|kb| kb as f64 / 1024.0)
}

/// Peak resident set size of another live process, in MB (`VmHWM` of `/proc/PID/status`).
pub fn peak_rss_mb_of(pid: u32) -> Option<f64> {
    status_kb(&format!("/proc/{pid}/status"), "VmHWM:").map(|kb| kb as f64 / 1024.0)
}

fn status_kb(path: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The `p`-th percentile (0..=100) of an ascending slice, nearest-rank; `None` when empty.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Time the calling thread has spent on a CPU so far (`CLOCK_THREAD_CPUTIME_ID`, exact to the
/// nanosecond, unlike `/proc/thread-self/schedstat` which only moves at scheduler ticks). The
/// difference around a piece of work is its own cost, without the time other processes took the
/// core away (the bench machine is shared): benches report it next to wall time, never instead.
pub fn thread_cpu() -> Option<std::time::Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| {
        std::time::Duration::new(
            u64::try_from(ts.tv_sec).unwrap_or(0),
            u32::try_from(ts.tv_nsec).unwrap_or(0),
        )
    })
}

/// CPU time (user + system) this whole process has used so far (`getrusage(RUSAGE_SELF)`).
pub fn process_cpu() -> Option<std::time::Duration> {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage for the duration of the call.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| {
        std::time::Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_usec).unwrap_or(0) * 1000,
        )
    };
    (rc == 0).then(|| tv(ru.ru_utime) + tv(ru.ru_stime))
}
