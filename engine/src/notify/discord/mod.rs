//! Discord: an incoming webhook receiving one embed, coloured by severity and cut to Discord's
//! limits (title 256, description 4096, footer 2048, all text of an embed 6000 characters).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::event::{Event, Severity};
use super::text::truncate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub webhook_url: String,
}

pub fn colour(severity: Severity) -> u32 {
    match severity {
        Severity::Info => 0x3498db,
        Severity::Warning => 0xf1c40f,
        Severity::Critical => 0xe74c3c,
    }
}

pub fn payload(event: &Event) -> Value {
    let title = truncate(&event.title, 256);
    let footer = truncate(event.kind.as_str(), 2048);
    // Title, footer and the two short fields leave well over 4096 of the 6000 total.
    let description = truncate(&event.message, 4096);
    json!({
        "username": "VitaSync",
        "embeds": [{
            "title": title,
            "description": description,
            "color": colour(event.severity),
            "timestamp": event.created_at.to_rfc3339(),
            "footer": {"text": footer},
            "fields": [
                {"name": "Severity", "value": event.severity.as_str(), "inline": true},
                {"name": "Category", "value": event.category().as_str(), "inline": true},
            ],
        }],
        "allowed_mentions": {"parse": []},
    })
}
