//! Applies the SQL files in `schema/` in order, once each, recording what ran, and refuses a
//! database a newer release has migrated.
//!
//! Schema changes are expand-then-contract: a release only adds (tables, columns through new
//! tables, indexes) what it needs while the previous release keeps working on the same schema,
//! and removes what the previous release needed only in a later release. So while five Workers
//! are upgraded one by one, the old ones keep serving on the expanded schema; an instance older
//! than the schema it finds (a rollback of the code without the database) refuses to serve with
//! `DbError::SchemaNewer` rather than guess.

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
    (
        "0011_marketplace_version",
        include_str!("../../../schema/0011_marketplace_version.sql"),
    ),
];

/// The newest schema this binary knows.
pub fn binary_version() -> &'static str {
    MIGRATIONS.last().map_or("none", |(version, _)| version)
}

/// A migration's number (`0008` of `0008_policies`); unnumbered ones sort first.
fn number(version: &str) -> u32 {
    version
        .split('_')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A migration recorded in the database.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Applied {
    pub version: String,
    pub applied_at: i64,
}

/// What the database has applied, oldest first.
pub async fn applied(db: &dyn Database) -> Result<Vec<Applied>, DbError> {
    db.query(Statement::new(
        "SELECT version, applied_at FROM schema_migrations ORDER BY version",
    ))
    .await?
    .iter()
    .map(|row| {
        Ok(Applied {
            version: row.get("version")?,
            applied_at: row.get("applied_at")?,
        })
    })
    .collect()
}

/// `Err(SchemaNewer)` when the database holds a migration newer than any this binary knows.
pub fn check_understood(applied: &[String]) -> Result<(), DbError> {
    let known = number(binary_version());
    match applied
        .iter()
        .filter(|v| number(v) > known)
        .max_by_key(|v| number(v))
    {
        Some(newer) => Err(DbError::SchemaNewer {
            database: newer.clone(),
            binary: binary_version().to_owned(),
        }),
        None => Ok(()),
    }
}

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
    check_understood(&applied)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_newer_than_the_binary_is_refused_naming_both() {
        let known: Vec<String> = MIGRATIONS.iter().map(|(v, _)| v.to_string()).collect();
        assert!(check_understood(&known).is_ok());
        let mut newer = known.clone();
        newer.push("9999_future".into());
        let err = check_understood(&newer).unwrap_err().to_string();
        assert!(
            err.contains("9999_future") && err.contains(binary_version()),
            "{err}"
        );
    }
}
