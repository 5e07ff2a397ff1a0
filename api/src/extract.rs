//! Request extractors that turn malformed input into field-naming 400/422 errors instead of
//! actix's plain-text defaults.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use serde::de::DeserializeOwned;
use uuid::Uuid;
use vitasync_engine::Error;

use crate::error::ApiError;

/// Largest JSON body accepted (10,000 samples with room for `data`).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// A JSON body; errors name the JSON path of the offending field.
pub struct ValidJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ValidJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = bytes
                .await
                .map_err(|e| ApiError(Error::malformed("body", e.to_string())))?;
            if bytes.len() > MAX_BODY_BYTES {
                return Err(ApiError(Error::malformed("body", "too large")));
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Err(ApiError(Error::malformed(
                    "body",
                    "a JSON body is required",
                )));
            }
            parse_json(&bytes).map(ValidJson)
        })
    }
}

/// A JSON body that may be absent (empty body → `None`); a present body is validated like
/// [`ValidJson`].
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = bytes
                .await
                .map_err(|e| ApiError(Error::malformed("body", e.to_string())))?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(None));
            }
            parse_json(&bytes).map(|v| OptionalJson(Some(v)))
        })
    }
}

/// Parses JSON; syntax errors are 400, shape errors 422 naming the path (e.g. `samples[3].value`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError(Error::malformed("body", format!("invalid JSON: {inner}")));
        }
        let message = strip_position(&inner.to_string());
        ApiError(Error::invalid(field_of(&path, &message), message))
    })
}

/// Query parameters; unknown or unparsable parameters are 400 naming the parameter.
pub struct ValidQuery<T>(pub T);

impl<T: DeserializeOwned> FromRequest for ValidQuery<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(
            req.query_string().as_bytes(),
        ));
        let r = serde_path_to_error::deserialize(de)
            .map(ValidQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                let message = e.into_inner().to_string();
                ApiError(Error::malformed(field_of(&path, &message), message))
            });
        std::future::ready(r)
    }
}

/// `missing field \`x\`` at the root names `x`; otherwise the path is the field.
fn field_of(path: &str, message: &str) -> String {
    if (path == "." || path.is_empty())
        && let Some(rest) = message.split_once('`').map(|(_, r)| r)
        && let Some((name, _)) = rest.split_once('`')
    {
        return name.to_string();
    }
    if path.is_empty() {
        "body".into()
    } else {
        path.to_string()
    }
}

fn strip_position(m: &str) -> String {
    match m.rfind(" at line ") {
        Some(i) => m[..i].to_string(),
        None => m.to_string(),
    }
}

/// Parses a path segment as an id; a malformed id is a 404 because no such resource exists.
pub fn path_id(what: &'static str, raw: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(raw).map_err(|_| Error::NotFound(what))
}
