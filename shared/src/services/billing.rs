//! Billing: the Stripe webhook. A verified event updates one of an organization's subscriptions
//! once (a replay is a no-op); its tier is the highest its active subscriptions buy, changes are
//! audited and announced as `organization.tier_changed`, and apply from the next request.

use serde::Serialize;
use serde_json::json;

use crate::config::tiers::Tier;
use crate::domain::audit::Outcome;
use crate::domain::billing::{instruction, parse_event, verify_signature, Instruction};
use crate::domain::caller::OrgId;
use crate::domain::webhooks::EventType;
use crate::ports::sql::{Change, DbError};
use crate::services::{webhooks, ServiceError};
use crate::state::AppState;
use crate::store::billing as store;
use crate::store::orgs;

/// Who the audit trail names for tier changes Stripe asked for.
pub const STRIPE_ACTOR: &str = "stripe";
/// A tier read then changed concurrently is read again this often.
const ATTEMPTS: usize = 3;

/// What an event did, as the answer to Stripe says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Handled {
    /// The organization moved from one tier to another.
    Applied {
        org_id: String,
        from: String,
        to: String,
    },
    /// The organization already had the tier; the Stripe ids were recorded.
    Unchanged { org_id: String, tier: String },
    /// This event id was handled before.
    Duplicate,
    /// Older than an event already applied to the organization.
    OutOfOrder,
    /// Nothing to do: the reason says why.
    Ignored { reason: String },
    /// Contradicts what checkout recorded (another organization); logged, nothing changed.
    Refused { reason: String },
}

fn ignored(reason: &str) -> Result<Handled, ServiceError> {
    tracing::info!(reason, "Stripe event ignored");
    Ok(Handled::Ignored {
        reason: reason.to_owned(),
    })
}

/// Verifies and applies one delivery of Stripe's webhook: `body` exactly as received.
pub async fn handle_stripe(
    state: &AppState,
    signature: Option<&str>,
    body: &[u8],
) -> Result<Handled, ServiceError> {
    let stripe = state
        .config
        .stripe
        .as_ref()
        .ok_or(ServiceError::BillingNotConfigured)?;
    verify_signature(signature, body, &stripe.secret, state.clock.now_seconds())
        .map_err(ServiceError::BadSignature)?;
    let event = parse_event(body)?;
    if store::event_seen(state.db.as_ref(), &event.id).await? {
        return Ok(Handled::Duplicate);
    }
    let (party, tier) = match instruction(&event, &stripe.price_tiers) {
        Instruction::Ignore(reason) => return ignored(reason),
        Instruction::SetTier { party, tier } => (party, tier),
    };
    let Some(subscription) = party.subscription.as_deref() else {
        return ignored("the event names no subscription");
    };
    // A checkout names its organization; after it, only the subscription's own record (or its
    // customer's) says whose it is, and an event naming someone else is refused, not applied.
    let customer = (!party.checkout)
        .then_some(party.customer.as_deref())
        .flatten();
    let recorded = store::org_for(state.db.as_ref(), subscription, customer).await?;
    let org_id = match (party.org_id, recorded) {
        (Some(named), Some(recorded)) if named != recorded => {
            tracing::warn!(
                event_id = %event.id,
                subscription,
                named = %named,
                recorded = %recorded,
                "Stripe event names another organization than the one its subscription was recorded for; refused"
            );
            return Ok(Handled::Refused {
                reason: "the event names another organization than the subscription's".to_owned(),
            });
        }
        (_, Some(org_id)) | (Some(org_id), None) => org_id,
        (None, None) => {
            return ignored("no organization is known for this customer or subscription")
        }
    };
    for _ in 0..ATTEMPTS {
        let Some(current) = orgs::tier(state.db.as_ref(), &org_id).await? else {
            return ignored("no such organization");
        };
        // The highest tier among the organization's active subscriptions once this one is updated.
        let others = store::active_subscriptions(state.db.as_ref(), &org_id).await?;
        let derived = others
            .iter()
            .filter(|(id, _)| id != subscription)
            .map(|(_, name)| Tier::parse(name).unwrap_or(Tier::Free))
            .chain([tier])
            .max_by_key(|t| t.rank())
            .unwrap_or(Tier::Free);
        let now = state.now_millis();
        let mut change = Change::new()
            .statement(store::record_event(
                &event.id,
                &event.event_type,
                Some(&org_id),
                now,
            ))
            .statement(store::not_older_than_applied(subscription, event.created))
            .statement(store::upsert_subscription(
                subscription,
                &org_id,
                party.customer.as_deref(),
                tier,
                event.created,
                now,
            ))
            .statement(store::derived_tier_is(&org_id, derived));
        let moves = current != derived.as_str();
        if moves {
            let audit = state
                .audit(&org_id, STRIPE_ACTOR, "org.tier_changed", Outcome::Success)
                .target(org_id.clone())
                .details(json!({
                    "from": current,
                    "to": derived.as_str(),
                    "stripe_event_id": event.id,
                    "stripe_event_type": event.event_type,
                    "stripe_subscription_id": subscription,
                }));
            change = change
                .statement(store::tier_still(&org_id, &current))
                .statement(store::set_tier(&org_id, derived.as_str()))
                .statement(webhooks::event(
                    state,
                    &OrgId::new(org_id.as_str()),
                    EventType::OrganizationTierChanged,
                    json!({ "tier": derived.as_str(), "previous_tier": current }),
                ))
                .event(audit);
        }
        match state.db.commit(change).await {
            Ok(_) if moves => {
                state.limiter.forget_tier(&org_id);
                return Ok(Handled::Applied {
                    org_id,
                    from: current,
                    to: derived.as_str().to_owned(),
                });
            }
            Ok(_) => {
                return Ok(Handled::Unchanged {
                    org_id,
                    tier: current,
                })
            }
            Err(e) if store::is_replay(&e) => return Ok(Handled::Duplicate),
            Err(DbError::Guard(store::OUT_OF_ORDER)) => {
                let record = store::record_event(&event.id, &event.event_type, Some(&org_id), now);
                return match state.db.commit(Change::new().statement(record)).await {
                    Ok(_) => Ok(Handled::OutOfOrder),
                    Err(e) if store::is_replay(&e) => Ok(Handled::Duplicate),
                    Err(e) => Err(e.into()),
                };
            }
            Err(DbError::Guard(store::TIER_CHANGED)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ServiceError::Contention)
}
