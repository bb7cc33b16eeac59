//! `POST /v1/billing/stripe`: Stripe's webhook, authenticated by its `Stripe-Signature` over the
//! raw body rather than by a token; `404` where `STRIPE_WEBHOOK_SECRET` is not configured.

use agentidp_shared::axum::extract::State;
use agentidp_shared::axum::http::HeaderMap;
use agentidp_shared::axum::Json;
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::RawBody;
use agentidp_shared::services::billing::{self, Handled};
use agentidp_shared::state::AppState;

/// `200` for every authentic event, acted on or not (Stripe retries anything else); `400` for a
/// missing, bad or stale signature, which changes nothing.
pub async fn stripe(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Handled>, ApiError> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    Ok(Json(
        billing::handle_stripe(&state, signature, &body).await?,
    ))
}
