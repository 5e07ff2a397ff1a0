//! Who is in the workspace: `list_users` and `list_connections`.

use schemars::JsonSchema;
use serde::Deserialize;
use vitasync_engine::cursor::{Cursor, Limit};
use vitasync_engine::domain::{ConnectionStatus, ConnectionView};

use super::{Ctx, Rows, ToolError, limit, to_values};

/// At most this many connections in one answer.
const MAX_CONNECTIONS: u32 = 200;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListUsersArgs {
    /// Only users whose external id, display name or email contains this text
    /// (case-insensitive).
    pub search: Option<String>,
    /// Users per page, 1-200 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` from the previous answer, to get the next page.
    pub cursor: Option<String>,
}

pub async fn list_users(ctx: &Ctx<'_>, a: ListUsersArgs) -> Result<Rows, ToolError> {
    let limit = Limit(limit(a.limit, 50, 200)?);
    let after = a
        .cursor
        .as_deref()
        .map(|c| {
            Cursor::decode(c).map_err(|_| {
                ToolError::new(
                    "invalid argument `cursor`: pass the `next_cursor` of a previous answer unchanged",
                )
            })
        })
        .transpose()?;
    let store = ctx.shared.store.as_ref();
    let search = a.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let page = store.list_users(ctx.ws, None, search, limit, after).await?;
    Ok(Rows {
        data: to_values(&page.items)?,
        truncated: page.next.is_some(),
        next_cursor: page.next.map(|c| c.encode()),
        epoch: None,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListConnectionsArgs {
    /// Only this user's connections (a user id from list_users); all users when absent.
    pub user_id: Option<String>,
    /// Only connections to this provider, e.g. `fitbit`, `whoop`, `demo`.
    pub provider: Option<String>,
    /// Only connections in this state: active, error, reauth_required or disconnected.
    pub status: Option<String>,
}

pub async fn list_connections(ctx: &Ctx<'_>, a: ListConnectionsArgs) -> Result<Rows, ToolError> {
    let status = a
        .status
        .as_deref()
        .map(|s| {
            ConnectionStatus::parse(s).ok_or_else(|| {
                ToolError::new(
                    "invalid argument `status`: must be one of active, error, reauth_required, disconnected",
                )
            })
        })
        .transpose()?;
    let store = ctx.shared.store.as_ref();
    let all = match a.user_id.as_deref() {
        Some(raw) => store.list_connections(&ctx.user(raw).await?).await?,
        None => {
            store
                .workspace_connections(ctx.ws, MAX_CONNECTIONS + 1)
                .await?
        }
    };
    // The workspace-wide read stops at the cap; say so even when the filters leave fewer.
    let capped = all.len() > MAX_CONNECTIONS as usize;
    let views: Vec<ConnectionView> = all
        .iter()
        .filter(|c| a.provider.as_deref().is_none_or(|p| c.provider == p))
        .filter(|c| status.is_none_or(|s| c.status == s))
        .map(ConnectionView::from)
        .collect();
    let mut rows = Rows::first(to_values(&views)?, MAX_CONNECTIONS as usize, None);
    rows.truncated |= capped;
    Ok(rows)
}
