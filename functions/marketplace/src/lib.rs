//! The marketplace function: the public `/v1/marketplace/*` routes (no authentication, limited per
//! IP), and the browser pages: the portal and the API reference (`pages`).

mod pages;

use agentidp_shared::axum::extract::rejection::PathRejection;
use agentidp_shared::axum::extract::{Path, State};
use agentidp_shared::axum::http::{HeaderMap, Uri};
use agentidp_shared::axum::response::Response;
use agentidp_shared::axum::Router;
use agentidp_shared::domain::authz::Operation;
use agentidp_shared::domain::caller::AgentId;
use agentidp_shared::domain::marketplace::SearchQuery;
use agentidp_shared::http::cache::{revalidated, PUBLIC_LISTING};
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::limits::IpLimited;
use agentidp_shared::http::routes::{Function, Mount};
use agentidp_shared::services::marketplace;
use agentidp_shared::state::AppState;
use serde::Serialize;

/// This function's routes, mounted from the route table.
pub fn routes() -> Router<AppState> {
    Mount::new(Function::Marketplace)
        .handle(Operation::SearchMarketplace, search)
        .handle(Operation::GetMarketplaceAgent, agent)
        .handle(Operation::GetAgentCard, agent_card)
        .handle(Operation::GetAgentDidDocument, did_document)
        .handle(Operation::RedirectToPortal, pages::to_portal)
        .handle(Operation::GetPortal, pages::portal)
        .handle(Operation::GetPortalFile, pages::portal_file)
        .handle(Operation::GetApiReference, pages::docs)
        .handle(Operation::GetApiReferenceFile, pages::docs_file)
        .finish()
}

/// A public JSON answer: cacheable, with a strong ETag, `304` when the client has it.
fn public_json(request: &HeaderMap, value: &impl Serialize) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(ApiError::internal)?;
    Ok(revalidated(
        request,
        "application/json",
        body,
        PUBLIC_LISTING,
    ))
}

async fn search(
    State(state): State<AppState>,
    _: IpLimited,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let query = SearchQuery::parse(uri.query().unwrap_or(""))?;
    let results = marketplace::search(&state, query).await?;
    public_json(&headers, &results)
}

async fn agent(
    State(state): State<AppState>,
    _: IpLimited,
    headers: HeaderMap,
    id: Result<Path<AgentId>, PathRejection>,
) -> Result<Response, ApiError> {
    // An id that is not even valid UTF-8 names no agent; answer as for any other unknown id.
    let Path(id) = id.map_err(|_| ApiError::not_found("agent"))?;
    let agent = marketplace::get(&state, &id).await?;
    public_json(&headers, &agent)
}

async fn agent_card(
    State(state): State<AppState>,
    _: IpLimited,
    headers: HeaderMap,
    id: Result<Path<AgentId>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|_| ApiError::not_found("agent"))?;
    let card = marketplace::agent_card(&state, &id).await?;
    public_json(&headers, &card)
}

/// The DID document: its own media type (DID Core §6.2), and `no-cache` so that a revoked key
/// leaves every verifier's view at once (revalidation is cheap: `304` on a matching ETag).
async fn did_document(
    State(state): State<AppState>,
    _: IpLimited,
    headers: HeaderMap,
    id: Result<Path<AgentId>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|_| ApiError::not_found("agent"))?;
    let document = marketplace::did_document(&state, &id).await?;
    let body = serde_json::to_vec(&document).map_err(ApiError::internal)?;
    Ok(revalidated(
        &headers,
        "application/did+json",
        body,
        "no-cache",
    ))
}

agentidp_shared::edge_entry_points!(routes);
