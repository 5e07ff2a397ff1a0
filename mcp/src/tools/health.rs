//! The data underneath the analytics: `query_health_metrics` and `get_events`.

use schemars::JsonSchema;
use serde::Deserialize;
use vitasync_engine::cursor::Limit;
use vitasync_engine::domain::{EventQuery, EventType, SampleQuery};
use vitasync_engine::services::query::{check_metric, check_order, date_bounds, instant_bounds};
use vitasync_engine::store;

use super::{Ctx, Rows, ToolError, limit, to_values};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryMetricsArgs {
    /// The user (an id from list_users).
    pub user_id: String,
    /// Only this metric, e.g. `resting_heart_rate`, `steps`, `hrv_rmssd`, `sleep_duration`.
    pub metric: Option<String>,
    /// From this date (YYYY-MM-DD) or, for raw samples, instant (RFC 3339), inclusive.
    pub from: Option<String>,
    /// Up to this date (YYYY-MM-DD, inclusive) or, for raw samples, instant (RFC 3339,
    /// exclusive).
    pub to: Option<String>,
    /// Only samples from this provider (`api` for pushed data).
    pub provider: Option<String>,
    /// `raw` (default): samples, newest first. `daily`: one value per local date and metric,
    /// oldest first.
    pub granularity: Option<String>,
    /// Rows to return, 1-500 (default 100). Daily answers keep the most recent dates.
    pub limit: Option<i64>,
}

pub async fn query_metrics(ctx: &Ctx<'_>, a: QueryMetricsArgs) -> Result<Rows, ToolError> {
    let user = ctx.user(&a.user_id).await?;
    check_metric("metric", a.metric.as_deref())?;
    let cap = limit(a.limit, 100, 500)?;
    let store = ctx.shared.store.as_ref();
    match a.granularity.as_deref().unwrap_or("raw") {
        "raw" => {
            let (from, to) = instant_bounds(a.from.as_deref(), a.to.as_deref())?;
            let q = SampleQuery {
                metric: a.metric,
                provider: a.provider,
                from,
                to,
            };
            let page = store.list_samples(&user, &q, Limit(cap), None).await?;
            Ok(Rows {
                data: to_values(&page.items)?,
                truncated: page.next.is_some(),
                next_cursor: None,
                epoch: None,
            })
        }
        "daily" => {
            let (from, to) = date_bounds(a.from.as_deref(), a.to.as_deref())?;
            check_order(from, to)?;
            let groups = store
                .daily_groups(&user, a.metric.as_deref(), from, to)
                .await?
                .into_iter()
                .filter(|g| a.provider.as_deref().is_none_or(|p| g.provider == p))
                .collect();
            let priority =
                vitasync_engine::services::analytics::provider_priority(store, &user).await?;
            let days = store::daily_values(groups, &priority);
            Ok(Rows::last(to_values(&days)?, cap as usize, None))
        }
        _ => Err(ToolError::new(
            "invalid argument `granularity`: must be raw or daily",
        )),
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsArgs {
    /// The user (an id from list_users).
    pub user_id: String,
    /// `workout` or `sleep`.
    #[serde(rename = "type")]
    #[schemars(rename = "type")]
    pub event_type: Option<String>,
    /// Only this activity (case-insensitive), e.g. `running`, `cycling`.
    pub activity_type: Option<String>,
    /// Events starting at or after this instant (RFC 3339) or UTC date (YYYY-MM-DD).
    pub from: Option<String>,
    /// Events starting before this instant (RFC 3339) or on/before this UTC date.
    pub to: Option<String>,
    /// Events to return, 1-100 (default 20).
    pub limit: Option<i64>,
}

pub async fn events(ctx: &Ctx<'_>, a: EventsArgs) -> Result<Rows, ToolError> {
    let user = ctx.user(&a.user_id).await?;
    let event_type = a
        .event_type
        .as_deref()
        .map(|t| {
            EventType::parse(t)
                .ok_or_else(|| ToolError::new("invalid argument `type`: must be workout or sleep"))
        })
        .transpose()?;
    let (from, to) = instant_bounds(a.from.as_deref(), a.to.as_deref())?;
    let cap = limit(a.limit, 20, 100)?;
    let q = EventQuery {
        event_type,
        from,
        to,
        activity_type: a.activity_type,
    };
    let page = ctx
        .shared
        .store
        .list_events(&user, &q, Limit(cap), None)
        .await?;
    Ok(Rows {
        data: to_values(&page.items)?,
        truncated: page.next.is_some(),
        next_cursor: None,
        epoch: None,
    })
}
