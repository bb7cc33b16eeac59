//! `/v1/policies/**`: the organization's Cedar policies (create, list, read, replace with
//! `If-Match`, delete), the schema they are validated against, and the dry run.

use agentidp_shared::axum::extract::State;
use agentidp_shared::axum::http::header::{ETAG, IF_MATCH};
use agentidp_shared::axum::http::{HeaderMap, HeaderValue, StatusCode};
use agentidp_shared::axum::response::{IntoResponse, Response};
use agentidp_shared::axum::Json;
use agentidp_shared::domain::page::Page;
use agentidp_shared::domain::policies::{OrgPolicy, PolicyBody, SCHEMA};
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::{ApiJson, ApiQuery};
use agentidp_shared::services::policies::{self, Evaluation, EvaluationRequest, ListQuery};
use agentidp_shared::services::Context;
use agentidp_shared::state::AppState;
use serde_json::{json, Value};

use crate::extract::Ids;

/// A policy with its version as a strong `ETag` (RFC 9110 §8.8.3), for `If-Match`.
fn with_etag(status: StatusCode, policy: OrgPolicy) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", policy.version))
        .expect("a number is a valid header value");
    let mut response = (status, Json(policy)).into_response();
    response.headers_mut().insert(ETAG, etag);
    response
}

/// The version an `If-Match` header names: `None` without one or for `*` (any current version);
/// a weak or unparsable tag names no version there can be (RFC 9110 §13.1.1: strong comparison),
/// so the write answers 412.
fn expected_version(headers: &HeaderMap) -> Option<i64> {
    let value = headers.get(IF_MATCH)?.to_str().unwrap_or("").trim();
    if value == "*" {
        return None;
    }
    Some(
        value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(-1),
    )
}

fn policy_id(ids: Result<Ids<String>, ApiError>) -> Result<String, ApiError> {
    ids.map(|Ids(id)| id)
        .map_err(|_| ApiError::not_found("policy"))
}

pub async fn create(
    State(state): State<AppState>,
    ctx: Context,
    ApiJson(body): ApiJson<PolicyBody>,
) -> Result<Response, ApiError> {
    let policy = policies::create(&state, &ctx, body).await?;
    Ok(with_etag(StatusCode::CREATED, policy))
}

pub async fn list(
    State(state): State<AppState>,
    ctx: Context,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<OrgPolicy>>, ApiError> {
    Ok(Json(policies::list(&state, ctx.org(), query).await?))
}

pub async fn read(
    State(state): State<AppState>,
    ctx: Context,
    ids: Result<Ids<String>, ApiError>,
) -> Result<Response, ApiError> {
    let id = policy_id(ids)?;
    let policy = policies::get(&state, ctx.org(), &id).await?;
    Ok(with_etag(StatusCode::OK, policy))
}

pub async fn replace(
    State(state): State<AppState>,
    ctx: Context,
    headers: HeaderMap,
    ids: Result<Ids<String>, ApiError>,
    ApiJson(body): ApiJson<PolicyBody>,
) -> Result<Response, ApiError> {
    let id = policy_id(ids)?;
    let policy = policies::replace(&state, &ctx, &id, expected_version(&headers), body).await?;
    Ok(with_etag(StatusCode::OK, policy))
}

pub async fn delete(
    State(state): State<AppState>,
    ctx: Context,
    ids: Result<Ids<String>, ApiError>,
) -> Result<Json<OrgPolicy>, ApiError> {
    let id = policy_id(ids)?;
    Ok(Json(policies::delete(&state, &ctx, &id).await?))
}

/// The published schema, in Cedar's schema syntax, with the namespace it declares.
pub async fn schema(_ctx: Context) -> Json<Value> {
    Json(json!({ "namespace": "AgentIdP", "cedar_schema": SCHEMA }))
}

pub async fn evaluate(
    State(state): State<AppState>,
    ctx: Context,
    ApiJson(request): ApiJson<EvaluationRequest>,
) -> Result<Json<Evaluation>, ApiError> {
    Ok(Json(policies::evaluate(&state, &ctx, request).await?))
}
