//! Logging setup and the per-request span. Logs go to stderr (stdout is for command output and
//! the MCP stdio transport); each request gets a span with a server-generated request id, the
//! route pattern, and — once known — the workspace and user ids.

use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use tracing::Instrument as _;
use tracing_subscriber::EnvFilter;
use vitasync_engine::config::LogFormat;

use crate::state::AppState;

/// Installs the global subscriber once; later calls are ignored (tests build many apps).
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// Wraps every request: span, request id header, and HTTP metrics by route pattern.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    let request_id = uuid::Uuid::now_v7();
    let span = tracing::info_span!(
        "request",
        %method,
        %route,
        %request_id,
        workspace_id = tracing::field::Empty,
        user_id = tracing::field::Empty,
    );
    let start = Instant::now();
    let mut res = next.call(req).instrument(span.clone()).await?;
    let status = res.status();
    let elapsed = start.elapsed();
    if let Some(state) = state {
        state
            .metrics
            .http_requests
            .with_label_values(&[&method, &route, status.as_str()])
            .inc();
        state
            .metrics
            .http_duration
            .with_label_values(&[&method, &route])
            .observe(elapsed.as_secs_f64());
    }
    span.in_scope(|| {
        tracing::debug!(
            status = status.as_u16(),
            ms = elapsed.as_millis() as u64,
            "request finished"
        )
    });
    if let Ok(v) = HeaderValue::from_str(&request_id.to_string()) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), v);
    }
    Ok(res)
}
