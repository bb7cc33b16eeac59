//! What a compliance report reads: agents by status, credentials, trust policies and their last
//! match, changes in a period, failed authentications per agent. Every list is bounded by the
//! tier caps of what it lists or by `MAX_ROWS`.

use crate::ports::sql::{Database, DbError, Row, Statement};

/// Most rows one section of a report lists.
pub const MAX_ROWS: i64 = 1000;

/// The actions a report lists as policy and permission changes.
pub const CHANGE_ACTIONS: &[&str] = &[
    "agent.created",
    "agent.updated",
    "agent.suspended",
    "agent.reactivated",
    "agent.decommissioned",
    "credential.created",
    "credential.rotated",
    "credential.revoked",
    "admin_credential.created",
    "admin_credential.rotated",
    "admin_credential.revoked",
    "policy.created",
    "policy.updated",
    "policy.deleted",
    "trust_policy.created",
    "trust_policy.deleted",
];

pub async fn agents_by_status(
    db: &dyn Database,
    org_id: &str,
) -> Result<Vec<(String, i64)>, DbError> {
    let rows = db
        .query(
            Statement::new(
                "SELECT status, COUNT(*) AS n FROM agents WHERE org_id = ?1 GROUP BY status ORDER BY status",
            )
            .bind(org_id),
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.get("status")?, r.get("n")?)))
        .collect()
}

/// An active credential, agent's or admin's.
pub struct CredentialRow {
    pub id: String,
    pub agent_id: Option<String>,
    pub role: String,
    pub kind: String,
    pub client_id: String,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

fn credential(r: &Row) -> Result<CredentialRow, DbError> {
    Ok(CredentialRow {
        id: r.get("id")?,
        agent_id: r.get("agent_id")?,
        role: r.get("role")?,
        kind: r.get("kind")?,
        client_id: r.get("client_id")?,
        created_at: r.get("created_at")?,
        rotated_at: r.get("rotated_at")?,
        last_used_at: r.get("last_used_at")?,
    })
}

pub async fn active_credentials(
    db: &dyn Database,
    org_id: &str,
) -> Result<Vec<CredentialRow>, DbError> {
    let rows = db
        .query(
            Statement::new(
                "SELECT id, agent_id, role, kind, client_id, created_at, rotated_at, last_used_at \
                 FROM credentials WHERE org_id = ?1 AND status = 'active' \
                 ORDER BY created_at, id LIMIT ?2",
            )
            .bind(org_id)
            .bind(MAX_ROWS),
        )
        .await?;
    rows.iter().map(credential).collect()
}

/// Active agents none of whose active credentials was ever rotated.
pub async fn agents_never_rotated(db: &dyn Database, org_id: &str) -> Result<Vec<String>, DbError> {
    let rows = db
        .query(
            Statement::new(
                "SELECT a.id FROM agents a WHERE a.org_id = ?1 AND a.status = 'active' \
                 AND EXISTS (SELECT 1 FROM credentials c WHERE c.org_id = ?1 AND c.agent_id = a.id \
                     AND c.status = 'active') \
                 AND NOT EXISTS (SELECT 1 FROM credentials c WHERE c.org_id = ?1 AND c.agent_id = a.id \
                     AND c.rotated_at IS NOT NULL) \
                 ORDER BY a.id LIMIT ?2",
            )
            .bind(org_id)
            .bind(MAX_ROWS),
        )
        .await?;
    rows.iter().map(|r| r.get("id")).collect()
}

pub struct TrustPolicyRow {
    pub id: String,
    pub repository: String,
    pub agent_id: Option<String>,
    pub created_at: i64,
    pub last_matched_at: Option<i64>,
}

/// Trust policies with the time of the last token issued through each (read from the audit trail
/// through its action index; a policy's issuances name it in their details).
pub async fn trust_policies(
    db: &dyn Database,
    org_id: &str,
) -> Result<Vec<TrustPolicyRow>, DbError> {
    let rows = db
        .query(
            Statement::new(
                "SELECT p.id, p.repository, p.agent_id, p.created_at, \
                 (SELECT MAX(e.occurred_at) FROM audit_events e WHERE e.org_id = ?1 \
                    AND e.action = 'token.issued' \
                    AND json_extract(e.details, '$.trust_policy_id') = p.id) AS last_matched_at \
                 FROM trust_policies p WHERE p.org_id = ?1 ORDER BY p.created_at, p.id LIMIT ?2",
            )
            .bind(org_id)
            .bind(MAX_ROWS),
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(TrustPolicyRow {
                id: r.get("id")?,
                repository: r.get("repository")?,
                agent_id: r.get("agent_id")?,
                created_at: r.get("created_at")?,
                last_matched_at: r.get("last_matched_at")?,
            })
        })
        .collect()
}

