//! The OAuth authorization-code flow: an authenticated call hands out the provider's consent
//! URL; the provider redirects the user's browser back to the unauthenticated callback, where
//! the single-use state authenticates the request.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vitasync_engine::services::connections::{self as svc, CallbackOutcome, CallbackParams};

use crate::auth::{Authed, Write};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ValidQuery, path_id};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuthorizeQuery {
    /// The user who is connecting (in the caller's workspace).
    pub user_id: String,
    /// Where to send the browser afterwards; must start with a prefix listed in
    /// `VITASYNC_OAUTH_RETURN_URLS`. Without it the callback shows a small page.
    pub return_url: Option<String>,
    /// Days of history to backfill (1-3650; the provider's default when absent).
    pub days: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizeResponse {
    /// Send the user's browser here.
    pub authorization_url: String,
    /// The link stops working after this instant (10 minutes).
    pub expires_at: DateTime<Utc>,
}

/// Starts connecting an OAuth provider.
#[utoipa::path(get, path = "/v1/oauth/{provider}/authorize", tag = "connections", security(("bearer" = [])),
    params(("provider" = String, Path), AuthorizeQuery),
    responses((status = 200, body = AuthorizeResponse), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[get("/v1/oauth/{provider}/authorize")]
pub async fn authorize(
    auth: Authed<Write>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: ValidQuery<AuthorizeQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.0;
    let user_id = path_id("user", &q.user_id)?;
    let a = svc::start_oauth(
        &state.sync,
        auth.workspace_id,
        user_id,
        &path,
        q.return_url.as_deref(),
        &state.config.oauth_return_urls,
        q.days,
    )
    .await?;
    Ok(HttpResponse::Ok().json(AuthorizeResponse {
        authorization_url: a.authorization_url,
        expires_at: a.expires_at,
    }))
}

/// What a provider may send back. Anything else is ignored, never echoed.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// The provider's redirect back. Ends with a 302 to the flow's return URL
/// (`status=connected&provider=…&connection_id=…` or `status=error&error=<code>`) or, without
/// one, a small HTML page.
#[utoipa::path(get, path = "/v1/oauth/{provider}/callback", tag = "connections",
    params(("provider" = String, Path), CallbackQuery),
    responses((status = 302, description = "back to the return URL"), (status = 200, description = "an HTML result page"), (status = 400, description = "an HTML error page")))]
#[get("/v1/oauth/{provider}/callback")]
pub async fn callback(
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<CallbackQuery>,
) -> ApiResult<HttpResponse> {
    let provider = path.into_inner();
    let q = q.into_inner();
    let params = CallbackParams {
        state: q.state,
        code: q.code,
        error: q.error,
    };
    let outcome = svc::complete_oauth(&state.sync, &provider, &params).await?;
    Ok(match outcome {
        CallbackOutcome::Connected {
            connected,
            return_url,
        } => {
            let conn_id = connected.connection.id.to_string();
            let provider = connected.connection.provider.clone();
            state.actors.enqueue(connected.job.clone());
            match return_url {
                Some(url) => redirect(
                    &url,
                    &[
                        ("status", "connected"),
                        ("provider", &provider),
                        ("connection_id", &conn_id),
                    ],
                ),
                None => page(
                    actix_web::http::StatusCode::OK,
                    "Connected",
                    &format!("Your {provider} account is connected. You can close this window."),
                ),
            }
        }
        CallbackOutcome::Failed { code, return_url } => match return_url {
            Some(url) => redirect(&url, &[("status", "error"), ("error", code)]),
            None => page(
                actix_web::http::StatusCode::BAD_REQUEST,
                "Connection failed",
                &format!("The connection could not be completed ({code}). Please start again."),
            ),
        },
    })
}

/// A 302 to `base` with `params` appended to its query (the base was checked against the
/// configured prefixes when the flow started).
fn redirect(base: &str, params: &[(&str, &str)]) -> HttpResponse {
    let location = match url::Url::parse(base) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => {
            let sep = if base.contains('?') { '&' } else { '?' };
            let query: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish();
            format!("{base}{sep}{query}")
        }
    };
    HttpResponse::Found()
        .insert_header(("Location", location))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// A minimal result page. Everything shown is escaped; the page runs no script and loads
/// nothing.
fn page(status: actix_web::http::StatusCode, title: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body><h1>{t}</h1><p>{m}</p></body></html>",
        t = escape_html(title),
        m = escape_html(message),
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", "default-src 'none'"))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(body)
}

pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape_html("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;&quot;"
        );
    }

    #[test]
    fn redirect_appends_to_existing_query() {
        let r = redirect(
            "https://app.example/done?x=1",
            &[("status", "error"), ("error", "a b")],
        );
        assert_eq!(
            r.headers().get("location").unwrap(),
            "https://app.example/done?x=1&status=error&error=a+b"
        );
    }
}
