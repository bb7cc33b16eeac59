//! `/v1/webhooks/{id}/deliveries/**`: the delivery log of a subscription, and re-sending a failed
//! delivery.

use agentidp_shared::axum::extract::State;
use agentidp_shared::axum::http::StatusCode;
use agentidp_shared::axum::Json;
use agentidp_shared::domain::page::Page;
use agentidp_shared::domain::webhooks::{Delivery, ListQuery};
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::ApiQuery;
use agentidp_shared::services::webhooks;
use agentidp_shared::services::Context;
use agentidp_shared::state::AppState;

use crate::extract::Ids;

/// Newest first, each delivery with its attempts.
pub async fn list(
    State(state): State<AppState>,
    ctx: Context,
    Ids(id): Ids<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<Delivery>>, ApiError> {
    let page = webhooks::deliveries(&state, ctx.org(), &id, query).await?;
    Ok(Json(page))
}

/// `202`: the delivery is due again and is attempted after this answer.
pub async fn retry(
    State(state): State<AppState>,
    ctx: Context,
    Ids((id, delivery_id)): Ids<(String, String)>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    let delivery = webhooks::retry(&state, &ctx, &id, &delivery_id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}
