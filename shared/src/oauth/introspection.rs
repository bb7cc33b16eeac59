//! Token introspection (RFC 7662): an authenticated client learns whether a token it may know about
//! is active; anything invalid, expired, revoked, foreign or not the caller's business is simply
//! `{"active": false}`.
//!
//! Who may introspect what (RFC 7662 §4): an organization's admin credential any token of its
//! organization; an agent its own tokens (issued to it through any of its credentials) and tokens
//! meant for it, whose `aud` names its agent id or client id (the agent as a resource server).
//! Anything else answers exactly like an invalid token, so introspection cannot be used to learn
//! about other clients' tokens, the admin's included.

use serde_json::{json, Value};

use crate::domain::authz::{authorize, Operation, Resource};
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
    if verified.claims.org_id != caller.org_id || !may_introspect(caller, &verified) {
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

/// The policy in this module's documentation, for a token of the caller's organization: the
/// decision point's.
fn may_introspect(caller: &AuthenticatedClient, token: &VerifiedToken) -> bool {
    authorize(
        &caller.caller(),
        Operation::IntrospectToken,
        Resource::Token {
            subject: &token.subject,
            audiences: &token.audiences,
        },
    )
    .is_ok()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::access_token::AccessClaims;
    use crate::oauth::client_auth::Method;

    fn client(agent_id: Option<&str>, client_id: &str) -> AuthenticatedClient {
        AuthenticatedClient {
            credential_id: "cred".into(),
            org_id: "org".into(),
            client_id: client_id.into(),
            agent_id: agent_id.map(str::to_owned),
            allowed_scopes: Vec::new(),
            method: Method::ClientSecretBasic,
            policy_facts: None,
            policy_version: 0,
        }
    }

    fn token(subject: &str, audiences: &[&str]) -> VerifiedToken {
        VerifiedToken {
            subject: subject.into(),
            jti: "jti".into(),
            issued_at: 0,
            expires_at: 1,
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            claims: AccessClaims {
                client_id: "client".into(),
                scope: String::new(),
                org_id: "org".into(),
                extensions: Default::default(),
            },
        }
    }

    #[test]
    fn agents_see_their_own_tokens_and_those_meant_for_them_admins_every_one() {
        let admin = client(None, "aidp_admin");
        let alice = client(Some("alice"), "aidp_alice");
        let api = "https://idp.example";
        assert!(may_introspect(&admin, &token("alice", &[api])));
        assert!(may_introspect(&alice, &token("alice", &[api])));
        assert!(!may_introspect(&alice, &token("bob", &[api])));
        assert!(!may_introspect(&alice, &token("aidp_admin", &[api])));
        assert!(may_introspect(&alice, &token("bob", &["alice"])));
        assert!(may_introspect(&alice, &token("bob", &[api, "aidp_alice"])));
    }
}
