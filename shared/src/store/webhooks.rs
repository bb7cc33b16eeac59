//! The webhook tables: subscriptions, the outbox of deliveries (filled in the same transaction as
//! the change that caused each event), leases that let one dispatcher at a time attempt a delivery,
//! and the log of attempts.

use crate::domain::page::PageRequest;
use crate::domain::webhooks::{parse_events, Attempt, Delivery, DeliveryStatus, Subscription};
use crate::ports::sql::{Database, DbError, Row, Statement, Value};
use crate::store::{guard, unknown_value};

/// Guard codes, as `DbError::Guard` reports them.
pub const SUBSCRIPTION_LIMIT: &str = "webhook_subscription_limit";
pub const LEASE_LOST: &str = "webhook_lease_lost";
pub const ALREADY_DISABLED: &str = "webhook_already_disabled";
pub const SECRET_CHANGED: &str = "webhook_secret_changed";
pub const GONE: &str = "webhook_gone";
pub const NOT_FAILED: &str = "webhook_delivery_not_failed";

const SUBSCRIPTION_COLUMNS: &str = "id, url, events, description, enabled, disabled_reason, \
     disabled_at, failing_since, previous_secret_expires_at, created_at, updated_at";

fn subscription_from_row(row: &Row) -> Result<Subscription, DbError> {
    Ok(Subscription {
        id: row.get("id")?,
        url: row.get("url")?,
        events: parse_events(&row.get::<String>("events")?),
        description: row.get("description")?,
        enabled: row.get("enabled")?,
        disabled_reason: row.get("disabled_reason")?,
        disabled_at: row.get("disabled_at")?,
        failing_since: row.get("failing_since")?,
        previous_secret_expires_at: row.get("previous_secret_expires_at")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// A new subscription's row; `events` in their stored form.
pub struct NewRow<'a> {
    pub org_id: &'a str,
    pub id: &'a str,
    pub url: &'a str,
    pub events: &'a str,
    pub description: Option<&'a str>,
    pub enabled: bool,
    pub secret: &'a str,
    pub now: i64,
}

pub fn insert(row: &NewRow<'_>) -> Statement {
    Statement::new(
        "INSERT INTO webhook_subscriptions (id, org_id, url, events, description, enabled, \
         secret, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )
    .bind(row.id)
    .bind(row.org_id)
    .bind(row.url)
    .bind(row.events)
    .bind(row.description)
    .bind(row.enabled)
    .bind(row.secret)
    .bind(row.now)
}

/// Counted after the insert, inside the transaction: concurrent creations cannot overshoot.
pub fn within_cap(org_id: &str, limit: i64) -> Statement {
    guard(
        SUBSCRIPTION_LIMIT,
        "(SELECT COUNT(*) FROM webhook_subscriptions WHERE org_id = ?1) > ?2",
    )
    .bind(org_id)
    .bind(limit)
}

/// A subscription of `org_id`; another organization's is `None`, like a missing one.
pub async fn find(
    db: &dyn Database,
    org_id: &str,
    id: &str,
) -> Result<Option<Subscription>, DbError> {
    let statement = Statement::new(format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = ?1 AND org_id = ?2"
    ))
    .bind(id)
    .bind(org_id);
    db.query_one(statement)
        .await?
        .as_ref()
        .map(subscription_from_row)
        .transpose()
}

/// The position and id a page starts after (or, newest first, before); both `NULL` on the first.
fn keyset(page: &PageRequest) -> (Option<i64>, Option<String>) {
    match &page.after {
        Some(k) => (Some(k.position), Some(k.id.clone())),
        None => (None, None),
    }
}

/// One page of the organization's subscriptions in creation order.
pub async fn list(
    db: &dyn Database,
    org_id: &str,
    page: &PageRequest,
) -> Result<Vec<Subscription>, DbError> {
    let (after_position, after_id) = keyset(page);
    let statement = Statement::new(format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE org_id = ?1 \
         AND (?2 IS NULL OR (created_at, id) > (?2, ?3)) ORDER BY created_at, id LIMIT ?4"
    ))
    .bind(org_id)
    .bind(after_position)
    .bind(after_id)
    .bind(page.fetch());
    db.query(statement)
        .await?
        .iter()
        .map(subscription_from_row)
        .collect()
}

/// What a caller may change. Re-enabling clears why the service disabled it and its failing run.
pub struct Update<'a> {
    pub url: &'a str,
    pub events: &'a str,
    pub description: Option<&'a str>,
    pub enabled: bool,
    pub now: i64,
}

