//! The providers this server knows, and whether each is configured.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;
use vitasync_engine::Error;
use vitasync_engine::domain::EventType;
use vitasync_engine::providers::{AuthKind, Provider};

use crate::auth::{Authed, Read};
use crate::error::{ApiResult, ErrorBody};
use crate::routes::Data;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    pub id: String,
    pub name: String,
    pub auth: AuthKind,
    /// False when this server lacks the provider's client credentials; connecting then fails
    /// with 409.
    pub configured: bool,
    /// Catalogue metrics the provider supplies.
    pub metrics: Vec<String>,
    pub event_types: Vec<EventType>,
}

impl ProviderView {
    fn of(p: &dyn Provider) -> Self {
        let info = p.info();
        ProviderView {
            id: info.id.to_string(),
            name: info.name.to_string(),
            auth: info.auth,
            configured: p.configured(),
            metrics: info.metrics.iter().map(|m| m.to_string()).collect(),
            event_types: info.event_types.to_vec(),
        }
    }
}

/// Every provider, sorted by id.
#[utoipa::path(get, path = "/v1/providers", tag = "providers", security(("bearer" = [])),
    responses((status = 200, body = Data<Vec<ProviderView>>), (status = 401, body = ErrorBody)))]
#[get("/v1/providers")]
pub async fn list(_auth: Authed<Read>, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let data: Vec<_> = state
        .sync
        .registry
        .all()
        .iter()
        .map(|p| ProviderView::of(p.as_ref()))
        .collect();
    Ok(HttpResponse::Ok().json(Data { data }))
}

/// One provider.
#[utoipa::path(get, path = "/v1/providers/{provider}", tag = "providers", security(("bearer" = [])),
    params(("provider" = String, Path)),
    responses((status = 200, body = ProviderView), (status = 404, body = ErrorBody)))]
#[get("/v1/providers/{provider}")]
pub async fn get(
    _auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let p = state
        .sync
        .registry
        .get(&path)
        .ok_or(Error::NotFound("provider"))?;
    Ok(HttpResponse::Ok().json(ProviderView::of(p.as_ref())))
}
