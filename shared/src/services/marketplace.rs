//! The public marketplace: search and read agents their organizations chose to publish.

use crate::domain::marketplace::{PublicAgent, SearchQuery, MAX_FILTER_CHARS};
use crate::domain::page::{Keyset, Page, PageRequest};
use crate::domain::validate::{is_id, optional_text};
use crate::ports::sql::Database;
use crate::services::ServiceError;
use crate::store::marketplace::{self as store, Search};

/// `GET /v1/marketplace/agents`: listed agents of every organization, newest first.
pub async fn search(
    db: &dyn Database,
    query: SearchQuery,
) -> Result<Page<PublicAgent>, ServiceError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let search = Search {
        q: optional_text("q", query.q, MAX_FILTER_CHARS)?,
        agent_type: optional_text("agent_type", query.agent_type, MAX_FILTER_CHARS)?,
        capability: optional_text("capability", query.capability, MAX_FILTER_CHARS)?,
    };
    let rows = store::search(db, &search, &page).await?;
    let page = Page::from_rows(rows, &page, |l| Keyset {
        position: l.created_at,
        id: l.agent.id.clone(),
    });
    Ok(page.map(|l| l.agent))
}

/// `GET /v1/marketplace/agents/{id}`: a listed agent; anything else is simply not found.
pub async fn get(db: &dyn Database, id: &str) -> Result<PublicAgent, ServiceError> {
    if !is_id(id) {
        return Err(ServiceError::NotFound("agent"));
    }
    store::find(db, id)
        .await?
        .ok_or(ServiceError::NotFound("agent"))
}
