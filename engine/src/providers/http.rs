//! The HTTP client every provider calls through. It owns what all providers share:
//! classification of failures into [`ProviderError`], bounded retries of transient failures
//! with exponential backoff, and rate-limit budgets — one per provider application and, where
//! the provider limits per user, one per provider account — fed from the provider's headers.
//!
//! A 429 pauses its budget until `Retry-After`; every later call on that budget, from any
//! connection, waits for the pause (or fails fast with `RateLimited` when the pause is longer
//! than a sync should block, so the connection's actor can reschedule instead).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::ProviderError;

/// Installs the process-wide TLS crypto provider (ring) once; reqwest is built without one so
/// the binary carries a single implementation.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// How hard to try before giving up on a call.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts for 5xx, timeouts and connection failures (1 = no retry).
    pub attempts: u32,
    /// First backoff; doubled after each failure.
    pub backoff: Duration,
    /// Longest rate-limit pause a call waits out in place; longer pauses fail with
    /// `RateLimited` so the caller can reschedule.
    pub max_inline_wait: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            backoff: Duration::from_millis(500),
            max_inline_wait: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
        }
    }
}

/// What a provider's rate-limit headers said about a budget.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RateInfo {
    /// Calls left in the current window.
    pub remaining: Option<u64>,
    /// Time until the window resets.
    pub reset_after: Option<Duration>,
}

/// Reads a provider's rate-limit headers.
pub type RateHeaderParser = fn(&HeaderMap) -> Option<RateInfo>;

#[derive(Debug, Default, Clone, Copy)]
struct BudgetState {
    paused_until: Option<Instant>,
}

/// Named budgets shared by every connection of this process.
#[derive(Debug, Default)]
pub struct RateBudgets {
    inner: Mutex<HashMap<String, BudgetState>>,
}

impl RateBudgets {
    fn wait_needed(&self, key: &str, now: Instant) -> Option<Duration> {
        let map = self.inner.lock().expect("budget lock");
        map.get(key)
            .and_then(|b| b.paused_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// Pauses `key` until at least `until`.
    pub fn pause(&self, key: &str, until: Instant) {
        let mut map = self.inner.lock().expect("budget lock");
        let b = map.entry(key.to_string()).or_default();
        if b.paused_until.is_none_or(|u| u < until) {
            b.paused_until = Some(until);
        }
    }

    /// How long `key` is still paused, if at all.
    pub fn paused_for(&self, key: &str) -> Option<Duration> {
        self.wait_needed(key, Instant::now())
    }
}

/// The budgets one call draws on.
#[derive(Debug, Clone)]
pub struct Budget {
    /// The application budget, e.g. `strava`.
    pub app: String,
    /// The per-user budget, e.g. `fitbit:user:ABC123`, for providers that limit per user.
    pub user: Option<String>,
    pub headers: Option<RateHeaderParser>,
}

impl Budget {
    pub fn app(provider: &str) -> Self {
        Budget {
            app: provider.to_string(),
            user: None,
            headers: None,
        }
    }

    pub fn per_user(provider: &str, account: &str) -> Self {
        Budget {
            app: provider.to_string(),
            user: Some(format!("{provider}:user:{account}")),
            headers: None,
        }
    }

    pub fn with_headers(mut self, parser: RateHeaderParser) -> Self {
        self.headers = Some(parser);
        self
    }

    fn keys(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.app.as_str()).chain(self.user.as_deref())
    }

    /// The key a header-reported exhaustion pauses: the user's budget when there is one.
    fn narrowest(&self) -> &str {
        self.user.as_deref().unwrap_or(&self.app)
    }
}

/// A successful response.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl Response {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ProviderError> {
        parse_json(&self.body)
    }
}

/// Decodes a provider body, naming where it broke (truncated and malformed JSON alike).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ProviderError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ProviderError::Malformed(format!("at {path}: {}", e.into_inner()))
    })
}

