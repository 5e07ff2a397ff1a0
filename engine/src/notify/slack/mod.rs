//! Slack: an incoming webhook receiving Block Kit blocks (header, section, context) plus the
//! plain `text` Slack shows in notifications and where blocks cannot render.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::event::Event;
use super::text::truncate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub webhook_url: String,
}

pub fn payload(event: &Event) -> Value {
    json!({
        "text": truncate(&format!("{}: {}", event.title, event.message), 3000),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": truncate(&event.title, 150), "emoji": true}},
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&event.message, 3000)}},
            {"type": "context", "elements": [{
                "type": "mrkdwn",
                "text": format!("*{}* · {} · `{}`", event.severity.as_str(), event.category().as_str(), event.kind.as_str()),
            }]},
        ],
    })
}