pub struct ChangeRow {
    pub seq: i64,
    pub occurred_at: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
}

/// Policy and permission changes in `[from, to)`, oldest first.
pub async fn changes(
    db: &dyn Database,
    org_id: &str,
    from: i64,
    to: i64,
) -> Result<Vec<ChangeRow>, DbError> {
    let placeholders: Vec<String> = (0..CHANGE_ACTIONS.len())
        .map(|i| format!("?{}", i + 5))
        .collect();
    let mut statement = Statement::new(format!(
        "SELECT seq, occurred_at, actor, action, target FROM audit_events \
         WHERE org_id = ?1 AND occurred_at >= ?2 AND occurred_at < ?3 AND action IN ({}) \
         ORDER BY seq LIMIT ?4",
        placeholders.join(", ")
    ))
    .bind(org_id)
    .bind(from)
    .bind(to)
    .bind(MAX_ROWS);
    for action in CHANGE_ACTIONS {
        statement = statement.bind(*action);
    }
    let rows = db.query(statement).await?;
    rows.iter()
        .map(|r| {
            Ok(ChangeRow {
                seq: r.get("seq")?,
                occurred_at: r.get("occurred_at")?,
                actor: r.get("actor")?,
                action: r.get("action")?,
                target: r.get("target")?,
            })
        })
        .collect()
}

/// Token outcomes per agent in `[from_hour, to_hour)`, from the analytics counters:
/// `(agent, issued, refused)`.
pub async fn tokens_per_agent(
    db: &dyn Database,
    org_id: &str,
    from_hour: i64,
    to_hour: i64,
) -> Result<Vec<(String, i64, i64)>, DbError> {
    let rows = db
        .query(
            Statement::new(
                "SELECT agent_id, SUM(CASE WHEN outcome = 'success' THEN count ELSE 0 END) AS issued, \
                 SUM(CASE WHEN outcome = 'failure' THEN count ELSE 0 END) AS refused \
                 FROM token_counts WHERE org_id = ?1 AND hour >= ?2 AND hour < ?3 \
                 GROUP BY agent_id ORDER BY agent_id LIMIT ?4",
            )
            .bind(org_id)
            .bind(from_hour)
            .bind(to_hour)
            .bind(MAX_ROWS),
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.get("agent_id")?, r.get("issued")?, r.get("refused")?)))
        .collect()
}

/// Failed client authentications per agent in `[from, to)` (`-` for admin credentials), from the
/// hourly summaries: each period's latest tally, summed.
pub async fn failed_authentications(
    db: &dyn Database,
    org_id: &str,
    from: i64,
    to: i64,
) -> Result<Vec<(String, i64)>, DbError> {
    let rows = db
        .query(
            Statement::new(
                "SELECT agent, SUM(tally) AS n FROM ( \
                   SELECT COALESCE(agent_id, '-') AS agent, \
                          json_extract(details, '$.client_id') AS client, \
                          json_extract(details, '$.period_started_at') AS period, \
                          MAX(json_extract(details, '$.count')) AS tally \
                   FROM audit_events WHERE org_id = ?1 AND action = 'authentication.failed' \
                     AND occurred_at >= ?2 AND occurred_at < ?3 \
                   GROUP BY agent, client, period) \
                 GROUP BY agent ORDER BY agent LIMIT ?4",
            )
            .bind(org_id)
            .bind(from)
            .bind(to)
            .bind(MAX_ROWS),
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.get("agent")?, r.get("n")?)))
        .collect()
}
