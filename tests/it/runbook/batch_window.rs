//! `dualwrite.batch_window` in `validate` and `plan`: a planned window past dual-write's 1-day pause limit is
//! a warning at its `max_window` line (and a `!` line in the plan), a zero window, an unreadable duration, a
//! missing dual-write environment and a bad package path are errors at their lines.
use cutover::runbook::plan::{plan, render_batch_windows};
use cutover::runbook::{Severity, validate};

const RUNBOOK: &str = r#"runbook: windows
version: 1.0.0
environments:
  fno: { kind: fno, url: "https://contoso.operations.dynamics.com" }
  dataverse: { kind: dataverse, url: "https://contoso.crm.dynamics.com" }
  dualwrite: { kind: dualwrite, link: [fno, dataverse], mode: operator }
maps:
  customers: { source: "fno:CustomersV3", target: "dataverse:accounts" }
phases:
  - id: p
    steps:
      - id: nightly
        kind: dualwrite.batch_window
        maps: [customers]
        max_window: 6h
      - id: long
        kind: dualwrite.batch_window
        maps: [customers]
        max_window: 1d6h
      - id: zero
        kind: dualwrite.batch_window
        maps: all
        max_window: 0s
        import: { env: fno, definition_group: G, package_file: ../outside.zip }
"#;

fn found(text: &str) -> Vec<(Severity, u32, &'static str, String)> {
    validate(text, "windows.yaml", &|_: &str| None, false)
        .into_iter()
        .map(|d| (d.severity, d.line, d.code, d.message))
        .collect()
}

#[test]
fn windows_are_checked_against_the_pause_limit_at_their_lines() {
    let d = found(RUNBOOK);
    let at = |sev: Severity, line: u32, code: &str| {
        d.iter()
            .find(|(s, l, c, _)| *s == sev && *l == line && *c == code)
            .map(|(_, _, _, m)| m.clone())
    };
    let w = at(Severity::Warning, 19, "pause-limit").unwrap_or_else(|| panic!("{d:#?}"));
    assert!(w.contains("1d6h") && w.contains("1 day"), "{w}");
    assert!(
        at(Severity::Warning, 15, "pause-limit").is_none(),
        "6h is within the limit: {d:#?}"
    );
    let z = at(Severity::Error, 23, "invalid-value").unwrap_or_else(|| panic!("{d:#?}"));
    assert!(z.contains("max_window is zero"), "{z}");
    let p = at(Severity::Error, 24, "invalid-path").unwrap_or_else(|| panic!("{d:#?}"));
    assert!(p.contains("../outside.zip"), "{p}");

    let bad = RUNBOOK.replace("max_window: 6h", "max_window: six hours");
    assert!(
        found(&bad)
            .iter()
            .any(|(s, l, _, m)| *s == Severity::Error && *l == 15 && m.contains("six hours")),
        "{:#?}",
        found(&bad)
    );
    let no_dw = RUNBOOK.replace(
        "  dualwrite: { kind: dualwrite, link: [fno, dataverse], mode: operator }\n",
        "",
    );
    assert!(
        found(&no_dw)
            .iter()
            .any(|(s, l, c, _)| *s == Severity::Error && *l == 12 && *c == "unknown-env"),
        "{:#?}",
        found(&no_dw)
    );
}

#[test]
fn the_plan_lists_each_window_and_marks_one_past_a_day() {
    let rb = cutover::runbook::load(RUNBOOK, "windows.yaml").runbook.unwrap();
    let p = plan(&rb);
    let long = p
        .batch_windows
        .iter()
        .find(|w| w.step.as_str() == "long")
        .unwrap();
    assert_eq!(long.max_window_secs, 108_000);
    assert!(long.warning.as_deref().unwrap().contains("1 day"));
    let text = render_batch_windows(&p);
    assert!(
        text.contains("  nightly") && text.contains("paused up to 6h"),
        "{text}"
    );
    assert!(text.contains("! long"), "{text}");
    let nightly = p.steps.iter().find(|s| s.id.as_str() == "nightly").unwrap();
    assert_eq!(nightly.estimate_secs, 6 * 3_600 + 240);
}
