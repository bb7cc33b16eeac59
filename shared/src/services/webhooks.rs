//! Webhooks: subscriptions (each write audited), the outbox line every event producer adds to its
//! change, and the dispatcher that leases due deliveries, signs and sends them per Standard
//! Webhooks, and records what happened (retries on the schedule, `410` and days of failure disable).

use serde::Serialize;
use serde_json::{json, Value};

use crate::domain::audit::Outcome;
use crate::domain::caller::OrgId;
use crate::domain::page::{Keyset, Page, PageRequest};
use crate::domain::sealed;
use crate::domain::ssrf;
use crate::domain::time::rfc3339;
use crate::domain::validate::{is_id, not_null, Invalid};
use crate::domain::webhooks::{
    judge, payload, retry_delay_millis, serialize_events, signature_header, valid_description,
    valid_events, valid_url_length, Delivery, DeliveryStatus, EventType, ListQuery,
    NewSubscription, SecretRotation, SigningSecret, Subscription, SubscriptionPatch,
    SubscriptionWithSecret, Verdict, DEFAULT_ROTATION_GRACE_SECONDS, DISABLE_AFTER_FAILING_MILLIS,
    MAX_ROTATION_GRACE_SECONDS, MAX_SUBSCRIPTIONS_PER_ORG,
};
use crate::ports::outbound::{body_excerpt, OutboundRequest, Target};
use crate::ports::runtime::{random_token, BackgroundWork};
use crate::ports::sql::{Change, DbError, Statement};
use crate::services::{Context, ServiceError};
use crate::state::AppState;
use crate::store::webhooks::{self as store, AttemptRecord, Claimed};

/// Who the audit trail names for what the dispatcher does on its own.
pub const DISPATCHER_ACTOR: &str = "webhooks-dispatcher";
/// How long a dispatcher holds a delivery: well beyond the 15 s an attempt may take, so a lease
/// only runs out when its dispatcher died.
const LEASE_MILLIS: i64 = 60_000;
/// Deliveries leased at once, attempted concurrently.
const BATCH: i64 = 25;
/// Batches per dispatch, bounding one call's work.
const MAX_BATCHES: usize = 4;
/// Settled deliveries stay in the log this long.
const LOG_RETENTION_MILLIS: i64 = 30 * 86_400 * 1000;
const PRUNE_BATCH: i64 = 500;
const USER_AGENT: &str = "AgentIdP-Webhooks/1";

/// The outbox row(s) of one event, for the change that causes it: a pending delivery to every
/// enabled subscription of `org_id` listing the type. `data` must carry nothing secret.
pub fn event(state: &AppState, org_id: &OrgId, event_type: EventType, data: Value) -> Statement {
    let now = state.now_millis();
    let body = payload(event_type, org_id.as_str(), &rfc3339(now), data);
    // Deliver right after this request; if the change does not commit, that finds nothing.
    state.deliveries_due.note(org_id);
    store::fan_out(
        &state.new_id(),
        org_id.as_str(),
        event_type.as_str(),
        &body,
        now,
    )
}

fn url_refused(refusal: ssrf::Refusal) -> ServiceError {
    ServiceError::UrlNotAllowed(refusal.0)
}

fn checked_url(state: &AppState, url: String) -> Result<String, ServiceError> {
    valid_url_length(&url)?;
    let target =
        ssrf::check_url(&url, state.config.webhooks.allow_loopback).map_err(url_refused)?;
    Ok(target.url)
}

