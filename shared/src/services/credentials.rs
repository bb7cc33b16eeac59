//! Giving agents credentials, listing, rotating and revoking them, always reached through their
//! organization and agent.

use serde_json::{json, Map, Value};

use crate::config::tiers::Collection;
use crate::domain::audit::Outcome;
use crate::domain::authz::{Operation, Resource};
use crate::domain::caller::{AgentId, OrgId};
use crate::domain::credentials::{
    ClientSecret, Credential, CredentialKind, IssuedCredential, ListQuery, NewCredential, Rotation,
    MAX_GRACE_PERIOD_SECONDS, PUBLIC_JWK_MEMBERS,
};
use crate::domain::page::{Keyset, Page, PageRequest};
use crate::domain::secrets;
use crate::domain::time::rfc3339;
use crate::domain::validate::{is_id, Invalid};
use crate::domain::webhooks::EventType;
use crate::jose::jwk::Verifier;
use crate::ports::sql::{Change, DbError, Statement};
use crate::services::{agents, webhooks, Context, ServiceError};
use crate::state::AppState;
use crate::store::agents as agent_store;
use crate::store::credentials as store;

/// Checks a public JWK the way the token endpoint will use it, and keeps only its public members.
pub fn valid_public_jwk(jwk: Map<String, Value>) -> Result<Value, Invalid> {
    let jwk = Value::Object(jwk);
    let (_, alg) = Verifier::from_jwk(&jwk).map_err(|e| Invalid::new("public_jwk", e))?;
    if let Some(declared) = jwk.get("alg") {
        if declared.as_str() != Some(alg.as_str()) {
            return Err(Invalid::new(
                "public_jwk",
                format!("`alg` must be {} for this key type", alg.as_str()),
            ));
        }
    }
    // A key its owner marked for encryption, or for operations without `verify`, is not a signing
    // credential (RFC 7517 §4.2, §4.3): registering it would use it against its stated purpose.
    match jwk.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(_) => {
            return Err(Invalid::new(
                "public_jwk",
                "`use` must be \"sig\": this key verifies client assertions",
            ))
        }
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verifies {
            return Err(Invalid::new(
                "public_jwk",
                "`key_ops` must include \"verify\": this key verifies client assertions",
            ));
        }
    }
    let mut kept = Map::new();
    for member in PUBLIC_JWK_MEMBERS {
        match jwk.get(*member) {
            None => {}
            Some(Value::String(s)) if s.len() <= 512 => {
                kept.insert((*member).to_owned(), Value::String(s.clone()));
            }
            Some(_) => {
                return Err(Invalid::new(
                    "public_jwk",
                    format!("`{member}` must be a string of at most 512 characters"),
                ));
            }
        }
    }
    Ok(Value::Object(kept))
}

pub(crate) fn guard_error(e: DbError) -> ServiceError {
    match e {
        DbError::Guard(agent_store::DECOMMISSIONED) => ServiceError::Decommissioned,
        DbError::Guard(store::REVOKED) => ServiceError::CredentialRevoked,
        DbError::Guard(store::SECRET_CHANGED) => ServiceError::RotatedConcurrently,
        DbError::Guard(store::LAST_ADMIN) => ServiceError::LastAdminCredential,
        other => ServiceError::Db(other),
    }
}

/// Gives an agent a new credential: whoever receives it can obtain the agent's every capability,
/// so the caller must hold them all (or be an admin).
pub async fn create(
    state: &AppState,
    ctx: &Context,
    agent_id: &AgentId,
    new: NewCredential,
) -> Result<IssuedCredential, ServiceError> {
    let org_id = ctx.org();
    let public_jwk = match (new.kind, new.public_jwk) {
        (CredentialKind::ClientSecret, None) => None,
        (CredentialKind::ClientSecret, Some(_)) => {
            return Err(Invalid::new(
                "public_jwk",
                "is only accepted with \"kind\": \"private_key_jwt\"",
            )
            .into());
        }
        (CredentialKind::PrivateKeyJwt, None) => {
            return Err(Invalid::new("public_jwk", "is required for private_key_jwt").into());
        }
        (CredentialKind::PrivateKeyJwt, Some(jwk)) => Some(valid_public_jwk(jwk)?),
    };
    let agent = agents::get_live(state, org_id, agent_id).await?;
    ctx.authorize(
        Operation::CreateCredential,
        Resource::PowerOverAgent {
            capabilities: &agent.capabilities,
        },
    )?;
    let cap = agents::collection_cap(state, org_id, Collection::CredentialsPerAgent).await?;
    let (secret, secret_hash) = match new.kind {
        CredentialKind::ClientSecret => {
            let (secret, hash) = secrets::client_secret_from(state.random());
            (Some(ClientSecret(secret)), Some(hash))
        }
        CredentialKind::PrivateKeyJwt => (None, None),
    };
    let credential = Credential {
        id: state.new_id(),
        agent_id: agent_id.as_str().to_owned(),
        kind: new.kind,
        client_id: secrets::client_id_from(state.random()),
        public_jwk,
        status: "active".into(),
        created_at: ctx.now_millis,
        rotated_at: None,
        revoked_at: None,
        last_used_at: None,
        previous_secret_expires_at: None,
    };
    let event = ctx
        .audit(state, "credential.created", Outcome::Success)
        .agent(agent_id.as_str())
        .target(credential.id.clone())
        .details(credential.audit_details());
    let change = Change::new()
        .statement(agent_store::still_live(org_id.as_str(), agent_id.as_str()))
        .statement(store::insert(org_id.as_str(), &credential, secret_hash))
        .statement(store::within_agent_cap(
            org_id.as_str(),
            agent_id.as_str(),
            cap.1,
        ))
        .statement(webhooks::event(
            state,
            org_id,
            EventType::CredentialCreated,
            json!({ "credential": credential }),
        ))
        .event(event);
    state.db.commit(change).await.map_err(|e| match e {
        DbError::Guard(store::AGENT_CAP) => agents::over_cap(Collection::CredentialsPerAgent, cap),
        other => guard_error(other),
    })?;
    Ok(IssuedCredential {
        credential,
        client_secret: secret,
    })
}