pub fn update(org_id: &str, id: &str, update: &Update<'_>) -> Statement {
    Statement::new(
        "UPDATE webhook_subscriptions SET url = ?1, events = ?2, description = ?3, \
         disabled_reason = CASE WHEN ?4 = 1 THEN NULL ELSE disabled_reason END, \
         disabled_at = CASE WHEN ?4 = 1 THEN NULL ELSE COALESCE(disabled_at, ?5) END, \
         failing_since = CASE WHEN ?4 = 1 AND enabled = 0 THEN NULL ELSE failing_since END, \
         enabled = ?4, updated_at = MAX(?5, updated_at + 1) WHERE id = ?6 AND org_id = ?7",
    )
    .bind(update.url)
    .bind(update.events)
    .bind(update.description)
    .bind(update.enabled)
    .bind(update.now)
    .bind(id)
    .bind(org_id)
}

/// The subscription, its deliveries and their attempts.
pub fn delete(org_id: &str, id: &str) -> Vec<Statement> {
    vec![
        Statement::new(
            "DELETE FROM webhook_attempts WHERE subscription_id = ?1 AND subscription_id IN \
             (SELECT id FROM webhook_subscriptions WHERE id = ?1 AND org_id = ?2)",
        )
        .bind(id)
        .bind(org_id),
        Statement::new("DELETE FROM webhook_deliveries WHERE subscription_id = ?1 AND org_id = ?2")
            .bind(id)
            .bind(org_id),
        Statement::new("DELETE FROM webhook_subscriptions WHERE id = ?1 AND org_id = ?2")
            .bind(id)
            .bind(org_id),
    ]
}

/// The signing secret a rotation replaces, and when the one before it stops signing.
pub async fn rotation_base(
    db: &dyn Database,
    org_id: &str,
    id: &str,
) -> Result<Option<(String, Option<i64>)>, DbError> {
    let statement = Statement::new(
        "SELECT secret, previous_secret_expires_at FROM webhook_subscriptions \
         WHERE id = ?1 AND org_id = ?2",
    )
    .bind(id)
    .bind(org_id);
    let Some(row) = db.query_one(statement).await? else {
        return Ok(None);
    };
    Ok(Some((
        row.get("secret")?,
        row.get("previous_secret_expires_at")?,
    )))
}

/// Guards a rotation on the secret still being the one it read: a compare-and-set, so of
/// concurrent rotations exactly one replaces a given secret and the others are refused.
pub fn secret_unchanged(org_id: &str, id: &str, expected: &str) -> Statement {
    guard(
        SECRET_CHANGED,
        "NOT EXISTS (SELECT 1 FROM webhook_subscriptions WHERE id = ?1 AND org_id = ?2 \
         AND secret = ?3)",
    )
    .bind(id)
    .bind(org_id)
    .bind(expected)
}

/// A new secret signs from now on; the current one keeps signing until `previous_expires_at`.
pub fn rotate_secret(
    org_id: &str,
    id: &str,
    secret: &str,
    previous_expires_at: Option<i64>,
    now: i64,
) -> Statement {
    Statement::new(
        "UPDATE webhook_subscriptions SET previous_secret = CASE WHEN ?2 IS NULL THEN NULL \
         ELSE secret END, previous_secret_expires_at = ?2, secret = ?1, \
         updated_at = MAX(?3, updated_at + 1) WHERE id = ?4 AND org_id = ?5",
    )
    .bind(secret)
    .bind(previous_expires_at)
    .bind(now)
    .bind(id)
    .bind(org_id)
}

const DELIVERY_INSERT: &str = "INSERT INTO webhook_deliveries (subscription_id, event_id, org_id, \
     event_type, payload, status, next_attempt_at, created_at, updated_at) \
     SELECT s.id, ?1, s.org_id, ?3, ?4, 'pending', ?5, ?5, ?5 FROM webhook_subscriptions s";

/// The outbox rows of one event: a pending delivery for every enabled subscription of the
/// organization that lists the type (or `*`). Part of the change that caused the event.
pub fn fan_out(
    event_id: &str,
    org_id: &str,
    event_type: &str,
    payload: &str,
    now: i64,
) -> Statement {
    Statement::new(format!(
        "{DELIVERY_INSERT} WHERE s.org_id = ?2 AND s.enabled = 1 AND \
         (instr(s.events, ' ' || ?3 || ' ') > 0 OR instr(s.events, ' * ') > 0)"
    ))
    .bind(event_id)
    .bind(org_id)
    .bind(event_type)
    .bind(payload)
    .bind(now)
}

