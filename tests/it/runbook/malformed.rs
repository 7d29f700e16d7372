#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every file under tests/malformed/ carries `# expect: LINE:COL CODE` on its first line; validation must
//! report that code at that position (other findings are allowed). Regenerate with
//! `cd tests/malformed && python3 generate.py`.

use cutover::runbook::validate;

/// Variables named `UNSET_*` are unset; every other variable is set.
fn env(name: &str) -> Option<String> {
    (!name.starts_with("UNSET_")).then(|| "value".to_owned())
}

#[test]
fn each_malformed_runbook_reports_its_diagnostic_at_its_position() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "only {} malformed runbooks", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let header = text.lines().next().unwrap_or("");
        let spec = header
            .strip_prefix("# expect: ")
            .unwrap_or_else(|| panic!("{}: no expect header", path.display()));
        let (pos, code) = spec.split_once(' ').unwrap();
        let (line, column) = pos.split_once(':').unwrap();
        let (line, column): (u32, u32) = (line.parse().unwrap(), column.parse().unwrap());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let diags = validate(&text, &name, &env, false);
        if !diags
            .iter()
            .any(|d| d.line == line && d.column == column && d.code == code)
        {
            let got: Vec<String> = diags
                .iter()
                .map(|d| format!("{}:{} {} ({})", d.line, d.column, d.code, d.message))
                .collect();
            failures.push(format!("{name}: expected {line}:{column} {code}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn the_sample_runbooks_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
    for name in ["demo.yaml", "contoso-weekend.yaml"] {
        let path = dir.join(name);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        // Secrets of a realistic length (a short one is a `weak-secret` warning).
        let long = |n: &str| env(n).map(|v| format!("{v}-long-enough"));
        let diags = validate(&text, name, &long, true);
        // The demo drives the simulator's gateway: labelled unsupported and needing a user sign-in, as any
        // gateway-mode runbook is; nothing else.
        let expected: &[&str] = if name == "demo.yaml" {
            &["gateway-needs-user", "gateway-unsupported"]
        } else {
            &[]
        };
        let codes: Vec<&str> = diags.iter().map(|d| d.code).collect();
        assert_eq!(codes, expected, "{name}: {diags:#?}");
        assert!(text.starts_with("# yaml-language-server: $schema=../assets/runbook.schema.json\n"));
    }
}

#[test]
fn every_structural_error_is_reported_not_only_the_first() {
    let text = include_str!("multi-structural.yaml.txt");
    let diags = validate(text, "multi.yaml", &env, false);
    let got: Vec<(u32, u32, &str)> = diags.iter().map(|d| (d.line, d.column, d.code)).collect();
    assert_eq!(
        got,
        vec![
            (3, 1, "unknown-field"),
            (7, 5, "unknown-field"),
            (12, 5, "unknown-field"),
            (17, 15, "unknown-step-kind"),
            (21, 9, "unknown-field"),
            (26, 9, "unknown-field"),
        ]
    );
    assert!(
        diags[1]
            .hint
            .as_deref()
            .unwrap()
            .starts_with("did you mean `url`?")
    );
}

/// Missing fields and values of the wrong type come all at once, each at its own node: a typed
/// error such as `kind: [dmf.export]` at its line, not at the next key's.
#[test]
fn missing_fields_and_wrong_types_come_in_one_pass_each_at_its_line() {
    let text = "runbook: t
version: 1.0.0
environments:
  fno: { kind: fno, url: \"https://fno.example.com\" }
defaults:
  retries: many
phases:
  - id: p
    steps:
      - id: a
        kind: dmf.export
        env: fno
      - kind: manual
        timeout: [1]
      - id: c
        kind: [dmf.export]
        env: fno
";
    let diags = validate(text, "one-pass.yaml", &env, false);
    let got: Vec<(u32, u32, &str)> = diags.iter().map(|d| (d.line, d.column, d.code)).collect();
    assert_eq!(
        got,
        vec![
            (6, 12, "invalid-type"),
            (10, 9, "missing-field"),
            (13, 9, "missing-field"),
            (14, 18, "invalid-type"),
            (16, 15, "invalid-type"),
        ],
        "{diags:#?}"
    );
    assert_eq!(diags[1].message, "missing field `definition_group`");
    assert_eq!(diags[2].message, "missing field `id`");
    assert!(
        diags[4].message.contains("expected one step kind"),
        "{}",
        diags[4].message
    );
}
