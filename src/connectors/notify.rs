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
}
