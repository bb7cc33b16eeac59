//! The webhooks function: its routes over the shared core; platform entry points live beside it.

use agentidp_shared::axum::Router;
use agentidp_shared::state::AppState;

/// This function's routes, without the health and OpenAPI routes every function adds.
pub fn routes() -> Router<AppState> {
    Router::new()
}

agentidp_shared::edge_entry_points!(routes);
