//! Authentication and authorisation. Handlers take `Authed<Read>`, `Authed<Write>` or
//! `Authed<Admin>`, so the scope each route needs is visible in its signature and cannot be
//! forgotten. The extractor authenticates the bearer key, applies the key's rate limit, checks
//! the scope, and records the workspace on the request's tracing span.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, web};
use uuid::Uuid;
use vitasync_engine::Error;
use vitasync_engine::domain::{Scope, Scopes};
use vitasync_engine::services::keys;

use crate::error::ApiError;
use crate::state::AppState;

/// Who is calling: the key's workspace scopes every query.
#[derive(Debug, Clone)]
pub struct Caller {
    pub workspace_id: Uuid,
    pub key_id: Uuid,
    pub scopes: Scopes,
}

pub trait Need {
    const SCOPE: Scope;
}
pub struct Read;
pub struct Write;
pub struct Admin;
impl Need for Read {
    const SCOPE: Scope = Scope::Read;
}
impl Need for Write {
    const SCOPE: Scope = Scope::Write;
}
impl Need for Admin {
    const SCOPE: Scope = Scope::Admin;
}

pub struct Authed<S: Need> {
    pub caller: Caller,
    _scope: PhantomData<S>,
}

impl<S: Need> std::ops::Deref for Authed<S> {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.caller
    }
}

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or(ApiError(Error::Unauthenticated(
            "missing Authorization header; use: Bearer <api key>",
        )))?;
    let value = header
        .to_str()
        .map_err(|_| ApiError(Error::Unauthenticated("malformed Authorization header")))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(ApiError(Error::Unauthenticated(
            "malformed Authorization header; use: Bearer <api key>",
        )))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError(Error::Unauthenticated(
            "unsupported authorization scheme; use: Bearer <api key>",
        )));
    }
    Ok(token.trim().to_string())
}

impl<S: Need + 'static> FromRequest for Authed<S> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError(Error::internal("application state missing")))?
                .clone();
            let token = bearer(&req)?;
            let key = keys::authenticate(state.store.as_ref(), &token).await?;
            tracing::Span::current()
                .record("workspace_id", tracing::field::display(key.workspace_id));
            let now = Instant::now();
            state
                .rate_limiter
                .check(key.id, now)
                .map_err(|retry_after_secs| ApiError(Error::RateLimited { retry_after_secs }))?;
            if state.rate_limiter.should_touch(key.id, now) {
                let store = state.store.clone();
                let id = key.id;
                actix_web::rt::spawn(async move {
                    if let Err(e) = store.touch_api_key(id, chrono::Utc::now()).await {
                        tracing::warn!(error = %e, "could not record API key use");
                    }
                });
            }
            if !key.scopes.allows(S::SCOPE) {
                return Err(ApiError(Error::MissingScope(S::SCOPE.as_str())));
            }
            Ok(Authed {
                caller: Caller {
                    workspace_id: key.workspace_id,
                    key_id: key.id,
                    scopes: key.scopes,
                },
                _scope: PhantomData,
            })
        })
    }
}

/// Middleware for the MCP endpoint: the same bearer-key check (rate limit included) as a REST
/// route with the read scope; the caller's workspace travels on to the MCP handlers.
pub async fn require_read_key(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let auth = req.extract::<Authed<Read>>().await?;
    req.extensions_mut().insert(vitasync_mcp::Caller {
        workspace_id: auth.workspace_id,
    });
    next.call(req).await
}
