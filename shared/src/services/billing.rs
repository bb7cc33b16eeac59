//! Billing: the Stripe webhook. A verified event moves an organization between tiers once (a
//! replay is a no-op), audited and announced as `organization.tier_changed`, and the new limits
//! apply from the next request.

use serde::Serialize;
use serde_json::json;

use crate::domain::audit::Outcome;
use crate::domain::billing::{instruction, parse_event, verify_signature, Instruction};
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
    let org_id = match party.org_id.clone() {
        Some(org_id) => org_id,
        None => {
            let known = store::org_for(
                state.db.as_ref(),
                party.subscription.as_deref(),
                party.customer.as_deref(),
            )
            .await?;
            match known {
                Some(org_id) => org_id,
                None => {
                    return ignored("no organization is known for this customer or subscription")
                }
            }
        }
    };
    for _ in 0..ATTEMPTS {
        let Some(current) = orgs::tier(state.db.as_ref(), &org_id).await? else {
            return ignored("no such organization");
        };
        let now = state.now_millis();
        let mut change = Change::new()
            .statement(store::record_event(
                &event.id,
                &event.event_type,
                Some(&org_id),
                now,
            ))
            .statement(store::not_older_than_applied(&org_id, event.created))
            .statement(store::upsert(
                &org_id,
                party.customer.as_deref(),
                party.subscription.as_deref(),
                event.created,
                now,
            ));
        let moves = current != tier.as_str();
        if moves {
            let audit = state
                .audit(&org_id, STRIPE_ACTOR, "org.tier_changed", Outcome::Success)
                .target(org_id.clone())
                .details(json!({
                    "from": current,
                    "to": tier.as_str(),
                    "stripe_event_id": event.id,
                    "stripe_event_type": event.event_type,
                }));
            change = change
                .statement(store::tier_still(&org_id, &current))
                .statement(store::set_tier(&org_id, tier.as_str()))
                .statement(webhooks::event(
                    state,
                    &org_id,
                    EventType::OrganizationTierChanged,
                    json!({ "tier": tier.as_str(), "previous_tier": current }),
                ))
                .event(audit);
        }
        match state.db.commit(change).await {
            Ok(_) if moves => {
                state.limiter.forget_tier(&org_id);
                return Ok(Handled::Applied {
                    org_id,
                    from: current,
                    to: tier.as_str().to_owned(),
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
