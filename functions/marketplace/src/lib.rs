//! The marketplace function: the public `/v1/marketplace/*` routes (no authentication, limited per
//! IP), and the browser pages: the portal and the API reference (`pages`).

mod pages;

use agentidp_shared::axum::extract::rejection::PathRejection;
use agentidp_shared::axum::extract::{Path, State};
use agentidp_shared::axum::http::{header, HeaderValue};
use agentidp_shared::axum::response::{IntoResponse, Response};
use agentidp_shared::axum::{Json, Router};
use agentidp_shared::domain::authz::Operation;
use agentidp_shared::domain::marketplace::SearchQuery;
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::ApiQuery;
use agentidp_shared::http::limits::IpLimited;
use agentidp_shared::http::routes::{Function, Mount};
use agentidp_shared::services::marketplace;
use agentidp_shared::state::AppState;

/// How long shared caches may keep a public answer: short, so unpublishing takes effect quickly.
const PUBLIC_MAX_AGE: &str = "public, max-age=30";

/// This function's routes, mounted from the route table.
pub fn routes() -> Router<AppState> {
    Mount::new(Function::Marketplace)
        .handle(Operation::SearchMarketplace, search)
        .handle(Operation::GetMarketplaceAgent, agent)
        .handle(Operation::RedirectToPortal, pages::to_portal)
        .handle(Operation::GetPortal, pages::portal)
        .handle(Operation::GetPortalFile, pages::portal_file)
        .handle(Operation::GetApiReference, pages::docs)
        .handle(Operation::GetApiReferenceFile, pages::docs_file)
        .finish()
}

fn cacheable(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(PUBLIC_MAX_AGE),
    );
    response
}

async fn search(
    State(state): State<AppState>,
    _: IpLimited,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Response, ApiError> {
    let page = marketplace::search(state.db.as_ref(), query).await?;
    Ok(cacheable(Json(page)))
}

async fn agent(
    State(state): State<AppState>,
    _: IpLimited,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    // An id that is not even valid UTF-8 names no agent; answer as for any other unknown id.
    let Path(id) = id.map_err(|_| ApiError::not_found("agent"))?;
    let agent = marketplace::get(state.db.as_ref(), &id).await?;
    Ok(cacheable(Json(agent)))
}

agentidp_shared::edge_entry_points!(routes);
