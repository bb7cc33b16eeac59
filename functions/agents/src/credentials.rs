//! `/v1/agents/{id}/credentials/**`: issue, list, rotate and revoke an agent's credentials.

use agentidp_shared::axum::extract::State;
use agentidp_shared::axum::http::StatusCode;
use agentidp_shared::axum::response::Response;
use agentidp_shared::axum::Json;
use agentidp_shared::domain::credentials::{Credential, ListQuery, NewCredential, Rotation};
use agentidp_shared::domain::page::Page;
use agentidp_shared::http::auth::Principal;
use agentidp_shared::http::cache::uncached;
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::ApiQuery;
use agentidp_shared::services::{agents, credentials};
use agentidp_shared::state::AppState;

use crate::extract::{Ids, OptionalJson};

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Ids(agent_id): Ids<String>,
    OptionalJson(new): OptionalJson<NewCredential>,
) -> Result<Response, ApiError> {
    let issued = credentials::create(
        &state,
        &principal.org_id,
        &principal.subject,
        &agent_id,
        new,
    )
    .await?;
    Ok(uncached((StatusCode::CREATED, Json(issued))))
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Ids(agent_id): Ids<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<Credential>>, ApiError> {
    let page = credentials::list(&state, &principal.org_id, &agent_id, query).await?;
    Ok(Json(page))
}

pub async fn rotate(
    State(state): State<AppState>,
    principal: Principal,
    Ids((agent_id, id)): Ids<(String, String)>,
    OptionalJson(rotation): OptionalJson<Rotation>,
) -> Result<Response, ApiError> {
    let issued = credentials::rotate(
        &state,
        &principal.org_id,
        &principal.subject,
        &agent_id,
        &id,
        rotation,
    )
    .await?;
    Ok(uncached(Json(issued)))
}

/// Idempotent, like decommissioning: revoking again answers 200 and revokes the tokens again.
pub async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    Ids((agent_id, id)): Ids<(String, String)>,
) -> Result<Json<Credential>, ApiError> {
    let credential = credentials::revoke(
        &state,
        &principal.org_id,
        &principal.subject,
        &agent_id,
        &id,
    )
    .await?;
    // Tokens do not record which credential obtained them, so all of the agent's go.
    agents::revoke_tokens(&state, &credential.agent_id).await?;
    Ok(Json(credential))
}
