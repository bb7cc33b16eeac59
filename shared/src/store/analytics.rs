//! The `token_counts` table: token outcomes per organization, hour, agent, grant and outcome,
//! counted in the transaction of the event they come from.

use crate::domain::analytics::{GroupBy, TokenCount};
use crate::ports::sql::{Database, DbError, Statement};

pub fn increment(org_id: &str, count: &TokenCount) -> Statement {
    Statement::new(
        "INSERT INTO token_counts (org_id, hour, agent_id, grant_type, outcome, count) \
         VALUES (?1, ?2, ?3, ?4, ?5, 1) \
         ON CONFLICT (org_id, hour, agent_id, grant_type, outcome) DO UPDATE SET count = count + 1",
    )
    .bind(org_id)
    .bind(count.hour)
    .bind(&count.agent)
    .bind(&count.grant)
    .bind(count.outcome)
}

/// Most points one query returns.
pub const MAX_POINTS: i64 = 10_000;

/// `(bucket start hour, group, count)` over `[from_hour, to_hour)`, oldest first.
pub async fn series(
    db: &dyn Database,
    org_id: &str,
    from_hour: i64,
    to_hour: i64,
    bucket_hours: i64,
    group_by: GroupBy,
) -> Result<Vec<(i64, String, i64)>, DbError> {
    let column = match group_by {
        GroupBy::Agent => "agent_id",
        GroupBy::Grant => "grant_type",
        GroupBy::Outcome => "outcome",
    };
    let rows = db
        .query(
            Statement::new(format!(
                "SELECT (hour / ?4) * ?4 AS bucket, {column} AS grp, SUM(count) AS n \
                 FROM token_counts WHERE org_id = ?1 AND hour >= ?2 AND hour < ?3 \
                 GROUP BY bucket, grp ORDER BY bucket, grp LIMIT ?5"
            ))
            .bind(org_id)
            .bind(from_hour)
            .bind(to_hour)
            .bind(bucket_hours)
            .bind(MAX_POINTS),
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.get("bucket")?, r.get("grp")?, r.get("n")?)))
        .collect()
}

/// Drops counters of hours before `before_hour` (retention).
pub fn remove_before(org_id: &str, before_hour: i64) -> Statement {
    Statement::new("DELETE FROM token_counts WHERE org_id = ?1 AND hour < ?2")
        .bind(org_id)
        .bind(before_hour)
}