/// Reads one credential of one agent of one organization.
async fn get(
    state: &AppState,
    org_id: &OrgId,
    agent_id: &AgentId,
    id: &str,
) -> Result<Credential, ServiceError> {
    if !is_id(id) || !is_id(agent_id.as_str()) {
        return Err(ServiceError::NotFound("credential"));
    }
    store::find(state.db.as_ref(), org_id.as_str(), agent_id.as_str(), id)
        .await?
        .ok_or(ServiceError::NotFound("credential"))
}

/// One page of an agent's credentials, oldest first.
pub async fn list(
    state: &AppState,
    org_id: &OrgId,
    agent_id: &AgentId,
    query: ListQuery,
) -> Result<Page<Credential>, ServiceError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    agents::get(state, org_id, agent_id).await?;
    let rows = store::list(state.db.as_ref(), org_id.as_str(), agent_id.as_str(), &page).await?;
    Ok(Page::from_rows(rows, &page, |c| Keyset {
        position: c.created_at,
        id: c.id.clone(),
    }))
}

/// A validated rotation: the secret it replaces, the new one, and when the replaced one stops.
pub(crate) struct PlannedRotation {
    pub base: store::RotationBase,
    pub secret: String,
    pub hash: Vec<u8>,
    pub previous_expires_at: Option<i64>,
    pub grace_seconds: i64,
    pub now: i64,
}

/// Plans the rotation of a client secret (an agent's or an admin's) from the state it replaces.
/// A rotation with a grace period while an earlier one still runs is refused: it would silently
/// end that grace period early, breaking what the earlier rotation promised. A rotation without
/// one ends every earlier secret, explicitly.
pub(crate) async fn plan_rotation(
    state: &AppState,
    org_id: &OrgId,
    id: &str,
    rotation: Rotation,
) -> Result<PlannedRotation, ServiceError> {
    let grace = rotation.grace_period_seconds.unwrap_or(0);
    if !(0..=MAX_GRACE_PERIOD_SECONDS).contains(&grace) {
        return Err(Invalid::new(
            "grace_period_seconds",
            format!("must be from 0 to {MAX_GRACE_PERIOD_SECONDS}"),
        )
        .into());
    }
    let base = store::rotation_base(state.db.as_ref(), org_id.as_str(), id)
        .await?
        .ok_or(ServiceError::NotRotatable)?;
    let now = state.now_millis();
    if let Some(until) = base.previous_secret_expires_at.filter(|t| *t > now) {
        if grace > 0 {
            return Err(ServiceError::GracePeriodRunning {
                until: rfc3339(until),
            });
        }
    }
    let (secret, hash) = secrets::client_secret_from(state.random());
    Ok(PlannedRotation {
        base,
        secret,
        hash,
        previous_expires_at: (grace > 0).then(|| now + grace * 1000),
        grace_seconds: grace,
        now,
    })
}

impl PlannedRotation {
    /// The statements that rotate credential `id` as planned, guarded on its secret still being
    /// the one the plan read (compare-and-set).
    pub(crate) fn statements(&self, org_id: &OrgId, id: &str) -> [Statement; 2] {
        [
            store::secret_unchanged(org_id.as_str(), id, &self.base.secret_hash),
            store::rotate_secret(
                org_id.as_str(),
                id,
                self.hash.clone(),
                self.previous_expires_at,
                self.now,
            ),
        ]
    }
}

