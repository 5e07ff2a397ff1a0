//! Provider webhooks: subscription handshakes (GET) and notifications (POST). Unauthenticated:
//! each provider's own verification (signature, verification code, client id) applies.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::Utc;
use vitasync_engine::providers::{WebhookError, WebhookReply, WebhookRequest};
use vitasync_engine::services::webhooks;

use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;

/// The raw body, verbatim: signatures are computed over the exact bytes.
pub struct RawBody(web::Bytes);

impl actix_web::FromRequest for RawBody {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move { Ok(RawBody(bytes.await?)) })
    }
}

fn to_request(req: &HttpRequest, body: &[u8]) -> WebhookRequest {
    WebhookRequest {
        method: req.method().to_string(),
        headers: req
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().ok()?.to_string(),
                ))
            })
            .collect(),
        query: form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect(),
        body: body.to_vec(),
        received_at: Utc::now(),
    }
}

async fn handle(
    state: &AppState,
    provider: &str,
    req: &HttpRequest,
    body: &[u8],
) -> ApiResult<HttpResponse> {
    let wreq = to_request(req, body);
    let result = match webhooks::handle(&state.sync, provider, &wreq).await? {
        Ok(r) => r,
        Err(e) => return Ok(refusal(&e)),
    };
    for id in result.stopped {
        state.actors.stop(id);
    }
    for (job, opts) in result.jobs {
        state.actors.enqueue_with(job, opts);
    }
    if result.incomplete {
        // Providers deliver at least once: a retry redoes what failed, and what succeeded is
        // idempotent.
        return Ok(HttpResponse::ServiceUnavailable().json(ErrorBody::new(
            "unavailable",
            "the notification could not be applied completely; please deliver it again",
        )));
    }
    Ok(match result.reply {
        WebhookReply::Handshake {
            status,
            content_type,
            body,
        } => HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
            .content_type(content_type)
            .body(body),
        WebhookReply::Accepted { status, .. } => {
            HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK)).finish()
        }
    })
}

fn refusal(e: &WebhookError) -> HttpResponse {
    let (status, code) = match e {
        WebhookError::BadSignature(_) => (StatusCode::UNAUTHORIZED, "invalid_signature"),
        WebhookError::BadVerification { status } => (
            StatusCode::from_u16(*status).unwrap_or(StatusCode::NOT_FOUND),
            "invalid_verification",
        ),
        WebhookError::Malformed(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        WebhookError::Unsupported => (StatusCode::NOT_FOUND, "not_found"),
    };
    HttpResponse::build(status).json(ErrorBody::new(code, e.to_string()))
}

/// A provider's notification.
#[utoipa::path(post, path = "/v1/providers/{provider}/webhook", tag = "providers",
    params(("provider" = String, Path)), request_body(content = Object, description = "the provider's payload, verified by its signature scheme"),
    responses((status = 200, description = "accepted"), (status = 204, description = "accepted"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[post("/v1/providers/{provider}/webhook")]
pub async fn notify(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    body: RawBody,
) -> ApiResult<HttpResponse> {
    handle(&state, &path, &req, &body.0).await
}

/// A provider's subscription handshake (Strava `hub.challenge`, Fitbit `verify`).
#[utoipa::path(get, path = "/v1/providers/{provider}/webhook", tag = "providers",
    params(("provider" = String, Path)),
    responses((status = 200, description = "challenge answered"), (status = 204, description = "verified"), (status = 404, body = ErrorBody)))]
#[get("/v1/providers/{provider}/webhook")]
pub async fn verify(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    handle(&state, &path, &req, &[]).await
}
