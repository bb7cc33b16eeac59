//! `/v1/agents` and `/v1/agents/{id}`: register, list, read, update, suspend and decommission.

use agentidp_shared::axum::extract::State;
use agentidp_shared::axum::http::StatusCode;
use agentidp_shared::axum::Json;
use agentidp_shared::domain::agents::{Agent, AgentPatch, ListQuery, NewAgent};
use agentidp_shared::domain::page::Page;
use agentidp_shared::domain::scopes;
use agentidp_shared::http::auth::Principal;
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::{ApiJson, ApiQuery};
use agentidp_shared::oauth::federation::TRUST_POLICY_CLAIM;
use agentidp_shared::services::{agents, trust_policies};
use agentidp_shared::state::AppState;

use crate::extract::Ids;

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(new): ApiJson<NewAgent>,
) -> Result<(StatusCode, Json<Agent>), ApiError> {
    let registering = principal.require(scopes::AGENTS_WRITE).is_err()
        && principal.require(scopes::AGENTS_REGISTER).is_ok();
    let agent = if registering {
        // A workflow's registration token: it registers through the trust policy that issued it.
        let claims = &principal.token.claims.extensions;
        let policy_id = claims
            .other
            .get(TRUST_POLICY_CLAIM)
            .and_then(|v| v.as_str())
            .ok_or_else(|| ApiError::insufficient_scope(scopes::AGENTS_WRITE))?;
        let workflow = claims.act.as_ref();
        trust_policies::register_agent(&state, &principal.org_id, policy_id, workflow, new).await?
    } else {
        agents::create(
            &state,
            &principal.org_id,
            &principal.subject,
            principal.is_admin(),
            new,
        )
        .await?
    };
    Ok((StatusCode::CREATED, Json(agent)))
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<Agent>>, ApiError> {
    Ok(Json(agents::list(&state, &principal.org_id, query).await?))
}

pub async fn read(
    State(state): State<AppState>,
    principal: Principal,
    Ids(id): Ids<String>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(agents::get(&state, &principal.org_id, &id).await?))
}

pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Ids(id): Ids<String>,
    ApiJson(patch): ApiJson<AgentPatch>,
) -> Result<Json<Agent>, ApiError> {
    let updated = agents::update(
        &state,
        &principal.org_id,
        &principal.subject,
        principal.is_admin(),
        &id,
        patch,
    )
    .await?;
    // Suspension, and removed capabilities (which live tokens may carry), end the agent's tokens.
    if updated.revokes_tokens() {
        agents::revoke_tokens(&state, &id).await?;
    }
    Ok(Json(updated.agent))
}

/// Idempotent: a second `DELETE` answers 200 with the decommissioned agent, and revokes its
/// tokens again, so a retry after a failed revocation completes it.
pub async fn decommission(
    State(state): State<AppState>,
    principal: Principal,
    Ids(id): Ids<String>,
) -> Result<Json<Agent>, ApiError> {
    let agent = agents::decommission(&state, &principal.org_id, &principal.subject, &id).await?;
    agents::revoke_tokens(&state, &agent.id).await?;
    Ok(Json(agent))
}
