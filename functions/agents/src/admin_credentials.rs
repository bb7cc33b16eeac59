//! `/v1/orgs/credentials/**`: the organization's own admin credentials, listed, created, rotated
//! and revoked by its admins (`orgs:read` / `orgs:write`, which no agent can hold).

use agentidp_shared::axum::extract::State;
use agentidp_shared::axum::http::StatusCode;
use agentidp_shared::axum::response::Response;
use agentidp_shared::axum::Json;
use agentidp_shared::domain::credentials::{ListQuery, Rotation};
use agentidp_shared::domain::orgs::OrgCredential;
use agentidp_shared::domain::page::Page;
use agentidp_shared::http::cache::uncached;
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::ApiQuery;
use agentidp_shared::services::admin_credentials;
use agentidp_shared::services::Context;
use agentidp_shared::state::AppState;

use crate::extract::{Ids, OptionalJson};

pub async fn list(
    State(state): State<AppState>,
    ctx: Context,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<OrgCredential>>, ApiError> {
    Ok(Json(
        admin_credentials::list(&state, ctx.org(), query).await?,
    ))
}

pub async fn create(State(state): State<AppState>, ctx: Context) -> Result<Response, ApiError> {
    let issued = admin_credentials::create(&state, &ctx).await?;
    Ok(uncached((StatusCode::CREATED, Json(issued))))
}

pub async fn rotate(
    State(state): State<AppState>,
    ctx: Context,
    Ids(id): Ids<String>,
    OptionalJson(rotation): OptionalJson<Rotation>,
) -> Result<Response, ApiError> {
    let issued = admin_credentials::rotate(&state, &ctx, &id, rotation).await?;
    Ok(uncached(Json(issued)))
}

/// Idempotent; revokes the tokens obtained with the credential too.
pub async fn revoke(
    State(state): State<AppState>,
    ctx: Context,
    Ids(id): Ids<String>,
) -> Result<Json<OrgCredential>, ApiError> {
    let credential = admin_credentials::revoke(&state, &ctx, &id).await?;
    Ok(Json(credential))
}
