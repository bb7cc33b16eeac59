//! The `usage_months` table: persisted monthly usage, next to what it is reported with.

use crate::ports::sql::{Database, DbError, Statement};

/// An organization's tier, its live agent count, and the figures persisted for a month.
pub struct UsageRow {
    pub tier: String,
    pub agents: i64,
    pub api_calls: i64,
    pub tokens_issued: i64,
}

/// `None` when there is no such organization.
pub async fn read(
    db: &dyn Database,
    org_id: &str,
    month: &str,
) -> Result<Option<UsageRow>, DbError> {
    let statement = Statement::new(
        "SELECT o.tier, \
         (SELECT COUNT(*) FROM agents a WHERE a.org_id = o.id AND a.status <> 'decommissioned') \
           AS agents, \
         u.api_calls, u.tokens_issued \
         FROM orgs o LEFT JOIN usage_months u ON u.org_id = o.id AND u.month = ?2 \
         WHERE o.id = ?1",
    )
    .bind(org_id)
    .bind(month);
    let Some(row) = db.query_one(statement).await? else {
        return Ok(None);
    };
    Ok(Some(UsageRow {
        tier: row.get("tier")?,
        agents: row.get("agents")?,
        api_calls: row.get::<Option<i64>>("api_calls")?.unwrap_or(0),
        tokens_issued: row.get::<Option<i64>>("tokens_issued")?.unwrap_or(0),
    }))
}

/// Records a month's figures, never lowering one already persisted.
pub fn raise(
    org_id: &str,
    month: &str,
    tokens_issued: i64,
    api_calls: i64,
    now_millis: i64,
) -> Statement {
    Statement::new(
        "INSERT INTO usage_months (org_id, month, tokens_issued, api_calls, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (org_id, month) DO UPDATE SET \
         tokens_issued = MAX(tokens_issued, excluded.tokens_issued), \
         api_calls = MAX(api_calls, excluded.api_calls), updated_at = excluded.updated_at",
    )
    .bind(org_id)
    .bind(month)
    .bind(tokens_issued)
    .bind(api_calls)
    .bind(now_millis)
}

/// Persisted figures of one organization for one month.
pub struct UsageMonth {
    pub org_id: String,
    pub month: String,
    pub tokens_issued: i64,
    pub api_calls: i64,
}

/// Every organization's persisted figures for `month` (`YYYY-MM`) and later months.
pub async fn since(db: &dyn Database, month: &str) -> Result<Vec<UsageMonth>, DbError> {
    let statement = Statement::new(
        "SELECT org_id, month, tokens_issued, api_calls FROM usage_months WHERE month >= ?1",
    )
    .bind(month);
    db.query(statement)
        .await?
        .iter()
        .map(|row| {
            Ok(UsageMonth {
                org_id: row.get("org_id")?,
                month: row.get("month")?,
                tokens_issued: row.get("tokens_issued")?,
                api_calls: row.get("api_calls")?,
            })
        })
        .collect()
}
