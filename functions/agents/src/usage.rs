//! `GET /v1/usage`: this month's metered usage and the free tier's allowances.

use agentidp_shared::axum::extract::State;
use agentidp_shared::axum::Json;
use agentidp_shared::domain::scopes;
use agentidp_shared::domain::usage::Usage;
use agentidp_shared::http::auth::Principal;
use agentidp_shared::http::error::ApiError;
use agentidp_shared::services::usage;
use agentidp_shared::state::AppState;

/// Needs `agents:read`: usage is the organization's own bookkeeping, as readable as its agents.
pub async fn read(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Usage>, ApiError> {
    principal.require(scopes::AGENTS_READ)?;
    Ok(Json(usage::read(&state, &principal.org_id).await?))
}
