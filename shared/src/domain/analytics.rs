//! Token analytics: which audit events count as token outcomes and under which keys, kept as
//! counters in the transaction of each event, and the validated parameters of the query.

use serde::{Deserialize, Serialize};

use crate::domain::audit::{time_range, AuditDraft, Outcome};
use crate::domain::validate::Invalid;

pub const HOUR_MILLIS: i64 = 3_600_000;

/// One counter increment: the hour, the agent (`-` for an admin's token), the grant, the outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenCount {
    pub hour: i64,
    pub agent: String,
    pub grant: String,
    pub outcome: &'static str,
}

/// The counter an event increments, if it records a token outcome: an issued token, or a token
/// exchange refused by the trust policies.
pub fn token_count(draft: &AuditDraft) -> Option<TokenCount> {
    let grant = match draft.action {
        "token.issued" => draft
            .details
            .get("grant_type")
            .and_then(|g| g.as_str())
            .unwrap_or("unknown"),
        "token.exchange_denied" => "urn:ietf:params:oauth:grant-type:token-exchange",
        _ => return None,
    };
    Some(TokenCount {
        hour: draft.occurred_at.div_euclid(HOUR_MILLIS),
        agent: draft.agent_id.clone().unwrap_or_else(|| "-".to_owned()),
        grant: short_grant(grant).to_owned(),
        outcome: match draft.outcome {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        },
    })
}

/// Grant type URNs by their last segment (`token-exchange`, `jwt-bearer`), as people name them.
fn short_grant(grant: &str) -> &str {
    grant.rsplit(':').next().unwrap_or(grant)
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    #[default]
    Hour,
    Day,
}

impl Bucket {
    pub fn hours(self) -> i64 {
        match self {
            Bucket::Hour => 1,
            Bucket::Day => 24,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    #[default]
    Outcome,
    Agent,
    Grant,
}

/// Query of `GET /v1/analytics/tokens`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub bucket: Option<Bucket>,
    pub group_by: Option<GroupBy>,
}

/// The longest range one query covers: 31 days of hours or 400 days of days.
const MAX_BUCKETS: i64 = 31 * 24;

/// A validated query: whole hours `[from_hour, to_hour)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokensRange {
    pub from_hour: i64,
    pub to_hour: i64,
    pub bucket: Bucket,
    pub group_by: GroupBy,
}

impl TokensRange {
    /// By default the last 24 hours (hour buckets) or 30 days (day buckets) up to `now`.
    pub fn parse(query: TokensQuery, now: i64) -> Result<Self, Invalid> {
        let bucket = query.bucket.unwrap_or_default();
        let (from, to) = time_range(query.from.as_deref(), query.to.as_deref())?;
        let to_hour = to.map_or(now.div_euclid(HOUR_MILLIS) + 1, |t| {
            (t + HOUR_MILLIS - 1).div_euclid(HOUR_MILLIS)
        });
        let default_span = match bucket {
            Bucket::Hour => 24,
            Bucket::Day => 30 * 24,
        };
        let from_hour = from.map_or(to_hour - default_span, |f| f.div_euclid(HOUR_MILLIS));
        let from_hour = from_hour.div_euclid(bucket.hours()) * bucket.hours();
        if (to_hour - from_hour) / bucket.hours() > MAX_BUCKETS {
            return Err(Invalid::new(
                "from",
                format!("the range may span at most {MAX_BUCKETS} buckets"),
            ));
        }
        Ok(TokensRange {
            from_hour,
            to_hour,
            bucket,
            group_by: query.group_by.unwrap_or_default(),
        })
    }
}

/// One bucket of one group.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TokensPoint {
    pub start: String,
    pub group: String,
    pub count: i64,
}

/// `GET /v1/analytics/tokens`.
#[derive(Clone, Debug, Serialize)]
pub struct TokenAnalytics {
    pub from: String,
    pub to: String,
    pub bucket: Bucket,
    pub group_by: GroupBy,
    pub series: Vec<TokensPoint>,
}
