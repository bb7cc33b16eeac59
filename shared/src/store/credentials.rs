//! The `credentials` table: agents' client secrets and registered keys, organizations' admin
//! credentials, and what client authentication reads of a credential and its agent in one query.

use serde_json::Value;

use crate::domain::credentials::{Credential, CredentialKind};
use crate::domain::orgs::OrgCredential;
use crate::domain::page::PageRequest;
use crate::domain::policies::{tags_of, AgentFacts};
use crate::domain::scopes;
use crate::ports::sql::{Database, DbError, Row, Statement};
use crate::store::{guard, json_column};

const CREDENTIAL_COLUMNS: &str = "id, agent_id, kind, client_id, public_jwk, status, created_at, \
     rotated_at, revoked_at, last_used_at, previous_secret_expires_at";

/// Guard code, as `DbError::Guard` reports it.
pub const REVOKED: &str = "credential_revoked";
/// Guard code: the secret changed since it was read (a concurrent rotation won).
pub const SECRET_CHANGED: &str = "credential_secret_changed";
/// Guard code: the change would leave the organization without an active admin credential.
pub const LAST_ADMIN: &str = "last_admin_credential";
pub const AGENT_CAP: &str = "credentials_per_agent_cap";
pub const ADMIN_CAP: &str = "admin_credentials_cap";

fn credential_from_row(row: &Row) -> Result<Credential, DbError> {
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
            .map(|j| json_column("public_jwk", &j))
            .transpose()?,
        status: row.get("status")?,
        created_at: row.get("created_at")?,
        rotated_at: row.get("rotated_at")?,
        revoked_at: row.get("revoked_at")?,
        last_used_at: row.get("last_used_at")?,
        previous_secret_expires_at: row.get("previous_secret_expires_at")?,
    })
}

/// An agent's new credential; `secret_hash` for client secrets.
pub fn insert(org_id: &str, credential: &Credential, secret_hash: Option<Vec<u8>>) -> Statement {
    Statement::new(
        "INSERT INTO credentials (id, org_id, agent_id, role, kind, client_id, secret_hash, \
         public_jwk, status, created_at) VALUES (?1, ?2, ?3, 'agent', ?4, ?5, ?6, ?7, 'active', ?8)",
    )
    .bind(&credential.id)
    .bind(org_id)
    .bind(&credential.agent_id)
    .bind(credential.kind.as_str())
    .bind(&credential.client_id)
    .bind(secret_hash)
    .bind(credential.public_jwk.as_ref().map(Value::to_string))
    .bind(credential.created_at)
}

/// An organization's admin credential (a client secret with the admin role and no agent).
pub fn insert_admin(
    org_id: &str,
    id: &str,
    client_id: &str,
    secret_hash: Vec<u8>,
    created_at: i64,
) -> Statement {
    Statement::new(
        "INSERT INTO credentials (id, org_id, agent_id, role, kind, client_id, secret_hash, status, \
         created_at) VALUES (?1, ?2, NULL, 'admin', 'client_secret', ?3, ?4, 'active', ?5)",
    )
    .bind(id)
    .bind(org_id)
    .bind(client_id)
    .bind(secret_hash)
    .bind(created_at)
}

/// Guards, after an insert, on the agent's active credentials staying within `limit`.
pub fn within_agent_cap(org_id: &str, agent_id: &str, limit: i64) -> Statement {
    guard(
        AGENT_CAP,
        "(SELECT COUNT(*) FROM credentials WHERE org_id = ?1 AND agent_id = ?2 \
         AND status = 'active') > ?3",
    )
    .bind(org_id)
    .bind(agent_id)
    .bind(limit)
}

/// Guards, after an insert, on the organization's active admin credentials staying within `limit`.
pub fn within_admin_cap(org_id: &str, limit: i64) -> Statement {
    guard(
        ADMIN_CAP,
        "(SELECT COUNT(*) FROM credentials WHERE org_id = ?1 AND role = 'admin' \
         AND status = 'active') > ?2",
    )
    .bind(org_id)
    .bind(limit)
}

