//! Reading published agents across organizations, with only the public columns: listed newest
//! first, or found through the full-text index (`marketplace_search`, kept by triggers) by bm25.

use crate::domain::agents::DeploymentEnv;
use crate::domain::marketplace::{FacetCount, PublicAgent};
use crate::domain::time::rfc3339;
use crate::ports::sql::{Database, DbError, Row, Statement, Value};
use crate::store::json_column;

/// Only these columns leave the database: a listing is public, so it carries no email, owner,
/// metadata or organization. Adding a field later is compatible; withdrawing one is not.
const PUBLIC_COLUMNS: &str = "a.id AS id, a.name AS name, a.agent_type AS agent_type, \
     a.version AS version, a.capabilities AS capabilities, a.deployment_env AS deployment_env, \
     a.created_at AS created_at, a.updated_at AS updated_at, p.doc AS doc, \
     p.description AS description, p.tags AS tags, p.skills AS skills, \
     p.homepage_url AS homepage_url, p.a2a_url AS a2a_url";

/// What is listed: published by its organization and able to authenticate.
const LISTED: &str = "a.visibility = 'public' AND a.status = 'active'";

/// bm25 weights, in the index's column order (name, description, skills, tags, capabilities,
/// agent_type): a match in the name counts most.
const WEIGHTS: &str = "10.0, 4.0, 3.0, 3.0, 2.0, 2.0";

/// bm25 scores are small floats; scaled and truncated they are an exact integer keyset (the
/// ranking's ties then break by document).
const SCORE_SCALE: f64 = 1_000_000.0;

/// A listing with what its keysets and cache keys need.
pub struct Listed {
    pub agent: PublicAgent,
    pub created_at: i64,
    /// The version of what the listing shows: it changes with every change of the agent.
    pub updated_at: i64,
    pub doc: i64,
    /// The scaled bm25 score (lower is better); 0 when listing without words.
    pub score: i64,
}

fn listed_from_row(row: &Row) -> Result<Listed, DbError> {
    let created_at = row.get("created_at")?;
    Ok(Listed {
        agent: PublicAgent {
            id: row.get("id")?,
            did: String::new(),
            name: row.get("name")?,
            description: row.get("description")?,
            agent_type: row.get("agent_type")?,
            version: row.get("version")?,
            capabilities: json_column("capabilities", &row.get::<String>("capabilities")?)?,
            tags: json_column("tags", &row.get::<String>("tags")?)?,
            skills: json_column("skills", &row.get::<String>("skills")?)?,
            homepage_url: row.get("homepage_url")?,
            a2a_url: row.get("a2a_url")?,
            deployment_env: row.get("deployment_env")?,
            created_at: rfc3339(created_at),
        },
        created_at,
        updated_at: row.get("updated_at")?,
        doc: row.get("doc")?,
        score: row.get::<Option<i64>>("score")?.unwrap_or_default(),
    })
}

/// Validated search criteria, in the store's terms.
#[derive(Clone, Debug, Default)]
pub struct Search {
    /// The full-text expression (built by `domain::marketplace::match_expression`): words and
    /// the filters the index can narrow by.
    pub matching: Option<String>,
    /// Whether to order by relevance (words were given) rather than newest first.
    pub ranked: bool,
    /// Exact checks behind the index's token match: the index narrows, these decide.
    pub agent_type: Option<String>,
    pub capabilities: Vec<String>,
    pub tags: Vec<String>,
    pub deployment_env: Option<DeploymentEnv>,
}

/// Where a page starts.
#[derive(Clone, Debug)]
pub enum After {
    /// Newest first: after this (created_at, id).
    Newest { created_at: i64, id: String },
    /// By relevance: after this (score, doc), among documents up to `snapshot` (so agents added
    /// while paging never shift the pages).
    Ranked { score: i64, doc: i64, snapshot: i64 },
}

struct Query {
    sql: String,
    params: Vec<Value>,
}

impl Query {
    fn bind(&mut self, value: Value) -> String {
        self.params.push(value);
        format!("?{}", self.params.len())
    }
}

