//! Speed and memory targets (issues 2 and 7): `cutover plan` work (load, validate, plan) on a
//! generated 2,000-map, 10,000-step runbook: median under 1 s, and peak memory under 200 MB
//! (release build).
//!
//! Figures: `validate plan median` (ms) and `validate plan peak rss` (MB). The memory is measured
//! in a child process (this binary re-run with `CUTOVER_BENCH_CHILD=rss`) that holds the runbook
//! text and runs load + validate + plan once, then reports its own `VmHWM`: the peak of a fresh
//! process doing exactly what `cutover plan` does, not polluted by the timing loop's allocations.
//!
//! Run: `cargo bench --bench validate` (`CUTOVER_BENCH_QUICK=1`: 200 maps, 1,000 steps).

#[path = "figure.rs"]
mod figure;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use cutover::runbook::{load, plan::plan, validate, validate_loaded};

const WAVES_PER_MAP: usize = 10; // 10 maps per wave
const TARGET: Duration = Duration::from_secs(1);
const RSS_TARGET_MB: f64 = 200.0;

/// (maps, steps): the sizes, or a tenth of them for a smoke run.
fn sizes() -> (usize, usize) {
    if std::env::var_os("CUTOVER_BENCH_QUICK").is_some() {
        (200, 1_000)
    } else {
        (2_000, 10_000)
    }
}

fn generate() -> String {
    let (maps, steps) = sizes();
    let waves = maps / WAVES_PER_MAP;
    let mut s = String::from(
        "runbook: generated\nversion: 1.0.0\nenvironments:\n  fno:\n    kind: fno\n    url: ${FNO_URL}\n    auth:\n      tenant: t\n      client_id: c\n      client_secret: ${FNO_SECRET}\n  dataverse:\n    kind: dataverse\n    url: ${DV_URL}\n  dualwrite:\n    kind: dualwrite\n    link: [fno, dataverse]\nmaps:\n",
    );
    let per_wave = maps / waves;
    for m in 0..maps {
        let _ = write!(
            s,
            "  m{m}:\n    source: fno:Entity{m}\n    target: dataverse:entity{m}\n    companies: [USMF, USRT]\n    rows: {}\n",
            1_000 + m
        );
        // Each map depends on one map of the previous wave, so dependency order is checked everywhere.
        if m >= per_wave {
            let _ = writeln!(s, "    depends_on: [m{}]", m - per_wave);
        }
    }
    s.push_str("phases:\n  - id: sync\n    gate: { parity: true, max_errors: 0 }\n    waves:\n");
    for w in 0..waves {
        let maps: Vec<String> = (w * per_wave..(w + 1) * per_wave)
            .map(|m| format!("m{m}"))
            .collect();
        let _ = write!(s, "      - id: wave-{w}\n        maps: [{}]\n", maps.join(", "));
    }
    let per_phase = 1_000.min(steps);
    for p in 0..steps / per_phase {
        let _ = write!(s, "  - id: phase-{p}\n    steps:\n");
        for i in 0..per_phase {
            let n = p * per_phase + i;
            match n % 4 {
                0 => {
                    let _ = write!(
                        s,
                        "      - id: s{n}\n        kind: manual\n        title: Check {n}\n        checklist: [a, b]\n"
                    );
                }
                1 => {
                    let _ = write!(
                        s,
                        "      - id: s{n}\n        kind: parity\n        maps: [m{}, m{}]\n        needs: [s{}]\n",
                        n % maps,
                        (n + 7) % maps,
                        n - 1
                    );
                }
                2 => {
                    let _ = write!(
                        s,
                        "      - id: s{n}\n        kind: http\n        env: fno\n        path: /data/x{n}\n        capture: {{ job: /id }}\n        timeout: 10m\n"
                    );
                }
                _ => {
                    let _ = write!(
                        s,
                        "      - id: s{n}\n        kind: notify\n        url: ${{HOOK}}\n        text: \"job ${{steps.s{}.job}} done\"\n",
                        n - 1
                    );
                }
            }
        }
    }
    s
}

