//! Agent credentials: client secrets (shown once, stored as hashes, rotatable) and registered public
//! keys for `private_key_jwt`, always reached through their organization and agent.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{json, Map, Value};

use crate::agents::{self, optional_timestamp, timestamp, AgentError, AgentStatus};
use crate::audit::Outcome;
use crate::error::ApiError;
use crate::http::{decode_cursor, page_limit, Page};
use crate::keys::Verifier;
use crate::secrets;
use crate::sql::{query_one, Change, DbError, Row, Statement};
use crate::state::AppState;

/// Longest grace period during which a rotated-out secret still authenticates: one week.
pub const MAX_GRACE_PERIOD_SECONDS: i64 = 7 * 24 * 3600;

/// Members of a public JWK worth keeping; anything else a client sends is dropped, not stored.
const PUBLIC_JWK_MEMBERS: &[&str] = &["kty", "crv", "x", "y", "kid", "alg", "use"];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    #[default]
    ClientSecret,
    PrivateKeyJwt,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::ClientSecret => "client_secret",
            CredentialKind::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// A secret on its way to the caller, once. Redacted from `Debug` so it cannot reach a log.
#[derive(Clone)]
pub struct ClientSecret(pub String);

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

impl Serialize for ClientSecret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A credential's metadata: never its secret or the secret's hash.
#[derive(Clone, Debug, Serialize)]
pub struct Credential {
    pub id: String,
    pub agent_id: String,
    pub kind: CredentialKind,
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_jwk: Option<Value>,
    pub status: String,
    #[serde(serialize_with = "timestamp")]
    pub created_at: i64,
    #[serde(serialize_with = "optional_timestamp")]
    pub rotated_at: Option<i64>,
    #[serde(serialize_with = "optional_timestamp")]
    pub revoked_at: Option<i64>,
    #[serde(serialize_with = "optional_timestamp")]
    pub last_used_at: Option<i64>,
    #[serde(serialize_with = "optional_timestamp")]
    pub previous_secret_expires_at: Option<i64>,
}

/// A credential with the secret just generated for it (creation and rotation only).
#[derive(Debug, Serialize)]
pub struct IssuedCredential {
    #[serde(flatten)]
    pub credential: Credential,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<ClientSecret>,
}

/// Body of `POST /v1/agents/{id}/credentials`; `{}` asks for a client secret.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCredential {
    #[serde(default)]
    pub kind: CredentialKind,
    #[serde(default)]
    pub public_jwk: Option<Map<String, Value>>,
}

/// Body of `POST /v1/agents/{id}/credentials/{cid}/rotate`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    #[serde(default)]
    pub grace_period_seconds: Option<i64>,
}

/// Query of the credential list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

const CREDENTIAL_COLUMNS: &str = "id, agent_id, kind, client_id, public_jwk, status, created_at, \
     rotated_at, revoked_at, last_used_at, previous_secret_expires_at";

impl Credential {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        let kind: String = row.get("kind")?;
        let kind = match kind.as_str() {
            "client_secret" => CredentialKind::ClientSecret,
            "private_key_jwt" => CredentialKind::PrivateKeyJwt,
            other => return Err(DbError::Decode(format!("column `kind`: `{other}`"))),
        };
        let public_jwk: Option<String> = row.get("public_jwk")?;
        let agent_id: Option<String> = row.get("agent_id")?;
        Ok(Credential {
            id: row.get("id")?,
            agent_id: agent_id.ok_or_else(|| DbError::Decode("column `agent_id`: null".into()))?,
            kind,
            client_id: row.get("client_id")?,
            public_jwk: public_jwk
                .map(|j| serde_json::from_str(&j))
                .transpose()
                .map_err(|e| DbError::Decode(format!("column `public_jwk`: {e}")))?,
            status: row.get("status")?,
            created_at: row.get("created_at")?,
            rotated_at: row.get("rotated_at")?,
            revoked_at: row.get("revoked_at")?,
            last_used_at: row.get("last_used_at")?,
            previous_secret_expires_at: row.get("previous_secret_expires_at")?,
        })
    }

    fn is_active(&self) -> bool {
        self.status == "active"
    }

    /// The details every credential audit event carries: never a secret.
    fn audit_details(&self) -> Value {
        json!({ "credential_id": self.id, "client_id": self.client_id, "kind": self.kind })
    }
}

