//! `POST /v1/webhooks/dispatch`: the dispatcher for schedulers (Spin deployments have no cron of
//! their own). With the operator's dispatch token it delivers every organization's due webhooks and
//! runs the audit upkeep; with an access token carrying `webhooks:write`, that organization's
//! deliveries only.

use agentidp_shared::axum::extract::{FromRequestParts, State};
use agentidp_shared::axum::http::request::Parts;
use agentidp_shared::axum::Json;
use agentidp_shared::domain::caller::OrgId;
use agentidp_shared::domain::secrets::token_matches;
use agentidp_shared::http::auth::bearer;
use agentidp_shared::http::error::ApiError;
use agentidp_shared::http::extract::ApiQuery;
use agentidp_shared::services::retention;
use agentidp_shared::services::webhooks::{self, DispatchReport, Scope};
use agentidp_shared::services::Context;
use agentidp_shared::state::AppState;
use serde::Deserialize;

/// Who asks for a dispatch.
pub enum Dispatcher {
    /// The deployment's operator (`AGENTIDP_WEBHOOK_DISPATCH_TOKEN`): every organization.
    Operator,
    /// An organization, by an access token of its own.
    Organization(OrgId),
}

impl FromRequestParts<AppState> for Dispatcher {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let operator = match (&state.config.webhooks.dispatch_token, bearer(parts)) {
            (Some(configured), Some(presented)) => token_matches(configured, presented),
            _ => false,
        };
        if operator {
            return Ok(Dispatcher::Operator);
        }
        let ctx = Context::from_request_parts(parts, state).await?;
        Ok(Dispatcher::Organization(ctx.caller.org))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchQuery {
    /// DEVELOPMENT ONLY (`AGENTIDP_DEV_TIME_TRAVEL=on`): dispatch as if the clock read this
    /// (Unix seconds), so tests walk a retry schedule without waiting for it.
    pub at: Option<i64>,
}

pub async fn dispatch(
    State(state): State<AppState>,
    dispatcher: Dispatcher,
    ApiQuery(query): ApiQuery<DispatchQuery>,
) -> Result<Json<DispatchReport>, ApiError> {
    let now = match query.at {
        None => state.now_millis(),
        Some(_) if !state.config.webhooks.time_travel => {
            return Err(ApiError::invalid_field(
                "at",
                "is only accepted in development (AGENTIDP_DEV_TIME_TRAVEL=on)",
            ))
        }
        Some(at) => at
            .checked_mul(1000)
            .ok_or_else(|| ApiError::invalid_field("at", "must be Unix seconds"))?,
    };
    let scope = match &dispatcher {
        Dispatcher::Operator => Scope::Everyone,
        Dispatcher::Organization(org_id) => Scope::Organization(org_id),
    };
    let mut report = webhooks::dispatch(&state, scope, now).await?;
    if let Dispatcher::Operator = dispatcher {
        // On the real clock: a time-travelled dispatch must not expire anybody's audit events.
        report.audit = Some(retention::upkeep(&state, state.now_millis()).await?);
    }
    Ok(Json(report))
}