/// Replaces a client secret. With a grace period the previous secret keeps working until it ends;
/// without one it stops at once. Only the latest previous secret is kept. Of concurrent rotations
/// exactly one wins; the others are refused (409) rather than hand out a secret that a later
/// write silently replaced. The new secret is power over the agent, as a new credential is.
pub async fn rotate(
    state: &AppState,
    ctx: &Context,
    agent_id: &AgentId,
    id: &str,
    rotation: Rotation,
) -> Result<IssuedCredential, ServiceError> {
    let org_id = ctx.org();
    let mut credential = get(state, org_id, agent_id, id).await?;
    let agent = agents::get(state, org_id, agent_id).await?;
    ctx.authorize(
        Operation::RotateCredential,
        Resource::PowerOverAgent {
            capabilities: &agent.capabilities,
        },
    )?;
    if credential.kind != CredentialKind::ClientSecret {
        return Err(ServiceError::NotRotatable);
    }
    if !credential.is_active() {
        return Err(ServiceError::CredentialRevoked);
    }
    let plan = plan_rotation(state, org_id, id, rotation).await?;
    credential.rotated_at = Some(plan.now);
    credential.previous_secret_expires_at = plan.previous_expires_at;
    let mut details = credential.audit_details();
    details["grace_period_seconds"] = plan.grace_seconds.into();
    let event = ctx
        .audit(state, "credential.rotated", Outcome::Success)
        .agent(agent_id.as_str())
        .target(id)
        .details(details);
    let [unchanged, rotate] = plan.statements(org_id, id);
    let change = Change::new()
        .statement(agent_store::still_live(org_id.as_str(), agent_id.as_str()))
        .statement(store::still_active(org_id.as_str(), agent_id.as_str(), id))
        .statement(unchanged)
        .statement(rotate)
        .statement(webhooks::event(
            state,
            org_id,
            EventType::CredentialRotated,
            json!({ "credential": credential, "grace_period_seconds": plan.grace_seconds }),
        ))
        .event(event);
    state.db.commit(change).await.map_err(guard_error)?;
    Ok(IssuedCredential {
        credential,
        client_secret: Some(ClientSecret(plan.secret)),
    })
}

/// Revokes a credential for good, then the agent's tokens, which may have been obtained with it.
/// Idempotent: revoking a revoked credential answers with it and revokes the tokens again, so a
/// retry after a failed token revocation completes it.
pub async fn revoke(
    state: &AppState,
    ctx: &Context,
    agent_id: &AgentId,
    id: &str,
) -> Result<Credential, ServiceError> {
    let credential = revoke_credential(state, ctx, agent_id, id).await?;
    agents::revoke_tokens(state, agent_id).await?;
    Ok(credential)
}

async fn revoke_credential(
    state: &AppState,
    ctx: &Context,
    agent_id: &AgentId,
    id: &str,
) -> Result<Credential, ServiceError> {
    let org_id = ctx.org();
    let credential = get(state, org_id, agent_id, id).await?;
    if !credential.is_active() {
        return Ok(credential);
    }
    let now = ctx.now_millis;
    let event = ctx
        .audit(state, "credential.revoked", Outcome::Success)
        .agent(agent_id.as_str())
        .target(id)
        .details(credential.audit_details());
    let mut revoked = credential.clone();
    revoked.status = "revoked".into();
    revoked.revoked_at = Some(now);
    revoked.previous_secret_expires_at = None;
    let change = Change::new()
        .statement(store::still_active(org_id.as_str(), agent_id.as_str(), id))
        .statement(store::revoke(org_id.as_str(), agent_id.as_str(), id, now))
        .statement(webhooks::event(
            state,
            org_id,
            EventType::CredentialRevoked,
            json!({ "credential": revoked }),
        ))
        .event(event);
    match state.db.commit(change).await {
        Ok(_) => {}
        // Revoked concurrently: same outcome, and only one event records it.
        Err(DbError::Guard(store::REVOKED)) => return get(state, org_id, agent_id, id).await,
        Err(e) => return Err(e.into()),
    }
    Ok(revoked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwk(extra: Value) -> Map<String, Value> {
        let mut jwk = json!({
            "kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        });
        for (k, v) in extra.as_object().unwrap() {
            jwk[k] = v.clone();
        }
        jwk.as_object().unwrap().clone()
    }

    #[test]
    fn only_the_public_members_of_a_usable_key_are_kept() {
        let kept = valid_public_jwk(jwk(json!({ "kid": "k", "note": "dropped" }))).unwrap();
        assert_eq!(kept["kid"], "k");
        assert!(kept.get("note").is_none());
        assert!(valid_public_jwk(jwk(json!({ "alg": "EdDSA" }))).is_ok());
    }

    #[test]
    fn private_keys_mismatched_algs_and_odd_members_are_refused() {
        for extra in [
            json!({ "d": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" }),
            json!({ "alg": "ES256" }),
            json!({ "kid": 7 }),
        ] {
            assert!(valid_public_jwk(jwk(extra.clone())).is_err(), "{extra}");
        }
    }
}
