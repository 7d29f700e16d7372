//! Alerts that reach people (issue 21): `notify_targets` get a `monitor`'s error-rate alert once (not every
//! tick), then its all-clear; a webhook that fails is retried, journaled, shown as an alert, and the run
//! carries on; the card carries the figures (map, counts, errors per hour, by category); a `notify` step
//! names a target and uses the run's figures. The real engine (`start_engine`) against the simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use cutover::engine::event::{Event, RunOutcome, Severity};
use cutover::engine::runner::{RunOptions, SimTarget, start_engine};
use cutover::engine::{Envelope, RunEnd};
use serde_json::Value;

use crate::support::engine::{count, events, fixture};
use crate::support::exec::{SECRET, environments};

/// One map, running from the start, every change it carries failing while `live` writes.
fn scenario(live: &str, webhook: &str) -> String {
    format!(
        r#"
name: alerting
seed: 5
time_scale: 600
companies: [USMF]
default_company: USMF
entities:
  fno:
    CustomersV3: {{ key: CustomerAccount, rows: {{ USMF: 40 }}, fields: {{ OrganizationName: name }} }}
  dataverse:
    accounts: {{ key: accountnumber }}
maps:
  - name: customers
    source: CustomersV3
    target: accounts
    key: {{ source: CustomerAccount, target: accountnumber }}
    fields: {{ OrganizationName: name }}
    rate: 400
    live_fail_every: 1
    message: "Plug-in DualWrite.PostCreate failed: the record could not be written."
    initial: {{ status: running, preloaded: true }}
dual_write: {{ lag: 5s, request_delay: 1s }}
{live}
{webhook}
"#
    )
}

fn runbook(steps: &str) -> String {
    format!(
        r#"runbook: alerting
version: 1.0.0
{}
maps:
  customers: {{ source: "fno:CustomersV3", target: "dataverse:accounts" }}
notify_targets:
  oncall: {{ kind: teams, url: "${{HOOK_URL}}", quiet: 10m }}
phases:
  - id: watch
    steps:
{steps}
"#,
        environments(true)
    )
}

/// Live failures for the first 15 simulated minutes, then none.
const FAILING_15M: &str =
    "live_writes:\n  - { side: fno, entity: CustomersV3, creates_per_hour: 240, duration: 15m }";
const MONITOR: &str = "      - { id: mon, kind: monitor, every: 5m, for: 45m, maps: [customers], alert: { errors_per_hour: 10 } }";

async fn run(scenario: &str, runbook: &str) -> (RunEnd, Vec<Envelope>, Value) {
    run_with(scenario, runbook, false).await
}

