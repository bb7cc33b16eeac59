//! The `agents` table: reading and writing agents of one organization, and the guards that keep
//! concurrent writers honest (free-tier cap, optimistic updates, "still live").

use crate::domain::agents::{
    serialize_capabilities, serialize_metadata, serialize_skills, serialize_tags, Agent,
    AgentStatus, DeploymentEnv, Visibility,
};
use crate::domain::page::PageRequest;
use crate::ports::sql::{Database, DbError, Row, Statement};
use crate::store::{guard, json_column, unknown_value};

const AGENT_COLUMNS: &str = "id, org_id, name, email, agent_type, version, capabilities, owner, \
     deployment_env, metadata, visibility, status, created_at, updated_at, last_auth_at, \
     COALESCE(p.description, '') AS description, COALESCE(p.tags, '[]') AS tags, \
     p.homepage_url AS homepage_url, p.a2a_url AS a2a_url, COALESCE(p.skills, '[]') AS skills";

/// Agents with what they publish (every agent has a profile row; the join is LEFT all the same).
const AGENTS: &str = "agents LEFT JOIN agent_profiles p ON p.agent_id = agents.id";

/// Guard codes, as `DbError::Guard` reports them.
pub const FREE_TIER_LIMIT: &str = "free_tier_limit_exceeded";
pub const CHANGED: &str = "agent_changed";
pub const DECOMMISSIONED: &str = "agent_decommissioned";

fn agent_from_row(row: &Row) -> Result<Agent, DbError> {
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
        capabilities: json_column("capabilities", &row.get::<String>("capabilities")?)?,
        owner: row.get("owner")?,
        deployment_env: unknown_value("deployment_env", DeploymentEnv::parse(&deployment_env))?,
        metadata: json_column("metadata", &row.get::<String>("metadata")?)?,
        visibility: unknown_value("visibility", Visibility::parse(&visibility))?,
        status: unknown_value("status", AgentStatus::parse(&status))?,
        description: row.get("description")?,
        tags: json_column("tags", &row.get::<String>("tags")?)?,
        homepage_url: row.get("homepage_url")?,
        a2a_url: row.get("a2a_url")?,
        skills: json_column("skills", &row.get::<String>("skills")?)?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
        last_auth_at: row.get("last_auth_at")?,
    })
}

/// An agent of `org_id`; another organization's agent is `None`, like a missing one.
pub async fn find(db: &dyn Database, org_id: &str, id: &str) -> Result<Option<Agent>, DbError> {
    let statement = Statement::new(format!(
        "SELECT {AGENT_COLUMNS} FROM {AGENTS} WHERE id = ?1 AND org_id = ?2"
    ))
    .bind(id)
    .bind(org_id);
    db.query_one(statement)
        .await?
        .as_ref()
        .map(agent_from_row)
        .transpose()
}