/// Creates a subscription; its signing secret is in the answer and nowhere else ever again.
pub async fn create(
    state: &AppState,
    ctx: &Context,
    new: NewSubscription,
) -> Result<SubscriptionWithSecret, ServiceError> {
    let org_id = ctx.org();
    let url = new.url.ok_or_else(|| Invalid::new("url", "is required"))?;
    let url = checked_url(state, url)?;
    let events = valid_events(
        new.events
            .ok_or_else(|| Invalid::new("events", "is required"))?,
    )?;
    let description = valid_description(new.description)?;
    let enabled = new.enabled.unwrap_or(true);
    let secret = SigningSecret::from_random(state.random());
    let now = state.now_millis();
    let id = state.new_id();
    let stored_events = serialize_events(&events);
    let sealed_secret = state.seal(&sealed::webhook_row(&id), secret.0.as_bytes());
    let row = store::NewRow {
        org_id: org_id.as_str(),
        id: &id,
        url: &url,
        events: &stored_events,
        description: description.as_deref(),
        enabled,
        secret: &sealed_secret,
        now,
    };
    let event = ctx
        .audit(state, "webhook.created", Outcome::Success)
        .target(id.clone())
        .details(json!({ "url": url, "events": events, "enabled": enabled }));
    let change = Change::new()
        .statement(store::insert(&row))
        .statement(store::within_cap(
            org_id.as_str(),
            MAX_SUBSCRIPTIONS_PER_ORG,
        ))
        .event(event);
    match state.db.commit(change).await {
        Ok(_) => {}
        Err(DbError::Guard(store::SUBSCRIPTION_LIMIT)) => {
            return Err(ServiceError::SubscriptionLimit {
                limit: MAX_SUBSCRIPTIONS_PER_ORG,
            })
        }
        Err(e) => return Err(e.into()),
    }
    Ok(SubscriptionWithSecret {
        subscription: Subscription {
            id,
            url,
            events,
            description,
            enabled,
            disabled_reason: None,
            disabled_at: None,
            failing_since: None,
            previous_secret_expires_at: None,
            created_at: now,
            updated_at: now,
        },
        secret,
    })
}

/// A subscription of `org_id`; another organization's answers exactly like a missing one.
pub async fn get(state: &AppState, org_id: &OrgId, id: &str) -> Result<Subscription, ServiceError> {
    if !is_id(id) {
        return Err(ServiceError::NotFound("webhook"));
    }
    store::find(state.db.as_ref(), org_id.as_str(), id)
        .await?
        .ok_or(ServiceError::NotFound("webhook"))
}

pub async fn list(
    state: &AppState,
    org_id: &OrgId,
    query: ListQuery,
) -> Result<Page<Subscription>, ServiceError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let rows = store::list(state.db.as_ref(), org_id.as_str(), &page).await?;
    Ok(Page::from_rows(rows, &page, |s| Keyset {
        position: s.created_at,
        id: s.id.clone(),
    }))
}

/// Applies a partial update; enabling a disabled subscription clears why it was disabled.
pub async fn update(
    state: &AppState,
    ctx: &Context,
    id: &str,
    patch: SubscriptionPatch,
) -> Result<Subscription, ServiceError> {
    let org_id = ctx.org();
    if patch.is_empty() {
        return Err(Invalid::new("body", "send at least one field to change").into());
    }
    let current = get(state, org_id, id).await?;
    let url = match patch.url.clone() {
        Some(url) => checked_url(state, not_null("url", url)?)?,
        None => current.url.clone(),
    };
    let events = match patch.events.clone() {
        Some(events) => valid_events(not_null("events", events)?)?,
        None => current.events.clone(),
    };
    let description = match patch.description.clone() {
        Some(description) => valid_description(description)?,
        None => current.description.clone(),
    };
    let enabled = match patch.enabled {
        Some(enabled) => not_null("enabled", enabled)?,
        None => current.enabled,
    };
    let mut changed = Vec::new();
    for (field, differs) in [
        ("url", url != current.url),
        ("events", events != current.events),
        ("description", description != current.description),
        ("enabled", enabled != current.enabled),
    ] {
        if differs {
            changed.push(field);
        }
    }
    if changed.is_empty() {
        return Ok(current);
    }
    let stored_events = serialize_events(&events);
    let update = store::Update {
        url: &url,
        events: &stored_events,
        description: description.as_deref(),
        enabled,
        now: state.now_millis(),
    };
    let event = ctx
        .audit(state, "webhook.updated", Outcome::Success)
        .target(id)
        .details(json!({ "changed": changed, "url": url, "events": events, "enabled": enabled }));
    let change = Change::new()
        .statement(store::update(org_id.as_str(), id, &update))
        .event(event);
    state.db.commit(change).await?;
    if enabled {
        // Deliveries that waited while it was disabled are due again.
        state.deliveries_due.note(org_id);
    }
    get(state, org_id, id).await
}

