//! `/v1/oidc/trust-policies/**`: an organization's trust policies for workload identity federation
//! (create, list, read, delete) and the dry run that says which policy a workflow would match.

use agentidp_shared::axum::extract::{Path, State};
use agentidp_shared::axum::http::StatusCode;
use agentidp_shared::axum::Json;
use agentidp_shared::domain::page::Page;
use agentidp_shared::domain::trust_policies::{NewTrustPolicy, TrustPolicy};
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::{ApiJson, ApiQuery};
use agentidp_shared::oauth::federation::{self, Evaluation, EvaluationRequest};
use agentidp_shared::services::trust_policies::{self, ListQuery};
use agentidp_shared::services::Context;
use agentidp_shared::state::AppState;

/// The policy id of the path; an undecodable one answers like a missing policy.
type PolicyId = Result<Path<String>, agentidp_shared::axum::extract::rejection::PathRejection>;

fn policy_id(path: PolicyId) -> Result<String, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|_| ApiError::not_found("trust policy"))
}

pub async fn create(
    State(state): State<AppState>,
    ctx: Context,
    ApiJson(new): ApiJson<NewTrustPolicy>,
) -> Result<(StatusCode, Json<TrustPolicy>), ApiError> {
    let policy = trust_policies::create(&state, &ctx, new).await?;
    Ok((StatusCode::CREATED, Json(policy)))
}

pub async fn list(
    State(state): State<AppState>,
    ctx: Context,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<TrustPolicy>>, ApiError> {
    Ok(Json(trust_policies::list(&state, ctx.org(), query).await?))
}

pub async fn read(
    State(state): State<AppState>,
    ctx: Context,
    path: PolicyId,
) -> Result<Json<TrustPolicy>, ApiError> {
    let id = policy_id(path)?;
    Ok(Json(trust_policies::get(&state, ctx.org(), &id).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    ctx: Context,
    path: PolicyId,
) -> Result<Json<TrustPolicy>, ApiError> {
    let id = policy_id(path)?;
    let policy = trust_policies::delete(&state, &ctx, &id).await?;
    Ok(Json(policy))
}

/// A dry run: issues nothing, uses no `jti`, pins nothing.
pub async fn evaluate(
    State(state): State<AppState>,
    ctx: Context,
    ApiJson(request): ApiJson<EvaluationRequest>,
) -> Result<Json<Evaluation>, ApiError> {
    Ok(Json(
        federation::evaluate(&state, ctx.org(), request).await?,
    ))
}