/// `FROM … WHERE …` of every match of `search` (no paging); `also_from` joins more (a facet's
/// values).
fn matches(search: &Search, snapshot: Option<i64>, also_from: &str) -> Query {
    let mut q = Query {
        sql: String::new(),
        params: Vec::new(),
    };
    match &search.matching {
        Some(expression) => {
            let m = q.bind(expression.into());
            let bound = match snapshot {
                Some(s) => format!(" AND rowid <= {}", q.bind(s.into())),
                None => String::new(),
            };
            q.sql = format!(
                " FROM (SELECT rowid AS doc, CAST(bm25(marketplace_search, {WEIGHTS}) * {SCORE_SCALE} AS INTEGER) AS score \
                 FROM marketplace_search WHERE marketplace_search MATCH {m}{bound}) m \
                 JOIN agent_profiles p ON p.doc = m.doc JOIN agents a ON a.id = p.agent_id\
                 {also_from} WHERE {LISTED}"
            );
        }
        None => {
            q.sql = format!(
                " FROM agents a JOIN agent_profiles p ON p.agent_id = a.id{also_from} WHERE {LISTED}"
            );
        }
    }
    if let Some(agent_type) = &search.agent_type {
        let p = q.bind(agent_type.into());
        q.sql.push_str(&format!(" AND a.agent_type = {p}"));
    }
    if let Some(env) = search.deployment_env {
        let p = q.bind(env.as_str().into());
        q.sql.push_str(&format!(" AND a.deployment_env = {p}"));
    }
    for capability in &search.capabilities {
        let p = q.bind(capability.into());
        q.sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM json_each(a.capabilities) WHERE json_each.value = {p})"
        ));
    }
    for tag in &search.tags {
        let p = q.bind(tag.into());
        q.sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM json_each(p.tags) WHERE json_each.value = {p})"
        ));
    }
    q
}

/// The rows of one page (`fetch` of them) of listed agents of every organization: by relevance
/// when `search.ranked`, else newest first.
pub async fn search(
    db: &dyn Database,
    search: &Search,
    after: Option<&After>,
    fetch: i64,
) -> Result<Vec<Listed>, DbError> {
    let snapshot = match after {
        Some(After::Ranked { snapshot, .. }) => Some(*snapshot),
        _ => None,
    };
    let mut q = matches(search, snapshot.filter(|_| search.ranked), "");
    let score = if search.matching.is_some() {
        "m.score AS score"
    } else {
        "NULL AS score"
    };
    let mut sql = format!("SELECT {PUBLIC_COLUMNS}, {score}{}", q.sql);
    match after {
        Some(After::Ranked { score, doc, .. }) if search.ranked => {
            let (s, d) = (q.bind((*score).into()), q.bind((*doc).into()));
            sql.push_str(&format!(" AND (m.score, m.doc) > ({s}, {d})"));
        }
        Some(After::Newest { created_at, id }) if !search.ranked => {
            let (c, i) = (q.bind((*created_at).into()), q.bind(id.into()));
            // Row-value comparison keeps the keyset on the (visibility, status, created_at, id) index.
            sql.push_str(&format!(" AND (a.created_at, a.id) < ({c}, {i})"));
        }
        _ => {}
    }
    let l = q.bind(fetch.into());
    if search.ranked {
        sql.push_str(&format!(" ORDER BY m.score, m.doc LIMIT {l}"));
    } else {
        sql.push_str(&format!(" ORDER BY a.created_at DESC, a.id DESC LIMIT {l}"));
    }
    let mut statement = Statement::new(sql);
    statement.params = q.params;
    db.query(statement)
        .await?
        .iter()
        .map(listed_from_row)
        .collect()
}

/// The newest document: where a ranked paging session's snapshot ends.
pub async fn newest_doc(db: &dyn Database) -> Result<i64, DbError> {
    let row = db
        .query_one(Statement::new(
            "SELECT COALESCE(MAX(doc), 0) AS doc FROM agent_profiles",
        ))
        .await?;
    Ok(match row {
        Some(row) => row.get("doc")?,
        None => 0,
    })
}

/// Most frequent values of a facet among every match of `search`, at most `limit`.
pub async fn facet_counts(
    db: &dyn Database,
    search: &Search,
    tags: bool,
    limit: i64,
) -> Result<Vec<FacetCount>, DbError> {
    let (column, also_from) = if tags {
        ("t.value", ", json_each(p.tags) t")
    } else {
        ("a.agent_type", "")
    };
    let mut q = matches(search, None, also_from);
    let from = q.sql.clone();
    let l = q.bind(limit.into());
    let mut statement = Statement::new(format!(
        "SELECT {column} AS value, COUNT(*) AS count{from} GROUP BY {column} \
         ORDER BY count DESC, value LIMIT {l}"
    ));
    statement.params = q.params;
    db.query(statement)
        .await?
        .iter()
        .map(|row| {
            Ok(FacetCount {
                value: row.get("value")?,
                count: row.get("count")?,
            })
        })
        .collect()
}

/// A listed agent; anything else is `None`.
pub async fn find(db: &dyn Database, id: &str) -> Result<Option<Listed>, DbError> {
    let statement = Statement::new(format!(
        "SELECT {PUBLIC_COLUMNS}, NULL AS score FROM agents a \
         JOIN agent_profiles p ON p.agent_id = a.id WHERE a.id = ?1 AND {LISTED}"
    ))
    .bind(id);
    db.query_one(statement)
        .await?
        .as_ref()
        .map(listed_from_row)
        .transpose()
}