/// Deletes a subscription with its deliveries and their log.
pub async fn delete(state: &AppState, ctx: &Context, id: &str) -> Result<(), ServiceError> {
    let org_id = ctx.org();
    let current = get(state, org_id, id).await?;
    let event = ctx
        .audit(state, "webhook.deleted", Outcome::Success)
        .target(id)
        .details(json!({ "url": current.url }));
    let mut change = Change::new()
        .statement(store::still_there(org_id.as_str(), id))
        .event(event);
    for statement in store::delete(org_id.as_str(), id) {
        change = change.statement(statement);
    }
    state.db.commit(change).await.map_err(|e| match e {
        DbError::Guard(store::GONE) => ServiceError::NotFound("webhook"),
        other => other.into(),
    })?;
    Ok(())
}

/// Issues a new signing secret, shown once; the previous one keeps signing for the grace period.
/// Refused (409) while an earlier grace period runs, unless this one has none; of concurrent
/// rotations exactly one wins.
pub async fn rotate_secret(
    state: &AppState,
    ctx: &Context,
    id: &str,
    rotation: SecretRotation,
) -> Result<SubscriptionWithSecret, ServiceError> {
    let org_id = ctx.org();
    let grace = rotation
        .grace_period_seconds
        .unwrap_or(DEFAULT_ROTATION_GRACE_SECONDS);
    if !(0..=MAX_ROTATION_GRACE_SECONDS).contains(&grace) {
        return Err(Invalid::new(
            "grace_period_seconds",
            format!("must be from 0 to {MAX_ROTATION_GRACE_SECONDS}"),
        )
        .into());
    }
    get(state, org_id, id).await?;
    let (current, previous_until) = store::rotation_base(state.db.as_ref(), org_id.as_str(), id)
        .await?
        .ok_or(ServiceError::NotFound("webhook"))?;
    let now = state.now_millis();
    // As for client secrets: a second grace period would end the first early, dropping a secret
    // receivers were promised; ending every earlier secret has to be asked for (`0`).
    if let Some(until) = previous_until.filter(|t| *t > now) {
        if grace > 0 {
            return Err(ServiceError::GracePeriodRunning {
                until: rfc3339(until),
            });
        }
    }
    let previous_expires_at = (grace > 0).then(|| now + grace * 1000);
    let secret = SigningSecret::from_random(state.random());
    let event = ctx
        .audit(state, "webhook.secret_rotated", Outcome::Success)
        .target(id)
        .details(json!({ "grace_period_seconds": grace }));
    let change = Change::new()
        .statement(store::secret_unchanged(org_id.as_str(), id, &current))
        .statement(store::rotate_secret(
            org_id.as_str(),
            id,
            &state.seal(&sealed::webhook_row(id), secret.0.as_bytes()),
            previous_expires_at,
            now,
        ))
        .event(event);
    state.db.commit(change).await.map_err(|e| match e {
        DbError::Guard(store::SECRET_CHANGED) => ServiceError::RotatedConcurrently,
        other => other.into(),
    })?;
    Ok(SubscriptionWithSecret {
        subscription: get(state, org_id, id).await?,
        secret,
    })
}

/// Enqueues a `webhook.test` event for this subscription alone and delivers it right away.
pub async fn send_test(
    state: &AppState,
    ctx: &Context,
    id: &str,
) -> Result<Delivery, ServiceError> {
    let org_id = ctx.org();
    let subscription = get(state, org_id, id).await?;
    if !subscription.enabled {
        return Err(ServiceError::WebhookDisabled);
    }
    let now = state.now_millis();
    let event_id = state.new_id();
    let body = payload(
        EventType::WebhookTest,
        org_id.as_str(),
        &rfc3339(now),
        json!({ "webhook_id": id, "message": "a test event from AgentIdP" }),
    );
    let event = ctx
        .audit(state, "webhook.test_sent", Outcome::Success)
        .target(id)
        .details(json!({ "event_id": event_id }));
    let change = Change::new()
        .statement(store::enqueue_one(
            id,
            &event_id,
            org_id.as_str(),
            EventType::WebhookTest.as_str(),
            &body,
            now,
        ))
        .event(event);
    let changed = state.db.commit(change).await?;
    if changed.first() != Some(&1) {
        // Disabled between the read and the write.
        return Err(ServiceError::WebhookDisabled);
    }
    state.deliveries_due.note(org_id);
    delivery(state, org_id, id, &event_id).await
}

