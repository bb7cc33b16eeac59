//! `/v1/agents` and `/v1/agents/{id}`: register, list, read, update, suspend and decommission.

use agentidp_shared::axum::extract::State;
use agentidp_shared::axum::http::StatusCode;
use agentidp_shared::axum::Json;
use agentidp_shared::domain::agents::{Agent, AgentPatch, ListQuery, NewAgent};
use agentidp_shared::domain::authz::registers_through_policy;
use agentidp_shared::domain::caller::AgentId;
use agentidp_shared::domain::page::Page;
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::{ApiJson, ApiQuery};
use agentidp_shared::services::{agents, trust_policies, Context};
use agentidp_shared::state::AppState;

use crate::extract::Ids;

pub async fn create(
    State(state): State<AppState>,
    ctx: Context,
    ApiJson(new): ApiJson<NewAgent>,
) -> Result<(StatusCode, Json<Agent>), ApiError> {
    let agent = match registers_through_policy(&ctx.caller) {
        // A workflow's registration token: it registers through the trust policy that issued it.
        Some(policy_id) => {
            let policy_id = policy_id.to_owned();
            trust_policies::register_agent(&state, &ctx, &policy_id, new).await?
        }
        None => agents::create(&state, &ctx, new).await?,
    };
    Ok((StatusCode::CREATED, Json(agent)))
}

pub async fn list(
    State(state): State<AppState>,
    ctx: Context,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<Agent>>, ApiError> {
    Ok(Json(agents::list(&state, ctx.org(), query).await?))
}

pub async fn read(
    State(state): State<AppState>,
    ctx: Context,
    Ids(id): Ids<AgentId>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(agents::get(&state, ctx.org(), &id).await?))
}

pub async fn update(
    State(state): State<AppState>,
    ctx: Context,
    Ids(id): Ids<AgentId>,
    ApiJson(patch): ApiJson<AgentPatch>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(agents::update(&state, &ctx, &id, patch).await?))
}

/// Idempotent: a second `DELETE` answers 200 with the decommissioned agent.
pub async fn decommission(
    State(state): State<AppState>,
    ctx: Context,
    Ids(id): Ids<AgentId>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(agents::decommission(&state, &ctx, &id).await?))
}
