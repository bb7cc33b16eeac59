//! The `trust_policies` and `trust_policy_registrations` tables: policies of one organization, the
//! candidates a workflow's token is matched against, pinning, and the per-policy registration cap.

use crate::domain::page::PageRequest;
use crate::domain::trust_policies::TrustPolicy;
use crate::ports::sql::{Database, DbError, Row, Statement};
use crate::store::{guard, json_column};

const POLICY_COLUMNS: &str = "p.id, p.org_id, p.provider, p.repository, p.repository_id, \
     p.repository_owner_id, p.branch, p.environment, p.job_workflow_ref, p.event_names, \
     p.runner_environment, p.agent_id, p.allow_registration, p.max_registrations, p.scopes, \
     p.created_at, p.updated_at, \
     (SELECT COUNT(*) FROM trust_policy_registrations r WHERE r.policy_id = p.id) AS registered";

/// Guard codes, as `DbError::Guard` reports them.
pub const ALREADY_PINNED: &str = "trust_policy_already_pinned";
pub const REGISTRATION_CAP: &str = "trust_policy_registration_cap";
pub const POLICY_GONE: &str = "trust_policy_gone";
pub const POLICY_CAP: &str = "trust_policies_cap";

fn policy_from_row(row: &Row) -> Result<TrustPolicy, DbError> {
    let json_list = |column: &str| -> Result<Option<Vec<String>>, DbError> {
        let text: Option<String> = row.get(column)?;
        text.map(|t| json_column(column, &t)).transpose()
    };
    let allow_registration: bool = row.get("allow_registration")?;
    Ok(TrustPolicy {
        id: row.get("id")?,
        org_id: row.get("org_id")?,
        provider: row.get("provider")?,
        repository: row.get("repository")?,
        repository_id: row.get("repository_id")?,
        repository_owner_id: row.get("repository_owner_id")?,
        branch: row.get("branch")?,
        environment: row.get("environment")?,
        job_workflow_ref: row.get("job_workflow_ref")?,
        event_names: json_list("event_names")?,
        runner_environment: row.get("runner_environment")?,
        agent_id: row.get("agent_id")?,
        allow_registration,
        max_registrations: row.get("max_registrations")?,
        scopes: json_list("scopes")?,
        registered_agents: if allow_registration {
            Some(row.get("registered")?)
        } else {
            None
        },
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

fn json_list(list: &Option<Vec<String>>) -> Option<String> {
    list.as_ref()
        .map(|l| serde_json::Value::from(l.clone()).to_string())
}

pub fn insert(policy: &TrustPolicy) -> Statement {
    Statement::new(
        "INSERT INTO trust_policies (id, org_id, provider, repository, repository_owner, \
         repository_id, branch, environment, job_workflow_ref, event_names, runner_environment, \
         agent_id, allow_registration, max_registrations, scopes, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16)",
    )
    .bind(&policy.id)
    .bind(&policy.org_id)
    .bind(&policy.provider)
    .bind(&policy.repository)
    .bind(policy.repository_owner())
    .bind(policy.repository_id.clone())
    .bind(policy.branch.clone())
    .bind(policy.environment.clone())
    .bind(policy.job_workflow_ref.clone())
    .bind(json_list(&policy.event_names))
    .bind(policy.runner_environment.clone())
    .bind(policy.agent_id.clone())
    .bind(policy.allow_registration)
    .bind(policy.max_registrations)
    .bind(json_list(&policy.scopes))
    .bind(policy.created_at)
}

/// A policy of `org_id`; another organization's is `None`, like a missing one.
pub async fn find(
    db: &dyn Database,
    org_id: &str,
    id: &str,
) -> Result<Option<TrustPolicy>, DbError> {
    let statement = Statement::new(format!(
        "SELECT {POLICY_COLUMNS} FROM trust_policies p WHERE p.id = ?1 AND p.org_id = ?2"
    ))
    .bind(id)
    .bind(org_id);
    db.query_one(statement)
        .await?
        .as_ref()
        .map(policy_from_row)
        .transpose()
}

/// One page of the organization's policies in creation order (`page.fetch()` rows), optionally
/// only those naming `agent_id`.
pub async fn list(
    db: &dyn Database,
    org_id: &str,
    agent_id: Option<&str>,
    page: &PageRequest,
) -> Result<Vec<TrustPolicy>, DbError> {
    let mut statement = Statement::new("").bind(org_id);
    let mut sql = format!("SELECT {POLICY_COLUMNS} FROM trust_policies p WHERE p.org_id = ?1");
    if let Some(agent_id) = agent_id {
        statement.params.push(agent_id.into());
        sql.push_str(&format!(" AND p.agent_id = ?{}", statement.params.len()));
    }
    if let Some(after) = &page.after {
        statement.params.push(after.position.into());
        statement.params.push((&after.id).into());
        let n = statement.params.len();
        sql.push_str(&format!(" AND (p.created_at, p.id) > (?{}, ?{n})", n - 1));
    }
    statement.params.push(page.fetch().into());
    sql.push_str(&format!(
        " ORDER BY p.created_at, p.id LIMIT ?{}",
        statement.params.len()
    ));
    statement.sql = sql.into();
    db.query(statement)
        .await?
        .iter()
        .map(policy_from_row)
        .collect()
}

/// Largest number of policies a token is matched against at once; an organization with more for
/// one agent or owner is matched against the oldest.
const MAX_CANDIDATES: i64 = 100;

/// The policies that may let a workflow act as `agent_id` of `org_id`: those naming the agent, and
/// the registration policies that registered it.
pub async fn for_agent(
    db: &dyn Database,
    org_id: &str,
    agent_id: &str,
) -> Result<Vec<TrustPolicy>, DbError> {
    let statement = Statement::new(format!(
        "SELECT {POLICY_COLUMNS} FROM trust_policies p WHERE p.org_id = ?1 AND (p.agent_id = ?2 \
         OR p.id IN (SELECT policy_id FROM trust_policy_registrations WHERE org_id = ?1 \
         AND agent_id = ?2)) ORDER BY p.created_at, p.id LIMIT ?3"
    ))
    .bind(org_id)
    .bind(agent_id)
    .bind(MAX_CANDIDATES);
    db.query(statement)
        .await?
        .iter()
        .map(policy_from_row)
        .collect()
}

/// Registration policies of `provider` naming repositories of `owner` (lowercased), in every
/// organization or only in `org_id`.
pub async fn for_registration(
    db: &dyn Database,
    provider: &str,
    owner: &str,
    org_id: Option<&str>,
) -> Result<Vec<TrustPolicy>, DbError> {
    let mut statement = Statement::new("").bind(provider).bind(owner);
    let mut sql = format!(
        "SELECT {POLICY_COLUMNS} FROM trust_policies p WHERE p.provider = ?1 \
         AND p.repository_owner = ?2 AND p.allow_registration = 1"
    );
    if let Some(org_id) = org_id {
        statement.params.push(org_id.into());
        sql.push_str(" AND p.org_id = ?3");
    }
    statement.params.push(MAX_CANDIDATES.into());
    sql.push_str(&format!(
        " ORDER BY p.created_at, p.id LIMIT ?{}",
        statement.params.len()
    ));
    statement.sql = sql.into();
    db.query(statement)
        .await?
        .iter()
        .map(policy_from_row)
        .collect()
}

/// Pins the immutable ids a policy lacks to those of its first successful use; aborts with
/// [`ALREADY_PINNED`] when another use pinned first, so exactly one pinning is recorded.
pub fn pin(
    org_id: &str,
    id: &str,
    repository_id: Option<&str>,
    repository_owner_id: &str,
    now_millis: i64,
) -> [Statement; 2] {
    [
        guard(
            ALREADY_PINNED,
            "EXISTS (SELECT 1 FROM trust_policies WHERE id = ?1 AND org_id = ?2 \
             AND repository_owner_id IS NOT NULL)",
        )
        .bind(id)
        .bind(org_id),
        Statement::new(
            "UPDATE trust_policies SET repository_id = COALESCE(repository_id, ?1), \
             repository_owner_id = ?2, updated_at = MAX(?3, updated_at + 1) \
             WHERE id = ?4 AND org_id = ?5",
        )
        .bind(repository_id)
        .bind(repository_owner_id)
        .bind(now_millis)
        .bind(id)
        .bind(org_id),
    ]
}

/// Records that `policy_id` registered `agent_id`, refusing past the policy's cap or when the
/// policy no longer allows registration (deleted meanwhile): checked after the insert, inside the
/// transaction, so concurrent registrations cannot overshoot.
pub fn register(org_id: &str, policy_id: &str, agent_id: &str, now_millis: i64) -> [Statement; 3] {
    [
        Statement::new(
            "INSERT INTO trust_policy_registrations (policy_id, org_id, agent_id, created_at) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(policy_id)
        .bind(org_id)
        .bind(agent_id)
        .bind(now_millis),
        guard(
            POLICY_GONE,
            "NOT EXISTS (SELECT 1 FROM trust_policies WHERE id = ?1 AND org_id = ?2 \
             AND allow_registration = 1)",
        )
        .bind(policy_id)
        .bind(org_id),
        guard(
            REGISTRATION_CAP,
            "(SELECT COUNT(*) FROM trust_policy_registrations WHERE policy_id = ?1) > \
             (SELECT max_registrations FROM trust_policies WHERE id = ?1)",
        )
        .bind(policy_id),
    ]
}

/// Guards, after an insert, on the organization's policies staying within `limit`.
pub fn within_cap(org_id: &str, limit: i64) -> Statement {
    guard(
        POLICY_CAP,
        "(SELECT COUNT(*) FROM trust_policies WHERE org_id = ?1) > ?2",
    )
    .bind(org_id)
    .bind(limit)
}

/// Guards on the policy still existing: of concurrent deletes, one deletes and the others find it
/// gone.
pub fn still_there(org_id: &str, id: &str) -> Statement {
    guard(
        POLICY_GONE,
        "NOT EXISTS (SELECT 1 FROM trust_policies WHERE id = ?1 AND org_id = ?2)",
    )
    .bind(id)
    .bind(org_id)
}

/// Deletes a policy and its registration records (the agents it registered stay).
pub fn delete(org_id: &str, id: &str) -> [Statement; 2] {
    [
        Statement::new(
            "DELETE FROM trust_policy_registrations WHERE policy_id = ?1 AND org_id = ?2",
        )
        .bind(id)
        .bind(org_id),
        Statement::new("DELETE FROM trust_policies WHERE id = ?1 AND org_id = ?2")
            .bind(id)
            .bind(org_id),
    ]
}

/// The organization of an agent, whichever it is: where a workflow naming the agent finds the
/// policies its token is matched against.
pub async fn org_of_agent(db: &dyn Database, agent_id: &str) -> Result<Option<String>, DbError> {
    db.query_one(Statement::new("SELECT org_id FROM agents WHERE id = ?1").bind(agent_id))
        .await?
        .map(|row| row.get("org_id"))
        .transpose()
}