/// One page of a subscription's delivery log, newest first.
pub async fn deliveries(
    state: &AppState,
    org_id: &OrgId,
    id: &str,
    query: ListQuery,
) -> Result<Page<Delivery>, ServiceError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    get(state, org_id, id).await?;
    let rows = store::list_deliveries(state.db.as_ref(), org_id.as_str(), id, &page).await?;
    Ok(Page::from_rows(rows, &page, |d| Keyset {
        position: d.created_at,
        id: d.id.clone(),
    }))
}

async fn delivery(
    state: &AppState,
    org_id: &OrgId,
    id: &str,
    delivery_id: &str,
) -> Result<Delivery, ServiceError> {
    if !is_id(delivery_id) {
        return Err(ServiceError::NotFound("delivery"));
    }
    store::find_delivery(state.db.as_ref(), org_id.as_str(), id, delivery_id)
        .await?
        .ok_or(ServiceError::NotFound("delivery"))
}

/// Sends a failed delivery again, with the same `webhook-id`, starting the schedule afresh.
pub async fn retry(
    state: &AppState,
    ctx: &Context,
    id: &str,
    delivery_id: &str,
) -> Result<Delivery, ServiceError> {
    let org_id = ctx.org();
    let subscription = get(state, org_id, id).await?;
    let current = delivery(state, org_id, id, delivery_id).await?;
    if !subscription.enabled {
        return Err(ServiceError::WebhookDisabled);
    }
    if current.status != DeliveryStatus::Failed {
        return Err(ServiceError::DeliveryNotFailed);
    }
    let event = ctx
        .audit(state, "webhook.delivery_retried", Outcome::Success)
        .target(id)
        .details(json!({ "event_id": delivery_id, "event_type": current.event_type }));
    let change = Change::new()
        .statement(store::still_failed(org_id.as_str(), id, delivery_id))
        .statement(store::retry(
            org_id.as_str(),
            id,
            delivery_id,
            state.now_millis(),
        ))
        .event(event);
    state.db.commit(change).await.map_err(|e| match e {
        DbError::Guard(store::NOT_FAILED) => ServiceError::DeliveryNotFailed,
        other => other.into(),
    })?;
    state.deliveries_due.note(org_id);
    delivery(state, org_id, id, delivery_id).await
}

/// Whose due deliveries a dispatch attempts.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    Everyone,
    Organization(&'a OrgId),
}

/// What one dispatch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DispatchReport {
    /// Deliveries leased and attempted.
    pub attempted: u64,
    pub delivered: u64,
    /// Failed this time, another attempt scheduled.
    pub retrying: u64,
    /// Failed for good (schedule exhausted, or `410 Gone`).
    pub failed: u64,
    /// Subscriptions disabled (`410 Gone`, failing for days).
    pub disabled: u64,
    /// The audit upkeep the operator's dispatch also runs (Spin has no Cron Trigger: its
    /// scheduler's call is the one that checkpoints and applies retention).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<crate::services::retention::Upkeep>,
}

