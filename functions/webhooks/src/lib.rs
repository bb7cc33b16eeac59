//! The webhooks function: its routes over the shared core; platform entry points live beside it.

use agentidp_shared::axum::Router;
use agentidp_shared::http::routes::{Function, Mount};
use agentidp_shared::state::AppState;

/// This function's routes, mounted from the route table.
pub fn routes() -> Router<AppState> {
    Mount::new(Function::Webhooks).finish()
}

agentidp_shared::edge_entry_points!(routes);
