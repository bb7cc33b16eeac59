//! Reading published agents across organizations, with only the public columns: listed newest
//! first, or found through the full-text index (`marketplace_search`, kept by triggers) by bm25.

use crate::domain::agents::DeploymentEnv;
use crate::domain::did::AgentKey;
use crate::domain::marketplace::PublicAgent;
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

/// bm25 scores are floats, from about -100 down to 1e-6 in magnitude (FTS5 floors the weight of a
/// word found in most documents at 1e-6); scaled and truncated they are an exact integer keyset
/// that still tells such scores apart (the ranking's ties then break by document).
const SCORE_SCALE: f64 = 1e12;

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

/// bm25 ranks at most this many matches of a search: the newest ones. Scoring costs about a
/// microsecond per match, so a word found in half of 100,000 agents would cost 50 ms a search;
/// words and filters that narrow below the window are ranked exactly.
pub const RANK_WINDOW: i64 = 500;

/// Facets count at most this many matches (the newest), for the same reason.
pub const FACET_WINDOW: i64 = 500;

/// Validated search criteria, in the store's terms.
#[derive(Clone, Debug, Default)]
pub struct Search {
    /// The full-text expression (built by `domain::marketplace::match_expression`): words and
    /// the filters the index can narrow by. `None`: list every published agent.
    pub matching: Option<String>,
    /// Exact checks behind the index's token match: the index narrows, these decide.
    pub agent_type: Option<String>,
    pub capabilities: Vec<String>,
    pub tags: Vec<String>,
    pub deployment_env: Option<DeploymentEnv>,
}

impl Search {
    /// Whether the index's token match decides alone (no exact check behind it).
    fn is_exact_free(&self) -> bool {
        self.agent_type.is_none()
            && self.deployment_env.is_none()
            && self.capabilities.is_empty()
            && self.tags.is_empty()
    }
}

/// Where a page starts.
#[derive(Clone, Debug)]
pub enum After {
    /// Every published agent, newest first: after this (created_at, id).
    Newest { created_at: i64, id: String },
    /// Filtered through the index, newest first: after this document (documents are numbered in
    /// creation order).
    Filtered { doc: i64 },
    /// By relevance: after this document (or, should it be gone, this score), among the window
    /// of documents up to `snapshot` (so agents added while paging never shift the pages).
    Ranked { score: i64, doc: i64, snapshot: i64 },
}

struct Query {
    sql: String,
    params: Vec<Value>,
}

impl Query {
    fn new() -> Query {
        Query {
            sql: String::new(),
            params: Vec::new(),
        }
    }

    fn bind(&mut self, value: Value) -> String {
        self.params.push(value);
        format!("?{}", self.params.len())
    }

    /// The exact filters, ` AND …` each.
    fn exact(&mut self, search: &Search) {
        if let Some(agent_type) = &search.agent_type {
            let p = self.bind(agent_type.into());
            self.sql.push_str(&format!(" AND a.agent_type = {p}"));
        }
        if let Some(env) = search.deployment_env {
            let p = self.bind(env.as_str().into());
            self.sql.push_str(&format!(" AND a.deployment_env = {p}"));
        }
        for capability in &search.capabilities {
            let p = self.bind(capability.into());
            self.sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM json_each(a.capabilities) WHERE json_each.value = {p})"
            ));
        }
        for tag in &search.tags {
            let p = self.bind(tag.into());
            self.sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM json_each(p.tags) WHERE json_each.value = {p})"
            ));
        }
    }

    fn statement(self) -> Statement {
        let mut statement = Statement::new(self.sql);
        statement.params = self.params;
        statement
    }
}

/// Documents of the index matching `expression` (newest first), joined to their agents. `CROSS
/// JOIN` keeps the index the outer loop, read in rowid order, so `LIMIT` stops it early.
fn from_index(q: &mut Query, expression: &str, columns: &str, below: Option<i64>) -> String {
    let m = q.bind(expression.into());
    let bound = match below {
        Some(doc) => format!(" AND f.rowid < {}", q.bind(doc.into())),
        None => String::new(),
    };
    format!(
        "SELECT {columns} FROM marketplace_search f CROSS JOIN agent_profiles p ON p.doc = f.rowid \
         CROSS JOIN agents a ON a.id = p.agent_id \
         WHERE marketplace_search MATCH {m}{bound} AND {LISTED}"
    )
}

