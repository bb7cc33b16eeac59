//! The public marketplace: search and read agents their organizations chose to publish.

use crate::domain::marketplace::{
    did_web, match_expression, Facet, Facets, PublicAgent, SearchQuery, SearchResults,
};
use crate::domain::page::{Keyset, Page, PageRequest};
use crate::domain::validate::{is_id, Invalid};
use crate::services::ServiceError;
use crate::state::AppState;
use crate::store::marketplace::{self as store, After, Listed, Search};

/// Values per facet: the head of the distribution is what a page can show.
const FACET_VALUES: i64 = 20;

fn bad_cursor() -> ServiceError {
    Invalid::new("cursor", "not a cursor this API returned").into()
}

/// A ranked page's keyset id: the document and the paging session's snapshot.
fn ranked_key(doc: i64, snapshot: i64) -> String {
    format!("{doc}.{snapshot}")
}

/// The listing as shown, with its DID.
fn shown(state: &AppState, listed: Listed) -> PublicAgent {
    let mut agent = listed.agent;
    agent.did = did_web(&state.config.issuer, &agent.id).unwrap_or_default();
    agent
}

/// `GET /v1/marketplace/agents`: listed agents of every organization, by relevance when words are
/// given, else newest first; narrowed by every filter; with facet counts when asked.
pub async fn search(state: &AppState, query: SearchQuery) -> Result<SearchResults, ServiceError> {
    let db = state.db.as_ref();
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let ranked = query.terms.is_some();
    let search = Search {
        matching: if query.uses_index() {
            match_expression(&query)
        } else {
            None
        },
        ranked,
        agent_type: query.agent_type.clone(),
        capabilities: query.capabilities.clone(),
        tags: query.tags.clone(),
        deployment_env: query.deployment_env,
    };
    // Text of only punctuation has no word to find: nothing matches.
    let nothing = matches!(&query.terms, Some(terms) if terms.is_empty());
    let after = match page.after.clone() {
        None => None,
        Some(Keyset { position, id }) if ranked => {
            let (doc, snapshot) = id.split_once('.').ok_or_else(bad_cursor)?;
            Some(After::Ranked {
                score: position,
                doc: doc.parse().map_err(|_| bad_cursor())?,
                snapshot: snapshot.parse().map_err(|_| bad_cursor())?,
            })
        }
        Some(Keyset { position, id }) => Some(After::Newest {
            created_at: position,
            id,
        }),
    };
    let snapshot = match &after {
        Some(After::Ranked { snapshot, .. }) => *snapshot,
        _ if ranked && !nothing => store::newest_doc(db).await?,
        _ => 0,
    };
    let rows = if nothing {
        Vec::new()
    } else {
        store::search(db, &search, after.as_ref(), page.fetch()).await?
    };
    let page = Page::from_rows(rows, &page, |l| {
        if ranked {
            Keyset {
                position: l.score,
                id: ranked_key(l.doc, snapshot),
            }
        } else {
            Keyset {
                position: l.created_at,
                id: l.agent.id.clone(),
            }
        }
    });
    let facets = if query.facets.is_empty() {
        None
    } else {
        let mut facets = Facets::default();
        for facet in &query.facets {
            let counts = if nothing {
                Vec::new()
            } else {
                store::facet_counts(db, &search, *facet == Facet::Tags, FACET_VALUES).await?
            };
            match facet {
                Facet::AgentType => facets.agent_type = Some(counts),
                Facet::Tags => facets.tags = Some(counts),
            }
        }
        Some(facets)
    };
    Ok(SearchResults {
        data: page.data.into_iter().map(|l| shown(state, l)).collect(),
        next_cursor: page.next_cursor,
        facets,
    })
}

/// A listed agent with the version of what it shows; anything else is simply not found.
pub async fn find(state: &AppState, id: &str) -> Result<Listed, ServiceError> {
    if !is_id(id) {
        return Err(ServiceError::NotFound("agent"));
    }
    let mut listed = store::find(state.db.as_ref(), id)
        .await?
        .ok_or(ServiceError::NotFound("agent"))?;
    listed.agent.did = did_web(&state.config.issuer, &listed.agent.id).unwrap_or_default();
    Ok(listed)
}

/// `GET /v1/marketplace/agents/{id}`: a listed agent; anything else is simply not found.
pub async fn get(state: &AppState, id: &str) -> Result<PublicAgent, ServiceError> {
    Ok(find(state, id).await?.agent)
}
