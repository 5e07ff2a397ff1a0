//! Strava push subscriptions. The subscription handshake is a GET carrying `hub.mode`,
//! `hub.verify_token` and `hub.challenge`; the challenge is echoed as JSON once the verify token
//! matches. Events are not signed: they only name an athlete (`owner_id`) and an object, so
//! they become targeted syncs of that athlete's activities (the API drops unknown athletes),
//! and an athlete update with `authorized: "false"` is a deauthorization.

use super::ACTIVITIES;
use super::api::PushEvent;
use crate::providers::{
    ProviderSettings, WebhookError, WebhookReply, WebhookRequest, WebhookTarget,
};

/// Equal without revealing where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn handle(
    settings: &ProviderSettings,
    req: &WebhookRequest,
) -> Result<WebhookReply, WebhookError> {
    // Without a verify token there is no subscription this server could have made.
    let Some(expected) = settings.webhook_verify_token.as_deref() else {
        return Err(WebhookError::Unsupported);
    };
    if req.method.eq_ignore_ascii_case("GET") {
        return handshake(expected, req);
    }
    let event: PushEvent =
        serde_json::from_slice(&req.body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let owner = event.owner_id.to_string();
    let targets = match event.object_type.as_str() {
        "athlete" => {
            let revoked = event
                .updates
                .get("authorized")
                .is_some_and(|v| v.as_str() == Some("false") || v.as_bool() == Some(false));
            if revoked {
                vec![WebhookTarget::Deauthorized {
                    provider_user_id: owner,
                }]
            } else {
                Vec::new()
            }
        }
        // Create, update (title/type/privacy) and delete all mean: look at the list again.
        "activity" => vec![WebhookTarget::Sync {
            provider_user_id: owner,
            data_types: vec![ACTIVITIES.to_string()],
            range: None,
        }],
        _ => Vec::new(),
    };
    tracing::debug!(
        aspect = %event.aspect_type,
        object_id = event.object_id,
        subscription_id = ?event.subscription_id,
        event_time = ?event.event_time,
        "strava webhook event"
    );
    Ok(WebhookReply::Accepted {
        status: 200,
        targets,
    })
}

fn handshake(expected: &str, req: &WebhookRequest) -> Result<WebhookReply, WebhookError> {
    let (Some(mode), Some(token), Some(challenge)) = (
        req.query("hub.mode"),
        req.query("hub.verify_token"),
        req.query("hub.challenge"),
    ) else {
        return Err(WebhookError::Malformed(
            "hub.mode, hub.verify_token and hub.challenge are required".into(),
        ));
    };
    if mode != "subscribe" || !constant_time_eq(token.as_bytes(), expected.as_bytes()) {
        return Err(WebhookError::BadVerification { status: 403 });
    }
    Ok(WebhookReply::Handshake {
        status: 200,
        content_type: "application/json",
        body: serde_json::json!({ "hub.challenge": challenge }).to_string(),
    })
}
