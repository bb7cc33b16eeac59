//! Token introspection (RFC 7662): an authenticated client of the same organization learns whether a
//! token is active; anything invalid, expired, revoked or foreign is simply `{"active": false}`.

use serde_json::{json, Value};

use crate::jose::access_token::VerifiedToken;
use crate::limits::DecisionSlot;
use crate::oauth::client_auth::AuthenticatedClient;
use crate::oauth::error::OAuthError;
use crate::services::revocation;
use crate::state::AppState;

pub async fn introspect(
    state: &AppState,
    slot: &DecisionSlot,
    caller: &AuthenticatedClient,
    token: &str,
) -> Result<Value, OAuthError> {
    let Some(verified) = admit_with_live_token(state, slot, caller, token).await? else {
        return Ok(inactive());
    };
    // Another organization's token is reported inactive, so introspection cannot probe tenants.
    if verified.claims.org_id != caller.org_id {
        return Ok(inactive());
    }
    let mut body = json!({
        "active": true,
        "scope": verified.claims.scope,
        "client_id": verified.claims.client_id,
        "sub": verified.subject,
        "aud": verified.audiences,
        "iss": state.config.issuer,
        "exp": verified.expires_at,
        "iat": verified.issued_at,
        "nbf": verified.issued_at,
        "jti": verified.jti,
        "token_type": "Bearer",
        "org_id": verified.claims.org_id,
    });
    let extensions = &verified.claims.extensions;
    if let Some(act) = &extensions.act {
        body["act"] = act.clone();
    }
    if let Some(cnf) = &extensions.cnf {
        body["cnf"] = cnf.clone();
    }
    Ok(body)
}

fn inactive() -> Value {
    json!({ "active": false })
}

/// Admits the calling client and returns `token` if this issuer signed it and it is unexpired and
/// unrevoked (any audience). The admission and the token's revocation entries share one round trip.
pub async fn admit_with_live_token(
    state: &AppState,
    slot: &DecisionSlot,
    caller: &AuthenticatedClient,
    token: &str,
) -> Result<Option<VerifiedToken>, OAuthError> {
    let verified = state.verify_access_token(token).await?.ok();
    let reads = verified.as_ref().map(revocation::keys).unwrap_or_default();
    let admitted = super::admit_client(state, slot, caller, reads).await?;
    let Some(verified) = verified else {
        return Ok(None);
    };
    let policy = state.config.revocation_on_kv_failure;
    if revocation::is_revoked(policy, &verified, admitted.reads)? {
        return Ok(None);
    }
    Ok(Some(verified))
}
