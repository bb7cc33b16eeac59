//! Reading published agents across organizations, with only the public columns.

use crate::domain::marketplace::PublicAgent;
use crate::domain::page::PageRequest;
use crate::domain::time::rfc3339;
use crate::ports::sql::{Database, DbError, Row, Statement, Value};
use crate::store::json_column;

/// Only these columns leave the database: a listing is public, so it carries no email, owner,
/// metadata or organization. Adding a field later is compatible; withdrawing one is not.
const PUBLIC_COLUMNS: &str =
    "id, name, agent_type, version, capabilities, deployment_env, created_at";

/// What is listed: published by its organization and able to authenticate.
const LISTED: &str = "visibility = 'public' AND status = 'active'";

/// A listing with the `created_at` its keyset needs.
pub struct Listed {
    pub agent: PublicAgent,
    pub created_at: i64,
}

fn listed_from_row(row: &Row) -> Result<Listed, DbError> {
    let created_at = row.get("created_at")?;
    Ok(Listed {
        agent: PublicAgent {
            id: row.get("id")?,
            name: row.get("name")?,
            agent_type: row.get("agent_type")?,
            version: row.get("version")?,
            capabilities: json_column("capabilities", &row.get::<String>("capabilities")?)?,
            deployment_env: row.get("deployment_env")?,
            created_at: rfc3339(created_at),
        },
        created_at,
    })
}

/// A `LIKE` pattern matching `text` anywhere, with its wildcards taken literally (`ESCAPE '\'`).
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Validated search criteria.
#[derive(Clone, Debug, Default)]
pub struct Search {
    pub q: Option<String>,
    pub agent_type: Option<String>,
    pub capability: Option<String>,
}

/// The rows of one page of listed agents of every organization, newest first.
pub async fn search(
    db: &dyn Database,
    search: &Search,
    page: &PageRequest,
) -> Result<Vec<Listed>, DbError> {
    let mut sql = format!("SELECT {PUBLIC_COLUMNS} FROM agents WHERE {LISTED}");
    let mut params: Vec<Value> = Vec::new();
    let mut bind = |value: Value| {
        params.push(value);
        format!("?{}", params.len())
    };
    if let Some(q) = &search.q {
        let p = bind(contains_pattern(q).into());
        sql.push_str(&format!(
            " AND (name LIKE {p} ESCAPE '\\' OR agent_type LIKE {p} ESCAPE '\\')"
        ));
    }
    if let Some(agent_type) = &search.agent_type {
        let p = bind(agent_type.into());
        sql.push_str(&format!(" AND agent_type = {p}"));
    }
    if let Some(capability) = &search.capability {
        let p = bind(capability.into());
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM json_each(agents.capabilities) WHERE json_each.value = {p})"
        ));
    }
    if let Some(after) = &page.after {
        let (c, i) = (bind(after.position.into()), bind((&after.id).into()));
        // Row-value comparison keeps the keyset on the (visibility, status, created_at, id) index.
        sql.push_str(&format!(" AND (created_at, id) < ({c}, {i})"));
    }
    let l = bind(page.fetch().into());
    sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT {l}"));
    let mut statement = Statement::new(sql);
    statement.params = params;
    db.query(statement)
        .await?
        .iter()
        .map(listed_from_row)
        .collect()
}

/// A listed agent; anything else is `None`.
pub async fn find(db: &dyn Database, id: &str) -> Result<Option<PublicAgent>, DbError> {
    let statement = Statement::new(format!(
        "SELECT {PUBLIC_COLUMNS} FROM agents WHERE id = ?1 AND {LISTED}"
    ))
    .bind(id);
    db.query_one(statement)
        .await?
        .as_ref()
        .map(|row| listed_from_row(row).map(|l| l.agent))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_literal() {
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(contains_pattern("bot"), "%bot%");
    }
}