/// Checks a public JWK the way the token endpoint will use it, and keeps only its public members.
fn valid_public_jwk(jwk: Map<String, Value>) -> Result<Value, AgentError> {
    let jwk = Value::Object(jwk);
    let (_, alg) = Verifier::from_jwk(&jwk).map_err(|e| AgentError::invalid("public_jwk", e))?;
    if let Some(declared) = jwk.get("alg") {
        if declared.as_str() != Some(alg.as_str()) {
            return Err(AgentError::invalid(
                "public_jwk",
                format!("`alg` must be {} for this key type", alg.as_str()),
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
                return Err(AgentError::invalid(
                    "public_jwk",
                    format!("`{member}` must be a string of at most 512 characters"),
                ));
            }
        }
    }
    Ok(Value::Object(kept))
}

/// The agent the credential operations act on: of this organization, and not decommissioned.
async fn live_agent(state: &AppState, org_id: &str, agent_id: &str) -> Result<(), AgentError> {
    match agents::get(state, org_id, agent_id).await?.status {
        AgentStatus::Decommissioned => Err(AgentError::Decommissioned),
        _ => Ok(()),
    }
}

/// Guards a write on the agent still existing in the organization and not being decommissioned.
fn agent_still_live(org_id: &str, agent_id: &str) -> Statement {
    Statement::guard(
        "agent_decommissioned",
        "NOT EXISTS (SELECT 1 FROM agents WHERE id = ?1 AND org_id = ?2 \
         AND status <> 'decommissioned')",
    )
    .bind(agent_id)
    .bind(org_id)
}

/// Guards a write on the credential still being active.
fn credential_still_active(org_id: &str, agent_id: &str, id: &str) -> Statement {
    Statement::guard(
        "credential_revoked",
        "NOT EXISTS (SELECT 1 FROM credentials WHERE id = ?1 AND agent_id = ?2 AND org_id = ?3 \
         AND status = 'active')",
    )
    .bind(id)
    .bind(agent_id)
    .bind(org_id)
}

fn guard_error(e: DbError) -> AgentError {
    match e {
        DbError::Guard("agent_decommissioned") => AgentError::Decommissioned,
        DbError::Guard("credential_revoked") => AgentError::CredentialRevoked,
        other => AgentError::Db(other),
    }
}

/// Gives an agent a new credential.
pub async fn create(
    state: &AppState,
    org_id: &str,
    actor: &str,
    agent_id: &str,
    new: NewCredential,
) -> Result<IssuedCredential, AgentError> {
    let public_jwk = match (new.kind, new.public_jwk) {
        (CredentialKind::ClientSecret, None) => None,
        (CredentialKind::ClientSecret, Some(_)) => {
            return Err(AgentError::invalid(
                "public_jwk",
                "is only accepted with \"kind\": \"private_key_jwt\"",
            ));
        }
        (CredentialKind::PrivateKeyJwt, None) => {
            return Err(AgentError::invalid(
                "public_jwk",
                "is required for private_key_jwt",
            ));
        }
        (CredentialKind::PrivateKeyJwt, Some(jwk)) => Some(valid_public_jwk(jwk)?),
    };
    live_agent(state, org_id, agent_id).await?;
    let (secret, secret_hash) = match new.kind {
        CredentialKind::ClientSecret => {
            let (secret, hash) = secrets::new_client_secret(state.entropy.as_ref());
            (Some(ClientSecret(secret)), Some(hash))
        }
        CredentialKind::PrivateKeyJwt => (None, None),
    };
    let credential = Credential {
        id: state.new_id(),
        agent_id: agent_id.to_owned(),
        kind: new.kind,
        client_id: secrets::new_client_id(state.entropy.as_ref()),
        public_jwk,
        status: "active".into(),
        created_at: state.now_millis(),
        rotated_at: None,
        revoked_at: None,
        last_used_at: None,
        previous_secret_expires_at: None,
    };
    let insert = Statement::new(
        "INSERT INTO credentials (id, org_id, agent_id, role, kind, client_id, secret_hash, \
         public_jwk, status, created_at) VALUES (?1, ?2, ?3, 'agent', ?4, ?5, ?6, ?7, 'active', ?8)",
    )
    .bind(&credential.id)
    .bind(org_id)
    .bind(agent_id)
    .bind(credential.kind.as_str())
    .bind(&credential.client_id)
    .bind(secret_hash)
    .bind(credential.public_jwk.as_ref().map(Value::to_string))
    .bind(credential.created_at);
    let event = state
        .audit(org_id, actor, "credential.created", Outcome::Success)
        .agent(agent_id)
        .target(credential.id.clone())
        .details(credential.audit_details());
    state
        .db
        .commit(
            Change::new()
                .statement(agent_still_live(org_id, agent_id))
                .statement(insert)
                .event(event),
        )
        .await
        .map_err(guard_error)?;
    Ok(IssuedCredential {
        credential,
        client_secret: secret,
    })
}

/// Reads one credential of one agent of one organization.
async fn get(
    state: &AppState,
    org_id: &str,
    agent_id: &str,
    id: &str,
) -> Result<Credential, AgentError> {
    if !agents::is_id(id) || !agents::is_id(agent_id) {
        return Err(AgentError::NotFound("credential"));
    }
    let row = query_one(
        state.db.as_ref(),
        Statement::new(format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials \
             WHERE id = ?1 AND agent_id = ?2 AND org_id = ?3"
        ))
        .bind(id)
        .bind(agent_id)
        .bind(org_id),
    )
    .await?;
    row.as_ref()
        .map(Credential::from_row)
        .transpose()?
        .ok_or(AgentError::NotFound("credential"))
}

