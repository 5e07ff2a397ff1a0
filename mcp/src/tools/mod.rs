//! The nine tools: their listing (JSON schemas with a description on every argument, structured
//! output) and their dispatch. Arguments are parsed here so that a bad one becomes a tool
//! error naming it, which the assistant can read and fix, rather than a protocol error.

mod analytics;
mod health;
mod people;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;
use vitasync_engine::Error;
use vitasync_engine::domain::{User, WorkspaceId};
use vitasync_engine::services::users;

use crate::server::Shared;

pub(crate) use analytics::{anomaly_rows, context_doc, score_rows};

/// What a tool call may touch: the store, limited to one workspace.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Shared,
    pub ws: WorkspaceId,
}

impl Ctx<'_> {
    /// The user named by `user_id`, looked up inside the caller's workspace only.
    pub async fn user(&self, raw: &str) -> Result<User, ToolError> {
        let id = Uuid::parse_str(raw.trim()).map_err(|_| {
            ToolError::new(
                "invalid argument `user_id`: must be a user id (a UUID); list_users gives them",
            )
        })?;
        users::get(self.shared.store.as_ref(), self.ws, id)
            .await
            .map_err(ToolError::from)
    }

    /// The analytics epoch the tables reflect, when this process runs the analytics.
    pub fn epoch(&self) -> Option<u64> {
        self.shared.epoch.as_ref().map(|rx| *rx.borrow())
    }
}

/// A failure the assistant sees (as a tool result with `isError`).
#[derive(Debug)]
pub(crate) struct ToolError(pub String);

impl ToolError {
    pub fn new(msg: impl Into<String>) -> Self {
        ToolError(msg.into())
    }
}

impl From<Error> for ToolError {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid { field, message } | Error::Malformed { field, message } => {
                ToolError(format!("invalid argument `{field}`: {message}"))
            }
            Error::NotFound("user") => ToolError::new(
                "user not found in this workspace: check `user_id` (list_users lists the users you can see)",
            ),
            Error::NotFound(what) => ToolError(format!("{what} not found in this workspace")),
            other => {
                tracing::error!(error = %other, "MCP tool failed");
                ToolError::new("the store could not answer; try again shortly")
            }
        }
    }
}

/// A page of rows in the REST API's shapes.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Rows {
    /// The rows, in the same JSON shapes as the REST API.
    pub data: Vec<Value>,
    /// True when more rows matched than were returned: narrow the filters, or pass `cursor`
    /// where the tool takes one.
    pub truncated: bool,
    /// Pass as `cursor` to get the next page (tools that page); null otherwise.
    pub next_cursor: Option<String>,
    /// The analytics epoch the tables reflected when read (null when unknown).
    pub epoch: Option<u64>,
}

impl Rows {
    /// Keeps the first `cap` rows.
    pub fn first(mut data: Vec<Value>, cap: usize, epoch: Option<u64>) -> Self {
        let truncated = data.len() > cap;
        data.truncate(cap);
        Rows {
            data,
            truncated,
            next_cursor: None,
            epoch,
        }
    }

    /// Keeps the last `cap` rows (the most recent of an oldest-first list).
    pub fn last(mut data: Vec<Value>, cap: usize, epoch: Option<u64>) -> Self {
        let truncated = data.len() > cap;
        if truncated {
            data.drain(..data.len() - cap);
        }
        Rows {
            data,
            truncated,
            next_cursor: None,
            epoch,
        }
    }
}

/// One document (the context).
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Document {
    /// The document, in the same JSON shape as the REST API's `data`.
    pub data: Value,
    /// The analytics epoch the tables reflected when read (null when unknown).
    pub epoch: Option<u64>,
}

pub(crate) fn to_values<T: Serialize>(items: &[T]) -> Result<Vec<Value>, ToolError> {
    items
        .iter()
        .map(|i| serde_json::to_value(i).map_err(|e| ToolError(format!("serialising: {e}"))))
        .collect()
}

/// `limit` within 1..=max (default when absent), naming the argument when out of range.
pub(crate) fn limit(v: Option<i64>, default: u32, max: u32) -> Result<u32, ToolError> {
    match v {
        None => Ok(default),
        Some(n) if n >= 1 && n <= i64::from(max) => Ok(n as u32),
        Some(_) => Err(ToolError(format!(
            "invalid argument `limit`: must be between 1 and {max}"
        ))),
    }
}

/// Parses the arguments; errors name the argument and say what is expected.
fn parse<T: DeserializeOwned>(args: JsonObject) -> Result<T, ToolError> {
    serde_path_to_error::deserialize(Value::Object(args)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." || path.is_empty() {
            ToolError(format!("invalid arguments: {inner}"))
        } else {
            ToolError(format!("invalid argument `{path}`: {inner}"))
        }
    })
}

