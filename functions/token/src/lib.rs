//! The token function: `/oauth2/*` and `/.well-known/*` over the shared OAuth core.

use agentidp_shared::app::JWKS_MAX_AGE;
use agentidp_shared::axum::extract::State;
use agentidp_shared::axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use agentidp_shared::axum::response::{IntoResponse, Response};
use agentidp_shared::axum::routing::{get, post};
use agentidp_shared::axum::{Json, Router};
use agentidp_shared::error::{no_store, ApiError, OAuthError};
use agentidp_shared::http::{ClientIp, OAuthForm};
use agentidp_shared::oauth::{self, introspection, metadata, token_revocation};
use agentidp_shared::rate_limit::DecisionSlot;
use agentidp_shared::state::AppState;

/// This function's routes, without the health and OpenAPI routes every function adds.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth2/token", post(token))
        .route("/oauth2/introspect", post(introspect))
        .route("/oauth2/revoke", post(revoke))
        .route("/.well-known/jwks.json", get(jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            get(server_metadata),
        )
        .route("/.well-known/openid-configuration", get(server_metadata))
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// Every `/oauth2/*` answer, success or error, is uncacheable (RFC 6749 §5.1).
fn uncached(mut response: Response) -> Response {
    no_store(&mut response);
    response
}

async fn token(
    State(state): State<AppState>,
    slot: DecisionSlot,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: OAuthForm,
) -> Response {
    match oauth::token(&state, &slot, &ip, authorization(&headers), &form).await {
        Ok(issued) => uncached(Json(issued).into_response()),
        Err(e) => e.into_response(),
    }
}

async fn introspect(
    State(state): State<AppState>,
    slot: DecisionSlot,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: OAuthForm,
) -> Response {
    let result = async {
        let caller =
            oauth::authenticate_client(&state, &slot, &ip, authorization(&headers), &form).await?;
        let token = form.require("token")?;
        introspection::introspect(&state, &slot, &caller, token).await
    }
    .await;
    match result {
        Ok(body) => uncached(Json(body).into_response()),
        Err(e) => e.into_response(),
    }
}

async fn revoke(
    State(state): State<AppState>,
    slot: DecisionSlot,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: OAuthForm,
) -> Response {
    let result: Result<(), OAuthError> = async {
        let caller =
            oauth::authenticate_client(&state, &slot, &ip, authorization(&headers), &form).await?;
        let token = form.require("token")?;
        token_revocation::revoke(&state, &slot, &caller, token).await
    }
    .await;
    match result {
        Ok(()) => uncached(StatusCode::OK.into_response()),
        Err(e) => e.into_response(),
    }
}

fn cacheable_json(body: String, max_age_seconds: u64) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age_seconds}")) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    response
}

async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let keys = state.key_set().await?;
    Ok(cacheable_json(keys.jwks.clone(), JWKS_MAX_AGE.as_secs()))
}

async fn server_metadata(State(state): State<AppState>) -> Response {
    cacheable_json(metadata::document(&state.config).to_string(), 3600)
}

agentidp_shared::edge_entry_points!(routes);
