//! Billing rows: the Stripe events already applied (so a replay is a no-op), each organization's
//! Stripe subscriptions and the tier each buys, and the organization's tier.

use crate::config::tiers::Tier;
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

/// The organization a Stripe subscription was recorded for, else (given) the one a customer was.
pub async fn org_for(
    db: &dyn Database,
    subscription: &str,
    customer: Option<&str>,
) -> Result<Option<String>, DbError> {
    let statement = Statement::new(
        "SELECT org_id, 0 AS rank FROM org_subscriptions WHERE subscription_id = ?1 \
         UNION ALL SELECT org_id, 1 FROM org_subscriptions WHERE ?2 IS NOT NULL AND customer_id = ?2 \
         UNION ALL SELECT org_id, 2 FROM org_billing WHERE ?2 IS NOT NULL AND stripe_customer_id = ?2 \
         ORDER BY rank LIMIT 1",
    )
    .bind(subscription)
    .bind(customer);
    db.query_one(statement)
        .await?
        .map(|row| row.get("org_id"))
        .transpose()
}

/// The tiers of an organization's active subscriptions, by subscription id.
pub async fn active_subscriptions(
    db: &dyn Database,
    org_id: &str,
) -> Result<Vec<(String, String)>, DbError> {
    let statement = Statement::new(
        "SELECT subscription_id, tier FROM org_subscriptions WHERE org_id = ?1 AND active = 1",
    )
    .bind(org_id);
    db.query(statement)
        .await?
        .iter()
        .map(|row| Ok((row.get("subscription_id")?, row.get("tier")?)))
        .collect()
}

/// Guards against an older event (by Stripe's `created`) undoing a newer one already applied to
/// the same subscription.
pub fn not_older_than_applied(subscription: &str, created: i64) -> Statement {
    guard(
        OUT_OF_ORDER,
        "EXISTS (SELECT 1 FROM org_subscriptions WHERE subscription_id = ?1 \
         AND last_event_created > ?2)",
    )
    .bind(subscription)
    .bind(created)
}

/// Records what a subscription buys now. The organization is set once, at the first record: the
/// mapping made at checkout stays authoritative.
pub fn upsert_subscription(
    subscription: &str,
    org_id: &str,
    customer: Option<&str>,
    tier: Tier,
    created: i64,
    now: i64,
) -> Statement {
    Statement::new(
        "INSERT INTO org_subscriptions (subscription_id, org_id, customer_id, tier, tier_rank, \
         active, last_event_created, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (subscription_id) DO UPDATE SET \
         customer_id = COALESCE(excluded.customer_id, customer_id), \
         tier = excluded.tier, tier_rank = excluded.tier_rank, active = excluded.active, \
         last_event_created = MAX(last_event_created, excluded.last_event_created), \
         updated_at = excluded.updated_at",
    )
    .bind(subscription)
    .bind(org_id)
    .bind(customer)
    .bind(tier.as_str())
    .bind(tier.rank())
    .bind(i64::from(tier != Tier::Free))
    .bind(created)
    .bind(now)
}

/// Guards on the organization's active subscriptions still buying `tier` once this change's
/// [`upsert_subscription`] ran: a concurrent event about another of its subscriptions is read again.
pub fn derived_tier_is(org_id: &str, tier: Tier) -> Statement {
    guard(
        TIER_CHANGED,
        "COALESCE((SELECT tier FROM org_subscriptions WHERE org_id = ?1 AND active = 1 \
         ORDER BY tier_rank DESC LIMIT 1), 'free') IS NOT ?2",
    )
    .bind(org_id)
    .bind(tier.as_str())
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
