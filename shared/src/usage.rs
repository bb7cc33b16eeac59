//! Usage metering per organization per calendar month (UTC): counters in the key-value store,
//! persisted to libSQL when read, and the free tier's agent allowance beside them.

use serde::Serialize;
use time::{Month, OffsetDateTime};

use crate::error::ApiError;
use crate::runtime::rfc3339;
use crate::sql::{query_one, Change, Statement};
use crate::state::AppState;

/// Counters outlive their month by a month, so last month's figures can still be persisted.
pub const COUNTER_TTL_SECONDS: u64 = 62 * 24 * 3600;

/// A calendar month in UTC: `YYYY-MM` and its bounds in Unix milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarMonth {
    pub label: String,
    pub start_millis: i64,
    pub end_millis: i64,
}

/// The UTC month containing `millis`; instants outside `time`'s range fall back to the epoch.
pub fn month_of(millis: i64) -> CalendarMonth {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let start = at
        .replace_day(1)
        .map(|d| d.replace_time(time::Time::MIDNIGHT))
        .unwrap_or(at);
    let (next_year, next_month) = match start.month() {
        Month::December => (start.year() + 1, Month::January),
        m => (start.year(), m.next()),
    };
    let end = start
        .replace_year(next_year)
        .and_then(|d| d.replace_month(next_month))
        .unwrap_or(start);
    let millis =
        |t: OffsetDateTime| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    CalendarMonth {
        label: format!("{:04}-{:02}", start.year(), u8::from(start.month())),
        start_millis: millis(start),
        end_millis: millis(end),
    }
}

fn counter_key(org_id: &str, now_millis: i64, counter: &str) -> String {
    month_counter_key(org_id, &month_of(now_millis).label, counter)
}

/// The counter names of [`Usage`], as they appear in counter keys.
pub const API_CALLS: &str = "api_calls";
pub const TOKENS_ISSUED: &str = "tokens_issued";

/// The key of one counter of one organization in one month (`YYYY-MM`).
pub fn month_counter_key(org_id: &str, month: &str, counter: &str) -> String {
    format!("usage:{org_id}:{month}:{counter}")
}

/// The organization, month and counter a counter key names, for stores that persist counters.
pub fn parse_counter_key(key: &str) -> Option<(&str, &str, &str)> {
    let (rest, counter) = key.strip_prefix("usage:")?.rsplit_once(':')?;
    let (org_id, month) = rest.rsplit_once(':')?;
    Some((org_id, month, counter))
}

/// Records a month's figures, never lowering what is already persisted.
pub fn persist_statement(
    org_id: &str,
    month: &str,
    tokens_issued: i64,
    api_calls: i64,
    now_millis: i64,
) -> Statement {
    Statement::new(
        "INSERT INTO usage_months (org_id, month, tokens_issued, api_calls, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (org_id, month) DO UPDATE SET \
         tokens_issued = MAX(tokens_issued, excluded.tokens_issued), \
         api_calls = MAX(api_calls, excluded.api_calls), updated_at = excluded.updated_at",
    )
    .bind(org_id)
    .bind(month)
    .bind(tokens_issued)
    .bind(api_calls)
    .bind(now_millis)
}

pub fn api_calls_key(org_id: &str, now_millis: i64) -> String {
    counter_key(org_id, now_millis, API_CALLS)
}

pub fn tokens_issued_key(org_id: &str, now_millis: i64) -> String {
    counter_key(org_id, now_millis, TOKENS_ISSUED)
}

/// `GET /v1/usage`.
#[derive(Debug, Serialize)]
pub struct Usage {
    pub org_id: String,
    pub tier: String,
    /// `YYYY-MM`, UTC.
    pub month: String,
    pub period_start: String,
    pub period_end: String,
    pub tokens_issued: i64,
    pub api_calls: i64,
    pub agents: AgentAllowance,
    pub rate_limit: RateLimitSummary,
}

#[derive(Debug, Serialize)]
pub struct AgentAllowance {
    /// Agents that are not decommissioned.
    pub count: i64,
    pub limit: i64,
}

