#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Hostile YAML is refused cleanly with a specific code, never a crash: billion laughs, nesting 10,000
//! deep, a 50 MB file, binary garbage, an empty file, tab indentation.

use cutover::runbook::{Diagnostic, validate};

fn codes(text: &str) -> Vec<Diagnostic> {
    validate(text, "hostile.yaml", &|_: &str| None, false)
}

fn first_code(text: &str) -> &'static str {
    let d = codes(text);
    assert!(!d.is_empty(), "no diagnostic");
    assert!(d[0].line >= 1 && d[0].column >= 1, "{:?}", d[0]);
    d[0].code
}

#[test]
fn billion_laughs_is_refused() {
    let mut text = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*l{}", i - 1); 9].join(", ");
        text.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
    }
    assert_eq!(first_code(&text), "alias-limit");
}

#[test]
fn nesting_ten_thousand_deep_is_refused() {
    let compact = format!("runbook:\n{}x\n", "- ".repeat(10_000));
    assert_eq!(first_code(&compact), "too-deep");
    // Indented block mappings (1,000 deep keeps the file under the size cap).
    let block: String = (0..1_000).map(|i| format!("{}a:\n", "  ".repeat(i))).collect();
    assert_eq!(first_code(&block), "too-deep");
    let flow = format!("runbook: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(first_code(&flow), "too-deep");
    let maps = format!("runbook: {}1{}\n", "{a: ".repeat(10_000), "}".repeat(10_000));
    assert_eq!(first_code(&maps), "too-deep");
}

#[test]
fn a_fifty_megabyte_file_is_refused_before_parsing() {
    let text = format!("runbook: x\ndescription: {}\n", "a".repeat(50 * 1024 * 1024));
    let d = codes(&text);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].code, "file-too-large");
}

#[test]
fn binary_garbage_is_a_syntax_error_at_its_position() {
    let text =
        String::from_utf8_lossy(&[b'a', b':', b' ', 0, 1, 2, 0xff, 0xfe, b'\n', 0x1b, b'[']).into_owned();
    let d = codes(&text);
    assert_eq!(d[0].code, "yaml-syntax");
    assert_eq!((d[0].line, d[0].column), (1, 4));
}

#[test]
fn empty_and_comment_only_files_are_empty() {
    for text in ["", "\n\n", "   \n# only a comment\n"] {
        assert_eq!(first_code(text), "empty-file", "{text:?}");
    }
}

#[test]
fn tab_indentation_is_named_at_the_tab() {
    let d = codes("runbook: x\nenvironments:\n\tfno:\n\t\tkind: fno\n");
    assert_eq!((d[0].code, d[0].line, d[0].column), ("tab-indentation", 3, 1));
}

/// A runbook with one phase of `steps` (YAML lines indented for a step list) and a secret variable.
fn with_steps(steps: &str) -> String {
    format!(
        "runbook: hostile\nversion: 1.0.0\nenvironments:\n  fno: {{ kind: fno, url: https://fno.example.com, auth: {{ tenant: t, client_id: c, client_secret: \"${{FNO_SECRET}}\" }} }}\nphases:\n  - id: p\n    steps:\n{steps}"
    )
}

fn diags_with(text: &str, secret: &str) -> Vec<Diagnostic> {
    let s = secret.to_owned();
    validate(
        text,
        "hostile.yaml",
        &move |n: &str| (n == "FNO_SECRET").then(|| s.clone()),
        false,
    )
}

#[test]
fn interpolation_inside_a_shell_command_is_refused_with_the_env_var_form() {
    let text = with_steps(
        "      - { id: get, kind: http, env: fno, path: /x, capture: { v: /v } }\n      - id: sh\n        kind: shell\n        run: echo ${steps.get.v} ${run.operator}\n",
    );
    let d = diags_with(&text, "a-long-enough-secret-value");
    let refused: Vec<&Diagnostic> = d.iter().filter(|d| d.code == "shell-interpolation").collect();
    assert_eq!(refused.len(), 2, "{d:?}");
    assert_eq!(refused[0].line, 11, "{:?}", refused[0]);
    let hints: String = refused.iter().filter_map(|d| d.hint.clone()).collect();
    assert!(
        hints.contains("\"$CUTOVER_STEP_GET_V\"") && hints.contains("\"$CUTOVER_RUN_OPERATOR\""),
        "{hints}"
    );
    // A variable the command would not inherit is named too; `pass_env` makes it fine.
    let env = with_steps("      - { id: sh, kind: shell, run: \"deploy --token ${DEPLOY_TOKEN}\" }\n");
    assert!(
        diags_with(&env, "a-long-enough-secret-value")
            .iter()
            .any(|d| d.code == "shell-env")
    );
    let passed = with_steps(
        "      - { id: sh, kind: shell, run: \"deploy --token ${DEPLOY_TOKEN}\", pass_env: [DEPLOY_TOKEN] }\n",
    );
    assert!(
        !diags_with(&passed, "a-long-enough-secret-value")
            .iter()
            .any(|d| d.code == "shell-env")
    );
}

#[test]
fn a_package_file_must_stay_inside_the_runbook_folder() {
    for (bad, why) in [
        ("/etc/shadow", "absolute"),
        ("../../home/ana/.ssh/id_rsa", "`..`"),
        ("packages/../../x.zip", "`..`"),
        ("${steps.get.name}", "`${...}`"),
    ] {
        let text = with_steps(&format!(
            "      - {{ id: imp, kind: dmf.import, env: fno, definition_group: G, package_file: \"{bad}\" }}\n"
        ));
        let d = diags_with(&text, "a-long-enough-secret-value");
        let hit = d.iter().find(|d| d.code == "invalid-path");
        let hit = hit.unwrap_or_else(|| panic!("{bad}: {d:?}"));
        assert_eq!(hit.line, 8, "{hit:?}");
        assert!(hit.message.contains(why), "{bad}: {}", hit.message);
    }
}

#[test]
fn a_short_secret_gets_a_warning() {
    let text = with_steps("      - { id: w, kind: wait, for: 1m }\n");
    let d = diags_with(&text, "short-pw");
    let w = d
        .iter()
        .find(|d| d.code == "weak-secret")
        .expect("a weak-secret warning");
    assert_eq!(w.severity, cutover::runbook::Severity::Warning);
    assert!(w.message.contains("8 characters"), "{}", w.message);
    assert!(
        !w.message.contains("short-pw"),
        "the warning must not print the secret"
    );
    assert!(
        !diags_with(&text, "twelve-chars")
            .iter()
            .any(|d| d.code == "weak-secret")
    );
}

#[test]
fn response_and_page_caps_are_checked() {
    let text = "runbook: caps\nversion: 1.0.0\ndefaults: { max_response: 12 parsecs, max_pages: 0 }\nenvironments:\n  fno: { kind: fno, url: https://fno.example.com }\nphases:\n  - id: p\n    steps:\n      - { id: w, kind: wait, for: 1m }\n";
    let d = codes(text);
    assert_eq!(d.iter().filter(|d| d.code == "invalid-value").count(), 2, "{d:?}");
    let ok = text
        .replace("12 parsecs", "64MiB")
        .replace("max_pages: 0", "max_pages: 500");
    assert!(
        !codes(&ok).iter().any(|d| d.code == "invalid-value"),
        "{:?}",
        codes(&ok)
    );
}