/// One event for one enabled subscription, whatever it lists (the test event).
pub fn enqueue_one(
    subscription_id: &str,
    event_id: &str,
    org_id: &str,
    event_type: &str,
    payload: &str,
    now: i64,
) -> Statement {
    Statement::new(format!(
        "{DELIVERY_INSERT} WHERE s.org_id = ?2 AND s.enabled = 1 AND s.id = ?6"
    ))
    .bind(event_id)
    .bind(org_id)
    .bind(event_type)
    .bind(payload)
    .bind(now)
    .bind(subscription_id)
}

/// Whether the organization has a delivery due by `now` (a read, so an idle organization costs
/// its requests no write).
pub async fn has_due(db: &dyn Database, org_id: &str, now: i64) -> Result<bool, DbError> {
    let statement = Statement::new(
        "SELECT 1 AS due FROM webhook_deliveries d JOIN webhook_subscriptions s \
         ON s.id = d.subscription_id WHERE d.org_id = ?1 AND d.status = 'pending' \
         AND d.next_attempt_at <= ?2 AND (d.lease_until IS NULL OR d.lease_until <= ?2) \
         AND s.enabled = 1 LIMIT 1",
    )
    .bind(org_id)
    .bind(now);
    Ok(db.query_one(statement).await?.is_some())
}

/// Leases up to `limit` due deliveries of enabled subscriptions (of one organization, or all) to
/// `lease` until `lease_until`: one statement, so two dispatchers never lease the same delivery.
/// A lease that ran out (its dispatcher died) is taken over.
pub fn claim(
    org_id: Option<&str>,
    lease: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Statement {
    let scope = if org_id.is_some() {
        "AND d.org_id = ?5"
    } else {
        "AND ?5 IS NULL"
    };
    Statement::new(format!(
        "UPDATE webhook_deliveries SET lease_token = ?1, lease_until = ?2 WHERE rowid IN \
         (SELECT d.rowid FROM webhook_deliveries d JOIN webhook_subscriptions s \
         ON s.id = d.subscription_id WHERE d.status = 'pending' AND d.next_attempt_at <= ?3 \
         AND (d.lease_until IS NULL OR d.lease_until <= ?3) AND s.enabled = 1 {scope} \
         ORDER BY d.next_attempt_at LIMIT ?4)"
    ))
    .bind(lease)
    .bind(lease_until)
    .bind(now)
    .bind(limit)
    .bind(org_id)
}

/// A leased delivery with what its attempt needs from its subscription.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub subscription_id: String,
    pub event_id: String,
    pub org_id: String,
    pub event_type: String,
    pub payload: String,
    pub attempts: i64,
    pub round_attempts: i64,
    pub url: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    pub failing_since: Option<i64>,
}

/// The deliveries `lease` holds.
pub async fn claimed(db: &dyn Database, lease: &str) -> Result<Vec<Claimed>, DbError> {
    let statement = Statement::new(
        "SELECT d.subscription_id, d.event_id, d.org_id, d.event_type, d.payload, d.attempts, \
         d.round_attempts, s.url, s.secret, s.previous_secret, s.previous_secret_expires_at, \
         s.failing_since FROM webhook_deliveries d JOIN webhook_subscriptions s \
         ON s.id = d.subscription_id WHERE d.lease_token = ?1",
    )
    .bind(lease);
    db.query(statement)
        .await?
        .iter()
        .map(|row| {
            Ok(Claimed {
                subscription_id: row.get("subscription_id")?,
                event_id: row.get("event_id")?,
                org_id: row.get("org_id")?,
                event_type: row.get("event_type")?,
                payload: row.get("payload")?,
                attempts: row.get("attempts")?,
                round_attempts: row.get("round_attempts")?,
                url: row.get("url")?,
                secret: row.get("secret")?,
                previous_secret: row.get("previous_secret")?,
                previous_secret_expires_at: row.get("previous_secret_expires_at")?,
                failing_since: row.get("failing_since")?,
            })
        })
        .collect()
}

/// Guards recording an attempt: the lease must still be this dispatcher's. If it ran out and
/// another dispatcher took the delivery over, this outcome is dropped.
pub fn lease_held(subscription_id: &str, event_id: &str, lease: &str) -> Statement {
    guard(
        LEASE_LOST,
        "NOT EXISTS (SELECT 1 FROM webhook_deliveries WHERE subscription_id = ?1 \
         AND event_id = ?2 AND lease_token = ?3)",
    )
    .bind(subscription_id)
    .bind(event_id)
    .bind(lease)
}

