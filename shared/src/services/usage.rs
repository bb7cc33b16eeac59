//! Usage metering per organization: this month's counters from the key-value store, persisted to
//! the database when read, reported with the tier's allowances (`config::tiers`).

use crate::domain::caller::OrgId;
use crate::domain::time::rfc3339;
use crate::domain::usage::{month_of, AgentAllowance, RateLimitSummary, Usage};
use crate::ports::sql::Change;
use crate::services::ServiceError;
use crate::state::AppState;
use crate::store::{kv_keys, usage as store};

/// Reads this month's counters, persists them (never lowering a persisted figure), and reports
/// them with the agent allowance. A store outage degrades to the last persisted figures.
pub async fn read(state: &AppState, org_id: &OrgId) -> Result<Usage, ServiceError> {
    let now = state.now_millis();
    let month = month_of(now);
    let keys = [
        kv_keys::api_calls(org_id.as_str(), now),
        kv_keys::tokens_issued(org_id.as_str(), now),
    ];
    let live = match state.kv.get_many(&keys).await {
        Ok(values) => {
            let count = |i: usize| {
                values
                    .get(i)
                    .and_then(Option::as_deref)
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(0)
            };
            (count(0), count(1))
        }
        Err(e) => {
            tracing::warn!(error = %e, "usage counters unavailable; reporting persisted figures");
            (0, 0)
        }
    };
    let stored = store::read(state.db.as_ref(), org_id.as_str(), &month.label)
        .await?
        .ok_or(ServiceError::NotFound("organization"))?;
    let api_calls = stored.api_calls.max(live.0);
    let tokens_issued = stored.tokens_issued.max(live.1);
    if (api_calls, tokens_issued) != (stored.api_calls, stored.tokens_issued) {
        let raise = store::raise(org_id.as_str(), &month.label, tokens_issued, api_calls, now);
        // Persisting is best effort: the answer is right either way, and the next read retries.
        if let Err(e) = state.db.commit(Change::new().statement(raise)).await {
            tracing::warn!(error = %e, "persisting usage counters failed");
        }
    }
    let allowance = state.config.tiers.of(&stored.tier);
    Ok(Usage {
        org_id: org_id.as_str().to_owned(),
        tier: stored.tier,
        month: month.label,
        period_start: rfc3339(month.start_millis),
        period_end: rfc3339(month.end_millis),
        tokens_issued,
        api_calls,
        agents: AgentAllowance {
            count: stored.agents,
            limit: allowance.agent_limit(),
        },
        rate_limit: RateLimitSummary {
            limit: allowance.request_limit(),
            window_seconds: state.config.rate_limits.window_seconds,
        },
    })
}
