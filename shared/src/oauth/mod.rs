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
use crate::rate_limit::{self, Admitted, DecisionSlot, Meter, Subject};
use crate::state::AppState;

use client_auth::AuthenticatedClient;

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
    slot: &DecisionSlot,
    client_ip: &str,
    authorization: Option<&str>,
    form: &OAuthForm,
) -> Result<TokenResponse, OAuthError> {
    let grant_type = form.require("grant_type")?;
    if grant_type != "client_credentials" {
        return Err(OAuthError::unsupported_grant_type(format!(
            "grant_type `{grant_type}` is not supported"
        )));
    }
    let client = authenticate_client(state, slot, client_ip, authorization, form).await?;
    client_credentials::grant(state, slot, &client, form).await
}

/// Client authentication for every `/oauth2/*` endpoint. A failure counts against the caller's IP:
/// past that limit failures answer 429, so guessing and enumeration are throttled per address.
/// Successes are counted per client afterwards (`admit_client`), once the client is known.
pub async fn authenticate_client(
    state: &AppState,
    slot: &DecisionSlot,
    client_ip: &str,
    authorization: Option<&str>,
    form: &OAuthForm,
) -> Result<AuthenticatedClient, OAuthError> {
    match client_auth::authenticate(state, authorization, form).await {
        Err(e) if e.error == "invalid_client" => {
            let subject = Subject::Ip(client_ip);
            rate_limit::admit(state, slot, subject, Meter::Nothing, Vec::new()).await?;
            Err(e)
        }
        other => other,
    }
}

/// Counts an authenticated client's request against its limit and meters it as an API call of its
/// organization, reading `reads` in the same round trip.
pub async fn admit_client(
    state: &AppState,
    slot: &DecisionSlot,
    client: &AuthenticatedClient,
    reads: Vec<String>,
) -> Result<Admitted, OAuthError> {
    let meter = Meter::ApiCall {
        org_id: &client.org_id,
    };
    Ok(rate_limit::admit(
        state,
        slot,
        Subject::Client(&client.client_id),
        meter,
        reads,
    )
    .await?)
}
