//! Speed target (issue 2): `cutover validate` on a 2,000-map, 10,000-step runbook in under a second
//! (release build). Generates the runbook in memory, then times load + validate + plan.
//!
//! Run: `cargo bench --bench validate`

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use cutover::runbook::{load, plan::plan, validate, validate_loaded};

const MAPS: usize = 2_000;
const STEPS: usize = 10_000;
const WAVES: usize = 200; // 10 maps per wave
const TARGET: Duration = Duration::from_secs(1);

fn generate() -> String {
    let mut s = String::from(
        "runbook: generated\nversion: 1.0.0\nenvironments:\n  fno:\n    kind: fno\n    url: ${FNO_URL}\n    auth:\n      tenant: t\n      client_id: c\n      client_secret: ${FNO_SECRET}\n  dataverse:\n    kind: dataverse\n    url: ${DV_URL}\n  dualwrite:\n    kind: dualwrite\n    link: [fno, dataverse]\nmaps:\n",
    );
    let per_wave = MAPS / WAVES;
    for m in 0..MAPS {
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
    for w in 0..WAVES {
        let maps: Vec<String> = (w * per_wave..(w + 1) * per_wave)
            .map(|m| format!("m{m}"))
            .collect();
        let _ = write!(s, "      - id: wave-{w}\n        maps: [{}]\n", maps.join(", "));
    }
    let per_phase = 1_000;
    for p in 0..STEPS / per_phase {
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
                        n % MAPS,
                        (n + 7) % MAPS,
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

fn main() {
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
        "load+validate+plan: {MAPS} maps, {STEPS} steps, {} bytes, {steps} planned steps: median {:.1} ms over {iterations} runs (min {:.1} ms, max {:.1} ms); {:.2}x of the 1 s target",
        text.len(),
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[iterations - 1].as_secs_f64() * 1e3,
        median.as_secs_f64() / TARGET.as_secs_f64()
    );
}
