//! `/v1/agents/{id}/credentials/**`: issue, list, rotate and revoke an agent's credentials.

use agentidp_shared::axum::extract::State;
use agentidp_shared::axum::http::StatusCode;
use agentidp_shared::axum::response::Response;
use agentidp_shared::axum::Json;
use agentidp_shared::domain::caller::AgentId;
use agentidp_shared::domain::credentials::{Credential, ListQuery, NewCredential, Rotation};
use agentidp_shared::domain::page::Page;
use agentidp_shared::http::cache::uncached;
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::ApiQuery;
use agentidp_shared::services::{credentials, Context};
use agentidp_shared::state::AppState;

use crate::extract::{Ids, OptionalJson};

pub async fn create(
    State(state): State<AppState>,
    ctx: Context,
    Ids(agent_id): Ids<AgentId>,
    OptionalJson(new): OptionalJson<NewCredential>,
) -> Result<Response, ApiError> {
    let issued = credentials::create(&state, &ctx, &agent_id, new).await?;
    Ok(uncached((StatusCode::CREATED, Json(issued))))
}

pub async fn list(
    State(state): State<AppState>,
    ctx: Context,
    Ids(agent_id): Ids<AgentId>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<Credential>>, ApiError> {
    let page = credentials::list(&state, ctx.org(), &agent_id, query).await?;
    Ok(Json(page))
}

pub async fn rotate(
    State(state): State<AppState>,
    ctx: Context,
    Ids((agent_id, id)): Ids<(AgentId, String)>,
    OptionalJson(rotation): OptionalJson<Rotation>,
) -> Result<Response, ApiError> {
    let issued = credentials::rotate(&state, &ctx, &agent_id, &id, rotation).await?;
    Ok(uncached(Json(issued)))
}

/// Idempotent, like decommissioning: revoking again answers 200 and revokes the tokens again.
pub async fn revoke(
    State(state): State<AppState>,
    ctx: Context,
    Ids((agent_id, id)): Ids<(AgentId, String)>,
) -> Result<Json<Credential>, ApiError> {
    Ok(Json(
        credentials::revoke(&state, &ctx, &agent_id, &id).await?,
    ))
}
