//! HTTP routes, one module per resource. `configure` mounts them all.

pub mod analytics;
pub mod api_keys;
pub mod connections;
pub mod health_data;
pub mod metric_types;
pub mod notifications;
pub mod oauth;
pub mod providers;
pub mod system;
pub mod users;
pub mod webhooks;
pub mod webhooks_out;
pub mod workspace;

use actix_web::web;
use serde::Serialize;
use utoipa::ToSchema;
use vitasync_engine::Error;
use vitasync_engine::cursor::{Cursor, Page};
use vitasync_engine::domain::User;
use vitasync_engine::services::users as user_service;

use crate::auth::Caller;
use crate::extract::path_id;
use crate::state::AppState;

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

/// The user named by a path segment, looked up inside the caller's workspace: the tenancy gate
/// for every user-owned route.
pub async fn path_user(state: &AppState, caller: &Caller, raw_id: &str) -> Result<User, Error> {
    user_service::get(
        state.store.as_ref(),
        caller.workspace_id,
        path_id("user", raw_id)?,
    )
    .await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(system::health)
        .service(system::ready)
        .service(system::metrics)
        .service(workspace::get_workspace)
        .service(workspace::patch_workspace)
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
        .service(api_keys::rotate)
        .service(providers::list)
        .service(providers::get)
        .service(webhooks::notify)
        .service(webhooks::verify)
        .service(oauth::authorize)
        .service(oauth::callback)
        .service(connections::create)
        .service(connections::list)
        .service(connections::delete)
        .service(connections::sync)
        .service(connections::job)
        .service(connections::jobs)
        .service(connections::events)
        .service(analytics::baselines)
        .service(analytics::anomalies)
        .service(analytics::acknowledge)
        .service(analytics::dismiss)
        .service(analytics::correlations)
        .service(analytics::latest_scores)
        .service(analytics::scores)
        .service(analytics::records)
        .service(analytics::context)
        .service(analytics::anomalies_alias)
        .service(analytics::correlations_alias)
        .service(notifications::create_channel)
        .service(notifications::list_channels)
        .service(notifications::get_channel)
        .service(notifications::patch_channel)
        .service(notifications::delete_channel)
        .service(notifications::test_channel)
        .service(notifications::create_rule)
        .service(notifications::list_rules)
        .service(notifications::patch_rule)
        .service(notifications::delete_rule)
        .service(notifications::logs)
        .service(webhooks_out::create)
        .service(webhooks_out::list)
        .service(webhooks_out::get)
        .service(webhooks_out::update)
        .service(webhooks_out::remove)
        .service(webhooks_out::rotate_secret)
        .service(webhooks_out::test)
        .service(webhooks_out::deliveries)
        .service(webhooks_out::redeliver);
}