/// One credential of one agent of one organization.
pub async fn find(
    db: &dyn Database,
    org_id: &str,
    agent_id: &str,
    id: &str,
) -> Result<Option<Credential>, DbError> {
    let statement = Statement::new(format!(
        "SELECT {CREDENTIAL_COLUMNS} FROM credentials \
         WHERE id = ?1 AND agent_id = ?2 AND org_id = ?3"
    ))
    .bind(id)
    .bind(agent_id)
    .bind(org_id);
    db.query_one(statement)
        .await?
        .as_ref()
        .map(credential_from_row)
        .transpose()
}

/// The rows of one page of an agent's credentials, oldest first.
pub async fn list(
    db: &dyn Database,
    org_id: &str,
    agent_id: &str,
    page: &PageRequest,
) -> Result<Vec<Credential>, DbError> {
    let (after_at, after_id) = page
        .after
        .as_ref()
        .map_or((i64::MIN, String::new()), |k| (k.position, k.id.clone()));
    let statement = Statement::new(format!(
        "SELECT {CREDENTIAL_COLUMNS} FROM credentials \
         WHERE org_id = ?1 AND agent_id = ?2 AND (created_at, id) > (?3, ?4) \
         ORDER BY created_at, id LIMIT ?5"
    ))
    .bind(org_id)
    .bind(agent_id)
    .bind(after_at)
    .bind(after_id)
    .bind(page.fetch());
    db.query(statement)
        .await?
        .iter()
        .map(credential_from_row)
        .collect()
}

/// Guards a write on the credential still being active.
pub fn still_active(org_id: &str, agent_id: &str, id: &str) -> Statement {
    guard(
        REVOKED,
        "NOT EXISTS (SELECT 1 FROM credentials WHERE id = ?1 AND agent_id = ?2 AND org_id = ?3 \
         AND status = 'active')",
    )
    .bind(id)
    .bind(agent_id)
    .bind(org_id)
}

/// What a rotation is based on: the secret hash it replaces and the end of the running grace
/// period, read together so a rotation judges and compares the same state.
#[derive(Clone, Debug)]
pub struct RotationBase {
    pub secret_hash: Vec<u8>,
    pub previous_secret_expires_at: Option<i64>,
}

/// The rotation base of a client-secret credential of the organization (agent's or admin's).
pub async fn rotation_base(
    db: &dyn Database,
    org_id: &str,
    id: &str,
) -> Result<Option<RotationBase>, DbError> {
    let statement = Statement::new(
        "SELECT secret_hash, previous_secret_expires_at FROM credentials \
         WHERE id = ?1 AND org_id = ?2 AND kind = 'client_secret' AND secret_hash IS NOT NULL",
    )
    .bind(id)
    .bind(org_id);
    let Some(row) = db.query_one(statement).await? else {
        return Ok(None);
    };
    Ok(Some(RotationBase {
        secret_hash: row.get("secret_hash")?,
        previous_secret_expires_at: row.get("previous_secret_expires_at")?,
    }))
}

/// Guards a rotation on the secret still being the one it read: a compare-and-set, so of
/// concurrent rotations exactly one replaces a given secret and the others are refused.
pub fn secret_unchanged(org_id: &str, id: &str, expected_hash: &[u8]) -> Statement {
    guard(
        SECRET_CHANGED,
        "NOT EXISTS (SELECT 1 FROM credentials WHERE id = ?1 AND org_id = ?2 \
         AND secret_hash = ?3)",
    )
    .bind(id)
    .bind(org_id)
    .bind(expected_hash.to_vec())
}

/// Replaces the secret hash; the previous one is kept until `previous_expires_at` (dropped, not
/// kept with a past expiry, when there is no grace period).
pub fn rotate_secret(
    org_id: &str,
    id: &str,
    new_hash: Vec<u8>,
    previous_expires_at: Option<i64>,
    now_millis: i64,
) -> Statement {
    Statement::new(
        "UPDATE credentials SET \
         previous_secret_hash = CASE WHEN ?1 IS NULL THEN NULL ELSE secret_hash END, \
         previous_secret_expires_at = ?1, secret_hash = ?2, rotated_at = ?3 \
         WHERE id = ?4 AND org_id = ?5",
    )
    .bind(previous_expires_at)
    .bind(new_hash)
    .bind(now_millis)
    .bind(id)
    .bind(org_id)
}

