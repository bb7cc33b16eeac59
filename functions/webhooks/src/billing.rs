//! `POST /v1/billing/stripe`: Stripe's webhook, authenticated by its `Stripe-Signature` over the
//! raw body rather than by a token; `404` where `STRIPE_WEBHOOK_SECRET` is not configured.

use agentidp_shared::axum::body::Body;
use agentidp_shared::axum::extract::State;
use agentidp_shared::axum::http::{HeaderMap, StatusCode};
use agentidp_shared::axum::Json;
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::{read_body, BodyError, MAX_BODY_BYTES};
use agentidp_shared::services::billing::{self, Handled};
use agentidp_shared::services::ServiceError;
use agentidp_shared::state::AppState;

/// `200` for every authentic event, acted on or not (Stripe retries anything else); `400` for a
/// missing, bad or stale signature, which changes nothing.
pub async fn stripe(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Handled>, ApiError> {
    if state.config.stripe.is_none() {
        return Err(ServiceError::BillingNotConfigured.into());
    }
    let body = read_body(&headers, body).await.map_err(|e| match e {
        BodyError::TooLarge => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body exceeds {MAX_BODY_BYTES} bytes"),
        ),
        BodyError::Unreadable(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", m),
    })?;
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    Ok(Json(
        billing::handle_stripe(&state, signature, &body).await?,
    ))
}
