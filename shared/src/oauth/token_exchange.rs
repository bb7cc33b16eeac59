//! RFC 8693 token exchange for workload identity federation: a CI workflow's OIDC token (the
//! subject token, its own credential) becomes an access token for the agent a trust policy names.

use async_trait::async_trait;

use crate::config::Config;
use crate::oauth::error::OAuthError;
use crate::oauth::federation;
use crate::oauth::grant::{CallerAuthentication, Grant, GrantRequest, Issuance, ACCESS_TOKEN_TYPE};
use crate::state::AppState;

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// RFC 8693 §3 token types accepted as the subject token: an OIDC ID token, or a JWT.
const SUBJECT_TOKEN_TYPES: &[&str] = &[
    "urn:ietf:params:oauth:token-type:id_token",
    "urn:ietf:params:oauth:token-type:jwt",
];

/// What this server issues, under either name a client may ask for (RFC 9068 tokens are JWTs).
const REQUESTABLE_TOKEN_TYPES: &[&str] =
    &[ACCESS_TOKEN_TYPE, "urn:ietf:params:oauth:token-type:jwt"];

pub struct TokenExchange;

#[async_trait]
impl Grant for TokenExchange {
    fn grant_type(&self) -> &'static str {
        GRANT_TYPE
    }

    fn authentication(&self) -> CallerAuthentication {
        CallerAuthentication::GrantParameters
    }

    fn is_enabled(&self, config: &Config) -> bool {
        !config.trusted_issuers.is_empty()
    }

    async fn authorize(
        &self,
        state: &AppState,
        request: GrantRequest<'_>,
    ) -> Result<Issuance, OAuthError> {
        let form = request.form;
        let subject_token = form.require("subject_token")?;
        let token_type = form.require("subject_token_type")?;
        if !SUBJECT_TOKEN_TYPES.contains(&token_type) {
            return Err(OAuthError::invalid_request(format!(
                "subject_token_type must be {}",
                SUBJECT_TOKEN_TYPES.join(" or ")
            )));
        }
        if form.get("actor_token").is_some() || form.get("actor_token_type").is_some() {
            return Err(OAuthError::invalid_request(
                "actor_token is not supported: the workflow itself is the actor (`act`)",
            ));
        }
        if let Some(requested) = form.get("requested_token_type") {
            if !REQUESTABLE_TOKEN_TYPES.contains(&requested) {
                return Err(OAuthError::invalid_request(format!(
                    "requested_token_type must be {ACCESS_TOKEN_TYPE}"
                )));
            }
        }
        federation::authorize(state, form, subject_token, Some(ACCESS_TOKEN_TYPE)).await
    }
}