#[derive(Debug, Serialize)]
pub struct RateLimitSummary {
    /// Requests per window for authenticated `/v1/*` calls of this organization's tier; `null`
    /// when unlimited.
    pub limit: Option<u64>,
    pub window_seconds: i64,
}

/// Reads this month's counters, persists them (never lowering a persisted figure), and reports
/// them with the agent allowance. A store outage degrades to the last persisted figures.
pub async fn read(state: &AppState, org_id: &str) -> Result<Usage, ApiError> {
    let now = state.now_millis();
    let month = month_of(now);
    let keys = [api_calls_key(org_id, now), tokens_issued_key(org_id, now)];
    let live = match state.kv.get_many(&keys).await {
        Ok(values) => {
            let count = |i: usize| {
                values
                    .get(i)
                    .and_then(Option::as_deref)
                    .and_then(|v| v.parse::<i64>().ok())
            };
            Some((count(0).unwrap_or(0), count(1).unwrap_or(0)))
        }
        Err(e) => {
            tracing::warn!(error = %e, "usage counters unavailable; reporting persisted figures");
            None
        }
    };
    let row = query_one(
        state.db.as_ref(),
        Statement::new(
            "SELECT o.tier, \
             (SELECT COUNT(*) FROM agents a WHERE a.org_id = o.id AND a.status <> 'decommissioned') \
               AS agents, \
             u.api_calls, u.tokens_issued \
             FROM orgs o LEFT JOIN usage_months u ON u.org_id = o.id AND u.month = ?2 \
             WHERE o.id = ?1",
        )
        .bind(org_id)
        .bind(month.label.clone()),
    )
    .await?
    .ok_or_else(|| ApiError::not_found("organization"))?;
    let tier: String = row.get("tier")?;
    let agents: i64 = row.get("agents")?;
    let stored_calls: i64 = row.get::<Option<i64>>("api_calls")?.unwrap_or(0);
    let stored_tokens: i64 = row.get::<Option<i64>>("tokens_issued")?.unwrap_or(0);
    let (live_calls, live_tokens) = live.unwrap_or((0, 0));
    let (api_calls, tokens_issued) = (stored_calls.max(live_calls), stored_tokens.max(live_tokens));
    if (api_calls, tokens_issued) != (stored_calls, stored_tokens) {
        let upsert = persist_statement(org_id, &month.label, tokens_issued, api_calls, now);
        // Persisting is best effort: the answer is right either way, and the next read retries.
        if let Err(e) = state.db.commit(Change::new().statement(upsert)).await {
            tracing::warn!(error = %e, "persisting usage counters failed");
        }
    }
    let limits = &state.config.rate_limits;
    let limit = limits
        .tiers
        .iter()
        .find(|(name, _)| *name == tier)
        .map_or(limits.organization, |(_, l)| *l);
    Ok(Usage {
        org_id: org_id.to_owned(),
        tier,
        month: month.label,
        period_start: rfc3339(month.start_millis),
        period_end: rfc3339(month.end_millis),
        tokens_issued,
        api_calls,
        agents: AgentAllowance {
            count: agents,
            limit: state.config.max_agents_per_org,
        },
        rate_limit: RateLimitSummary {
            limit: (limit > 0).then_some(limit),
            window_seconds: limits.window_seconds,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_utc_calendar_months() {
        // 2026-12-31T23:59:59.999Z and the next millisecond.
        let december = month_of(1_798_761_599_999);
        assert_eq!(december.label, "2026-12");
        assert_eq!(december.start_millis, 1_796_083_200_000); // 2026-12-01T00:00:00Z
        assert_eq!(december.end_millis, 1_798_761_600_000); // 2027-01-01T00:00:00Z
        assert_eq!(month_of(1_798_761_600_000).label, "2027-01");
        assert_eq!(month_of(0).label, "1970-01");
        assert_eq!(month_of(i64::MAX).label, "1970-01");
    }

    #[test]
    fn counter_keys_round_trip() {
        let key = api_calls_key("org-1", 1_798_761_599_999);
        assert_eq!(
            parse_counter_key(&key),
            Some(("org-1", "2026-12", API_CALLS))
        );
        assert_eq!(parse_counter_key("revoked:jti:x"), None);
    }
}
