//! The `ServerHandler`: what the server says about itself, and which workspace each request
//! acts for (fixed for stdio; the authenticated API key's for HTTP, per request).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ErrorData, Extensions, GetPromptRequestParams,
    GetPromptResponse, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ServerCapabilities, ServerConfig, SubscribeRequestParams,
    SubscriptionFilter, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{RoleServer, ServerHandler};
use tokio::sync::watch;
use vitasync_engine::analytics::Epoch;
use vitasync_engine::domain::WorkspaceId;
use vitasync_engine::store::DynStore;

use crate::subscriptions::{Subscriptions, Target};
use crate::{prompts, resources, tools};

const INSTRUCTIONS: &str = "VitaSync holds wearable health data (samples, workouts, sleep) and \
always-fresh analytics computed from it (baselines, anomalies, correlations, daily health \
scores, personal records) for the users of one workspace. Everything is read-only. Find a \
user with list_users, then start with get_health_context(user_id): it summarises everything \
known in one document. Drill down with get_anomaly_alerts, get_health_scores, \
get_correlations, get_personal_records, query_health_metrics (raw or daily values) and \
get_events (workouts, sleep); list_connections shows whether a user's devices sync. Answers \
are capped: narrow dates or filters when `truncated` is true. Resources \
vitasync://users/{user_id}/context|anomalies|scores can be subscribed to for updates. The \
data is not a diagnosis; suggest a clinician for anything concerning.";

/// Who an HTTP request acts for; the API's auth layer puts it on the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub workspace_id: WorkspaceId,
}

/// What every session of the server shares.
#[derive(Clone)]
pub struct Shared {
    pub store: DynStore,
    /// The epoch the analytics tables reflect, when this process runs the analytics.
    pub epoch: Option<watch::Receiver<Epoch>>,
    pub subscriptions: Arc<Subscriptions>,
}

#[derive(Debug, Clone, Copy)]
enum Tenancy {
    /// stdio: the workspace of the key the process was started with.
    Fixed(WorkspaceId),
    /// HTTP: the workspace of the key each request carries.
    PerRequest,
}

/// One MCP session's handler.
#[derive(Clone)]
pub struct VitaSyncMcp {
    pub(crate) shared: Shared,
    tenancy: Tenancy,
    /// Identifies this session's subscriptions.
    pub(crate) session: u64,
}

static SESSIONS: AtomicU64 = AtomicU64::new(1);

fn next_session() -> u64 {
    SESSIONS.fetch_add(1, Ordering::Relaxed)
}

impl VitaSyncMcp {
    /// A session bound to one workspace (stdio).
    pub fn for_workspace(shared: Shared, ws: WorkspaceId) -> Self {
        Self::new(shared, Tenancy::Fixed(ws))
    }

    /// A session whose requests carry their own [`Caller`] (HTTP).
    pub fn per_request(shared: Shared) -> Self {
        Self::new(shared, Tenancy::PerRequest)
    }

    fn new(shared: Shared, tenancy: Tenancy) -> Self {
        VitaSyncMcp {
            shared,
            tenancy,
            session: next_session(),
        }
    }

    /// The workspace this request acts for.
    pub(crate) fn workspace(&self, ext: &Extensions) -> Result<WorkspaceId, ErrorData> {
        match self.tenancy {
            Tenancy::Fixed(ws) => Ok(ws),
            Tenancy::PerRequest => rmcp_actix_web::transport::on_request_extensions(ext)
                .and_then(|e| e.get::<Caller>())
                .map(|c| c.workspace_id)
                .ok_or_else(|| ErrorData::invalid_request("not authenticated", None)),
        }
    }

    /// Registers `uri` (of a user of `ws`) for `session`; errors when the URI names nothing
    /// the workspace can see.
    async fn watch(
        &self,
        session: u64,
        ws: WorkspaceId,
        uri: String,
        target: Target,
    ) -> Result<(), ErrorData> {
        let ctx = self.ctx(ws);
        let (user, _) = resources::resolve(&ctx, &uri).await?;
        let fingerprint = if self.shared.subscriptions.polls() {
            Some(resources::fingerprint(&ctx, &uri).await?)
        } else {
            None
        };
        self.shared
            .subscriptions
            .add(session, ws, user.id, uri, target, fingerprint);
        Ok(())
    }

    pub(crate) fn ctx(&self, ws: WorkspaceId) -> tools::Ctx<'_> {
        tools::Ctx {
            shared: &self.shared,
            ws,
        }
    }
}

#[allow(deprecated)] // resources/subscribe is how clients before protocol 2026-07-28 subscribe
impl ServerHandler for VitaSyncMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_prompts()
                .build(),
        )
        .with_server_info(Implementation::new("vitasync", vitasync_engine::VERSION))
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::list()))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        tools::list().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        req: CallToolRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let ws = self.workspace(&cx.extensions)?;
        let args = req.arguments.unwrap_or_default();
        match tools::call(&self.ctx(ws), &req.name, args).await {
            Some(result) => Ok(result.into()),
            None => Err(ErrorData::invalid_params(
                format!("no tool named '{}'; tools/list lists them", req.name),
                None,
            )),
        }
    }

    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let ws = self.workspace(&cx.extensions)?;
        resources::list(&self.ctx(ws)).await
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        req: ReadResourceRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let ws = self.workspace(&cx.extensions)?;
        Ok(resources::read(&self.ctx(ws), &req.uri).await?.into())
    }

    async fn subscribe(
        &self,
        req: SubscribeRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let ws = self.workspace(&cx.extensions)?;
        self.watch(self.session, ws, req.uri, Target::Session(cx.peer.clone()))
            .await
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // Only resource updates, and only for URIs of our shape; whether the user is visible to
        // the caller is checked in `listen`, where the request's workspace is known.
        let mut accepted = SubscriptionFilter::new();
        accepted.resource_subscriptions = Some(
            requested
                .resource_subscriptions
                .iter()
                .flatten()
                .filter(|uri| resources::is_ours(uri))
                .cloned()
                .collect(),
        );
        Some(accepted)
    }

    async fn listen(&self, cx: SubscriptionContext) -> Result<(), ErrorData> {
        let ws = self.workspace(&cx.request_context().extensions)?;
        // Each stream is its own subscriber, so ending it forgets exactly its URIs.
        let stream = next_session();
        for uri in cx.accepted().resource_subscriptions.iter().flatten() {
            let target = Target::Stream(cx.sink().clone());
            // A URI of another workspace's user is acknowledged by the SDK but never
            // registered, so nothing about it is ever sent.
            if let Err(e) = self.watch(stream, ws, uri.clone(), target).await {
                tracing::debug!(%uri, error = %e.message, "not watching a resource");
            }
        }
        cx.cancelled().await;
        self.shared.subscriptions.remove_session(stream);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        req: UnsubscribeRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.shared.subscriptions.remove(self.session, &req.uri);
        Ok(())
    }

    async fn list_prompts(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(prompts::list()))
    }

    async fn get_prompt(
        &self,
        req: GetPromptRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let ws = self.workspace(&cx.extensions)?;
        Ok(prompts::get(&self.ctx(ws), &req.name, req.arguments)
            .await?
            .into())
    }
}
