//! The OAuth 2.0 endpoints' logic: the grant contract and one file per grant, client
//! authentication, introspection, revocation and metadata. The token function only maps HTTP onto
//! these.

pub mod client_auth;
pub mod client_credentials;
pub mod error;
pub mod failed_authentication;
pub mod federation;
pub mod form;
pub mod grant;
pub mod introspection;
pub mod jwt_bearer;
pub mod metadata;
pub mod observe;
pub mod revocation;
pub mod token_exchange;

use crate::limits::{Admitted, DecisionSlot, Meter, Subject};
use crate::state::AppState;

use client_auth::AuthenticatedClient;
use error::{ErrorCode, OAuthError};
use form::OAuthForm;
use grant::{CallerAuthentication, Grant, GrantRequest, TokenResponse};

/// Every grant this server supports, in the order the metadata lists them. A new grant is a new
/// file and one line here.
pub static GRANTS: &[&dyn Grant] = &[
    &client_credentials::ClientCredentials,
    &token_exchange::TokenExchange,
    &jwt_bearer::JwtBearer,
];

/// `POST /oauth2/token`: picks the grant by `grant_type`, authenticates the caller the way that
/// grant says, lets it decide, and issues through the one issuance path.
pub async fn token(
    state: &AppState,
    slot: &DecisionSlot,
    client_ip: &str,
    authorization: Option<&str>,
    form: &OAuthForm,
) -> Result<TokenResponse, OAuthError> {
    let grant_type = form.require("grant_type")?;
    let grant = GRANTS
        .iter()
        .find(|g| g.grant_type() == grant_type && g.is_enabled(&state.config))
        .ok_or_else(|| {
            OAuthError::unsupported_grant_type(format!(
                "grant_type `{grant_type}` is not supported"
            ))
        })?;
    let client = match grant.authentication() {
        CallerAuthentication::Client => {
            Some(authenticate_client(state, slot, client_ip, authorization, form).await?)
        }
        CallerAuthentication::GrantParameters => {
            // RFC 6749 §5.2: credentials a caller presents are checked even where the grant needs
            // none; wrong ones are `invalid_client`, not ignored.
            if client_auth::presents_credentials(authorization, form) {
                authenticate_client(state, slot, client_ip, authorization, form).await?;
            }
            None
        }
    };
    let request = GrantRequest {
        form,
        client: client.as_ref(),
    };
    let issuance = match grant.authorize(state, request).await {
        // A grant whose parameters are its credential is unauthenticated: its refusals count
        // against the caller's IP, so guessing and replaying are throttled per address.
        Err(e)
            if client.is_none()
                && matches!(e.code, ErrorCode::InvalidGrant | ErrorCode::InvalidRequest) =>
        {
            let subject = Subject::Ip(client_ip);
            state
                .limiter
                .admit(slot, subject, Meter::Nothing, Vec::new())
                .await?;
            return Err(e);
        }
        other => other?,
    };
    grant::issue(state, slot, client_ip, grant.grant_type(), issuance).await
}

/// Client authentication for every `/oauth2/*` endpoint. The failure budgets of the caller's
/// address and of the client it claims to be are checked first, before any lookup or comparison
/// (`failed_authentication`); a failure then spends from both (or only the address's, once the
/// client's is spent). Successes are counted per client
/// afterwards (`admit_client`), once the client is known.
pub async fn authenticate_client(
    state: &AppState,
    slot: &DecisionSlot,
    client_ip: &str,
    authorization: Option<&str>,
    form: &OAuthForm,
) -> Result<AuthenticatedClient, OAuthError> {
    let presented = client_auth::presented_credentials(authorization, form);
    let claimed = presented.as_ref().ok().map(|p| p.client_id());
    let budget = failed_authentication::ensure_budget(state, slot, client_ip, claimed).await?;
    let presented = match presented {
        Ok(presented) => presented,
        Err(e) => {
            if e.error() == "invalid_client" {
                failed_authentication::record(state, slot, client_ip, None, None, budget).await?;
            }
            return Err(e);
        }
    };
    match client_auth::authenticate(state, &presented).await? {
        Ok(client) => Ok(client),
        Err(rejected) => {
            let claimed = Some(presented.client_id());
            failed_authentication::record(state, slot, client_ip, claimed, Some(&rejected), budget)
                .await?;
            Err(OAuthError::invalid_client("client authentication failed"))
        }
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
    Ok(state
        .limiter
        .admit(slot, Subject::Client(&client.client_id), meter, reads)
        .await?)
}
