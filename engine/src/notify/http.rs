//! One outbound HTTP attempt to a guarded target: the connection goes to the addresses the
//! SSRF guard approved (never a fresh DNS answer), redirects are not followed (a redirect could
//! point anywhere), and the outcome is classified once for channels and webhooks alike.

use std::time::{Duration, Instant};

use reqwest::redirect::Policy;

use super::ssrf::Target;
use crate::providers::http::install_crypto_provider;

/// Request headers as (name, value).
pub type Headers = Vec<(&'static str, String)>;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub status: Option<u16>,
    pub error: Option<String>,
    pub latency: Duration,
    /// Worth retrying (timeouts, connection failures, 408, 429, 5xx).
    pub transient: bool,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }

    /// A failure before any request left (bad config, refused target).
    pub fn refused(error: impl Into<String>) -> Self {
        Attempt {
            status: None,
            error: Some(error.into()),
            latency: Duration::ZERO,
            transient: false,
        }
    }

    pub fn from_status(status: u16, latency: Duration, body_hint: &str) -> Self {
        let ok = (200..300).contains(&status);
        Attempt {
            status: Some(status),
            error: (!ok).then(|| {
                let hint: String = body_hint.chars().take(200).collect();
                format!(
                    "HTTP {status}{}{hint}",
                    if hint.is_empty() { "" } else { ": " }
                )
            }),
            latency,
            transient: status == 408 || status == 429 || status >= 500,
        }
    }
}

/// POSTs `body` with `headers` to `target`, within `timeout`.
pub async fn post(
    target: &Target,
    headers: &[(&str, String)],
    body: Vec<u8>,
    timeout: Duration,
) -> Attempt {
    install_crypto_provider();
    let started = Instant::now();
    let client = match reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("vitasync/", env!("CARGO_PKG_VERSION")))
        .resolve_to_addrs(&target.host, &target.addrs)
        .build()
    {
        Ok(c) => c,
        Err(e) => return Attempt::refused(format!("HTTP client: {e}")),
    };
    let mut req = client.post(target.url.clone()).body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    match req.send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let text = if (200..300).contains(&status) {
                String::new()
            } else {
                res.text().await.unwrap_or_default()
            };
            Attempt::from_status(status, started.elapsed(), &text)
        }
        Err(e) => Attempt {
            status: None,
            error: Some(if e.is_timeout() {
                format!("timed out after {} ms", timeout.as_millis())
            } else if e.is_connect() {
                "connection failed".to_string()
            } else {
                format!("request failed: {e}")
            }),
            latency: started.elapsed(),
            transient: true,
        },
    }
}
