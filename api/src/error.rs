//! The one place where errors become HTTP. Every engine error variant maps to exactly one status
//! and stable `code`; 5xx bodies carry no internals (those go to the log).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;
use vitasync_engine::Error;

/// `{"error": {"code": "...", "message": "...", "field"?: "..."}}`
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

impl ErrorBody {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
                field: None,
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code.
    pub code: &'static str,
    pub message: String,
    /// The offending input field, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, String, Option<String>) {
        match &self.0 {
            Error::Invalid { field, message } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                format!("{field}: {message}"),
                Some(field.to_string()),
            ),
            Error::Malformed { field, message } => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("{field}: {message}"),
                Some(field.to_string()),
            ),
            Error::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} not found"),
                None,
            ),
            Error::Conflict(m) => (StatusCode::CONFLICT, "conflict", m.clone(), None),
            Error::Unauthenticated(m) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                (*m).to_string(),
                None,
            ),
            Error::MissingScope(s) => (
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this operation requires the '{s}' scope"),
                None,
            ),
            Error::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests for this API key".into(),
                None,
            ),
            e @ Error::Store(_) if e.is_unavailable() => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the store is temporarily unavailable".into(),
                None,
            ),
            Error::Upstream(m) => (StatusCode::BAD_GATEWAY, "provider_error", m.clone(), None),
            Error::Store(_) | Error::Migrate(_) | Error::Config(_) | Error::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error".into(),
                None,
            ),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, code, message, field) = self.parts();
        if status.is_server_error() {
            tracing::error!(error = %self.0, code, "request failed");
        }
        let mut res = HttpResponse::build(status);
        match &self.0 {
            Error::RateLimited { retry_after_secs } => {
                res.insert_header(("Retry-After", retry_after_secs.to_string()));
            }
            Error::Unauthenticated(_) => {
                res.insert_header(("WWW-Authenticate", "Bearer"));
            }
            _ => {}
        }
        res.json(ErrorBody {
            error: ErrorDetail {
                code,
                message,
                field,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_status() {
        let cases = [
            (Error::invalid("x", "y"), 422),
            (Error::malformed("x", "y"), 400),
            (Error::NotFound("user"), 404),
            (Error::Conflict("c".into()), 409),
            (Error::Unauthenticated("u"), 401),
            (Error::MissingScope("write"), 403),
            (
                Error::RateLimited {
                    retry_after_secs: 1,
                },
                429,
            ),
            (Error::Store(sqlx::Error::PoolTimedOut), 503),
            (Error::Store(sqlx::Error::RowNotFound), 500),
            (Error::internal("secret detail"), 500),
        ];
        for (e, status) in cases {
            let e = ApiError(e);
            assert_eq!(e.status_code().as_u16(), status, "{e}");
        }
        let (_, _, message, _) = ApiError(Error::internal("secret detail")).parts();
        assert!(!message.contains("secret"));
    }
}
