//! The agents function: organizations, agents and their credentials, as routes over the shared core.

mod agents;
mod credentials;
mod extract;
mod orgs;
mod usage;

use agentidp_shared::axum::routing::{delete, get, post};
use agentidp_shared::axum::Router;
use agentidp_shared::state::AppState;

/// This function's routes, without the health and OpenAPI routes every function adds.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/orgs", post(orgs::create))
        .route("/v1/agents", post(agents::create).get(agents::list))
        .route(
            "/v1/agents/{id}",
            get(agents::read)
                .patch(agents::update)
                .delete(agents::decommission),
        )
        .route(
            "/v1/agents/{id}/credentials",
            post(credentials::create).get(credentials::list),
        )
        .route(
            "/v1/agents/{id}/credentials/{cid}",
            delete(credentials::revoke),
        )
        .route(
            "/v1/agents/{id}/credentials/{cid}/rotate",
            post(credentials::rotate),
        )
        .route("/v1/usage", get(usage::read))
}

agentidp_shared::edge_entry_points!(routes);
