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