pub fn revoke(org_id: &str, agent_id: &str, id: &str, now_millis: i64) -> Statement {
    Statement::new(
        "UPDATE credentials SET status = 'revoked', revoked_at = ?1, previous_secret_hash = NULL, \
         previous_secret_expires_at = NULL \
         WHERE id = ?2 AND agent_id = ?3 AND org_id = ?4",
    )
    .bind(now_millis)
    .bind(id)
    .bind(agent_id)
    .bind(org_id)
}

/// Every active credential of an agent, revoked (decommissioning).
pub fn revoke_all_of_agent(org_id: &str, agent_id: &str, now_millis: i64) -> Statement {
    Statement::new(
        "UPDATE credentials SET status = 'revoked', revoked_at = ?1, previous_secret_hash = NULL, \
         previous_secret_expires_at = NULL \
         WHERE org_id = ?2 AND agent_id = ?3 AND status = 'active'",
    )
    .bind(now_millis)
    .bind(org_id)
    .bind(agent_id)
}

const ADMIN_COLUMNS: &str = "id, client_id, status, created_at, rotated_at, revoked_at, \
     last_used_at, previous_secret_expires_at";

fn admin_credential_from_row(row: &Row) -> Result<OrgCredential, DbError> {
    Ok(OrgCredential {
        id: row.get("id")?,
        client_id: row.get("client_id")?,
        status: row.get("status")?,
        scope: scopes::ADMIN.join(" "),
        created_at: row.get("created_at")?,
        rotated_at: row.get("rotated_at")?,
        revoked_at: row.get("revoked_at")?,
        last_used_at: row.get("last_used_at")?,
        previous_secret_expires_at: row.get("previous_secret_expires_at")?,
    })
}

/// One admin credential of one organization.
pub async fn find_admin(
    db: &dyn Database,
    org_id: &str,
    id: &str,
) -> Result<Option<OrgCredential>, DbError> {
    let statement = Statement::new(format!(
        "SELECT {ADMIN_COLUMNS} FROM credentials WHERE id = ?1 AND org_id = ?2 AND role = 'admin'"
    ))
    .bind(id)
    .bind(org_id);
    db.query_one(statement)
        .await?
        .as_ref()
        .map(admin_credential_from_row)
        .transpose()
}

/// The rows of one page of an organization's admin credentials, oldest first.
pub async fn list_admins(
    db: &dyn Database,
    org_id: &str,
    page: &PageRequest,
) -> Result<Vec<OrgCredential>, DbError> {
    let (after_at, after_id) = page
        .after
        .as_ref()
        .map_or((i64::MIN, String::new()), |k| (k.position, k.id.clone()));
    let statement = Statement::new(format!(
        "SELECT {ADMIN_COLUMNS} FROM credentials \
         WHERE org_id = ?1 AND role = 'admin' AND (created_at, id) > (?2, ?3) \
         ORDER BY created_at, id LIMIT ?4"
    ))
    .bind(org_id)
    .bind(after_at)
    .bind(after_id)
    .bind(page.fetch());
    db.query(statement)
        .await?
        .iter()
        .map(admin_credential_from_row)
        .collect()
}

/// Guards a write on an admin credential still being active.
pub fn admin_still_active(org_id: &str, id: &str) -> Statement {
    guard(
        REVOKED,
        "NOT EXISTS (SELECT 1 FROM credentials WHERE id = ?1 AND org_id = ?2 AND role = 'admin' \
         AND status = 'active')",
    )
    .bind(id)
    .bind(org_id)
}

/// Revokes an admin credential.
pub fn revoke_admin(org_id: &str, id: &str, now_millis: i64) -> Statement {
    Statement::new(
        "UPDATE credentials SET status = 'revoked', revoked_at = ?1, previous_secret_hash = NULL, \
         previous_secret_expires_at = NULL WHERE id = ?2 AND org_id = ?3 AND role = 'admin'",
    )
    .bind(now_millis)
    .bind(id)
    .bind(org_id)
}

