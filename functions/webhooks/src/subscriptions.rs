//! `/v1/webhooks` and `/v1/webhooks/{id}`: create, list, read, update and delete subscriptions,
//! rotate a signing secret, send a test event.

use agentidp_shared::axum::extract::State;
use agentidp_shared::axum::http::StatusCode;
use agentidp_shared::axum::response::Response;
use agentidp_shared::axum::Json;
use agentidp_shared::domain::page::Page;
use agentidp_shared::domain::webhooks::{
    Delivery, ListQuery, NewSubscription, SecretRotation, Subscription, SubscriptionPatch,
};
use agentidp_shared::http::cache::uncached;
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::{ApiJson, ApiQuery, OptionalJson};
use agentidp_shared::services::webhooks;
use agentidp_shared::services::Context;
use agentidp_shared::state::AppState;

use crate::extract::Ids;

/// The signing secret is in this answer only: no cache may keep it.
pub async fn create(
    State(state): State<AppState>,
    ctx: Context,
    ApiJson(new): ApiJson<NewSubscription>,
) -> Result<Response, ApiError> {
    let created = webhooks::create(&state, &ctx, new).await?;
    Ok(uncached((StatusCode::CREATED, Json(created))))
}

pub async fn list(
    State(state): State<AppState>,
    ctx: Context,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<Subscription>>, ApiError> {
    Ok(Json(webhooks::list(&state, ctx.org(), query).await?))
}

pub async fn read(
    State(state): State<AppState>,
    ctx: Context,
    Ids(id): Ids<String>,
) -> Result<Json<Subscription>, ApiError> {
    Ok(Json(webhooks::get(&state, ctx.org(), &id).await?))
}

pub async fn update(
    State(state): State<AppState>,
    ctx: Context,
    Ids(id): Ids<String>,
    ApiJson(patch): ApiJson<SubscriptionPatch>,
) -> Result<Json<Subscription>, ApiError> {
    let updated = webhooks::update(&state, &ctx, &id, patch).await?;
    Ok(Json(updated))
}

pub async fn delete(
    State(state): State<AppState>,
    ctx: Context,
    Ids(id): Ids<String>,
) -> Result<StatusCode, ApiError> {
    webhooks::delete(&state, &ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rotate(
    State(state): State<AppState>,
    ctx: Context,
    Ids(id): Ids<String>,
    OptionalJson(rotation): OptionalJson<SecretRotation>,
) -> Result<Response, ApiError> {
    let rotated = webhooks::rotate_secret(&state, &ctx, &id, rotation).await?;
    Ok(uncached(Json(rotated)))
}

/// `202`: the test event is enqueued and delivered after this answer; its log shows the outcome.
pub async fn test(
    State(state): State<AppState>,
    ctx: Context,
    Ids(id): Ids<String>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    let delivery = webhooks::send_test(&state, &ctx, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}