/// Attempts every delivery of `scope` due at `now` (up to a bound per call): leases a batch in one
/// statement, sends it concurrently, records each outcome under the lease. Any number of
/// dispatchers may run at once; each delivery is attempted by one of them.
pub async fn dispatch(
    state: &AppState,
    scope: Scope<'_>,
    now: i64,
) -> Result<DispatchReport, ServiceError> {
    let mut report = DispatchReport::default();
    let org_id = match scope {
        Scope::Everyone => None,
        Scope::Organization(org_id) => Some(org_id.as_str()),
    };
    for _ in 0..MAX_BATCHES {
        let lease = random_token::<18>(state.entropy.as_ref());
        let claim = store::claim(org_id, &lease, now, now + LEASE_MILLIS, BATCH);
        let leased = state.db.commit(Change::new().statement(claim)).await?;
        let leased = leased.first().copied().unwrap_or(0);
        if leased == 0 {
            break;
        }
        let batch = store::claimed(state.db.as_ref(), &lease).await?;
        let outcomes =
            futures_util::future::join_all(batch.iter().map(|d| attempt(state, d))).await;
        for (delivery, outcome) in batch.iter().zip(outcomes) {
            record(state, &lease, delivery, outcome, now, &mut report).await?;
        }
        if (leased as i64) < BATCH {
            break;
        }
    }
    if matches!(scope, Scope::Everyone) {
        let mut prune = Change::new();
        for statement in store::prune(now - LOG_RETENTION_MILLIS, PRUNE_BATCH) {
            prune = prune.statement(statement);
        }
        state.db.commit(prune).await?;
    }
    Ok(report)
}

