//! `POST /v1/orgs`: sign-up, optionally gated by a configured signup token.

use agentidp_shared::auth;
use agentidp_shared::axum::extract::{FromRequestParts, State};
use agentidp_shared::axum::http::request::Parts;
use agentidp_shared::axum::http::StatusCode;
use agentidp_shared::axum::response::Response;
use agentidp_shared::axum::Json;
use agentidp_shared::error::ApiError;
use agentidp_shared::http::ApiJson;
use agentidp_shared::orgs::{self, NewOrganization};
use agentidp_shared::rate_limit::IpLimited;
use agentidp_shared::state::AppState;

use crate::extract::no_store;

/// Passes when sign-up is open, or when the caller presents the configured signup token.
pub struct SignupAllowed;

impl FromRequestParts<AppState> for SignupAllowed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = state.config.signup_token.as_deref() else {
            return Ok(SignupAllowed);
        };
        match auth::bearer(parts) {
            Some(presented) if orgs::signup_token_matches(expected, presented) => Ok(SignupAllowed),
            _ => {
                let mut e = ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "signup_token_required",
                    "creating an organization here requires `Authorization: Bearer <signup token>`",
                );
                e.www_authenticate = Some(r#"Bearer realm="agentidp-signup""#.into());
                Err(e)
            }
        }
    }
}

/// Rate limited per client IP before the signup token is even compared.
pub async fn create(
    State(state): State<AppState>,
    _: IpLimited,
    _: SignupAllowed,
    ApiJson(new): ApiJson<NewOrganization>,
) -> Result<Response, ApiError> {
    let created = orgs::create(&state, new).await?;
    Ok(no_store((StatusCode::CREATED, Json(created))))
}