fn spec<A: JsonSchema + 'static, O: JsonSchema + 'static>(
    name: &'static str,
    title: &'static str,
    description: &'static str,
) -> Tool {
    let input = rmcp::handler::server::common::schema_for_type::<A>();
    let output = rmcp::handler::server::common::schema_for_output::<O>();
    let mut annotations = ToolAnnotations::with_title(title);
    annotations.read_only_hint = Some(true);
    annotations.destructive_hint = Some(false);
    annotations.idempotent_hint = Some(true);
    annotations.open_world_hint = Some(false);
    Tool::new(name, description, input)
        .with_title(title)
        .with_raw_output_schema(output)
        .with_annotations(annotations)
}

/// Every tool, in a stable order.
pub(crate) fn list() -> Vec<Tool> {
    vec![
        spec::<people::ListUsersArgs, Rows>(
            "list_users",
            "List users",
            "Lists the users of this workspace (oldest first), optionally only those whose external id, display name or email contains `search`. Use it to find the `user_id` every other tool needs.",
        ),
        spec::<people::ListConnectionsArgs, Rows>(
            "list_connections",
            "List device connections",
            "Lists wearable/provider connections (status, last sync, last error) of one user or of the whole workspace.",
        ),
        spec::<health::QueryMetricsArgs, Rows>(
            "query_health_metrics",
            "Query health metrics",
            "Reads a user's health samples: raw samples (newest first) or one value per local date (`granularity: daily`, using each metric's aggregation rule).",
        ),
        spec::<health::EventsArgs, Rows>(
            "get_events",
            "Get workouts and sleep",
            "Lists a user's workouts and sleep sessions, newest first.",
        ),
        spec::<analytics::RecordsArgs, Rows>(
            "get_personal_records",
            "Get personal records",
            "A user's personal records: each metric's best daily value and when it was set.",
        ),
        spec::<analytics::UserArgs, Document>(
            "get_health_context",
            "Get health context",
            "Everything known about a user's analytics in one document: 28-day baselines, weekly trends, open anomalies, top correlations, latest scores, records, data freshness and a plain-English summary. Start here.",
        ),
        spec::<analytics::AnomalyArgs, Rows>(
            "get_anomaly_alerts",
            "Get anomaly alerts",
            "A user's detected anomalies (unusual values against their own baseline, clinical thresholds, resting-heart-rate elevation), newest first.",
        ),
        spec::<analytics::CorrelationArgs, Rows>(
            "get_correlations",
            "Get correlations",
            "Statistically significant correlations between a user's metrics (same day or next day), strongest first.",
        ),
        spec::<analytics::ScoreArgs, Rows>(
            "get_health_scores",
            "Get health scores",
            "A user's daily health scores (sleep, activity, cardio, recovery, overall; 0-100), oldest first.",
        ),
    ]
}

/// Runs tool `name`; None when there is no such tool.
pub(crate) async fn call(ctx: &Ctx<'_>, name: &str, args: JsonObject) -> Option<CallToolResult> {
    let out: Result<Value, ToolError> = match name {
        "list_users" => run(ctx, args, people::list_users).await,
        "list_connections" => run(ctx, args, people::list_connections).await,
        "query_health_metrics" => run(ctx, args, health::query_metrics).await,
        "get_events" => run(ctx, args, health::events).await,
        "get_personal_records" => run(ctx, args, analytics::records).await,
        "get_health_context" => run(ctx, args, analytics::context).await,
        "get_anomaly_alerts" => run(ctx, args, analytics::anomalies).await,
        "get_correlations" => run(ctx, args, analytics::correlations).await,
        "get_health_scores" => run(ctx, args, analytics::scores).await,
        _ => return None,
    };
    Some(match out {
        Ok(v) => CallToolResult::structured(v),
        Err(ToolError(msg)) => CallToolResult::error(vec![ContentBlock::text(msg)]),
    })
}

async fn run<'a, A, O, F, Fut>(ctx: &'a Ctx<'a>, args: JsonObject, f: F) -> Result<Value, ToolError>
where
    A: DeserializeOwned,
    O: Serialize,
    F: FnOnce(&'a Ctx<'a>, A) -> Fut,
    Fut: Future<Output = Result<O, ToolError>>,
{
    let args = parse::<A>(args)?;
    let out = f(ctx, args).await?;
    serde_json::to_value(out).map_err(|e| ToolError(format!("serialising: {e}")))
}
