//! The `policies` and `policy_sets` tables: an organization's Cedar policies, and the version of
//! its set that every change bumps in the same transaction.

use crate::domain::page::PageRequest;
use crate::domain::policies::OrgPolicy;
use crate::ports::sql::{Database, DbError, Row, Statement};
use crate::store::guard;

const COLUMNS: &str = "id, cedar, description, version, created_at, updated_at";

/// Guard codes, as `DbError::Guard` reports them.
pub const STALE: &str = "policy_stale";
pub const TOO_MANY: &str = "policy_limit";

fn policy_from_row(row: &Row) -> Result<OrgPolicy, DbError> {
    Ok(OrgPolicy {
        id: row.get("id")?,
        cedar: row.get("cedar")?,
        description: row.get("description")?,
        version: row.get("version")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

pub fn insert(org_id: &str, policy: &OrgPolicy) -> Statement {
    Statement::new(
        "INSERT INTO policies (id, org_id, cedar, description, version, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(&policy.id)
    .bind(org_id)
    .bind(&policy.cedar)
    .bind(&policy.description)
    .bind(policy.version)
    .bind(policy.created_at)
    .bind(policy.updated_at)
}

/// Aborts with [`TOO_MANY`] when the organization holds more than `limit` policies (checked after
/// the insert, inside its transaction, so concurrent uploads cannot overshoot).
pub fn within_cap(org_id: &str, limit: i64) -> Statement {
    let mut statement = guard(
        TOO_MANY,
        "(SELECT COUNT(*) FROM policies WHERE org_id = ?1) > ?2",
    );
    statement = statement.bind(org_id).bind(limit);
    statement
}

/// A new version of the organization's policy set: every instance recompiles on its next decision.
pub fn bump_set_version(org_id: &str) -> Statement {
    Statement::new(
        "INSERT INTO policy_sets (org_id, version) VALUES (?1, 1) \
         ON CONFLICT(org_id) DO UPDATE SET version = version + 1",
    )
    .bind(org_id)
}

/// Replaces a policy's text and description, conditional on it still being at `version`
/// (compare-and-set: [`STALE`] otherwise, also when it is gone).
pub fn update(org_id: &str, policy: &OrgPolicy, expected_version: i64) -> [Statement; 2] {
    [
        guard(
            STALE,
            "NOT EXISTS (SELECT 1 FROM policies WHERE id = ?1 AND org_id = ?2 AND version = ?3)",
        )
        .bind(&policy.id)
        .bind(org_id)
        .bind(expected_version),
        Statement::new(
            "UPDATE policies SET cedar = ?3, description = ?4, version = ?5, updated_at = ?6 \
             WHERE id = ?1 AND org_id = ?2",
        )
        .bind(&policy.id)
        .bind(org_id)
        .bind(&policy.cedar)
        .bind(&policy.description)
        .bind(policy.version)
        .bind(policy.updated_at),
    ]
}

/// Deletes a policy that is still there ([`STALE`] when a concurrent delete won).
pub fn delete(org_id: &str, id: &str) -> [Statement; 2] {
    [
        guard(
            STALE,
            "NOT EXISTS (SELECT 1 FROM policies WHERE id = ?1 AND org_id = ?2)",
        )
        .bind(id)
        .bind(org_id),
        Statement::new("DELETE FROM policies WHERE id = ?1 AND org_id = ?2")
            .bind(id)
            .bind(org_id),
    ]
}

/// A policy of `org_id`; another organization's is `None`, like a missing one.
pub async fn find(db: &dyn Database, org_id: &str, id: &str) -> Result<Option<OrgPolicy>, DbError> {
    let statement = Statement::new(format!(
        "SELECT {COLUMNS} FROM policies WHERE id = ?1 AND org_id = ?2"
    ))
    .bind(id)
    .bind(org_id);
    db.query_one(statement)
        .await?
        .as_ref()
        .map(policy_from_row)
        .transpose()
}

/// One page of the organization's policies in creation order (`page.fetch()` rows).
pub async fn list(
    db: &dyn Database,
    org_id: &str,
    page: &PageRequest,
) -> Result<Vec<OrgPolicy>, DbError> {
    let (after_at, after_id) = page
        .after
        .as_ref()
        .map_or((i64::MIN, String::new()), |a| (a.position, a.id.clone()));
    let statement = Statement::new(format!(
        "SELECT {COLUMNS} FROM policies WHERE org_id = ?1 AND (created_at, id) > (?2, ?3) \
         ORDER BY created_at, id LIMIT ?4"
    ))
    .bind(org_id)
    .bind(after_at)
    .bind(after_id)
    .bind(page.fetch());
    db.query(statement)
        .await?
        .iter()
        .map(policy_from_row)
        .collect()
}

/// The organization's whole set and its version, read in one statement (one snapshot): version
/// 0 and no policies for an organization that never had one.
pub async fn set(db: &dyn Database, org_id: &str) -> Result<(i64, Vec<(String, String)>), DbError> {
    let statement = Statement::new(
        "SELECT s.version, p.id, p.cedar FROM policy_sets s \
         LEFT JOIN policies p ON p.org_id = s.org_id WHERE s.org_id = ?1 \
         ORDER BY p.created_at, p.id",
    )
    .bind(org_id);
    let rows = db.query(statement).await?;
    let mut version = 0;
    let mut policies = Vec::with_capacity(rows.len());
    for row in &rows {
        version = row.get("version")?;
        let id: Option<String> = row.get("id")?;
        let cedar: Option<String> = row.get("cedar")?;
        if let (Some(id), Some(cedar)) = (id, cedar) {
            policies.push((id, cedar));
        }
    }
    Ok((version, policies))
}

/// The version of the organization's policy set (0: it never had a policy).
pub async fn set_version(db: &dyn Database, org_id: &str) -> Result<i64, DbError> {
    let statement =
        Statement::new("SELECT version FROM policy_sets WHERE org_id = ?1").bind(org_id);
    match db.query_one(statement).await? {
        Some(row) => row.get("version"),
        None => Ok(0),
    }
}