/// The deliveries the requests of this instance enqueued, as work to run after the response.
pub fn after_response(state: &AppState) -> Option<BackgroundWork> {
    let orgs = state.deliveries_due.take();
    if orgs.is_empty() {
        return None;
    }
    let state = state.clone();
    Some(Box::pin(async move {
        for org_id in orgs {
            let now = state.now_millis();
            let due = store::has_due(state.db.as_ref(), org_id.as_str(), now).await;
            let result = match due {
                Ok(true) => dispatch(&state, Scope::Organization(&org_id), now)
                    .await
                    .map(|_| ()),
                Ok(false) => Ok(()),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = result {
                // The deliveries stay in the outbox; a dispatcher picks them up.
                tracing::warn!(error = %e, "delivering webhooks after a request failed");
            }
        }
    }))
}

/// What one attempt found.
struct Attempted {
    status: Option<u16>,
    error: Option<String>,
    duration_ms: i64,
}

/// Signs and sends one delivery. The URL is checked again first: the rules or the development
/// switch may have changed since the subscription was made.
async fn attempt(state: &AppState, delivery: &Claimed) -> Attempted {
    let started = state.clock.now_millis();
    let refused = |error: String| Attempted {
        status: None,
        error: Some(error),
        duration_ms: 0,
    };
    let target = match ssrf::check_url(&delivery.url, state.config.webhooks.allow_loopback) {
        Ok(target) => target,
        Err(refusal) => return refused(format!("not sent: {refusal}")),
    };
    // Sealed for the subscription's row; one that does not open signs nothing.
    let row = sealed::webhook_row(&delivery.subscription_id);
    let secret_key = |stored: &str| -> Option<Vec<u8>> {
        match state.keks.open(&row, stored.as_bytes()) {
            Ok(clear) => SigningSecret(String::from_utf8(clear).ok()?).key(),
            Err(e) => {
                tracing::error!(subscription = %delivery.subscription_id, error = %e, "a webhook signing secret does not open");
                None
            }
        }
    };
    let mut keys = Vec::new();
    keys.extend(secret_key(&delivery.secret));
    let previous_valid = delivery
        .previous_secret_expires_at
        .is_some_and(|until| until > started);
    if previous_valid {
        if let Some(previous) = &delivery.previous_secret {
            keys.extend(secret_key(previous));
        }
    }
    if keys.is_empty() {
        return refused("not sent: the subscription has no usable signing secret".into());
    }
    // The signature's timestamp is the real time of sending: receivers check it against theirs.
    let timestamp = state.clock.now_seconds();
    let signature = signature_header(&keys, &delivery.event_id, timestamp, &delivery.payload);
    let request = OutboundRequest {
        method: "POST",
        url: target.url,
        headers: vec![
            ("content-type", "application/json".to_owned()),
            ("user-agent", USER_AGENT.to_owned()),
            ("webhook-id", delivery.event_id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ],
        body: delivery.payload.clone().into_bytes(),
        target: Target::Tenant,
    };
    let result = state.outbound.send(request).await;
    let duration_ms = (state.clock.now_millis() - started).max(0);
    match result {
        Ok(response) => {
            let delivered = (200..300).contains(&response.status);
            Attempted {
                status: Some(response.status),
                error: (!delivered).then(|| {
                    let excerpt = body_excerpt(&response.body);
                    format!("HTTP {}: {excerpt}", response.status)
                        .trim_end_matches(": ")
                        .to_owned()
                }),
                duration_ms,
            }
        }
        Err(e) => Attempted {
            status: None,
            error: Some(e.to_string()),
            duration_ms,
        },
    }
}

/// Records an attempt under the lease, schedules the next one or settles the delivery, and
/// disables a subscription that answered `410 Gone` or has failed for days.
async fn record(
    state: &AppState,
    lease: &str,
    delivery: &Claimed,
    outcome: Attempted,
    now: i64,
    report: &mut DispatchReport,
) -> Result<(), ServiceError> {
    report.attempted += 1;
    let verdict = if outcome.status.is_some() {
        judge(outcome.status)
    } else {
        Verdict::Failed
    };
    let (status, next_attempt_at) = match verdict {
        Verdict::Delivered => (DeliveryStatus::Delivered, None),
        Verdict::Gone => (DeliveryStatus::Failed, None),
        Verdict::Failed => {
            let jitter = u32::from_le_bytes(state.random::<4>());
            match retry_delay_millis(delivery.round_attempts + 1, jitter) {
                Some(delay) => (DeliveryStatus::Pending, Some(now + delay)),
                None => (DeliveryStatus::Failed, None),
            }
        }
    };
    let error: Option<String> = outcome.error.map(|e| e.chars().take(500).collect());
    let record = AttemptRecord {
        attempt: delivery.attempts + 1,
        attempted_at: now,
        duration_ms: outcome.duration_ms,
        status_code: outcome.status.map(i64::from),
        error: error.as_deref(),
    };
    let (sub, event) = (&delivery.subscription_id, &delivery.event_id);
    let change = Change::new()
        .statement(store::lease_held(sub, event, lease))
        .statement(store::record_attempt(sub, event, &record))
        .statement(store::settle(sub, event, status, next_attempt_at, &record))
        .statement(store::note_outcome(sub, verdict == Verdict::Delivered, now));
    match state.db.commit(change).await {
        Ok(_) => {}
        Err(DbError::Guard(store::LEASE_LOST)) => {
            // Another dispatcher took the delivery over; its record stands.
            tracing::warn!(subscription = %sub, event = %event, "webhook lease lost; outcome dropped");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    }
    match status {
        DeliveryStatus::Delivered => report.delivered += 1,
        DeliveryStatus::Pending => report.retrying += 1,
        DeliveryStatus::Failed => report.failed += 1,
    }
    let failing_since = delivery.failing_since.unwrap_or(now);
    let reason = match verdict {
        Verdict::Gone => Some("the endpoint answered 410 Gone".to_owned()),
        Verdict::Failed if now - failing_since >= DISABLE_AFTER_FAILING_MILLIS => Some(format!(
            "every delivery has failed since {} (over {} days); the last attempt: {}",
            rfc3339(failing_since),
            DISABLE_AFTER_FAILING_MILLIS / 86_400_000,
            error.as_deref().unwrap_or("no answer")
        )),
        _ => None,
    };
    if let Some(reason) = reason {
        if disable(state, &delivery.org_id, sub, &reason, now).await? {
            report.disabled += 1;
        }
    }
    Ok(())
}

/// Disables a subscription and says why, audited; `false` when it was disabled already.
async fn disable(
    state: &AppState,
    org_id: &str,
    id: &str,
    reason: &str,
    now: i64,
) -> Result<bool, ServiceError> {
    let event = state
        .audit(
            org_id,
            DISPATCHER_ACTOR,
            "webhook.disabled",
            Outcome::Success,
        )
        .target(id)
        .details(json!({ "reason": reason }));
    let change = Change::new()
        .statement(store::still_enabled(org_id, id))
        .statement(store::disable(org_id, id, reason, now))
        .event(event);
    match state.db.commit(change).await {
        Ok(_) => {
            tracing::warn!(subscription = %id, reason, "webhook subscription disabled");
            Ok(true)
        }
        Err(DbError::Guard(store::ALREADY_DISABLED)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