/// What one attempt found.
pub struct AttemptRecord<'a> {
    pub attempt: i64,
    pub attempted_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<i64>,
    pub error: Option<&'a str>,
}

pub fn record_attempt(
    subscription_id: &str,
    event_id: &str,
    record: &AttemptRecord<'_>,
) -> Statement {
    Statement::new(
        "INSERT OR REPLACE INTO webhook_attempts (subscription_id, event_id, attempt, \
         attempted_at, duration_ms, status_code, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(subscription_id)
    .bind(event_id)
    .bind(record.attempt)
    .bind(record.attempted_at)
    .bind(record.duration_ms)
    .bind(record.status_code)
    .bind(record.error)
}

/// Where a delivery stands after an attempt; the lease is released.
pub fn settle(
    subscription_id: &str,
    event_id: &str,
    status: DeliveryStatus,
    next_attempt_at: Option<i64>,
    record: &AttemptRecord<'_>,
) -> Statement {
    Statement::new(
        "UPDATE webhook_deliveries SET status = ?1, next_attempt_at = ?2, attempts = ?3, \
         round_attempts = round_attempts + 1, last_status_code = ?4, last_error = ?5, \
         lease_token = NULL, lease_until = NULL, updated_at = ?6 \
         WHERE subscription_id = ?7 AND event_id = ?8",
    )
    .bind(status.as_str())
    .bind(next_attempt_at)
    .bind(record.attempt)
    .bind(record.status_code)
    .bind(record.error)
    .bind(record.attempted_at)
    .bind(subscription_id)
    .bind(event_id)
}

/// A success ends the subscription's failing run; a failure starts one if none is running.
pub fn note_outcome(subscription_id: &str, succeeded: bool, now: i64) -> Statement {
    let sql = if succeeded {
        "UPDATE webhook_subscriptions SET failing_since = NULL WHERE id = ?1 AND ?2 IS NOT NULL"
    } else {
        "UPDATE webhook_subscriptions SET failing_since = COALESCE(failing_since, ?2) WHERE id = ?1"
    };
    Statement::new(sql).bind(subscription_id).bind(now)
}

/// Guards disabling: only an enabled subscription is disabled (and audited) once.
pub fn still_enabled(org_id: &str, id: &str) -> Statement {
    guard(
        ALREADY_DISABLED,
        "NOT EXISTS (SELECT 1 FROM webhook_subscriptions WHERE id = ?1 AND org_id = ?2 \
         AND enabled = 1)",
    )
    .bind(id)
    .bind(org_id)
}

pub fn disable(org_id: &str, id: &str, reason: &str, now: i64) -> Statement {
    Statement::new(
        "UPDATE webhook_subscriptions SET enabled = 0, disabled_reason = ?1, disabled_at = ?2, \
         updated_at = MAX(?2, updated_at + 1) WHERE id = ?3 AND org_id = ?4",
    )
    .bind(reason)
    .bind(now)
    .bind(id)
    .bind(org_id)
}

const DELIVERY_COLUMNS: &str =
    "subscription_id, event_id, event_type, status, next_attempt_at, created_at, updated_at";

fn delivery_from_row(row: &Row) -> Result<Delivery, DbError> {
    let status: String = row.get("status")?;
    Ok(Delivery {
        id: row.get("event_id")?,
        subscription_id: row.get("subscription_id")?,
        event_type: row.get("event_type")?,
        status: unknown_value("status", DeliveryStatus::parse(&status))?,
        attempts: Vec::new(),
        next_attempt_at: row.get("next_attempt_at")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// One page of a subscription's deliveries, newest first, with their attempts.
pub async fn list_deliveries(
    db: &dyn Database,
    org_id: &str,
    subscription_id: &str,
    page: &PageRequest,
) -> Result<Vec<Delivery>, DbError> {
    let (before_position, before_id) = keyset(page);
    let statement = Statement::new(format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE subscription_id = ?1 \
         AND org_id = ?2 AND (?3 IS NULL OR (created_at, event_id) < (?3, ?4)) \
         ORDER BY created_at DESC, event_id DESC LIMIT ?5"
    ))
    .bind(subscription_id)
    .bind(org_id)
    .bind(before_position)
    .bind(before_id)
    .bind(page.fetch());
    let mut deliveries: Vec<Delivery> = db
        .query(statement)
        .await?
        .iter()
        .map(delivery_from_row)
        .collect::<Result<_, _>>()?;
    with_attempts(db, subscription_id, &mut deliveries).await?;
    Ok(deliveries)
}

/// One delivery of a subscription of the organization.
pub async fn find_delivery(
    db: &dyn Database,
    org_id: &str,
    subscription_id: &str,
    event_id: &str,
) -> Result<Option<Delivery>, DbError> {
    let statement = Statement::new(format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE subscription_id = ?1 \
         AND org_id = ?2 AND event_id = ?3"
    ))
    .bind(subscription_id)
    .bind(org_id)
    .bind(event_id);
    let Some(row) = db.query_one(statement).await? else {
        return Ok(None);
    };
    let mut deliveries = vec![delivery_from_row(&row)?];
    with_attempts(db, subscription_id, &mut deliveries).await?;
    Ok(deliveries.pop())
}

/// Fills in the attempts of some deliveries of one subscription, in one query.
async fn with_attempts(
    db: &dyn Database,
    subscription_id: &str,
    deliveries: &mut [Delivery],
) -> Result<(), DbError> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let mut statement = Statement::new("").bind(subscription_id);
    let placeholders: Vec<String> = deliveries
        .iter()
        .map(|d| {
            statement.params.push(Value::Text(d.id.clone()));
            format!("?{}", statement.params.len())
        })
        .collect();
    statement.sql = format!(
        "SELECT event_id, attempt, attempted_at, duration_ms, status_code, error \
         FROM webhook_attempts WHERE subscription_id = ?1 AND event_id IN ({}) \
         ORDER BY event_id, attempt",
        placeholders.join(", ")
    )
    .into();
    for row in db.query(statement).await? {
        let event_id: String = row.get("event_id")?;
        let attempt = Attempt {
            attempt: row.get("attempt")?,
            attempted_at: row.get("attempted_at")?,
            duration_ms: row.get("duration_ms")?,
            status_code: row.get("status_code")?,
            error: row.get("error")?,
        };
        if let Some(delivery) = deliveries.iter_mut().find(|d| d.id == event_id) {
            delivery.attempts.push(attempt);
        }
    }
    Ok(())
}

/// A failed delivery starts a new round of the schedule, due now. Changes no row unless it failed.
/// Guards on the subscription still existing: of concurrent deletes, one deletes and the others
/// find it gone.
pub fn still_there(org_id: &str, id: &str) -> Statement {
    guard(
        GONE,
        "NOT EXISTS (SELECT 1 FROM webhook_subscriptions WHERE id = ?1 AND org_id = ?2)",
    )
    .bind(id)
    .bind(org_id)
}

/// Guards a retry on the delivery still having failed: of concurrent retries of one failure, one
/// schedules it again.
pub fn still_failed(org_id: &str, subscription_id: &str, event_id: &str) -> Statement {
    guard(
        NOT_FAILED,
        "NOT EXISTS (SELECT 1 FROM webhook_deliveries WHERE subscription_id = ?1 AND org_id = ?2 \
         AND event_id = ?3 AND status = 'failed')",
    )
    .bind(subscription_id)
    .bind(org_id)
    .bind(event_id)
}

pub fn retry(org_id: &str, subscription_id: &str, event_id: &str, now: i64) -> Statement {
    Statement::new(
        "UPDATE webhook_deliveries SET status = 'pending', round_attempts = 0, \
         next_attempt_at = ?1, updated_at = ?1 WHERE subscription_id = ?2 AND org_id = ?3 \
         AND event_id = ?4 AND status = 'failed'",
    )
    .bind(now)
    .bind(subscription_id)
    .bind(org_id)
    .bind(event_id)
}

/// Settled deliveries older than `before`, and their attempts: the log keeps a bounded past.
pub fn prune(before: i64, limit: i64) -> Vec<Statement> {
    let old = "SELECT subscription_id, event_id FROM webhook_deliveries \
               WHERE status <> 'pending' AND updated_at < ?1 ORDER BY updated_at LIMIT ?2";
    vec![
        Statement::new(format!(
            "DELETE FROM webhook_attempts WHERE (subscription_id, event_id) IN ({old})"
        ))
        .bind(before)
        .bind(limit),
        Statement::new(format!(
            "DELETE FROM webhook_deliveries WHERE (subscription_id, event_id) IN ({old})"
        ))
        .bind(before)
        .bind(limit),
    ]
}
