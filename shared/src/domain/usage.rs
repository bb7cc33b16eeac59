//! Usage per organization per calendar month (UTC): the month arithmetic and what `GET /v1/usage`
//! reports.

use serde::Serialize;
use time::{Month, OffsetDateTime};

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
    /// The tier's cap; `null` when unlimited.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct RateLimitSummary {
    /// Requests per window for authenticated `/v1/*` calls of this organization's tier; `null`
    /// when unlimited.
    pub limit: Option<u64>,
    pub window_seconds: i64,
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
}
