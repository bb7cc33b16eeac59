//! Agents: their identity record, its validation and lifecycle, and its storage, scoped to one organization.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};

use crate::audit::Outcome;
use crate::error::ApiError;
use crate::http::{decode_cursor, encode_cursor, page_limit, Page};
use crate::revocation;
use crate::runtime::rfc3339;
use crate::sql::{query_one, Change, DbError, Row, Statement};
use crate::state::AppState;

const MAX_NAME_CHARS: usize = 200;
const MAX_EMAIL_CHARS: usize = 254;
const MAX_AGENT_TYPE_CHARS: usize = 64;
const MAX_VERSION_CHARS: usize = 64;
const MAX_OWNER_CHARS: usize = 200;
const MAX_CAPABILITIES: usize = 100;
const MAX_CAPABILITY_CHARS: usize = 128;
/// Metadata is descriptive, not a document store; the cap keeps rows and list pages small.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;
/// Optimistic updates retry this often before reporting a conflict.
const UPDATE_ATTEMPTS: usize = 4;

/// Failures of the organization, agent and credential operations; mapped to problems in one place.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// Missing or another organization's: deliberately indistinguishable.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the agent is decommissioned; decommissioning is terminal")]
    Decommissioned,
    #[error("another agent of this organization already uses that email")]
    EmailTaken,
    #[error("the free tier allows at most {limit} agents per organization")]
    FreeTierLimit { limit: i64 },
    #[error("only client secrets can be rotated; register a new key instead")]
    NotRotatable,
    #[error("the credential is revoked")]
    CredentialRevoked,
    #[error("the agent was changed concurrently; retry")]
    Contention,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl AgentError {
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        AgentError::Invalid {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::Invalid { field, reason } => {
                ApiError::invalid_field(field.clone(), format!("{field}: {reason}"))
            }
            AgentError::NotFound(what) => ApiError::not_found(what),
            AgentError::Decommissioned => ApiError::conflict("agent_decommissioned", e.to_string()),
            AgentError::EmailTaken => ApiError::conflict("email_taken", e.to_string()),
            AgentError::FreeTierLimit { limit } => ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "free_tier_limit_exceeded",
                e.to_string(),
            )
            .with("limit", limit),
            AgentError::NotRotatable => ApiError::conflict("not_rotatable", e.to_string()),
            AgentError::CredentialRevoked => {
                ApiError::conflict("credential_revoked", e.to_string())
            }
            AgentError::Contention => ApiError::conflict("conflict", e.to_string()),
            AgentError::Db(db) => ApiError::from(db),
        }
    }
}

/// Where an agent runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentEnv {
    #[default]
    Development,
    Staging,
    Production,
}

impl DeploymentEnv {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentEnv::Development => "development",
            DeploymentEnv::Staging => "staging",
            DeploymentEnv::Production => "production",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Development, Self::Staging, Self::Production]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}

/// Whether the public marketplace lists the agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    #[default]
    Private,
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Public => "public",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Private, Self::Public]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}

/// `decommissioned` is terminal; the schema refuses to leave it too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Active,
    Suspended,
    Decommissioned,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Active => "active",
            AgentStatus::Suspended => "suspended",
            AgentStatus::Decommissioned => "decommissioned",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Active, Self::Suspended, Self::Decommissioned]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}

/// An agent's identity record. Timestamps are Unix milliseconds, serialized as RFC 3339.
#[derive(Clone, Debug, Serialize)]
pub struct Agent {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub email: Option<String>,
    pub agent_type: String,
    pub version: Option<String>,
    pub capabilities: Vec<String>,
    pub owner: Option<String>,
    pub deployment_env: DeploymentEnv,
    pub metadata: Map<String, Value>,
    pub visibility: Visibility,
    pub status: AgentStatus,
    #[serde(serialize_with = "timestamp")]
    pub created_at: i64,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: i64,
    #[serde(serialize_with = "optional_timestamp")]
    pub last_auth_at: Option<i64>,
}

pub(crate) fn timestamp<S: Serializer>(millis: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*millis))
}