pub fn insert(agent: &Agent) -> Statement {
    Statement::new(
        "INSERT INTO agents (id, org_id, name, email, agent_type, version, capabilities, owner, \
         deployment_env, metadata, visibility, status, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
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
    .bind(agent.status.as_str())
    .bind(agent.created_at)
    .bind(agent.updated_at)
}

/// Writes what the agent publishes. The agent's insert has created its (empty) profile row by
/// trigger; the upsert also covers a row that is missing for any other reason. The index of the
/// marketplace follows by trigger, in the same transaction.
pub fn save_profile(agent: &Agent) -> Statement {
    Statement::new(
        "INSERT INTO agent_profiles (agent_id, description, tags, homepage_url, a2a_url, skills) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (agent_id) DO UPDATE SET description = excluded.description, \
         tags = excluded.tags, homepage_url = excluded.homepage_url, a2a_url = excluded.a2a_url, \
         skills = excluded.skills",
    )
    .bind(&agent.id)
    .bind(&agent.description)
    .bind(serialize_tags(&agent.tags))
    .bind(agent.homepage_url.clone())
    .bind(agent.a2a_url.clone())
    .bind(serialize_skills(&agent.skills))
}

/// Counted after the insert, inside the transaction: concurrent creations cannot overshoot.
pub fn within_cap(org_id: &str, limit: i64) -> Statement {
    guard(
        FREE_TIER_LIMIT,
        "(SELECT COUNT(*) FROM agents WHERE org_id = ?1 AND status <> 'decommissioned') > ?2",
    )
    .bind(org_id)
    .bind(limit)
}

/// Filters of the agent list; there is deliberately no organization among them.
#[derive(Clone, Debug, Default)]
pub struct AgentFilter {
    pub owner: Option<String>,
    pub agent_type: Option<String>,
    pub status: Option<AgentStatus>,
}

/// The rows of one page of the organization's agents in creation order (`page.fetch()` of them).
pub async fn list(
    db: &dyn Database,
    org_id: &str,
    filter: &AgentFilter,
    page: &PageRequest,
) -> Result<Vec<Agent>, DbError> {
    let mut statement = Statement::new("").bind(org_id);
    let mut sql = format!("SELECT {AGENT_COLUMNS} FROM {AGENTS} WHERE org_id = ?1");
    let mut and = |column: &str, op: &str, value: crate::ports::sql::Value| {
        statement.params.push(value);
        sql.push_str(&format!(" AND {column} {op} ?{}", statement.params.len()));
    };
    if let Some(owner) = &filter.owner {
        and("owner", "=", owner.into());
    }
    if let Some(agent_type) = &filter.agent_type {
        and("agent_type", "=", agent_type.into());
    }
    if let Some(status) = filter.status {
        and("status", "=", status.as_str().into());
    }
    if let Some(after) = &page.after {
        statement.params.push(after.position.into());
        statement.params.push((&after.id).into());
        let n = statement.params.len();
        sql.push_str(&format!(" AND (created_at, id) > (?{}, ?{n})", n - 1));
    }
    statement.params.push(page.fetch().into());
    sql.push_str(&format!(
        " ORDER BY created_at, id LIMIT ?{}",
        statement.params.len()
    ));
    statement.sql = sql.into();
    db.query(statement)
        .await?
        .iter()
        .map(agent_from_row)
        .collect()
}

/// Guards an optimistic update: the row must still be the version that was read.
pub fn unchanged_since(org_id: &str, id: &str, updated_at: i64) -> Statement {
    guard(
        CHANGED,
        "NOT EXISTS (SELECT 1 FROM agents WHERE id = ?1 AND org_id = ?2 AND updated_at = ?3)",
    )
    .bind(id)
    .bind(org_id)
    .bind(updated_at)
}

/// Writes every mutable field of `agent`.
pub fn update(agent: &Agent) -> Statement {
    Statement::new(
        "UPDATE agents SET name = ?1, email = ?2, agent_type = ?3, version = ?4, \
         capabilities = ?5, owner = ?6, deployment_env = ?7, metadata = ?8, visibility = ?9, \
         status = ?10, updated_at = ?11 WHERE id = ?12 AND org_id = ?13",
    )
    .bind(&agent.name)
    .bind(agent.email.clone())
    .bind(&agent.agent_type)
    .bind(agent.version.clone())
    .bind(serialize_capabilities(&agent.capabilities))
    .bind(agent.owner.clone())
    .bind(agent.deployment_env.as_str())
    .bind(serialize_metadata(&agent.metadata))
    .bind(agent.visibility.as_str())
    .bind(agent.status.as_str())
    .bind(agent.updated_at)
    .bind(&agent.id)
    .bind(&agent.org_id)
}

/// Guards a write on the agent still existing in the organization and not being decommissioned.
pub fn still_live(org_id: &str, id: &str) -> Statement {
    guard(
        DECOMMISSIONED,
        "NOT EXISTS (SELECT 1 FROM agents WHERE id = ?1 AND org_id = ?2 \
         AND status <> 'decommissioned')",
    )
    .bind(id)
    .bind(org_id)
}

/// The terminal status; the schema's trigger refuses to leave it.
pub fn decommission(org_id: &str, id: &str, now_millis: i64) -> Statement {
    Statement::new(
        "UPDATE agents SET status = 'decommissioned', updated_at = MAX(?1, updated_at + 1) \
         WHERE id = ?2 AND org_id = ?3",
    )
    .bind(now_millis)
    .bind(id)
    .bind(org_id)
}

/// At most one write per second per agent: the same information, far fewer dirty pages.
pub fn touch_last_auth(id: &str, now_millis: i64) -> Statement {
    Statement::new(
        "UPDATE agents SET last_auth_at = ?1 \
         WHERE id = ?2 AND (last_auth_at IS NULL OR last_auth_at <= ?1 - 1000)",
    )
    .bind(now_millis)
    .bind(id)
}

/// A unique-index violation on the per-organization email.
pub fn is_email_taken(e: &DbError) -> bool {
    matches!(e, DbError::Constraint(m) if m.contains("agents.email"))
}
