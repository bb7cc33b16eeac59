//! The public marketplace: search and read agents their organizations chose to publish.

use serde_json::{json, Value};

use crate::domain::agent_card::{self, Endpoints};
use crate::domain::caller::AgentId;
use crate::domain::did;
use crate::domain::marketplace::{
    count_facets, did_web, match_expression, PublicAgent, SearchQuery, SearchResults,
};
use crate::domain::page::{Keyset, Page, PageRequest};
use crate::domain::validate::{is_id, Invalid};
use crate::services::ServiceError;
use crate::state::AppState;
use crate::store::marketplace::{self as store, After, Listed, Search};

fn bad_cursor() -> ServiceError {
    Invalid::new("cursor", "not a cursor this API returned").into()
}

/// A ranked page's keyset id: the document and the paging session's snapshot.
fn ranked_key(doc: i64, snapshot: i64) -> String {
    format!("{doc}.{snapshot}")
}

/// A filtered page's keyset: the document (the position carries nothing).
fn filtered_key(doc: i64) -> String {
    format!("d{doc}")
}

/// Where the next ranked page starts: just after the last document shown, found again in the
/// ranking recomputed now. Scores drift as agents come and go (bm25 weighs words by how many
/// documents hold them), but the documents of the session's window keep their order, so
/// resuming after the document itself neither repeats nor skips one; only when that document is
/// gone does its score place the page.
fn resume_at(ranking: &[(i64, i64)], after: Option<&After>) -> usize {
    match after {
        Some(After::Ranked { score, doc, .. }) => ranking
            .iter()
            .position(|(d, _)| d == doc)
            .map(|i| i + 1)
            .unwrap_or_else(|| ranking.partition_point(|(d, s)| (s, d) <= (score, doc))),
        _ => 0,
    }
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
        agent_type: query.agent_type.clone(),
        capabilities: query.capabilities.clone(),
        tags: query.tags.clone(),
        deployment_env: query.deployment_env,
    };
    // Text of only punctuation has no word to find: nothing matches.
    let nothing = matches!(&query.terms, Some(terms) if terms.is_empty());
    let filtered = search.matching.is_some() && !ranked;
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
        Some(Keyset { id, .. }) if filtered => Some(After::Filtered {
            doc: id
                .strip_prefix('d')
                .and_then(|d| d.parse().ok())
                .ok_or_else(bad_cursor)?,
        }),
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
    // Rankings and facet samples are reused while the marketplace's version stays: bm25 weighs
    // every match of a word (a full pass over its postings, milliseconds for a common word at
    // 100,000 agents), and the same searches (a word being typed, a popular one) come again and
    // again. The version is one single-row read, bumped in the commit of any listing change.
    let version = if !nothing && (ranked || !query.facets.is_empty()) {
        Some(store::version(db).await?)
    } else {
        None
    };
    // `Search`'s Debug form names every criterion, so equal keys are equal searches.
    let memo_key = format!("{search:?}");
    let rows = if nothing {
        Vec::new()
    } else if ranked {
        let key = format!("{snapshot} {memo_key}");
        let ranking = match version.and_then(|v| state.search_rankings.get(v, &key)) {
            Some(ranking) => ranking,
            None => {
                let ranking = std::sync::Arc::new(store::ranked(db, &search, snapshot).await?);
                if let Some(v) = version {
                    state.search_rankings.put(v, key, ranking.clone());
                }
                ranking
            }
        };
        let fetch = usize::try_from(page.fetch()).unwrap_or(usize::MAX);
        let next: Vec<(i64, i64)> = ranking[resume_at(&ranking, after.as_ref())..]
            .iter()
            .take(fetch)
            .copied()
            .collect();
        store::by_docs(db, &next).await?
    } else {
        store::newest(db, &search, after.as_ref(), page.fetch()).await?
    };
    let page = Page::from_rows(rows, &page, |l| {
        if ranked {
            Keyset {
                position: l.score,
                id: ranked_key(l.doc, snapshot),
            }
        } else if filtered {
            Keyset {
                position: 0,
                id: filtered_key(l.doc),
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
        let sample = match version {
            None => std::sync::Arc::new(Vec::new()),
            Some(v) => match state.search_facets.get(v, &memo_key) {
                Some(sample) => sample,
                None => {
                    let sample = std::sync::Arc::new(store::facet_sample(db, &search).await?);
                    state.search_facets.put(v, memo_key, sample.clone());
                    sample
                }
            },
        };
        Some(count_facets(&query.facets, &sample))
    };
    Ok(SearchResults {
        data: page.data.into_iter().map(|l| shown(state, l)).collect(),
        next_cursor: page.next_cursor,
        facets,
    })
}

/// The version of everything the marketplace lists: it changes, in the same commit, with every
/// publication, withdrawal or edit of a listed agent, so what a search found at one version is
/// what it finds while the version stays the same.
pub async fn version(state: &AppState) -> Result<i64, ServiceError> {
    Ok(store::version(state.db.as_ref()).await?)
}

/// A listed agent with the version of what it shows; anything else is simply not found.
pub async fn find(state: &AppState, id: &AgentId) -> Result<Listed, ServiceError> {
    if !is_id(id.as_str()) {
        return Err(ServiceError::NotFound("agent"));
    }
    let mut listed = store::find(state.db.as_ref(), id.as_str())
        .await?
        .ok_or(ServiceError::NotFound("agent"))?;
    listed.agent.did = did_web(&state.config.issuer, &listed.agent.id).unwrap_or_default();
    Ok(listed)
}

/// `GET /v1/marketplace/agents/{id}`: a listed agent; anything else is simply not found.
pub async fn get(state: &AppState, id: &AgentId) -> Result<PublicAgent, ServiceError> {
    Ok(find(state, id).await?.agent)
}

/// `GET /v1/marketplace/agents/{id}/agent-card.json`: the agent's A2A card, signed by this
/// deployment's signing key over its JCS canonical form (a detached JWS in `signatures`). The
/// signature is made once per card version and key (`AppState::card_signatures`).
pub async fn agent_card(state: &AppState, id: &AgentId) -> Result<Value, ServiceError> {
    let listed = find(state, id).await?;
    let provider = store::provider(state.db.as_ref(), id.as_str())
        .await?
        .ok_or(ServiceError::NotFound("agent"))?;
    let endpoints = Endpoints::of(&state.config.issuer, id.as_str());
    let mut card = agent_card::card(&listed.agent, &provider, &endpoints);
    let canonical = agent_card::canonical(&card);
    let keys = state.key_set().await?;
    let header = agent_card::protected_header(
        keys.signing.alg.as_str(),
        &keys.signing.kid,
        &endpoints.jwks,
    );
    let signed = state
        .card_signatures
        .sign(id.as_str(), &keys.signing, &header, canonical.as_bytes())
        .map_err(|e| ServiceError::Signing(format!("the agent card: {e}")))?;
    card["signatures"] = json!([{ "protected": signed.protected, "signature": signed.signature }]);
    Ok(card)
}

/// `GET /agents/{id}/did.json`: the agent's `did:web` document, with the public keys it
/// authenticates with now.
pub async fn did_document(state: &AppState, id: &AgentId) -> Result<Value, ServiceError> {
    let listed = find(state, id).await?;
    let keys = store::public_keys(state.db.as_ref(), id.as_str()).await?;
    let endpoints = Endpoints::of(&state.config.issuer, id.as_str());
    let card_url = format!("{}/agent-card.json", endpoints.listing);
    Ok(did::document(
        &listed.agent.did,
        &keys,
        &card_url,
        &endpoints,
    ))
}