/// The rows of one page (`fetch` of them) of listed agents of every organization, newest first
/// (ranked pages come from [`ranked`] and [`by_docs`]).
pub async fn newest(
    db: &dyn Database,
    search: &Search,
    after: Option<&After>,
    fetch: i64,
) -> Result<Vec<Listed>, DbError> {
    let mut q = Query::new();
    match &search.matching {
        Some(expression) => {
            let below = match after {
                Some(After::Filtered { doc }) => Some(*doc),
                _ => None,
            };
            q.sql = from_index(
                &mut q,
                expression,
                &format!("{PUBLIC_COLUMNS}, NULL AS score"),
                below,
            );
            q.exact(search);
            let l = q.bind(fetch.into());
            q.sql.push_str(&format!(" ORDER BY f.rowid DESC LIMIT {l}"));
        }
        None => {
            q.sql = format!(
                "SELECT {PUBLIC_COLUMNS}, NULL AS score FROM agents a \
                 JOIN agent_profiles p ON p.agent_id = a.id WHERE {LISTED}"
            );
            q.exact(search);
            if let Some(After::Newest { created_at, id }) = after {
                let (c, i) = (q.bind((*created_at).into()), q.bind(id.into()));
                // Row-value comparison keeps the keyset on the (visibility, status, created_at, id) index.
                q.sql
                    .push_str(&format!(" AND (a.created_at, a.id) < ({c}, {i})"));
            }
            let l = q.bind(fetch.into());
            q.sql
                .push_str(&format!(" ORDER BY a.created_at DESC, a.id DESC LIMIT {l}"));
        }
    }
    db.query(q.statement())
        .await?
        .iter()
        .map(listed_from_row)
        .collect()
}

/// The ranking of a search with words: (document, scaled bm25 score) of the newest
/// [`RANK_WINDOW`] matching documents up to `snapshot`, best first, after the exact filters.
/// Only numbers: the page's rows are read by [`by_docs`].
pub async fn ranked(
    db: &dyn Database,
    search: &Search,
    snapshot: i64,
) -> Result<Vec<(i64, i64)>, DbError> {
    let Some(expression) = &search.matching else {
        return Ok(Vec::new());
    };
    let mut q = Query::new();
    let m = q.bind(expression.into());
    let s = q.bind(snapshot.into());
    let w = q.bind(RANK_WINDOW.into());
    let window = format!(
        "SELECT rowid AS doc, CAST(bm25(marketplace_search, {WEIGHTS}) * {SCORE_SCALE} AS INTEGER) AS score \
         FROM marketplace_search WHERE marketplace_search MATCH {m} AND rowid <= {s} \
         ORDER BY rowid DESC LIMIT {w}"
    );
    if search.is_exact_free() {
        // The index holds only listed agents (kept in the same transaction), so without exact
        // filters the ranking needs no join; `by_docs` checks the page's rows all the same.
        q.sql = format!("SELECT doc, score FROM ({window}) ORDER BY score, doc");
    } else {
        q.sql = format!(
            "SELECT m.doc AS doc, m.score AS score FROM ({window}) m \
             CROSS JOIN agent_profiles p ON p.doc = m.doc CROSS JOIN agents a ON a.id = p.agent_id \
             WHERE {LISTED}"
        );
        q.exact(search);
        q.sql.push_str(" ORDER BY m.score, m.doc");
    }
    db.query(q.statement())
        .await?
        .iter()
        .map(|row| Ok((row.get("doc")?, row.get("score")?)))
        .collect()
}

