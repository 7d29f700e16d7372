//! The `notify` step: posts a Teams-compatible card to a webhook URL (an Office 365 connector MessageCard, or an
//! Adaptive Card wrapped in a `message` for Workflows webhooks). A post is not idempotent (a repeat shows twice in
//! the channel), so only provably-unsent failures (connect errors, 429) are retried.

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Result;
use super::transport::{Idempotency, Request, Transport};

/// The card format the webhook expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardFormat {
    MessageCard,
    Adaptive,
}

/// The JSON body for a card.
pub fn card(format: CardFormat, title: &str, text: &str) -> Value {
    match format {
        CardFormat::MessageCard => json!({
            "@type": "MessageCard", "@context": "https://schema.org/extensions",
            "summary": title, "themeColor": "0076D7", "title": title, "text": text
        }),
        CardFormat::Adaptive => json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.4",
                    "body": [
                        {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": true},
                        {"type": "TextBlock", "text": text, "wrap": true}
                    ]
                }
            }]
        }),
    }
}

/// One notification for a `notify_targets` entry: what it is about and its figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `firing`, `clear`, `reminder` or `message`.
    pub state: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub title: String,
    pub text: String,
    /// The alert's kind (`errors_per_hour`, `drift`, ...), `message` for a `notify` step.
    pub kind: String,
    pub map: Option<String>,
    pub company: Option<String>,
    /// The figures, in order (name, value).
    pub facts: Vec<(String, String)>,
    pub runbook: String,
    pub run_id: String,
}

/// A Teams card for a notice: an Adaptive Card (1.4) in a `message` with one attachment, the payload both Teams
/// incoming webhooks and the Workflows "when a Teams webhook request is received" trigger accept. Link-free: no
/// actions and no URLs; the figures are a `FactSet`.
pub fn teams_card(n: &Notice) -> Value {
    let color = match (n.state.as_str(), n.severity.as_str()) {
        ("clear", _) => "Good",
        (_, "critical") => "Attention",
        (_, "warning") => "Warning",
        _ => "Default",
    };
    let mut facts: Vec<Value> = Vec::new();
    if let Some(m) = &n.map {
        facts.push(json!({"title": "Map", "value": m}));
    }
    if let Some(c) = &n.company {
        facts.push(json!({"title": "Company", "value": c}));
    }
    facts.extend(n.facts.iter().map(|(k, v)| json!({"title": k, "value": v})));
    facts.push(json!({"title": "Run", "value": format!("{} {}", n.runbook, n.run_id)}));
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": n.title, "weight": "Bolder", "size": "Medium", "color": color, "wrap": true},
                    {"type": "TextBlock", "text": n.text, "wrap": true},
                    {"type": "FactSet", "facts": facts}
                ]
            }
        }]
    })
}

/// The plain JSON a generic `webhook` target gets.
pub fn webhook_json(n: &Notice) -> Value {
    let facts: serde_json::Map<String, Value> = n
        .facts
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "source": "cutover",
        "runbook": n.runbook,
        "run_id": n.run_id,
        "state": n.state,
        "severity": n.severity,
        "kind": n.kind,
        "map": n.map,
        "company": n.company,
        "title": n.title,
        "text": n.text,
        "facts": facts,
    })
}

/// Posts `body` and returns the status of the first answer, whatever it is (an answered post is not repeated
/// here: the caller journals each attempt and decides); only a post provably never sent is retried.
pub async fn post_once(t: &Transport, url: &str, body: Value, cancel: &CancellationToken) -> Result<u16> {
    let req = Request::post("notify", url)
        .json(body)
        .idempotency(Idempotency::Unsafe)
        .unauthenticated()
        .status_is_final();
    Ok(t.send_any(req, cancel).await?.status)
}

/// Posts the card to `url` through `t` (a transport whose base URL is the webhook, built without a token).
pub async fn post(
    t: &Transport,
    url: &str,
    format: CardFormat,
    title: &str,
    text: &str,
    cancel: &CancellationToken,
) -> Result<u16> {
    let req = Request::post("notify", url)
        .json(card(format, title, text))
        .idempotency(Idempotency::Unsafe)
        .unauthenticated();
    Ok(t.send(req, cancel).await?.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_carry_title_and_text() {
        let m = card(CardFormat::MessageCard, "Wave 2 done", "12 maps running");
        assert_eq!(m["@type"], "MessageCard");
        assert_eq!(m["text"], "12 maps running");
        let a = card(CardFormat::Adaptive, "T", "body");
        assert_eq!(a["attachments"][0]["content"]["body"][1]["text"], "body");
    }

    #[test]
    fn a_teams_notice_carries_its_figures_and_no_link() {
        let n = Notice {
            state: "firing".into(),
            severity: "critical".into(),
            title: "t".into(),
            text: "x".into(),
            kind: "drift".into(),
            map: Some("customers".into()),
            company: Some("usmf".into()),
            facts: vec![("Errors per hour".into(), "36".into())],
            runbook: "rb".into(),
            run_id: "r".into(),
        };
        let c = teams_card(&n);
        let facts = &c["attachments"][0]["content"]["body"][2]["facts"];
        assert_eq!(facts[0]["value"], "customers");
        assert_eq!(facts[1]["value"], "usmf");
        assert_eq!(facts[2]["title"], "Errors per hour");
        assert!(!c.to_string().contains("http://") || c.to_string().matches("http").count() == 1);
        assert_eq!(webhook_json(&n)["facts"]["Errors per hour"], "36");
    }
}
