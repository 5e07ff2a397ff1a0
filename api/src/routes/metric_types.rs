//! The metric catalogue, as served to clients.

use actix_web::{HttpResponse, get};
use serde::Serialize;
use utoipa::ToSchema;
use vitasync_engine::catalogue::{Aggregation, CATALOGUE};

use crate::auth::{Authed, Read};
use crate::error::ErrorBody;
use crate::routes::Data;

#[derive(Serialize, ToSchema)]
pub struct MetricType {
    pub metric: &'static str,
    /// The canonical unit every stored value is in.
    pub unit: &'static str,
    /// How one local date's samples become that date's value.
    pub aggregation: Aggregation,
    pub description: &'static str,
    /// Units accepted on input (converted to `unit`).
    pub accepted_units: Vec<&'static str>,
}

/// Every metric the platform knows, with its unit and daily aggregation rule.
#[utoipa::path(get, path = "/v1/metric-types", tag = "metrics", security(("bearer" = [])), responses(
    (status = 200, body = Data<Vec<MetricType>>), (status = 401, body = ErrorBody),
))]
#[get("/v1/metric-types")]
pub async fn list(_auth: Authed<Read>) -> HttpResponse {
    let data: Vec<MetricType> = CATALOGUE
        .iter()
        .map(|m| MetricType {
            metric: m.name,
            unit: m.unit,
            aggregation: m.aggregation,
            description: m.description,
            accepted_units: m.accepted_units(),
        })
        .collect();
    HttpResponse::Ok().json(Data { data })
}
