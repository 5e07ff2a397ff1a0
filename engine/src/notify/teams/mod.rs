//! Microsoft Teams: a Workflows webhook receiving a message whose one attachment is an
//! Adaptive Card (the format the "post to a channel when a webhook request is received" flow
//! expects).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::event::{Event, Severity};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub webhook_url: String,
}

pub fn payload(event: &Event) -> Value {
    let colour = match event.severity {
        Severity::Info => "Accent",
        Severity::Warning => "Warning",
        Severity::Critical => "Attention",
    };
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
                    {"type": "TextBlock", "text": event.title, "weight": "Bolder", "size": "Medium", "color": colour, "wrap": true},
                    {"type": "TextBlock", "text": event.message, "wrap": true},
                    {"type": "FactSet", "facts": [
                        {"title": "Severity", "value": event.severity.as_str()},
                        {"title": "Category", "value": event.category().as_str()},
                        {"title": "Event", "value": event.kind.as_str()},
                    ]},
                ],
            },
        }],
    })
}
