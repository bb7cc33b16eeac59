//! `GET /v1/analytics/tokens`: token outcomes per hour or day, by agent, grant or outcome, read
//! from the counters kept as events are written (never by scanning the audit trail).

use crate::domain::analytics::{
    TokenAnalytics, TokensPoint, TokensQuery, TokensRange, HOUR_MILLIS,
};
use crate::domain::caller::OrgId;
use crate::domain::time::rfc3339;
use crate::ports::sql::Database;
use crate::services::ServiceError;
use crate::store::analytics as store;

pub async fn tokens(
    db: &dyn Database,
    org_id: &OrgId,
    now: i64,
    query: TokensQuery,
) -> Result<TokenAnalytics, ServiceError> {
    let range = TokensRange::parse(query, now)?;
    let points = store::series(
        db,
        org_id.as_str(),
        range.from_hour,
        range.to_hour,
        range.bucket.hours(),
        range.group_by,
    )
    .await?;
    Ok(TokenAnalytics {
        from: rfc3339(range.from_hour * HOUR_MILLIS),
        to: rfc3339(range.to_hour * HOUR_MILLIS),
        bucket: range.bucket,
        group_by: range.group_by,
        series: points
            .into_iter()
            .map(|(hour, group, count)| TokensPoint {
                start: rfc3339(hour * HOUR_MILLIS),
                group,
                count,
            })
            .collect(),
    })
}
