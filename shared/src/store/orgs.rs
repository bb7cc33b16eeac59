//! The `orgs` table: organizations and the tier their limits follow.

use crate::domain::orgs::Organization;
use crate::ports::sql::{Database, DbError, Statement};

pub fn insert(organization: &Organization) -> Statement {
    Statement::new("INSERT INTO orgs (id, name, tier, created_at) VALUES (?1, ?2, ?3, ?4)")
        .bind(&organization.id)
        .bind(&organization.name)
        .bind(organization.tier)
        .bind(organization.created_at)
}

/// The organization's tier, or `None` when there is no such organization.
pub async fn tier(db: &dyn Database, org_id: &str) -> Result<Option<String>, DbError> {
    let statement = Statement::new("SELECT tier FROM orgs WHERE id = ?1").bind(org_id);
    db.query_one(statement)
        .await?
        .map(|row| row.get("tier"))
        .transpose()
}