/// How one attempt failed, as far as retrying is concerned.
enum Attempt {
    /// 5xx, 408, timeouts, dropped connections: retry with backoff.
    Transient(ProviderError),
    /// 429: the budget is paused for this long.
    RateLimited(Duration),
    /// Anything retrying cannot fix.
    Final(ProviderError),
}

/// Shared HTTP machinery for providers. Cheap to clone.
#[derive(Clone)]
pub struct ProviderHttp {
    client: reqwest::Client,
    budgets: Arc<RateBudgets>,
    policy: RetryPolicy,
}

impl ProviderHttp {
    pub fn new(policy: RetryPolicy) -> Self {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("vitasync/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client configuration is static");
        ProviderHttp {
            client,
            budgets: Arc::new(RateBudgets::default()),
            policy,
        }
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn budgets(&self) -> &RateBudgets {
        &self.budgets
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// GET `url` with a bearer token and decode the JSON body.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        budget: &Budget,
        url: &str,
        token: &str,
        query: &[(&str, String)],
    ) -> Result<T, ProviderError> {
        self.send(budget, |c| c.get(url).bearer_auth(token).query(query))
            .await?
            .json()
    }

    /// Sends the request `build` makes, with budgets, retries and error classification.
    /// `build` is called once per attempt.
    pub async fn send(
        &self,
        budget: &Budget,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, ProviderError> {
        let mut backoff = self.policy.backoff;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.wait_for_budget(budget).await?;
            match self.attempt(budget, &build).await {
                Ok(resp) => return Ok(resp),
                Err(Attempt::Final(err)) => return Err(err),
                Err(Attempt::Transient(err)) => {
                    if attempt >= self.policy.attempts {
                        return Err(err);
                    }
                    tracing::debug!(error = %err, attempt, "provider call failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(Attempt::RateLimited(wait)) => {
                    // The budget is paused; the next turn waits it out in `wait_for_budget`.
                    if wait > self.policy.max_inline_wait || attempt >= self.policy.attempts + 2 {
                        return Err(ProviderError::RateLimited {
                            retry_after_secs: wait.as_secs().max(1),
                        });
                    }
                }
            }
        }
    }

    /// One request, its rate-limit bookkeeping and the classification of its outcome.
    async fn attempt(
        &self,
        budget: &Budget,
        build: &impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, Attempt> {
        let resp = build(&self.client)
            .send()
            .await
            .map_err(|e| Attempt::Transient(ProviderError::Transient(describe(&e))))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        if let Some(info) = budget.headers.and_then(|p| p(&headers))
            && info.remaining == Some(0)
        {
            let reset = info.reset_after.unwrap_or(Duration::from_secs(60));
            self.budgets
                .pause(budget.narrowest(), Instant::now() + reset);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = retry_after(&headers).unwrap_or(Duration::from_secs(60));
            // A provider that limits per user answers one user's exhaustion with a 429
            // too: pausing the whole application would stall every other user.
            self.budgets
                .pause(budget.narrowest(), Instant::now() + wait);
            tracing::info!(budget = %budget.app, wait_s = wait.as_secs_f64(), "provider rate limit hit");
            return Err(Attempt::RateLimited(wait));
        }
        // A connection dropped mid-body is the same as a timeout.
        let body = resp
            .bytes()
            .await
            .map_err(|e| Attempt::Transient(ProviderError::Transient(describe(&e))))?;
        if status.is_success() {
            return Ok(Response {
                status,
                headers,
                body,
            });
        }
        let detail = format!("{status}: {}", snippet(&body));
        Err(match status {
            s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
                Attempt::Transient(ProviderError::Transient(detail))
            }
            StatusCode::UNAUTHORIZED => Attempt::Final(ProviderError::Unauthorized(detail)),
            StatusCode::FORBIDDEN => Attempt::Final(ProviderError::Forbidden(detail)),
            StatusCode::NOT_FOUND => Attempt::Final(ProviderError::NotFound(detail)),
            _ => Attempt::Final(ProviderError::Rejected(detail)),
        })
    }

    async fn wait_for_budget(&self, budget: &Budget) -> Result<(), ProviderError> {
        loop {
            let now = Instant::now();
            let wait = budget
                .keys()
                .filter_map(|k| self.budgets.wait_needed(k, now))
                .max();
            match wait {
                None => return Ok(()),
                Some(w) if w > self.policy.max_inline_wait => {
                    return Err(ProviderError::RateLimited {
                        retry_after_secs: w.as_secs().max(1),
                    });
                }
                Some(w) => tokio::time::sleep(w).await,
            }
        }
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds();
    Some(Duration::from_secs(secs.max(0) as u64))
}

/// The start of an error body, for messages (never more than a line's worth).
fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    if s.chars().count() > 200 {
        format!("{}…", s.chars().take(200).collect::<String>())
    } else {
        s.to_string()
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            msg = format!("{msg}: {s}");
            src = s.source();
        }
        msg
    }
}

/// Reads an integer header.
pub fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn fast() -> ProviderHttp {
        ProviderHttp::new(RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(10),
            max_inline_wait: Duration::from_secs(2),
            timeout: Duration::from_millis(500),
        })
    }

    #[tokio::test]
    async fn retries_server_errors_then_succeeds() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/x"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(2)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/x"))
            .respond_with(ResponseTemplate::new(200).set_body_string("{\"a\":1}"))
            .mount(&server)
            .await;
        let v: serde_json::Value = fast()
            .get_json(
                &Budget::app("t"),
                &format!("{}/x", server.uri()),
                "tok",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(v["a"], 1);
    }

    #[tokio::test]
    async fn classifies_failures() {
        let server = MockServer::start().await;
        for (p, status, body) in [
            ("/401", 401, "{}"),
            ("/500", 500, "{}"),
            ("/trunc", 200, "{\"a\": [1, 2"),
        ] {
            Mock::given(path(p))
                .respond_with(ResponseTemplate::new(status).set_body_string(body))
                .mount(&server)
                .await;
        }
        Mock::given(path("/slow"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
            .mount(&server)
            .await;
        let http = fast();
        let get = |p: &'static str| {
            let http = http.clone();
            let url = format!("{}{p}", server.uri());
            async move {
                http.get_json::<serde_json::Value>(&Budget::app("t"), &url, "tok", &[])
                    .await
                    .unwrap_err()
            }
        };
        assert!(matches!(get("/401").await, ProviderError::Unauthorized(_)));
        assert!(matches!(get("/500").await, ProviderError::Transient(_)));
        assert!(matches!(get("/trunc").await, ProviderError::Malformed(_)));
        assert_eq!(
            get("/slow").await,
            ProviderError::Transient("timed out".into())
        );
    }

    #[tokio::test]
    async fn rate_limit_pauses_the_budget_for_everyone() {
        let server = MockServer::start().await;
        Mock::given(path("/x"))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(path("/x"))
            .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
            .mount(&server)
            .await;
        let http = fast();
        let started = Instant::now();
        let _: serde_json::Value = http
            .get_json(
                &Budget::app("t"),
                &format!("{}/x", server.uri()),
                "tok",
                &[],
            )
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_secs(1));

        // A long pause fails fast so the caller can reschedule.
        http.budgets()
            .pause("t", Instant::now() + Duration::from_secs(30));
        let err = http
            .get_json::<serde_json::Value>(
                &Budget::app("t"),
                &format!("{}/x", server.uri()),
                "tok",
                &[],
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProviderError::RateLimited { retry_after_secs } if retry_after_secs >= 29)
        );
        // Other applications are unaffected.
        let _: serde_json::Value = http
            .get_json(
                &Budget::app("u"),
                &format!("{}/x", server.uri()),
                "tok",
                &[],
            )
            .await
            .unwrap();
    }
}
