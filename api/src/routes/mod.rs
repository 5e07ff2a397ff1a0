//! HTTP routes, one module per resource. `configure` mounts them all.

pub mod api_keys;
pub mod health_data;
pub mod metric_types;
pub mod system;
pub mod users;
pub mod workspace;

use actix_web::web;
use serde::Serialize;
use utoipa::ToSchema;
use vitasync_engine::cursor::{Cursor, Page};

/// The list envelope every collection uses.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T: ToSchema> {
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> List<T> {
    pub fn from_page(page: Page<T>) -> Self {
        List {
            data: page.items,
            next_cursor: page.next.map(|c: Cursor| c.encode()),
        }
    }

    pub fn all(data: Vec<T>) -> Self {
        List {
            data,
            next_cursor: None,
        }
    }
}

/// A `{"data": ...}` envelope for single objects and unpaged collections.
#[derive(Debug, Serialize, ToSchema)]
pub struct Data<T: ToSchema> {
    pub data: T,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(system::health)
        .service(system::ready)
        .service(system::metrics)
        .service(workspace::get_workspace)
        .service(metric_types::list)
        .service(users::create)
        .service(users::list)
        .service(users::get)
        .service(users::patch)
        .service(users::delete)
        .service(health_data::ingest)
        .service(health_data::list)
        .service(health_data::daily)
        .service(health_data::summary)
        .service(api_keys::create)
        .service(api_keys::list)
        .service(api_keys::revoke)
        .service(api_keys::rotate);
}