/// The child: one load + validate + plan in a fresh process, then its peak RSS on stdout.
fn child_rss() {
    let text = generate();
    let env = |_: &str| Some("set".to_owned());
    let loaded = load(&text, "generated.yaml");
    let diags = validate_loaded(&loaded, "generated.yaml", &env, true);
    let planned = loaded.runbook.as_ref().map(plan);
    let n = planned.map_or(0, |p| p.steps.len()) + diags.len();
    match figure::peak_rss_mb() {
        Some(mb) => println!("RSS {mb:.3} {n}"),
        None => println!("RSS unavailable {n}"),
    }
}

/// Runs the child and returns its peak RSS in MB.
fn measure_rss() -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let out = std::process::Command::new(exe)
        .env("CUTOVER_BENCH_CHILD", "rss")
        .output()
        .ok()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with("RSS "))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    if std::env::var("CUTOVER_BENCH_CHILD").as_deref() == Ok("rss") {
        child_rss();
        return;
    }
    let (maps, steps_n) = sizes();
    let text = generate();
    let env = |_: &str| Some("set".to_owned());
    // Sanity: the generated runbook is valid, so the timing covers the whole pipeline.
    let diags = validate(&text, "generated.yaml", &env, true);
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).take(3).collect();
    if !errors.is_empty() {
        eprintln!("generated runbook does not validate: {errors:#?}");
        std::process::exit(1);
    }
    let iterations = 7;
    let mut times = Vec::new();
    let mut parts = [Duration::ZERO; 3];
    let mut steps = 0;
    for _ in 0..iterations {
        // What `cutover plan` does: load once, validate, plan.
        let start = Instant::now();
        let loaded = load(&text, "generated.yaml");
        let loaded_at = start.elapsed();
        let diags = validate_loaded(&loaded, "generated.yaml", &env, true);
        let validated_at = start.elapsed();
        let planned = loaded.runbook.as_ref().map(plan);
        let total = start.elapsed();
        times.push(total);
        parts[0] += loaded_at;
        parts[1] += validated_at - loaded_at;
        parts[2] += total - validated_at;
        steps = planned.map_or(0, |p| p.steps.len()) + diags.len();
    }
    let n = u32::try_from(iterations).unwrap_or(1);
    println!(
        "mean split: load (both parses) {:.1} ms, semantic checks {:.1} ms, plan {:.1} ms",
        (parts[0] / n).as_secs_f64() * 1e3,
        (parts[1] / n).as_secs_f64() * 1e3,
        (parts[2] / n).as_secs_f64() * 1e3
    );
    times.sort();
    let median = times[iterations / 2];
    println!(
        "load+validate+plan: {maps} maps, {steps_n} steps, {} bytes, {steps} planned steps: median {:.1} ms over {iterations} runs (min {:.1} ms, max {:.1} ms); {:.2}x of the 1 s target",
        text.len(),
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[iterations - 1].as_secs_f64() * 1e3,
        median.as_secs_f64() / TARGET.as_secs_f64()
    );
    let median_ms = median.as_secs_f64() * 1e3;
    figure::emit(
        "validate plan median",
        median_ms,
        "ms",
        None,
        Some(median.as_secs_f64() / TARGET.as_secs_f64()),
        "< 1000 ms",
        median < TARGET,
    );
    match measure_rss() {
        Some(mb) => {
            println!(
                "peak RSS of one load+validate+plan in a fresh process: {mb:.1} MB (target < {RSS_TARGET_MB} MB)"
            );
            figure::emit(
                "validate plan peak rss",
                mb,
                "MB",
                None,
                Some(mb / RSS_TARGET_MB),
                "< 200 MB",
                mb < RSS_TARGET_MB,
            );
        }
        None => {
            eprintln!("validate: the peak-RSS child failed or /proc is not readable");
            std::process::exit(1);
        }
    }
}
