//! `POST /v1/orgs`: sign-up, open or closed by configuration, with a signup token that opens it.

use agentidp_shared::axum::extract::{FromRequestParts, State};
use agentidp_shared::axum::http::request::Parts;
use agentidp_shared::axum::http::StatusCode;
use agentidp_shared::axum::response::Response;
use agentidp_shared::axum::Json;
use agentidp_shared::config::Signup;
use agentidp_shared::domain::orgs::NewOrganization;
use agentidp_shared::http::auth::bearer;
use agentidp_shared::http::cache::uncached;
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::ApiJson;
use agentidp_shared::http::limits::IpLimited;
use agentidp_shared::services::orgs;
use agentidp_shared::state::AppState;

/// Passes when sign-up is open, or when the caller presents the configured signup token.
pub struct SignupAllowed;

impl FromRequestParts<AppState> for SignupAllowed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if orgs::signup_allowed(state, bearer(parts)) {
            return Ok(SignupAllowed);
        }
        if state.config.signup == Signup::Closed {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "signup_closed",
                "sign-up is closed on this deployment: its operator sets AGENTIDP_SIGNUP_TOKEN \
                 (then callers send `Authorization: Bearer <that token>`) or AGENTIDP_SIGNUP=open",
            ));
        }
        let mut e = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "signup_token_required",
            "creating an organization here requires `Authorization: Bearer <signup token>` (the \
             deployment's AGENTIDP_SIGNUP_TOKEN)",
        );
        e.www_authenticate = Some(r#"Bearer realm="agentidp-signup""#.into());
        Err(e)
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
    Ok(uncached((StatusCode::CREATED, Json(created))))
}