/// Guards, after a revocation in the same transaction, that the organization keeps an active
/// admin credential: without one nobody could manage it again.
pub fn an_admin_remains(org_id: &str) -> Statement {
    guard(
        LAST_ADMIN,
        "NOT EXISTS (SELECT 1 FROM credentials WHERE org_id = ?1 AND role = 'admin' \
         AND status = 'active')",
    )
    .bind(org_id)
}

/// At most one write per second per credential: the same information, far fewer dirty pages.
pub fn touch_last_used(id: &str, now_millis: i64) -> Statement {
    Statement::new(
        "UPDATE credentials SET last_used_at = ?1 \
         WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at <= ?1 - 1000)",
    )
    .bind(now_millis)
    .bind(id)
}

/// A credential with what client authentication needs of its agent.
#[derive(Clone, Debug)]
pub struct StoredClient {
    pub credential_id: String,
    pub org_id: String,
    pub client_id: String,
    /// `None` for an organization's admin credential.
    pub agent_id: Option<String>,
    pub is_admin: bool,
    pub kind: String,
    pub status: String,
    pub agent_status: Option<String>,
    pub secret_hash: Option<Vec<u8>>,
    pub previous_secret_hash: Option<Vec<u8>>,
    pub previous_secret_expires_at: Option<i64>,
    pub public_jwk: Option<String>,
    /// The agent's capabilities; empty for an admin credential.
    pub capabilities: Vec<String>,
    /// What the organization's policies know of the agent; `None` for an admin credential.
    pub policy_facts: Option<AgentFacts>,
    /// The version of the organization's policy set (0: it never had a policy), read here so the
    /// issuance needs no read of its own to know whether its compiled policies are current.
    pub policy_version: i64,
}

/// The credential with `client_id` and its agent, from one query.
pub async fn find_client(
    db: &dyn Database,
    client_id: &str,
) -> Result<Option<StoredClient>, DbError> {
    let statement = Statement::new(
        "SELECT c.id, c.org_id, c.client_id, c.agent_id, c.role, c.kind, c.status, c.secret_hash, \
         c.previous_secret_hash, c.previous_secret_expires_at, c.public_jwk, \
         a.status AS agent_status, a.capabilities, a.agent_type, a.deployment_env, a.owner, \
         a.metadata, COALESCE(s.version, 0) AS policy_version \
         FROM credentials c LEFT JOIN agents a ON a.id = c.agent_id AND a.org_id = c.org_id \
         LEFT JOIN policy_sets s ON s.org_id = c.org_id \
         WHERE c.client_id = ?1",
    )
    .bind(client_id);
    let Some(row) = db.query_one(statement).await? else {
        return Ok(None);
    };
    let role: String = row.get("role")?;
    let capabilities: Option<String> = row.get("capabilities")?;
    let capabilities: Vec<String> =
        json_column("capabilities", capabilities.as_deref().unwrap_or("[]"))?;
    let agent_id: Option<String> = row.get("agent_id")?;
    let policy_facts = match &agent_id {
        Some(id) if role != "admin" => {
            let metadata: Option<String> = row.get("metadata")?;
            let metadata: Value = json_column("metadata", metadata.as_deref().unwrap_or("{}"))?;
            Some(AgentFacts {
                id: id.clone(),
                agent_type: row.get::<Option<String>>("agent_type")?.unwrap_or_default(),
                capabilities: capabilities.clone(),
                deployment_env: row
                    .get::<Option<String>>("deployment_env")?
                    .unwrap_or_default(),
                owner: row.get::<Option<String>>("owner")?.unwrap_or_default(),
                tags: tags_of(&metadata),
            })
        }
        _ => None,
    };
    Ok(Some(StoredClient {
        credential_id: row.get("id")?,
        org_id: row.get("org_id")?,
        client_id: row.get("client_id")?,
        agent_id,
        is_admin: role == "admin",
        kind: row.get("kind")?,
        status: row.get("status")?,
        agent_status: row.get("agent_status")?,
        secret_hash: row.get("secret_hash")?,
        previous_secret_hash: row.get("previous_secret_hash")?,
        previous_secret_expires_at: row.get("previous_secret_expires_at")?,
        public_jwk: row.get("public_jwk")?,
        capabilities,
        policy_facts,
        policy_version: row.get("policy_version")?,
    }))
}
