//! The audit function: `/v1/audit/*` routes over the shared audit trail, and
//! `/v1/analytics/*` and `/v1/compliance/*` over the counters and records kept with it.

use agentidp_shared::axum::body::Body;
use agentidp_shared::axum::extract::rejection::PathRejection;
use agentidp_shared::axum::extract::{Path, State};
use agentidp_shared::axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use agentidp_shared::axum::response::{IntoResponse, Response};
use agentidp_shared::axum::{Json, Router};
use agentidp_shared::domain::analytics::{TokenAnalytics, TokensQuery};
use agentidp_shared::domain::audit::{AuditEvent, EventsQuery, ExportQuery, Verification};
use agentidp_shared::domain::authz::Operation;
use agentidp_shared::domain::compliance::ReportQuery;
use agentidp_shared::domain::page::Page;
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::ApiQuery;
use agentidp_shared::http::routes::{Function, Mount};
use agentidp_shared::services::audit_log::{
    self, ConsistencyProof, ConsistencyQuery, InclusionProof, ProofQuery,
};
use agentidp_shared::services::audit_trail::{self, Export};
use agentidp_shared::services::Context;
use agentidp_shared::services::{analytics, compliance};
use agentidp_shared::state::AppState;

/// This function's routes, mounted from the route table.
pub fn routes() -> Router<AppState> {
    Mount::new(Function::Audit)
        .handle(Operation::ListAuditEvents, events)
        .handle(Operation::VerifyAuditChain, verify)
        .handle(Operation::ExportAuditEvents, export)
        .handle(Operation::GetLatestAuditCheckpoint, latest_checkpoint)
        .handle(Operation::GetAuditCheckpointKey, checkpoint_key)
        .handle(Operation::GetAuditInclusionProof, inclusion_proof)
        .handle(Operation::GetAuditConsistencyProof, consistency_proof)
        .handle(Operation::GetTokenAnalytics, token_analytics)
        .handle(Operation::GetComplianceReport, compliance_report)
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

/// The covering checkpoint of an export: the signed note, base64 (a note spans several lines).
const AUDIT_CHECKPOINT: header::HeaderName = header::HeaderName::from_static("audit-checkpoint");

/// NDJSON, oldest first. The first chunk is read before answering so a failing database still
/// gets a problem response; later chunks stream.
async fn export(
    State(state): State<AppState>,
    ctx: Context,
    query: Result<ApiQuery<ExportQuery>, ApiError>,
) -> Result<Response, ApiError> {
    let ApiQuery(query) = query?;
    let mut export = Export::new(ctx.org(), query)?;
    // Signed before the first event is read, so it covers the range up to its size: what retention
    // removes next is provably what was exported.
    let checkpoint = audit_log::checkpoint_now(&state, ctx.org(), ctx.now_millis).await?;
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
    let note = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, checkpoint.note);
    if let Ok(value) = HeaderValue::from_str(&note) {
        headers.insert(AUDIT_CHECKPOINT, value);
    }
    Ok(response)
}

/// The latest signed checkpoint (made now when the tree has grown since), as the note itself.
async fn latest_checkpoint(
    State(state): State<AppState>,
    ctx: Context,
    query: Result<ApiQuery<NoParameters>, ApiError>,
) -> Result<Response, ApiError> {
    query?;
    let checkpoint = audit_log::checkpoint_now(&state, ctx.org(), ctx.now_millis).await?;
    Ok(plain_text(checkpoint.note))
}

async fn checkpoint_key(
    State(state): State<AppState>,
    query: Result<ApiQuery<NoParameters>, ApiError>,
) -> Result<Response, ApiError> {
    query?;
    Ok(plain_text(audit_log::verifier_key(&state).await? + "\n"))
}

fn plain_text(text: String) -> Response {
    let mut response = (StatusCode::OK, text).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A sequence number that does not even parse answers like a missing event.
type Seq = Result<Path<i64>, PathRejection>;

async fn inclusion_proof(
    State(state): State<AppState>,
    ctx: Context,
    seq: Seq,
    query: Result<ApiQuery<ProofQuery>, ApiError>,
) -> Result<Json<InclusionProof>, ApiError> {
    let ApiQuery(query) = query?;
    let Ok(Path(seq)) = seq else {
        return Err(ApiError::not_found("audit event"));
    };
    let proof = audit_log::inclusion(state.db.as_ref(), ctx.org(), seq, query).await?;
    Ok(Json(proof))
}

async fn consistency_proof(
    State(state): State<AppState>,
    ctx: Context,
    query: Result<ApiQuery<ConsistencyQuery>, ApiError>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let ApiQuery(query) = query?;
    let proof = audit_log::consistency(state.db.as_ref(), ctx.org(), query).await?;
    Ok(Json(proof))
}

async fn token_analytics(
    State(state): State<AppState>,
    ctx: Context,
    query: Result<ApiQuery<TokensQuery>, ApiError>,
) -> Result<Json<TokenAnalytics>, ApiError> {
    let ApiQuery(query) = query?;
    let analytics = analytics::tokens(state.db.as_ref(), ctx.org(), ctx.now_millis, query).await?;
    Ok(Json(analytics))
}

/// JSON, or CSV when the request accepts `text/csv` (and not JSON first).
async fn compliance_report(
    State(state): State<AppState>,
    ctx: Context,
    headers: HeaderMap,
    query: Result<ApiQuery<ReportQuery>, ApiError>,
) -> Result<Response, ApiError> {
    let ApiQuery(query) = query?;
    let report = compliance::report(&state, ctx.org(), ctx.now_millis, query).await?;
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let csv = accept.find("text/csv");
    let json = accept.find("application/json");
    if csv.is_some_and(|c| json.is_none_or(|j| c < j)) {
        let mut response = (StatusCode::OK, report.csv()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
        );
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"compliance-report.csv\""),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(response);
    }
    let mut response = Json(report.0).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

agentidp_shared::edge_entry_points!(routes);