pub(crate) fn optional_timestamp<S: Serializer>(
    millis: &Option<i64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match millis {
        Some(m) => s.serialize_str(&rfc3339(*m)),
        None => s.serialize_none(),
    }
}

/// Body of `POST /v1/agents`. Required fields are optional here so a missing one is reported by
/// name rather than as a malformed body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub agent_type: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub deployment_env: DeploymentEnv,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub visibility: Visibility,
}

/// Body of `PATCH /v1/agents/{id}`: the outer `Option` is "sent", the inner one is JSON `null`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentPatch {
    #[serde(default, deserialize_with = "sent")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "sent")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "sent")]
    pub agent_type: Option<Option<String>>,
    #[serde(default, deserialize_with = "sent")]
    pub version: Option<Option<String>>,
    #[serde(default, deserialize_with = "sent")]
    pub capabilities: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "sent")]
    pub owner: Option<Option<String>>,
    #[serde(default, deserialize_with = "sent")]
    pub deployment_env: Option<Option<DeploymentEnv>>,
    #[serde(default, deserialize_with = "sent")]
    pub metadata: Option<Option<Map<String, Value>>>,
    #[serde(default, deserialize_with = "sent")]
    pub visibility: Option<Option<Visibility>>,
    #[serde(default, deserialize_with = "sent")]
    pub status: Option<Option<AgentStatus>>,
}

/// Distinguishes a field sent as `null` from one not sent at all.
fn sent<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Query of `GET /v1/agents`. There is deliberately no organization parameter.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub owner: Option<String>,
    pub agent_type: Option<String>,
    pub status: Option<AgentStatus>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

