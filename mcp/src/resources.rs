//! Resources: three documents per user, addressed as `vitasync://users/{user_id}/{kind}`,
//! served with the same content as the matching tools (`get_health_context`, all anomalies,
//! the latest 90 days of scores).

use std::hash::{DefaultHasher, Hash, Hasher};

use rmcp::model::{
    ErrorData, ListResourcesResult, ReadResourceResult, Resource, ResourceContents,
    ResourceTemplate,
};
use serde::Serialize;
use uuid::Uuid;
use vitasync_engine::cursor::Limit;
use vitasync_engine::domain::User;
use vitasync_engine::services::users;

use crate::tools::{Ctx, ToolError, anomaly_rows, context_doc, score_rows};

const PREFIX: &str = "vitasync://users/";
/// Users whose resources `resources/list` names (the templates cover the rest).
const LISTED_USERS: u32 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Context,
    Anomalies,
    Scores,
}

const KINDS: [(Kind, &str, &str); 3] = [
    (
        Kind::Context,
        "context",
        "Everything known about the user's analytics, with a plain-English summary.",
    ),
    (
        Kind::Anomalies,
        "anomalies",
        "The user's anomalies, newest first (at most 100).",
    ),
    (
        Kind::Scores,
        "scores",
        "The user's daily health scores, the latest 90 days.",
    ),
];

pub(crate) fn uri(user: Uuid, kind: &str) -> String {
    format!("{PREFIX}{user}/{kind}")
}

pub(crate) fn templates() -> Vec<ResourceTemplate> {
    KINDS
        .iter()
        .map(|(_, name, description)| {
            ResourceTemplate::new(
                format!("{PREFIX}{{user_id}}/{name}"),
                format!("user {name}"),
            )
            .with_description(*description)
            .with_mime_type("application/json")
        })
        .collect()
}

/// The resources of the first users of the workspace.
pub(crate) async fn list(ctx: &Ctx<'_>) -> Result<ListResourcesResult, ErrorData> {
    let page = ctx
        .shared
        .store
        .list_users(ctx.ws, None, None, Limit(LISTED_USERS), None)
        .await
        .map_err(|e| internal(e.into()))?;
    let items = page
        .items
        .iter()
        .flat_map(|u| {
            KINDS.iter().map(move |(_, name, description)| {
                Resource::new(uri(u.id, name), format!("{} {name}", u.external_id))
                    .with_description(*description)
                    .with_mime_type("application/json")
            })
        })
        .collect();
    Ok(ListResourcesResult::with_all_items(items))
}

fn not_found(uri: &str) -> ErrorData {
    ErrorData::resource_not_found(
        format!(
            "no resource {uri}; expected vitasync://users/{{user_id}}/context|anomalies|scores for a user of this workspace"
        ),
        None,
    )
}

fn internal(e: ToolError) -> ErrorData {
    ErrorData::internal_error(e.0, None)
}

/// Whether `uri` has the shape of one of our resources (whoever's user it names).
pub(crate) fn is_ours(uri: &str) -> bool {
    uri.strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(id, name)| {
            Uuid::parse_str(id).is_ok() && KINDS.iter().any(|(_, n, _)| *n == name)
        })
}

/// The user (inside the caller's workspace) and kind a URI names.
pub(crate) async fn resolve(ctx: &Ctx<'_>, uri: &str) -> Result<(User, Kind), ErrorData> {
    let rest = uri.strip_prefix(PREFIX).ok_or_else(|| not_found(uri))?;
    let (id, name) = rest.split_once('/').ok_or_else(|| not_found(uri))?;
    let id = Uuid::parse_str(id).map_err(|_| not_found(uri))?;
    let kind = KINDS
        .iter()
        .find(|(_, n, _)| *n == name)
        .map(|(k, _, _)| *k)
        .ok_or_else(|| not_found(uri))?;
    match users::get(ctx.shared.store.as_ref(), ctx.ws, id).await {
        Ok(user) => Ok((user, kind)),
        Err(vitasync_engine::Error::NotFound(_)) => Err(not_found(uri)),
        Err(e) => Err(internal(e.into())),
    }
}

async fn content(ctx: &Ctx<'_>, user: &User, kind: Kind) -> Result<String, ErrorData> {
    fn text<T: Serialize>(v: T) -> String {
        serde_json::to_string(&v).unwrap_or_default()
    }
    Ok(match kind {
        Kind::Context => text(context_doc(ctx, user).await.map_err(internal)?),
        Kind::Anomalies => text(anomaly_rows(ctx, user).await.map_err(internal)?),
        Kind::Scores => text(score_rows(ctx, user).await.map_err(internal)?),
    })
}

pub(crate) async fn read(ctx: &Ctx<'_>, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    let (user, kind) = resolve(ctx, uri).await?;
    let body = content(ctx, &user, kind).await?;
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(body, uri).with_mime_type("application/json"),
    ]))
}

/// A hash of the resource's current content: what the store poller compares.
pub(crate) async fn fingerprint(ctx: &Ctx<'_>, uri: &str) -> Result<u64, ErrorData> {
    let (user, kind) = resolve(ctx, uri).await?;
    let body = content(ctx, &user, kind).await?;
    let mut h = DefaultHasher::new();
    body.hash(&mut h);
    Ok(h.finish())
}