/// The listed agents of these documents, in the order given (a document no longer listed is left
/// out).
pub async fn by_docs(db: &dyn Database, docs: &[(i64, i64)]) -> Result<Vec<Listed>, DbError> {
    if docs.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = Query::new();
    let placeholders: Vec<String> = docs.iter().map(|(doc, _)| q.bind((*doc).into())).collect();
    // `CROSS JOIN` keeps the page's documents the outer loop. With a plain join and no `ANALYZE`
    // statistics, SQLite takes the `agents_marketplace` index as the narrower side and walks every
    // listed agent to find the page's 20: half a second at 100,000 agents.
    q.sql = format!(
        "SELECT {PUBLIC_COLUMNS}, NULL AS score FROM agent_profiles p \
         CROSS JOIN agents a ON a.id = p.agent_id WHERE p.doc IN ({}) AND {LISTED}",
        placeholders.join(", ")
    );
    let mut rows: Vec<Listed> = db
        .query(q.statement())
        .await?
        .iter()
        .map(listed_from_row)
        .collect::<Result<_, _>>()?;
    for listed in &mut rows {
        if let Some((_, score)) = docs.iter().find(|(doc, _)| *doc == listed.doc) {
            listed.score = *score;
        }
    }
    rows.sort_by_key(|l| docs.iter().position(|(doc, _)| *doc == l.doc));
    Ok(rows)
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

/// The marketplace's version (`marketplace_version`): triggers bump it in the transaction of every
/// change a listing shows, so it names what every listing answered now would contain.
pub async fn version(db: &dyn Database) -> Result<i64, DbError> {
    let row = db
        .query_one(Statement::new(
            "SELECT version FROM marketplace_version WHERE id = 1",
        ))
        .await?;
    Ok(match row {
        Some(row) => row.get("version")?,
        None => 0,
    })
}

/// The type and tags of the newest matches of `search` (at most [`FACET_WINDOW`]): what facets
/// count.
pub async fn facet_sample(
    db: &dyn Database,
    search: &Search,
) -> Result<Vec<(String, Vec<String>)>, DbError> {
    let mut q = Query::new();
    let columns = "a.agent_type AS agent_type, p.tags AS tags";
    match &search.matching {
        Some(expression) => {
            q.sql = from_index(&mut q, expression, columns, None);
            q.exact(search);
            let l = q.bind(FACET_WINDOW.into());
            q.sql.push_str(&format!(" ORDER BY f.rowid DESC LIMIT {l}"));
        }
        None => {
            q.sql = format!(
                "SELECT {columns} FROM agents a JOIN agent_profiles p ON p.agent_id = a.id \
                 WHERE {LISTED}"
            );
            q.exact(search);
            let l = q.bind(FACET_WINDOW.into());
            q.sql
                .push_str(&format!(" ORDER BY a.created_at DESC, a.id DESC LIMIT {l}"));
        }
    }
    db.query(q.statement())
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.get("agent_type")?,
                json_column("tags", &row.get::<String>("tags")?)?,
            ))
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

/// The display name of the organization that publishes a listed agent: the provider of its card.
pub async fn provider(db: &dyn Database, agent_id: &str) -> Result<Option<String>, DbError> {
    let statement = Statement::new(format!(
        "SELECT o.name AS name FROM agents a JOIN orgs o ON o.id = a.org_id \
         WHERE a.id = ?1 AND {LISTED}"
    ))
    .bind(agent_id);
    match db.query_one(statement).await? {
        Some(row) => Ok(Some(row.get("name")?)),
        None => Ok(None),
    }
}

/// The public keys a listed agent authenticates with: its active `private_key_jwt` credentials,
/// oldest first. A revoked credential is gone from the answer at once.
pub async fn public_keys(db: &dyn Database, agent_id: &str) -> Result<Vec<AgentKey>, DbError> {
    let statement = Statement::new(format!(
        "SELECT c.id AS id, c.public_jwk AS public_jwk FROM credentials c \
         JOIN agents a ON a.id = c.agent_id AND a.org_id = c.org_id \
         WHERE c.agent_id = ?1 AND c.kind = 'private_key_jwt' AND c.status = 'active' \
         AND c.public_jwk IS NOT NULL AND {LISTED} ORDER BY c.created_at, c.id"
    ))
    .bind(agent_id);
    db.query(statement)
        .await?
        .iter()
        .map(|row| {
            Ok(AgentKey {
                credential_id: row.get("id")?,
                public_jwk: json_column("public_jwk", &row.get::<String>("public_jwk")?)?,
            })
        })
        .collect()
}
