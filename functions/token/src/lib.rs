//! The token function: `/oauth2/*` and `/.well-known/*` over the shared OAuth core, and the
//! operator's `/v1/operator/*` (it owns the signing keys).

use agentidp_shared::axum::extract::State;
use agentidp_shared::axum::http::{header, HeaderMap, StatusCode};
use agentidp_shared::axum::response::{IntoResponse, Response};
use agentidp_shared::axum::{Json, Router};
use agentidp_shared::domain::authz::Operation;
use agentidp_shared::domain::validate::Invalid;
use agentidp_shared::http::app::JWKS_MAX_AGE;
use agentidp_shared::http::cache::{cacheable_json, uncached};
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::{ClientIp, OptionalJson};
use agentidp_shared::http::limits::IpLimited;
use agentidp_shared::http::operator::OperatorCall;
use agentidp_shared::http::routes::{Function, Mount};
use agentidp_shared::jose::jwk::Alg;
use agentidp_shared::limits::DecisionSlot;
use agentidp_shared::oauth::error::OAuthError;
use agentidp_shared::oauth::form::OAuthForm;
use agentidp_shared::oauth::{self, introspection, metadata, observe, revocation};
use agentidp_shared::services::operator;
use agentidp_shared::state::AppState;

/// This function's routes, mounted from the route table.
pub fn routes() -> Router<AppState> {
    Mount::new(Function::Token)
        .handle(Operation::IssueToken, token)
        .handle(Operation::IntrospectToken, introspect)
        .handle(Operation::RevokeToken, revoke)
        .handle(Operation::GetJwks, jwks)
        .handle(Operation::GetAuthorizationServerMetadata, server_metadata)
        .handle(Operation::GetOpenidConfiguration, server_metadata)
        .handle(Operation::RotateSigningKey, rotate_signing_key)
        .handle(Operation::GetMigrationStatus, migration_status)
        .handle(Operation::GetOperatorHealth, operator_health)
        .finish()
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// Every `/oauth2/*` answer, success or error, is uncacheable (RFC 6749 §5.1).
fn answer<T: IntoResponse>(result: Result<T, OAuthError>) -> Response {
    match result {
        Ok(body) => uncached(body),
        Err(e) => e.into_response(),
    }
}

async fn token(
    State(state): State<AppState>,
    slot: DecisionSlot,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: OAuthForm,
) -> Response {
    let issued = oauth::token(&state, &slot, &ip, authorization(&headers), &form).await;
    observe::token_request(&form, &issued);
    observe::client_authentication(authorization(&headers), &form, &issued);
    answer(issued.map(Json))
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
    observe::client_authentication(authorization(&headers), &form, &result);
    answer(result.map(Json))
}

async fn revoke(
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
        revocation::revoke(&state, &slot, &caller, token).await
    }
    .await;
    observe::client_authentication(authorization(&headers), &form, &result);
    answer(result.map(|()| StatusCode::OK))
}

async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let keys = state.key_set().await?;
    Ok(cacheable_json(keys.jwks.clone(), JWKS_MAX_AGE.as_secs()))
}

async fn server_metadata(State(state): State<AppState>) -> Response {
    cacheable_json(metadata::document(&state.config).to_string(), 3600)
}

agentidp_shared::edge_entry_points!(routes);

/// `POST /v1/operator/keys/rotate` body: the new key's algorithm (`ES256` unless given).
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    alg: Option<String>,
}

async fn rotate_signing_key(
    State(state): State<AppState>,
    _: IpLimited,
    OperatorCall(op): OperatorCall,
    OptionalJson(request): OptionalJson<RotateRequest>,
) -> Result<Response, ApiError> {
    let alg = match request.alg.as_deref() {
        None => Alg::Es256,
        Some(name) => {
            Alg::parse(name).ok_or_else(|| Invalid::new("alg", "must be `ES256` or `EdDSA`"))?
        }
    };
    let rotated = operator::rotate_signing_key(&state, &op, alg).await?;
    Ok(uncached((StatusCode::CREATED, Json(rotated))))
}

async fn migration_status(
    State(state): State<AppState>,
    _: IpLimited,
    OperatorCall(op): OperatorCall,
) -> Result<Response, ApiError> {
    Ok(uncached(Json(
        operator::migration_status(&state, &op).await?,
    )))
}

async fn operator_health(
    State(state): State<AppState>,
    _: IpLimited,
    OperatorCall(op): OperatorCall,
) -> Response {
    let (healthy, body) = operator::health(&state, &op).await;
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    uncached((status, Json(body)))
}