/// Interactive: every question is answered (approved) once the webhook has a card about it.
async fn run_with(scenario: &str, runbook: &str, interactive: bool) -> (RunEnd, Vec<Envelope>, Value) {
    let s = cutover::sim::start(
        cutover::sim::Scenario::from_yaml(scenario).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let f = fixture(runbook);
    let url = s.url();
    let opts = RunOptions {
        runbook: Some(f.runbook.clone()),
        journal: f.journal.clone(),
        operator: "tester".into(),
        auto_approve: (!interactive).then(|| cutover::engine::scheduler::operator::AutoApprove {
            operator: "tester".into(),
            reason: "test".into(),
        }),
        interactive,
        sim: SimTarget::Url(url.clone()),
        accept_changed_runbook: false,
        accept_inserted_steps: Vec::new(),
        take_over: true,
        new_run: false,
        resume_only: false,
        vars: Arc::new(move |n: &str| match n {
            "TEST_SECRET" => Some(SECRET.to_owned()),
            "HOOK_URL" => Some(format!("{url}/_sim/webhook?code=hook-key-4711")),
            _ => None,
        }),
        follow_delay: None,
    };
    let (handle, _, mut sub) = start_engine(opts).await.unwrap();
    let tx = handle.commands.clone();
    let mut done = handle.done;
    let end = loop {
        tokio::select! {
            Some(env) = sub.recv() => {
                if let Event::AwaitingOperator { step, .. } = &env.event {
                    // The operator answers only once the channel was told the decision is waiting.
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
                    loop {
                        let cards = webhook(&s.url()).await;
                        if cards["cards"].as_array().unwrap().iter().any(|c| title(c).starts_with("Waiting for a decision")) {
                            break;
                        }
                        assert!(std::time::Instant::now() < deadline, "no card about the waiting decision");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    let cmd = cutover::engine::driver::Command::new(
                        cutover::engine::event::OperatorAction::Approve,
                        step.clone(),
                        "alice",
                    );
                    tx.send(cmd).await.unwrap();
                }
            }
            end = &mut done => break end.unwrap(),
        }
    };
    let (_, evs) = events(&f.journal);
    let cards: Value = cutover::connectors::net::client()
        .unwrap()
        .get(format!("{}/_sim/webhook", s.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let raw = std::fs::read(&f.journal).unwrap();
    assert!(
        !raw.windows(13).any(|w| w == b"hook-key-4711"),
        "the webhook's key is never journaled"
    );
    (end, evs, cards)
}

async fn webhook(url: &str) -> Value {
    cutover::connectors::net::client()
        .unwrap()
        .get(format!("{url}/_sim/webhook"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The facts of a Teams card, as (title, value).
fn facts(card: &Value) -> Vec<(String, String)> {
    card["attachments"][0]["content"]["body"][2]["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["title"].as_str().unwrap().to_owned(),
                f["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn title(card: &Value) -> String {
    card["attachments"][0]["content"]["body"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The run's alerts (with their figures) and warnings, one a line with the time it was journaled: what a
/// failed assertion about alerts prints.
fn timeline(evs: &[Envelope]) -> String {
    evs.iter()
        .filter_map(|e| match &e.event {
            Event::Alert { message, subject, .. } => Some(format!(
                "{} alert: {message} {:?}",
                e.at.format("%H:%M:%S%.3f"),
                subject.as_ref().map(|s| &s.facts)
            )),
            Event::Log { level, message, .. } if *level != cutover::engine::event::LogLevel::Info => {
                Some(format!("{} log: {message}", e.at.format("%H:%M:%S%.3f")))
            }
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn rate_alerts(evs: &[Envelope], clear: bool) -> usize {
    count(evs, |e| {
        matches!(e, Event::Alert { subject: Some(s), map: Some(m), .. }
            if s.kind == "errors_per_hour" && m == "customers" && s.clear == clear)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_rate_alert_reaches_the_webhook_once_then_an_all_clear_with_the_figures() {
    let steps = format!(
        "{MONITOR}\n      - {{ id: count, kind: parity, maps: all, tolerance: 1000 }}\n      - {{ id: summary, kind: notify, to: oncall, text: \"worst drift ${{parity.worst}} on ${{parity.worst_map}}; ${{errors.total}} errors; ${{alerts.total}} alerts\" }}"
    );
    let (end, evs, hook) = run(&scenario(FAILING_15M, ""), &runbook(&steps)).await;
    assert_eq!(end, RunEnd::Finished(RunOutcome::Succeeded), "{end:?}");
    assert!(
        rate_alerts(&evs, false) >= 2,
        "the rate stays above the limit for several ticks: {}",
        rate_alerts(&evs, false)
    );
    assert_eq!(
        rate_alerts(&evs, true),
        1,
        "one all-clear when the failures stop; the alerts and logs in order:\n{}",
        timeline(&evs)
    );
    let cards = hook["cards"].as_array().unwrap();
    let about_customers: Vec<&Value> = cards
        .iter()
        .filter(|c| facts(c).contains(&("Map".into(), "customers".into())))
        .collect();
    assert_eq!(
        about_customers.len(),
        2,
        "one alert and one all-clear, not one per tick: {cards:#?}"
    );
    let (alert, clear) = (about_customers[0], about_customers[1]);
    assert!(
        title(alert).starts_with("Critical alert: errors per hour"),
        "{}",
        title(alert)
    );
    assert!(title(clear).starts_with("All clear"), "{}", title(clear));
    assert_eq!(alert["type"], "message");
    assert_eq!(
        alert["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let f = facts(alert);
    let fact = |name: &str| f.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let per_hour: u64 = fact("Errors per hour").unwrap().parse().unwrap();
    assert!(per_hour > 10, "{f:?}");
    assert!(fact("New errors").unwrap().ends_with("in 300 s"), "{f:?}");
    assert!(
        fact("Errors in all").unwrap().parse::<u64>().unwrap() > 0,
        "{f:?}"
    );
    assert!(
        f.iter().any(|(k, _)| k.starts_with("Errors: ")),
        "by category: {f:?}"
    );
    assert!(fact("Run").unwrap().starts_with("alerting "), "{f:?}");
    // Every delivery journaled with its answer.
    assert_eq!(
        count(&evs, |e| matches!(
            e,
            Event::Notified {
                delivered: true,
                status: Some(200),
                ..
            }
        )),
        cards.len()
    );
    // The notify step's card: the figures interpolated, and as facts.
    let summary = cards
        .iter()
        .find(|c| title(c) == "alerting: summary")
        .expect("the summary card");
    let text = summary["attachments"][0]["content"]["body"][1]["text"]
        .as_str()
        .unwrap();
    assert!(text.starts_with("worst drift "), "{text}");
    assert!(!text.contains("${") && !text.contains("n/a"), "{text}");
    assert!(text.contains(" on customers"), "{text}");
    assert!(
        facts(summary).iter().any(|(k, _)| k == "errors.total"),
        "{:?}",
        facts(summary)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_webhook_is_retried_journaled_and_alerted_while_the_run_carries_on() {
    let (end, evs, hook) = run(
        &scenario(FAILING_15M, "webhook: { status: 500 }"),
        &runbook(MONITOR),
    )
    .await;
    assert_eq!(end, RunEnd::Finished(RunOutcome::Succeeded), "{end:?}");
    assert_eq!(hook["cards"].as_array().unwrap().len(), 0);
    let failed = count(
        &evs,
        |e| matches!(e, Event::Notified { delivered: false, status: Some(500), target, .. } if target == "oncall"),
    );
    let notified: Vec<_> = evs
        .iter()
        .filter(|e| matches!(e.event, Event::Notified { .. }))
        .map(|e| format!("{:?}", e.event))
        .collect();
    assert!(
        failed >= 3,
        "every attempt journaled with its status: {failed} {notified:#?}"
    );
    assert_eq!(hook["attempts"].as_u64().unwrap(), u64::try_from(failed).unwrap());
    assert!(
        count(
            &evs,
            |e| matches!(e, Event::Alert { severity: Severity::Warning, subject: Some(s), message, .. }
            if s.kind == "notify" && message.contains("oncall") && message.contains("HTTP 500") && message.contains("carries on"))
        ) >= 1,
        "the failing webhook is itself an alert on the console"
    );
    // The monitor ran every tick regardless.
    let ticks = evs
        .iter()
        .filter_map(|e| match &e.event {
            Event::StepProgress { step, done, .. } if step.as_str() == "mon" => Some(*done),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    assert!(ticks >= 9, "{ticks} ticks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_webhook_delays_no_step() {
    let steps = "      - { id: w, kind: wait, for: 1m }\n      - { id: hello, kind: notify, to: oncall, text: \"hello\" }\n      - { id: after, kind: wait, for: 1m }";
    let started = std::time::Instant::now();
    let (end, evs, hook) = run(&scenario("", "webhook: { delay_ms: 1500 }"), &runbook(steps)).await;
    assert_eq!(end, RunEnd::Finished(RunOutcome::Succeeded), "{end:?}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500));
    assert_eq!(hook["cards"].as_array().unwrap().len(), 1);
    assert_eq!(
        count(
            &evs,
            |e| matches!(e, Event::Notified { delivered: true, key, .. } if key == "step:hello")
        ),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_waiting_longer_than_decision_after_is_sent_then_cleared_when_taken() {
    let text = runbook(
        "      - { id: sign-off, kind: manual, title: Finance signs off, instructions: Check the trial balance }",
    )
    .replace("quiet: 10m }", "quiet: 10m, decision_after: 5m }");
    let (end, evs, hook) = run_with(&scenario("", ""), &text, true).await;
    assert_eq!(end, RunEnd::Finished(RunOutcome::Succeeded), "{end:?}");
    let titles: Vec<String> = hook["cards"].as_array().unwrap().iter().map(title).collect();
    assert_eq!(
        titles,
        [
            "Waiting for a decision on sign-off",
            "All clear: sign-off decided"
        ],
        "sent once after decision_after, cleared when taken"
    );
    let asked = evs
        .iter()
        .find(|e| matches!(e.event, Event::AwaitingOperator { .. }))
        .unwrap()
        .at;
    let sent = evs
        .iter()
        .find(|e| matches!(&e.event, Event::Notified { key, delivered: true, .. } if key.starts_with("decision_waiting")))
        .unwrap()
        .at;
    // 5 simulated minutes at 600x is half a real second.
    assert!(
        (sent - asked).num_milliseconds() >= 450,
        "sent only after decision_after"
    );
}
