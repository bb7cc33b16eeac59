//! Applies the SQL files in `schema/` in order, once each, recording what ran.

use crate::ports::runtime::Clock;
use crate::ports::sql::{Database, DbError, Statement};

/// Every migration, in order. Files are idempotent (`IF NOT EXISTS`), so a crash between running
/// one and recording it is harmless.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_core", include_str!("../../../schema/0001_core.sql")),
    ("0002_audit", include_str!("../../../schema/0002_audit.sql")),
    ("0003_usage", include_str!("../../../schema/0003_usage.sql")),
    ("0004_kv", include_str!("../../../schema/0004_kv.sql")),
    (
        "0005_trust_policies",
        include_str!("../../../schema/0005_trust_policies.sql"),
    ),
    (
        "0006_webhooks",
        include_str!("../../../schema/0006_webhooks.sql"),
    ),
    (
        "0007_subscriptions",
        include_str!("../../../schema/0007_subscriptions.sql"),
    ),
    (
        "0008_policies",
        include_str!("../../../schema/0008_policies.sql"),
    ),
    (
        "0009_marketplace",
        include_str!("../../../schema/0009_marketplace.sql"),
    ),
    (
        "0010_audit_tree",
        include_str!("../../../schema/0010_audit_tree.sql"),
    ),
];

pub async fn apply(db: &dyn Database, clock: &dyn Clock) -> Result<Vec<&'static str>, DbError> {
    db.execute_script(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at INTEGER NOT NULL);",
    )
    .await?;
    let applied: Vec<String> = db
        .query(Statement::new("SELECT version FROM schema_migrations"))
        .await?
        .iter()
        .map(|row| row.get("version"))
        .collect::<Result<_, _>>()?;
    let mut ran = Vec::new();
    for (version, sql) in MIGRATIONS {
        if applied.iter().any(|a| a == version) {
            continue;
        }
        db.execute_script(sql).await?;
        db.transaction(vec![Statement::new(
            "INSERT OR IGNORE INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
        )
        .bind(*version)
        .bind(clock.now_millis())])
            .await?;
        ran.push(*version);
    }
    Ok(ran)
}