/// One page of an agent's credentials, oldest first.
pub async fn list(
    state: &AppState,
    org_id: &str,
    agent_id: &str,
    query: ListQuery,
) -> Result<Page<Credential>, ApiError> {
    let limit = page_limit(query.limit)?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    agents::get(state, org_id, agent_id).await?;
    let (after_at, after_id) = after.unwrap_or((i64::MIN, String::new()));
    let rows = state
        .db
        .query(
            Statement::new(format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM credentials \
                 WHERE org_id = ?1 AND agent_id = ?2 AND (created_at, id) > (?3, ?4) \
                 ORDER BY created_at, id LIMIT ?5"
            ))
            .bind(org_id)
            .bind(agent_id)
            .bind(after_at)
            .bind(after_id)
            .bind(limit + 1),
        )
        .await?;
    let data = rows
        .iter()
        .map(Credential::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(agents::page(data, limit, |c| (c.created_at, &c.id)))
}

/// Replaces a client secret. With a grace period the previous secret keeps working until it ends;
/// without one it stops at once. Only the latest previous secret is kept.
pub async fn rotate(
    state: &AppState,
    org_id: &str,
    actor: &str,
    agent_id: &str,
    id: &str,
    rotation: Rotation,
) -> Result<IssuedCredential, AgentError> {
    let grace = rotation.grace_period_seconds.unwrap_or(0);
    if !(0..=MAX_GRACE_PERIOD_SECONDS).contains(&grace) {
        return Err(AgentError::invalid(
            "grace_period_seconds",
            format!("must be from 0 to {MAX_GRACE_PERIOD_SECONDS}"),
        ));
    }
    let mut credential = get(state, org_id, agent_id, id).await?;
    if credential.kind != CredentialKind::ClientSecret {
        return Err(AgentError::NotRotatable);
    }
    if !credential.is_active() {
        return Err(AgentError::CredentialRevoked);
    }
    let now = state.now_millis();
    let previous_expires_at = (grace > 0).then(|| now + grace * 1000);
    let (secret, hash) = secrets::new_client_secret(state.entropy.as_ref());
    let still_active = credential_still_active(org_id, agent_id, id);
    // With no grace the old hash is dropped, not kept with a past expiry.
    let write = Statement::new(
        "UPDATE credentials SET \
         previous_secret_hash = CASE WHEN ?1 IS NULL THEN NULL ELSE secret_hash END, \
         previous_secret_expires_at = ?1, secret_hash = ?2, rotated_at = ?3 \
         WHERE id = ?4 AND agent_id = ?5 AND org_id = ?6",
    )
    .bind(previous_expires_at)
    .bind(hash)
    .bind(now)
    .bind(id)
    .bind(agent_id)
    .bind(org_id);
    credential.rotated_at = Some(now);
    credential.previous_secret_expires_at = previous_expires_at;
    let mut details = credential.audit_details();
    details["grace_period_seconds"] = grace.into();
    let event = state
        .audit(org_id, actor, "credential.rotated", Outcome::Success)
        .agent(agent_id)
        .target(id)
        .details(details);
    state
        .db
        .commit(
            Change::new()
                .statement(agent_still_live(org_id, agent_id))
                .statement(still_active)
                .statement(write)
                .event(event),
        )
        .await
        .map_err(guard_error)?;
    Ok(IssuedCredential {
        credential,
        client_secret: Some(ClientSecret(secret)),
    })
}

/// Revokes a credential for good. Idempotent: revoking a revoked credential answers with it.
/// The caller then revokes the agent's tokens, which may have been obtained with it.
pub async fn revoke(
    state: &AppState,
    org_id: &str,
    actor: &str,
    agent_id: &str,
    id: &str,
) -> Result<Credential, AgentError> {
    let mut credential = get(state, org_id, agent_id, id).await?;
    if !credential.is_active() {
        return Ok(credential);
    }
    let now = state.now_millis();
    let write = Statement::new(
        "UPDATE credentials SET status = 'revoked', revoked_at = ?1, previous_secret_hash = NULL, \
         previous_secret_expires_at = NULL \
         WHERE id = ?2 AND agent_id = ?3 AND org_id = ?4",
    )
    .bind(now)
    .bind(id)
    .bind(agent_id)
    .bind(org_id);
    let event = state
        .audit(org_id, actor, "credential.revoked", Outcome::Success)
        .agent(agent_id)
        .target(id)
        .details(credential.audit_details());
    let still_active = credential_still_active(org_id, agent_id, id);
    match state
        .db
        .commit(
            Change::new()
                .statement(still_active)
                .statement(write)
                .event(event),
        )
        .await
    {
        Ok(_) => {}
        // Revoked concurrently: same outcome, and only one event records it.
        Err(DbError::Guard("credential_revoked")) => return get(state, org_id, agent_id, id).await,
        Err(e) => return Err(e.into()),
    }
    credential.status = "revoked".into();
    credential.revoked_at = Some(now);
    credential.previous_secret_expires_at = None;
    Ok(credential)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn secrets_never_show_in_debug_output() {
        let secret = ClientSecret("aidp_sk_topsecret".into());
        assert!(!format!("{secret:?}").contains("topsecret"));
    }
}
