//! The public marketplace: search and read agents their organizations chose to publish.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::http::{decode_cursor, encode_cursor, optional_text, page_limit, Page};
use crate::runtime::rfc3339;
use crate::sql::{query_one, Database, DbError, Row, Statement, Value};

/// Longest accepted search text or filter value.
const MAX_FILTER_CHARS: usize = 100;

/// Only these columns leave the database: a listing is public, so it carries no email, owner,
/// metadata or organization. Adding a field later is compatible; withdrawing one is not.
const PUBLIC_COLUMNS: &str =
    "id, name, agent_type, version, capabilities, deployment_env, created_at";

/// What is listed: published by its organization and able to authenticate.
const LISTED: &str = "visibility = 'public' AND status = 'active'";

/// Query parameters of `GET /v1/marketplace/agents`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Case-insensitive (ASCII) substring of the name or agent type.
    pub q: Option<String>,
    pub agent_type: Option<String>,
    pub capability: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// An agent as the marketplace shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PublicAgent {
    pub id: String,
    pub name: String,
    pub agent_type: String,
    pub version: Option<String>,
    pub capabilities: Vec<String>,
    pub deployment_env: String,
    pub created_at: String,
}

/// A listing with the keyset (`created_at`, `id`) of its row, for the cursor.
struct Listed {
    agent: PublicAgent,
    created_at: i64,
}

impl Listed {
    fn from_row(row: &Row) -> Result<Self, DbError> {
        let capabilities: String = row.get("capabilities")?;
        let capabilities = serde_json::from_str(&capabilities)
            .map_err(|e| DbError::Decode(format!("column `capabilities`: {e}")))?;
        let created_at = row.get("created_at")?;
        Ok(Listed {
            agent: PublicAgent {
                id: row.get("id")?,
                name: row.get("name")?,
                agent_type: row.get("agent_type")?,
                version: row.get("version")?,
                capabilities,
                deployment_env: row.get("deployment_env")?,
                created_at: rfc3339(created_at),
            },
            created_at,
        })
    }
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

/// `GET /v1/marketplace/agents`: listed agents of every organization, newest first.
pub async fn search(db: &dyn Database, query: SearchQuery) -> Result<Page<PublicAgent>, ApiError> {
    let limit = page_limit(query.limit)?;
    let q = optional_text("q", query.q, MAX_FILTER_CHARS)?;
    let agent_type = optional_text("agent_type", query.agent_type, MAX_FILTER_CHARS)?;
    let capability = optional_text("capability", query.capability, MAX_FILTER_CHARS)?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;

    let mut sql = format!("SELECT {PUBLIC_COLUMNS} FROM agents WHERE {LISTED}");
    let mut params: Vec<Value> = Vec::new();
    let mut bind = |value: Value| {
        params.push(value);
        format!("?{}", params.len())
    };
    if let Some(q) = q {
        let p = bind(contains_pattern(&q).into());
        sql.push_str(&format!(
            " AND (name LIKE {p} ESCAPE '\\' OR agent_type LIKE {p} ESCAPE '\\')"
        ));
    }
    if let Some(agent_type) = agent_type {
        let p = bind(agent_type.into());
        sql.push_str(&format!(" AND agent_type = {p}"));
    }
    if let Some(capability) = capability {
        let p = bind(capability.into());
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM json_each(agents.capabilities) WHERE json_each.value = {p})"
        ));
    }
    if let Some((created_at, id)) = after {
        let (c, i) = (bind(created_at.into()), bind(id.into()));
        // Row-value comparison keeps the keyset on the (visibility, status, created_at, id) index.
        sql.push_str(&format!(" AND (created_at, id) < ({c}, {i})"));
    }
    // One extra row tells whether another page exists without a count query.
    let l = bind((limit + 1).into());
    sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT {l}"));

    let mut statement = Statement::new(sql);
    statement.params = params;
    let rows = db.query(statement).await?;
    let mut listed = rows
        .iter()
        .map(Listed::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if listed.len() as i64 > limit {
        listed.truncate(limit as usize);
        listed
            .last()
            .map(|l| encode_cursor(l.created_at, &l.agent.id))
    } else {
        None
    };
    Ok(Page {
        data: listed.into_iter().map(|l| l.agent).collect(),
        next_cursor,
    })
}

/// `GET /v1/marketplace/agents/{id}`: a listed agent; anything else is simply not found.
pub async fn get(db: &dyn Database, id: &str) -> Result<PublicAgent, ApiError> {
    let statement = Statement::new(format!(
        "SELECT {PUBLIC_COLUMNS} FROM agents WHERE id = ?1 AND {LISTED}"
    ))
    .bind(id);
    match query_one(db, statement).await? {
        Some(row) => Ok(Listed::from_row(&row)?.agent),
        None => Err(ApiError::not_found("agent")),
    }
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
