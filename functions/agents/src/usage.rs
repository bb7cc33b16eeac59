//! `GET /v1/usage`: this month's metered usage and the free tier's allowances.

use agentidp_shared::axum::extract::State;
use agentidp_shared::axum::Json;
use agentidp_shared::domain::usage::Usage;
use agentidp_shared::http::error::ApiError;
use agentidp_shared::services::usage;
use agentidp_shared::services::Context;
use agentidp_shared::state::AppState;

/// Needs `agents:read` (the route table says so): usage is as readable as the agents.
pub async fn read(State(state): State<AppState>, ctx: Context) -> Result<Json<Usage>, ApiError> {
    Ok(Json(usage::read(&state, ctx.org()).await?))
}
