//! The materialised analytics: records, context, anomalies, correlations, scores. Read from the
//! tables through the same engine services as the REST API, never recomputed.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use vitasync_engine::domain::User;
use vitasync_engine::services::analytics::{
    self as reads, AnomalyFilter, CorrelationFilter, ScoreFilter,
};

use super::{Ctx, Document, Rows, ToolError, limit};

/// Score days in one answer (a quarter).
const MAX_SCORE_DAYS: usize = 90;
/// Anomalies in a resource.
const RESOURCE_ANOMALIES: usize = 100;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserArgs {
    /// The user (an id from list_users).
    pub user_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordsArgs {
    /// The user (an id from list_users).
    pub user_id: String,
    /// Only this metric's record, e.g. `steps`.
    pub metric: Option<String>,
}

pub async fn records(ctx: &Ctx<'_>, a: RecordsArgs) -> Result<Rows, ToolError> {
    let user = ctx.user(&a.user_id).await?;
    let rows = reads::records(ctx.shared.store.as_ref(), &user, a.metric.as_deref()).await?;
    Ok(Rows::first(rows, 200, ctx.epoch()))
}

pub async fn context(ctx: &Ctx<'_>, a: UserArgs) -> Result<Document, ToolError> {
    let user = ctx.user(&a.user_id).await?;
    context_doc(ctx, &user).await
}

/// The context document, as the tool and the `context` resource serve it.
pub(crate) async fn context_doc(ctx: &Ctx<'_>, user: &User) -> Result<Document, ToolError> {
    let epoch = ctx.epoch();
    Ok(Document {
        data: reads::context(ctx.shared.store.as_ref(), user).await?,
        epoch,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnomalyArgs {
    /// The user (an id from list_users).
    pub user_id: String,
    /// info, warning or critical.
    pub severity: Option<String>,
    /// open, acknowledged or dismissed.
    pub status: Option<String>,
    /// How it was found: zscore, iqr, clinical or rhr_elevation.
    pub method: Option<String>,
    /// First date (YYYY-MM-DD), inclusive.
    pub from: Option<String>,
    /// Last date (YYYY-MM-DD), inclusive.
    pub to: Option<String>,
    /// Anomalies to return, 1-100 (default 20), newest first.
    pub limit: Option<i64>,
}

pub async fn anomalies(ctx: &Ctx<'_>, a: AnomalyArgs) -> Result<Rows, ToolError> {
    let user = ctx.user(&a.user_id).await?;
    let filter = AnomalyFilter::check(
        None,
        a.method,
        a.severity,
        a.status,
        a.from.as_deref(),
        a.to.as_deref(),
    )?;
    let cap = limit(a.limit, 20, 100)?;
    let rows = first_anomalies(ctx, &filter, &user, cap as usize).await?;
    Ok(Rows::first(rows, cap as usize, ctx.epoch()))
}

/// The `anomalies` resource: every anomaly, newest first, capped.
pub(crate) async fn anomaly_rows(ctx: &Ctx<'_>, user: &User) -> Result<Rows, ToolError> {
    let rows = first_anomalies(ctx, &AnomalyFilter::default(), user, RESOURCE_ANOMALIES).await?;
    Ok(Rows::first(rows, RESOURCE_ANOMALIES, ctx.epoch()))
}

/// The newest `cap` matching anomalies and one more (which only says the list goes on), cut in
/// the store's query rather than after reading them all.
async fn first_anomalies(
    ctx: &Ctx<'_>,
    filter: &AnomalyFilter,
    user: &User,
    cap: usize,
) -> Result<Vec<serde_json::Value>, ToolError> {
    let page = filter
        .page(ctx.shared.store.as_ref(), user, None, cap as u32 + 1)
        .await?;
    Ok(page.into_iter().map(|(_, _, body)| body).collect())
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrelationArgs {
    /// The user (an id from list_users).
    pub user_id: String,
    /// weak, moderate, strong or very_strong: that strength or stronger.
    pub min_strength: Option<String>,
    /// 0 = same day, 1 = the first metric leads the second by a day.
    pub lag_days: Option<u8>,
    /// Only pairs involving this metric.
    pub metric: Option<String>,
    /// Pairs to return, 1-50 (default 10), strongest first.
    pub limit: Option<i64>,
}

pub async fn correlations(ctx: &Ctx<'_>, a: CorrelationArgs) -> Result<Rows, ToolError> {
    let user = ctx.user(&a.user_id).await?;
    let filter =
        CorrelationFilter::check(a.min_strength.as_deref(), "lag_days", a.lag_days, a.metric)?;
    let cap = limit(a.limit, 10, 50)?;
    let rows = filter.rows(ctx.shared.store.as_ref(), &user).await?;
    Ok(Rows::first(rows, cap as usize, ctx.epoch()))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreArgs {
    /// The user (an id from list_users).
    pub user_id: String,
    /// First date (YYYY-MM-DD), inclusive.
    pub from: Option<String>,
    /// Last date (YYYY-MM-DD), inclusive. At most the 90 most recent days in the range are
    /// returned.
    pub to: Option<String>,
}

pub async fn scores(ctx: &Ctx<'_>, a: ScoreArgs) -> Result<Rows, ToolError> {
    let user = ctx.user(&a.user_id).await?;
    let filter = ScoreFilter::check(a.from.as_deref(), a.to.as_deref())?;
    let rows = filter.rows(ctx.shared.store.as_ref(), &user).await?;
    Ok(Rows::last(rows, MAX_SCORE_DAYS, ctx.epoch()))
}

/// The `scores` resource: the most recent 90 days.
pub(crate) async fn score_rows(ctx: &Ctx<'_>, user: &User) -> Result<Rows, ToolError> {
    let rows: Vec<Value> = ScoreFilter::default()
        .rows(ctx.shared.store.as_ref(), user)
        .await?;
    Ok(Rows::last(rows, MAX_SCORE_DAYS, ctx.epoch()))
}
