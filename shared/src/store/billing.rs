//! Billing rows: the Stripe events already applied (so a replay is a no-op), each organization's
//! Stripe customer and subscription, and its tier.

use crate::ports::sql::{Database, DbError, Statement};
use crate::store::guard;

/// Guard codes, as `DbError::Guard` reports them.
pub const OUT_OF_ORDER: &str = "stripe_event_out_of_order";
pub const TIER_CHANGED: &str = "org_tier_changed";

/// Records an event as applied; a second insert of the same id fails, so a replay, even a
/// concurrent one, commits nothing.
pub fn record_event(id: &str, event_type: &str, org_id: Option<&str>, now: i64) -> Statement {
    Statement::new(
        "INSERT INTO stripe_events (id, type, org_id, received_at) VALUES (?1, ?2, ?3, ?4)",
    )
    .bind(id)
    .bind(event_type)
    .bind(org_id)
    .bind(now)
}

/// The insert of [`record_event`] met an event already recorded.
pub fn is_replay(e: &DbError) -> bool {
    matches!(e, DbError::Constraint(m) if m.contains("stripe_events.id"))
}

pub async fn event_seen(db: &dyn Database, id: &str) -> Result<bool, DbError> {
    let statement = Statement::new("SELECT 1 AS seen FROM stripe_events WHERE id = ?1").bind(id);
    Ok(db.query_one(statement).await?.is_some())
}

/// The organization a Stripe subscription or customer was recorded for at checkout.
pub async fn org_for(
    db: &dyn Database,
    subscription: Option<&str>,
    customer: Option<&str>,
) -> Result<Option<String>, DbError> {
    let statement = Statement::new(
        "SELECT org_id FROM org_billing WHERE (?1 IS NOT NULL AND stripe_subscription_id = ?1) \
         OR (?2 IS NOT NULL AND stripe_customer_id = ?2) \
         ORDER BY (stripe_subscription_id = ?1) DESC LIMIT 1",
    )
    .bind(subscription)
    .bind(customer);
    db.query_one(statement)
        .await?
        .map(|row| row.get("org_id"))
        .transpose()
}

/// Guards against an older event (by Stripe's `created`) undoing a newer one already applied.
pub fn not_older_than_applied(org_id: &str, created: i64) -> Statement {
    guard(
        OUT_OF_ORDER,
        "EXISTS (SELECT 1 FROM org_billing WHERE org_id = ?1 AND last_event_created > ?2)",
    )
    .bind(org_id)
    .bind(created)
}

/// Remembers the organization's Stripe ids (keeping known ones an event does not repeat).
pub fn upsert(
    org_id: &str,
    customer: Option<&str>,
    subscription: Option<&str>,
    created: i64,
    now: i64,
) -> Statement {
    Statement::new(
        "INSERT INTO org_billing (org_id, stripe_customer_id, stripe_subscription_id, \
         last_event_created, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (org_id) DO UPDATE SET \
         stripe_customer_id = COALESCE(excluded.stripe_customer_id, stripe_customer_id), \
         stripe_subscription_id = COALESCE(excluded.stripe_subscription_id, stripe_subscription_id), \
         last_event_created = MAX(last_event_created, excluded.last_event_created), \
         updated_at = excluded.updated_at",
    )
    .bind(org_id)
    .bind(customer)
    .bind(subscription)
    .bind(created)
    .bind(now)
}

/// Guards a tier change on the tier still being the one read.
pub fn tier_still(org_id: &str, tier: &str) -> Statement {
    guard(
        TIER_CHANGED,
        "NOT EXISTS (SELECT 1 FROM orgs WHERE id = ?1 AND tier = ?2)",
    )
    .bind(org_id)
    .bind(tier)
}

pub fn set_tier(org_id: &str, tier: &str) -> Statement {
    Statement::new("UPDATE orgs SET tier = ?1 WHERE id = ?2")
        .bind(tier)
        .bind(org_id)
}
