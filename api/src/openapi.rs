//! The OpenAPI 3.1 document, generated from the handlers' annotations and the domain types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "VitaSync API",
        description = "Self-hosted wearable health data: users, samples, daily aggregates, provider connections and keys. \
                       Authenticate with `Authorization: Bearer <API key>`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        routes::system::health,
        routes::system::ready,
        routes::system::metrics,
        routes::workspace::get_workspace,
        routes::workspace::patch_workspace,
        routes::metric_types::list,
        routes::users::create,
        routes::users::list,
        routes::users::get,
        routes::users::patch,
        routes::users::delete,
        routes::health_data::ingest,
        routes::health_data::list,
        routes::health_data::daily,
        routes::health_data::summary,
        routes::api_keys::create,
        routes::api_keys::list,
        routes::api_keys::revoke,
        routes::api_keys::rotate,
        routes::providers::list,
        routes::providers::get,
        routes::webhooks::notify,
        routes::webhooks::verify,
        routes::oauth::authorize,
        routes::oauth::callback,
        routes::connections::create,
        routes::connections::list,
        routes::connections::delete,
        routes::connections::sync,
        routes::connections::job,
        routes::connections::jobs,
        routes::connections::events,
        routes::analytics::baselines,
        routes::analytics::anomalies,
        routes::analytics::acknowledge,
        routes::analytics::dismiss,
        routes::analytics::correlations,
        routes::analytics::scores,
        routes::analytics::latest_scores,
        routes::analytics::records,
        routes::analytics::context,
        routes::analytics::anomalies_alias,
        routes::analytics::correlations_alias,
        routes::notifications::create_channel,
        routes::notifications::list_channels,
        routes::notifications::get_channel,
        routes::notifications::patch_channel,
        routes::notifications::delete_channel,
        routes::notifications::test_channel,
        routes::notifications::create_rule,
        routes::notifications::list_rules,
        routes::notifications::patch_rule,
        routes::notifications::delete_rule,
        routes::notifications::logs,
        routes::webhooks_out::create,
        routes::webhooks_out::list,
        routes::webhooks_out::get,
        routes::webhooks_out::update,
        routes::webhooks_out::remove,
        routes::webhooks_out::rotate_secret,
        routes::webhooks_out::test,
        routes::webhooks_out::deliveries,
        routes::webhooks_out::redeliver,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "system", description = "Liveness, readiness and metrics (no authentication)."),
        (name = "workspace", description = "The caller's workspace."),
        (name = "metrics", description = "The metric catalogue."),
        (name = "users", description = "End users of the integrator's product."),
        (name = "health", description = "Health samples and their daily aggregates."),
        (name = "api-keys", description = "API keys (admin scope)."),
        (name = "providers", description = "Wearable providers and their webhooks."),
        (name = "connections", description = "Provider connections, OAuth, sync jobs and events."),
        (name = "notifications", description = "A user's notification channels, rules and delivery log."),
        (name = "webhooks", description = "Outbound webhooks of the workspace: signed, durable deliveries (admin scope)."),
        (name = "analytics", description = "Materialised analytics: baselines, anomalies, correlations, scores, records."),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key: `vs_…`"))
                    .build(),
            ),
        );
    }
}
