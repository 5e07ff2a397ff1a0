//! ntfy: the message is the body of a POST to the topic URL; title, priority and tags travel
//! as headers, with an optional access token.

use serde::{Deserialize, Serialize};

use super::event::{Event, Severity};
use super::http::Headers;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub topic_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// 1 (min) to 5 (max); unset: from the event's severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
}

/// Header values must be visible ASCII; anything else becomes `?`.
fn header_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// (headers, body) of the publish request.
pub fn request(config: &Config, event: &Event) -> (Headers, Vec<u8>) {
    let priority = config.priority.unwrap_or(match event.severity {
        Severity::Info => 3,
        Severity::Warning => 4,
        Severity::Critical => 5,
    });
    let mut headers = vec![
        ("Title", header_text(&event.title)),
        ("Priority", priority.to_string()),
        (
            "Tags",
            format!(
                "{},{},{}",
                event.severity.as_str(),
                event.category().as_str(),
                event.kind.as_str()
            ),
        ),
        ("Content-Type", "text/plain; charset=utf-8".to_string()),
    ];
    if let Some(t) = &config.token {
        headers.push(("Authorization", format!("Bearer {t}")));
    }
    (headers, event.message.clone().into_bytes())
}
