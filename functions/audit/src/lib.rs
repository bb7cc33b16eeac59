//! The audit function: `/v1/audit/*` routes over the shared audit trail.

use agentidp_shared::axum::body::Body;
use agentidp_shared::axum::extract::State;
use agentidp_shared::axum::http::{header, HeaderValue, StatusCode};
use agentidp_shared::axum::response::{IntoResponse, Response};
use agentidp_shared::axum::{Json, Router};
use agentidp_shared::domain::audit::{AuditEvent, EventsQuery, ExportQuery, Verification};
use agentidp_shared::domain::authz::Operation;
use agentidp_shared::domain::page::Page;
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::ApiQuery;
use agentidp_shared::http::routes::{Function, Mount};
use agentidp_shared::services::audit_trail::{self, Export};
use agentidp_shared::services::Context;
use agentidp_shared::state::AppState;

/// This function's routes, mounted from the route table.
pub fn routes() -> Router<AppState> {
    Mount::new(Function::Audit)
        .handle(Operation::ListAuditEvents, events)
        .handle(Operation::VerifyAuditChain, verify)
        .handle(Operation::ExportAuditEvents, export)
        .finish()
}

// Queries arrive as `Result`s so that a caller without the scope learns that first, not whether
// their parameters would have parsed.

async fn events(
    State(state): State<AppState>,
    ctx: Context,
    query: Result<ApiQuery<EventsQuery>, ApiError>,
) -> Result<Json<Page<AuditEvent>>, ApiError> {
    let ApiQuery(query) = query?;
    let page = audit_trail::list_events(state.db.as_ref(), ctx.org(), query).await?;
    Ok(Json(page))
}

async fn verify(
    State(state): State<AppState>,
    ctx: Context,
    query: Result<ApiQuery<NoParameters>, ApiError>,
) -> Result<Json<Verification>, ApiError> {
    query?;
    let verification = audit_trail::verify_chain(state.db.as_ref(), ctx.org()).await?;
    Ok(Json(verification))
}

/// `verify` takes no parameters; refusing stray ones keeps typos from looking like filters.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParameters {}

/// NDJSON, oldest first. The first chunk is read before answering so a failing database still
/// gets a problem response; later chunks stream.
async fn export(
    State(state): State<AppState>,
    ctx: Context,
    query: Result<ApiQuery<ExportQuery>, ApiError>,
) -> Result<Response, ApiError> {
    let ApiQuery(query) = query?;
    let mut export = Export::new(ctx.org(), query)?;
    let first = export.next_chunk(state.db.as_ref()).await?;
    let rest = futures_util::stream::unfold(
        (state, export, first.is_some()),
        |(state, mut export, more)| async move {
            if !more {
                return None;
            }
            match export.next_chunk(state.db.as_ref()).await {
                Ok(Some(chunk)) => Some((Ok(chunk), (state, export, true))),
                Ok(None) => None,
                Err(e) => {
                    // Headers are gone by now: end the body abnormally so the client sees an
                    // incomplete transfer rather than a silently short export.
                    tracing::error!(error = %e, "audit export interrupted");
                    Some((Err(e), (state, export, false)))
                }
            }
        },
    );
    let first = futures_util::stream::iter(first.map(Ok));
    let body = Body::from_stream(futures_util::StreamExt::chain(first, rest));
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

agentidp_shared::edge_entry_points!(routes);