fn no_control_chars(field: &str, text: &str) -> Result<(), AgentError> {
    if text.chars().any(char::is_control) {
        return Err(AgentError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Non-blank text of at most `max_chars` characters, without control characters.
pub(crate) fn bounded_text(
    field: &str,
    text: String,
    max_chars: usize,
) -> Result<String, AgentError> {
    if text.trim().is_empty() {
        return Err(AgentError::invalid(field, "must not be empty"));
    }
    if text.chars().count() > max_chars {
        return Err(AgentError::invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    no_control_chars(field, &text)?;
    Ok(text)
}

fn valid_name(name: String) -> Result<String, AgentError> {
    bounded_text("name", name, MAX_NAME_CHARS)
}

/// A deliberately basic check (one `@`, a dotted domain, no spaces); stored lowercased so
/// uniqueness does not depend on letter case.
fn valid_email(email: String) -> Result<String, AgentError> {
    let invalid =
        || AgentError::invalid("email", "must be an email address such as bot@example.com");
    if email.len() > MAX_EMAIL_CHARS || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let domain_ok = !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
        && !domain.contains("..");
    if local.is_empty() || !domain_ok {
        return Err(invalid());
    }
    Ok(email.to_lowercase())
}

fn valid_agent_type(agent_type: String) -> Result<String, AgentError> {
    let ok_chars = agent_type
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-'));
    if agent_type.is_empty() || agent_type.len() > MAX_AGENT_TYPE_CHARS || !ok_chars {
        return Err(AgentError::invalid(
            "agent_type",
            format!("must be 1 to {MAX_AGENT_TYPE_CHARS} characters of a-z, 0-9, `_`, `.` and `-`"),
        ));
    }
    Ok(agent_type)
}

/// RFC 6749 §3.3 scope-token characters: printable ASCII except space, `"` and `\`.
fn is_scope_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// Capabilities are the scopes an agent may be granted, so each must be a valid scope token.
fn valid_capabilities(capabilities: Vec<String>) -> Result<Vec<String>, AgentError> {
    let mut unique: Vec<String> = Vec::with_capacity(capabilities.len());
    for (i, capability) in capabilities.into_iter().enumerate() {
        if capability.is_empty()
            || capability.len() > MAX_CAPABILITY_CHARS
            || !capability.bytes().all(is_scope_char)
        {
            return Err(AgentError::invalid(
                &format!("capabilities[{i}]"),
                format!(
                    "must be an OAuth scope token: 1 to {MAX_CAPABILITY_CHARS} printable ASCII characters without spaces, quotes or backslashes"
                ),
            ));
        }
        if !unique.contains(&capability) {
            unique.push(capability);
        }
    }
    if unique.len() > MAX_CAPABILITIES {
        return Err(AgentError::invalid(
            "capabilities",
            format!("at most {MAX_CAPABILITIES} capabilities"),
        ));
    }
    Ok(unique)
}

fn valid_metadata(metadata: Map<String, Value>) -> Result<Map<String, Value>, AgentError> {
    if serialize_metadata(&metadata).len() > MAX_METADATA_BYTES {
        return Err(AgentError::invalid(
            "metadata",
            format!("must serialize to at most {MAX_METADATA_BYTES} bytes"),
        ));
    }
    Ok(metadata)
}

fn serialize_metadata(metadata: &Map<String, Value>) -> String {
    Value::Object(metadata.clone()).to_string()
}

fn serialize_capabilities(capabilities: &[String]) -> String {
    Value::from(capabilities.to_vec()).to_string()
}

/// Rejects `null` for a field that cannot be cleared.
fn not_null<T>(field: &str, value: Option<T>) -> Result<T, AgentError> {
    value.ok_or_else(|| AgentError::invalid(field, "must not be null"))
}

/// Ids are UUIDs this service generated; anything else cannot name a stored object.
pub fn is_id(text: &str) -> bool {
    text.len() == 36 && uuid::Uuid::try_parse(text).is_ok()
}

const AGENT_COLUMNS: &str = "id, org_id, name, email, agent_type, version, capabilities, owner, \
     deployment_env, metadata, visibility, status, created_at, updated_at, last_auth_at";

fn decode<T>(column: &str, value: Option<T>) -> Result<T, DbError> {
    value.ok_or_else(|| DbError::Decode(format!("column `{column}`: unknown value")))
}

impl Agent {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        let capabilities: String = row.get("capabilities")?;
        let metadata: String = row.get("metadata")?;
        let deployment_env: String = row.get("deployment_env")?;
        let visibility: String = row.get("visibility")?;
        let status: String = row.get("status")?;
        Ok(Agent {
            id: row.get("id")?,
            org_id: row.get("org_id")?,
            name: row.get("name")?,
            email: row.get("email")?,
            agent_type: row.get("agent_type")?,
            version: row.get("version")?,
            capabilities: serde_json::from_str(&capabilities)
                .map_err(|e| DbError::Decode(format!("column `capabilities`: {e}")))?,
            owner: row.get("owner")?,
            deployment_env: decode("deployment_env", DeploymentEnv::parse(&deployment_env))?,
            metadata: serde_json::from_str(&metadata)
                .map_err(|e| DbError::Decode(format!("column `metadata`: {e}")))?,
            visibility: decode("visibility", Visibility::parse(&visibility))?,
            status: decode("status", AgentStatus::parse(&status))?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
            last_auth_at: row.get("last_auth_at")?,
        })
    }

    /// The agent with `patch` applied (validated), and the names of the fields it changes.
    fn patched(&self, patch: AgentPatch) -> Result<(Agent, Vec<&'static str>), AgentError> {
        let mut next = self.clone();
        if let Some(name) = patch.name {
            next.name = valid_name(not_null("name", name)?)?;
        }
        if let Some(email) = patch.email {
            next.email = email.map(valid_email).transpose()?;
        }
        if let Some(agent_type) = patch.agent_type {
            next.agent_type = valid_agent_type(not_null("agent_type", agent_type)?)?;
        }
        if let Some(version) = patch.version {
            next.version = version
                .map(|v| bounded_text("version", v, MAX_VERSION_CHARS))
                .transpose()?;
        }
        if let Some(capabilities) = patch.capabilities {
            next.capabilities = valid_capabilities(not_null("capabilities", capabilities)?)?;
        }
        if let Some(owner) = patch.owner {
            next.owner = owner
                .map(|o| bounded_text("owner", o, MAX_OWNER_CHARS))
                .transpose()?;
        }
        if let Some(env) = patch.deployment_env {
            next.deployment_env = not_null("deployment_env", env)?;
        }
        if let Some(metadata) = patch.metadata {
            next.metadata = valid_metadata(not_null("metadata", metadata)?)?;
        }
        if let Some(visibility) = patch.visibility {
            next.visibility = not_null("visibility", visibility)?;
        }
        if let Some(status) = patch.status {
            next.status = match not_null("status", status)? {
                AgentStatus::Decommissioned => {
                    return Err(AgentError::invalid(
                        "status",
                        "cannot be set to decommissioned; use DELETE /v1/agents/{id}",
                    ));
                }
                other => other,
            };
        }
        let mut changed = Vec::new();
        let fields: [(&'static str, bool); 9] = [
            ("name", next.name != self.name),
            ("email", next.email != self.email),
            ("agent_type", next.agent_type != self.agent_type),
            ("version", next.version != self.version),
            ("capabilities", next.capabilities != self.capabilities),
            ("owner", next.owner != self.owner),
            ("deployment_env", next.deployment_env != self.deployment_env),
            ("metadata", next.metadata != self.metadata),
            ("visibility", next.visibility != self.visibility),
        ];
        for (field, differs) in fields {
            if differs {
                changed.push(field);
            }
        }
        Ok((next, changed))
    }
}

impl AgentPatch {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.email.is_none()
            && self.agent_type.is_none()
            && self.version.is_none()
            && self.capabilities.is_none()
            && self.owner.is_none()
            && self.deployment_env.is_none()
            && self.metadata.is_none()
            && self.visibility.is_none()
            && self.status.is_none()
    }
}

/// A unique-index violation on the per-organization email.
fn email_conflict(e: DbError) -> AgentError {
    match e {
        DbError::Constraint(m) if m.contains("agents.email") => AgentError::EmailTaken,
        other => AgentError::Db(other),
    }
}

/// Reads an agent of `org_id`; another organization's agent is `None`, like a missing one.
pub async fn find(state: &AppState, org_id: &str, id: &str) -> Result<Option<Agent>, AgentError> {
    if !is_id(id) {
        return Ok(None);
    }
    let row = query_one(
        state.db.as_ref(),
        Statement::new(format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE id = ?1 AND org_id = ?2"
        ))
        .bind(id)
        .bind(org_id),
    )
    .await?;
    Ok(row.as_ref().map(Agent::from_row).transpose()?)
}

/// Like `find`, but a missing agent is an error.
pub async fn get(state: &AppState, org_id: &str, id: &str) -> Result<Agent, AgentError> {
    find(state, org_id, id)
        .await?
        .ok_or(AgentError::NotFound("agent"))
}

/// Registers an agent, enforcing the free-tier cap in the same transaction as the insert.
pub async fn create(
    state: &AppState,
    org_id: &str,
    actor: &str,
    new: NewAgent,
) -> Result<Agent, AgentError> {
    let now = state.now_millis();
    let agent = Agent {
        id: state.new_id(),
        org_id: org_id.to_owned(),
        name: valid_name(
            new.name
                .ok_or_else(|| AgentError::invalid("name", "is required"))?,
        )?,
        email: new.email.map(valid_email).transpose()?,
        agent_type: valid_agent_type(
            new.agent_type
                .ok_or_else(|| AgentError::invalid("agent_type", "is required"))?,
        )?,
        version: new
            .version
            .map(|v| bounded_text("version", v, MAX_VERSION_CHARS))
            .transpose()?,
        capabilities: valid_capabilities(new.capabilities)?,
        owner: new
            .owner
            .map(|o| bounded_text("owner", o, MAX_OWNER_CHARS))
            .transpose()?,
        deployment_env: new.deployment_env,
        metadata: valid_metadata(new.metadata)?,
        visibility: new.visibility,
        status: AgentStatus::Active,
        created_at: now,
        updated_at: now,
        last_auth_at: None,
    };
    let limit = state.config.max_agents_per_org;
    let insert = Statement::new(
        "INSERT INTO agents (id, org_id, name, email, agent_type, version, capabilities, owner, \
         deployment_env, metadata, visibility, status, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'active', ?12, ?12)",
    )
    .bind(&agent.id)
    .bind(&agent.org_id)
    .bind(&agent.name)
    .bind(agent.email.clone())
    .bind(&agent.agent_type)
    .bind(agent.version.clone())
    .bind(serialize_capabilities(&agent.capabilities))
    .bind(agent.owner.clone())
    .bind(agent.deployment_env.as_str())
    .bind(serialize_metadata(&agent.metadata))
    .bind(agent.visibility.as_str())
    .bind(now);
    // Counted after the insert, inside the transaction: concurrent creations cannot overshoot.
    let cap = Statement::guard(
        "free_tier_limit_exceeded",
        "(SELECT COUNT(*) FROM agents WHERE org_id = ?1 AND status <> 'decommissioned') > ?2",
    )
    .bind(org_id)
    .bind(limit);
    let event = state
        .audit(org_id, actor, "agent.created", Outcome::Success)
        .agent(&agent.id)
        .target(agent.id.clone())
        .details(json!({
            "name": agent.name,
            "agent_type": agent.agent_type,
            "capabilities": agent.capabilities,
            "visibility": agent.visibility,
        }));
    match state
        .db
        .commit(Change::new().statement(insert).statement(cap).event(event))
        .await
    {
        Ok(_) => Ok(agent),
        Err(DbError::Guard("free_tier_limit_exceeded")) => Err(AgentError::FreeTierLimit { limit }),
        Err(e) => Err(email_conflict(e)),
    }
}

/// One page of the organization's agents in creation order.
pub async fn list(
    state: &AppState,
    org_id: &str,
    query: ListQuery,
) -> Result<Page<Agent>, ApiError> {
    let limit = page_limit(query.limit)?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut statement = Statement::new("").bind(org_id);
    let mut sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE org_id = ?1");
    let mut filter = |column: &str, value: String| {
        statement.params.push(value.into());
        sql.push_str(&format!(" AND {column} = ?{}", statement.params.len()));
    };
    if let Some(owner) = query.owner {
        filter("owner", owner);
    }
    if let Some(agent_type) = query.agent_type {
        filter("agent_type", agent_type);
    }
    if let Some(status) = query.status {
        filter("status", status.as_str().to_owned());
    }
    if let Some((created_at, id)) = after {
        statement.params.push(created_at.into());
        statement.params.push(id.into());
        let n = statement.params.len();
        sql.push_str(&format!(" AND (created_at, id) > (?{}, ?{n})", n - 1));
    }
    statement.params.push((limit + 1).into());
    sql.push_str(&format!(
        " ORDER BY created_at, id LIMIT ?{}",
        statement.params.len()
    ));
    statement.sql = sql.into();
    let rows = state.db.query(statement).await?;
    let data = rows
        .iter()
        .map(Agent::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page(data, limit, |a| (a.created_at, &a.id)))
}

/// Turns the `limit + 1` rows of a keyset query into a page: the extra row only tells that there
/// is a next one, whose cursor is the key of the last row shown.
pub(crate) fn page<T>(mut data: Vec<T>, limit: i64, key: impl Fn(&T) -> (i64, &str)) -> Page<T> {
    let next_cursor = if data.len() as i64 > limit {
        data.truncate(limit as usize);
        data.last().map(|last| {
            let (position, id) = key(last);
            encode_cursor(position, id)
        })
    } else {
        None
    };
    Page { data, next_cursor }
}

/// What an update did, so the caller can revoke tokens once it is durable.
pub struct Updated {
    pub agent: Agent,
    /// The request asked for suspension (also when already suspended, so a retry after a failed
    /// revocation still revokes): the caller must revoke the agent's tokens.
    pub suspended: bool,
}

/// Applies a partial update. Optimistic: the write is conditional on `updated_at` being what was
/// read, so a concurrent suspension is never overwritten by a stale `active`.
pub async fn update(
    state: &AppState,
    org_id: &str,
    actor: &str,
    id: &str,
    patch: AgentPatch,
) -> Result<Updated, AgentError> {
    if patch.is_empty() {
        return Err(AgentError::invalid(
            "body",
            "send at least one field to change",
        ));
    }
    let requested_status = patch.status.flatten();
    for _ in 0..UPDATE_ATTEMPTS {
        let current = get(state, org_id, id).await?;
        if current.status == AgentStatus::Decommissioned {
            return Err(AgentError::Decommissioned);
        }
        // A retry re-applies the same patch to the fresher row.
        let (mut next, changed) = current.patched(patch.clone())?;
        let status_action = match (current.status, next.status) {
            (AgentStatus::Active, AgentStatus::Suspended) => Some("agent.suspended"),
            (AgentStatus::Suspended, AgentStatus::Active) => Some("agent.reactivated"),
            _ => None,
        };
        let suspended = requested_status == Some(AgentStatus::Suspended);
        if changed.is_empty() && status_action.is_none() {
            return Ok(Updated {
                agent: current,
                suspended,
            });
        }
        next.updated_at = state.now_millis().max(current.updated_at + 1);
        let unchanged = Statement::guard(
            "agent_changed",
            "NOT EXISTS (SELECT 1 FROM agents WHERE id = ?1 AND org_id = ?2 AND updated_at = ?3)",
        )
        .bind(id)
        .bind(org_id)
        .bind(current.updated_at);
        let write = Statement::new(
            "UPDATE agents SET name = ?1, email = ?2, agent_type = ?3, version = ?4, \
             capabilities = ?5, owner = ?6, deployment_env = ?7, metadata = ?8, visibility = ?9, \
             status = ?10, updated_at = ?11 WHERE id = ?12 AND org_id = ?13",
        )
        .bind(&next.name)
        .bind(next.email.clone())
        .bind(&next.agent_type)
        .bind(next.version.clone())
        .bind(serialize_capabilities(&next.capabilities))
        .bind(next.owner.clone())
        .bind(next.deployment_env.as_str())
        .bind(serialize_metadata(&next.metadata))
        .bind(next.visibility.as_str())
        .bind(next.status.as_str())
        .bind(next.updated_at)
        .bind(id)
        .bind(org_id);
        let mut change = Change::new().statement(unchanged).statement(write);
        if !changed.is_empty() {
            change = change.event(
                state
                    .audit(org_id, actor, "agent.updated", Outcome::Success)
                    .agent(id)
                    .target(id)
                    .details(json!({ "changed": changed })),
            );
        }
        if let Some(action) = status_action {
            change = change.event(
                state
                    .audit(org_id, actor, action, Outcome::Success)
                    .agent(id)
                    .target(id)
                    .details(json!({ "from": current.status, "to": next.status })),
            );
        }
        match state.db.commit(change).await {
            Ok(_) => {
                return Ok(Updated {
                    agent: next,
                    suspended,
                });
            }
            Err(DbError::Guard("agent_changed")) => continue,
            Err(e) => return Err(email_conflict(e)),
        }
    }
    Err(AgentError::Contention)
}

/// Decommissions an agent: terminal status and every credential revoked, in one transaction.
/// Idempotent: decommissioning a decommissioned agent answers with it unchanged.
pub async fn decommission(
    state: &AppState,
    org_id: &str,
    actor: &str,
    id: &str,
) -> Result<Agent, AgentError> {
    let current = get(state, org_id, id).await?;
    if current.status == AgentStatus::Decommissioned {
        return Ok(current);
    }
    let now = state.now_millis();
    let still_live = Statement::guard(
        "agent_decommissioned",
        "NOT EXISTS (SELECT 1 FROM agents WHERE id = ?1 AND org_id = ?2 \
         AND status <> 'decommissioned')",
    )
    .bind(id)
    .bind(org_id);
    let retire = Statement::new(
        "UPDATE agents SET status = 'decommissioned', updated_at = MAX(?1, updated_at + 1) \
         WHERE id = ?2 AND org_id = ?3",
    )
    .bind(now)
    .bind(id)
    .bind(org_id);
    let revoke_credentials = Statement::new(
        "UPDATE credentials SET status = 'revoked', revoked_at = ?1, previous_secret_hash = NULL, \
         previous_secret_expires_at = NULL \
         WHERE org_id = ?2 AND agent_id = ?3 AND status = 'active'",
    )
    .bind(now)
    .bind(org_id)
    .bind(id);
    let event = state
        .audit(org_id, actor, "agent.decommissioned", Outcome::Success)
        .agent(id)
        .target(id)
        .details(json!({ "from": current.status }));
    match state
        .db
        .commit(
            Change::new()
                .statement(still_live)
                .statement(retire)
                .statement(revoke_credentials)
                .event(event),
        )
        .await
    {
        // A concurrent decommission won; the outcome is the same.
        Ok(_) | Err(DbError::Guard("agent_decommissioned")) => get(state, org_id, id).await,
        Err(e) => Err(e.into()),
    }
}

/// Ends every token the agent holds. Called only after the change that warrants it is durable, so
/// a failed commit never leaves a live agent locked out.
pub async fn revoke_tokens(state: &AppState, agent_id: &str) -> Result<(), ApiError> {
    revocation::revoke_subject(
        state.kv.as_ref(),
        agent_id,
        state.clock.now_seconds(),
        state.config.token_ttl_seconds,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> Agent {
        Agent {
            id: "00000000-0000-4000-8000-000000000001".into(),
            org_id: "org".into(),
            name: "bot".into(),
            email: None,
            agent_type: "assistant".into(),
            version: None,
            capabilities: vec![],
            owner: None,
            deployment_env: DeploymentEnv::Development,
            metadata: Map::new(),
            visibility: Visibility::Private,
            status: AgentStatus::Active,
            created_at: 0,
            updated_at: 0,
            last_auth_at: None,
        }
    }

    fn patch(json: &str) -> AgentPatch {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn null_clears_optional_fields_and_absent_fields_stay() {
        let mut with_email = agent();
        with_email.email = Some("a@b.co".into());
        let (next, changed) = with_email.patched(patch(r#"{"email": null}"#)).unwrap();
        assert_eq!(next.email, None);
        assert_eq!(changed, vec!["email"]);
        let (next, changed) = with_email.patched(patch(r#"{"version": "1"}"#)).unwrap();
        assert_eq!(next.email.as_deref(), Some("a@b.co"));
        assert_eq!(changed, vec!["version"]);
    }

    #[test]
    fn required_fields_cannot_be_nulled_and_decommission_needs_delete() {
        for body in [r#"{"name": null}"#, r#"{"capabilities": null}"#] {
            assert!(matches!(
                agent().patched(patch(body)),
                Err(AgentError::Invalid { .. })
            ));
        }
        let err = agent()
            .patched(patch(r#"{"status": "decommissioned"}"#))
            .unwrap_err();
        assert!(matches!(err, AgentError::Invalid { field, .. } if field == "status"));
    }

    #[test]
    fn capabilities_are_scope_tokens_deduplicated_in_order() {
        let caps = valid_capabilities(vec!["b:x".into(), "a".into(), "b:x".into()]).unwrap();
        assert_eq!(caps, vec!["b:x", "a"]);
        for bad in ["", "two words", "quote\"", "back\\slash", "é"] {
            assert!(valid_capabilities(vec![bad.into()]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails_and_agent_types_are_checked() {
        assert_eq!(
            valid_email("Bot@Example.COM".into()).unwrap(),
            "bot@example.com"
        );
        for bad in [
            "bot",
            "@example.com",
            "bot@example",
            "a b@c.d",
            "a@b@c.d",
            "a@.b.c",
        ] {
            assert!(valid_email(bad.into()).is_err(), "{bad}");
        }
        assert!(valid_agent_type("llm.v2-beta_x".into()).is_ok());
        for bad in ["", "Upper", "with space", &"x".repeat(65)] {
            assert!(valid_agent_type(bad.into()).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_canonical_uuids() {
        assert!(is_id("00000000-0000-4000-8000-000000000001"));
        assert!(!is_id("not-a-uuid"));
        assert!(!is_id("00000000000040008000000000000001"));
    }
}
