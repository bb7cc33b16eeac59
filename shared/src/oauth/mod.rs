//! The OAuth 2.0 endpoints' logic, one flow per file (client authentication, each grant,
//! introspection, revocation, metadata); the token function only maps HTTP onto these.

pub mod client_auth;
pub mod client_credentials;
pub mod introspection;
pub mod metadata;
pub mod token_revocation;

use serde::Serialize;

use crate::error::OAuthError;
use crate::http::OAuthForm;
use crate::state::AppState;

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
}

/// `POST /oauth2/token`: picks the grant, authenticates the client, runs the grant.
pub async fn token(
    state: &AppState,
    authorization: Option<&str>,
    form: &OAuthForm,
) -> Result<TokenResponse, OAuthError> {
    let grant_type = form.require("grant_type")?;
    if grant_type != "client_credentials" {
        return Err(OAuthError::unsupported_grant_type(format!(
            "grant_type `{grant_type}` is not supported"
        )));
    }
    let client = client_auth::authenticate(state, authorization, form).await?;
    client_credentials::grant(state, &client, form).await
}
