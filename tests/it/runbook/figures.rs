#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `notify_targets` and the run's figures in a `notify` text (issue 21): an unknown figure is refused with
//! its line and the names that exist; a `notify` names a target that exists, through exactly one of `url`
//! and `to`; a literal target URL is warned about.

use cutover::runbook::{Diagnostic, validate};

fn runbook(targets: &str, notify: &str) -> String {
    format!(
        r#"runbook: figures
version: 1.0.0
environments:
  fno: {{ kind: fno, url: "https://contoso.operations.dynamics.com" }}
{targets}
phases:
  - id: p
    steps:
      - id: tell
        kind: notify
{notify}
"#
    )
}

const TARGETS: &str = "notify_targets:\n  oncall: { kind: teams, url: \"${HOOK}\", quiet: 30m }";

fn diags(text: &str) -> Vec<Diagnostic> {
    let env = |n: &str| (n == "HOOK").then(|| "https://example.webhook.office.com/x".to_owned());
    validate(text, "figures.yaml", &env, true)
}

fn errors(text: &str) -> Vec<Diagnostic> {
    diags(text).into_iter().filter(Diagnostic::is_error).collect()
}

#[test]
fn known_figures_validate() {
    let text = runbook(
        TARGETS,
        "        to: oncall\n        text: \"worst ${parity.worst} (${parity.worst_map}), ${errors.per_hour}/h, ${sample.differ} of ${sample.checked}, ${errors.total}, ${parity.drifting}, ${alerts.total}\"",
    );
    assert_eq!(errors(&text), Vec::<Diagnostic>::new());
}

#[test]
fn an_unknown_figure_is_refused_with_its_line() {
    let text = runbook(
        TARGETS,
        "        to: oncall\n        text: \"worst ${parity.wrost}\"",
    );
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].code, "invalid-variable");
    let line = text.lines().position(|l| l.contains("wrost")).unwrap() + 1;
    assert_eq!(e[0].line as usize, line, "{e:?}");
    assert!(e[0].message.contains("parity.wrost"), "{}", e[0].message);
    assert!(
        e[0].message.contains("parity.worst"),
        "the names that exist: {}",
        e[0].message
    );
}

#[test]
fn a_notify_names_a_known_target_through_exactly_one_of_url_and_to() {
    let e = errors(&runbook(TARGETS, "        to: pager\n        text: hi"));
    assert!(
        e.iter().any(|d| d.code == "unknown-notify-target"
            && d.message.contains("pager")
            && d.hint.as_deref() == Some("known: oncall")),
        "{e:?}"
    );
    let e = errors(&runbook(
        TARGETS,
        "        to: oncall\n        url: \"${HOOK}\"\n        text: hi",
    ));
    assert!(e.iter().any(|d| d.code == "conflicting-fields"), "{e:?}");
    let e = errors(&runbook(TARGETS, "        text: hi"));
    assert!(e.iter().any(|d| d.code == "conflicting-fields"), "{e:?}");
}

#[test]
fn a_literal_target_url_is_warned_about_and_a_zero_quiet_refused() {
    let d = diags(&runbook(
        "notify_targets:\n  oncall: { kind: webhook, url: \"https://example.webhook.office.com/abc\", quiet: 0s }",
        "        to: oncall\n        text: hi",
    ));
    assert!(
        d.iter().any(|d| d.code == "literal-webhook" && !d.is_error()),
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|d| d.code == "invalid-value" && d.message.contains("quiet")),
        "{d:?}"
    );
}
