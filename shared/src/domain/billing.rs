//! Billing as the domain sees it: Stripe's webhook signature (`Stripe-Signature: t=…,v1=…`) and
//! which Stripe events move an organization to which tier.

use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::config::tiers::Tier;
use crate::domain::validate::{is_id, Invalid};

/// Stripe's own libraries refuse signatures older than this; so do we, and as far in the future.
pub const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header is not `t=<timestamp>,v1=<signature>`")]
    Malformed,
    #[error("no v1 signature matches the body")]
    Mismatch,
    #[error("the signature's timestamp is more than {SIGNATURE_TOLERANCE_SECONDS} s from now")]
    Stale,
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Verifies `Stripe-Signature` over the raw body: HMAC-SHA256 keyed with the secret's text, over
/// `"<t>.<body>"`, hex in each `v1` (several during a secret roll), compared in constant time.
pub fn verify_signature(
    header: Option<&str>,
    body: &[u8],
    secret: &str,
    now_seconds: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp: Option<i64> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" if timestamp.is_none() => {
                timestamp = Some(value.parse().map_err(|_| SignatureError::Malformed)?);
            }
            "v1" => {
                if let Some(bytes) = hex_decode(value).filter(|b| b.len() == 32) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let expected = hmac_sha256::HMAC::mac(&signed, secret.as_bytes());
    let matched = signatures
        .iter()
        .fold(false, |found, s| found | bool::from(s.ct_eq(&expected)));
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    if (now_seconds - timestamp).abs() > SIGNATURE_TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

/// The parts of a Stripe event this service reads.
#[derive(Clone, Debug)]
pub struct StripeEvent {
    pub id: String,
    pub event_type: String,
    /// Unix seconds: orders events, which Stripe may deliver out of order.
    pub created: i64,
    pub object: Value,
}

const MAX_STRIPE_ID_CHARS: usize = 255;

pub fn parse_event(body: &[u8]) -> Result<StripeEvent, Invalid> {
    let event: Value =
        serde_json::from_slice(body).map_err(|e| Invalid::new("body", e.to_string()))?;
    let id = event["id"]
        .as_str()
        .filter(|id| !id.is_empty() && id.len() <= MAX_STRIPE_ID_CHARS)
        .ok_or_else(|| Invalid::new("id", "a Stripe event has an id"))?;
    let event_type = event["type"]
        .as_str()
        .ok_or_else(|| Invalid::new("type", "a Stripe event has a type"))?;
    Ok(StripeEvent {
        id: id.to_owned(),
        event_type: event_type.chars().take(MAX_STRIPE_ID_CHARS).collect(),
        created: event["created"].as_i64().unwrap_or(0),
        object: event["data"]["object"].clone(),
    })
}

/// Who the event is about, by what Stripe says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillingParty {
    /// The organization, when the event names it (`client_reference_id`, `metadata.org_id`).
    pub org_id: Option<String>,
    pub customer: Option<String>,
    pub subscription: Option<String>,
    /// A checkout records which organization a subscription is for; later events only follow it.
    pub checkout: bool,
}

/// What an event asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Instruction {
    /// Move the party's organization to this tier.
    SetTier { party: BillingParty, tier: Tier },
    /// A type this service does not act on, or a state that changes nothing (an unpaid checkout).
    Ignore(&'static str),
}

fn text(value: &Value) -> Option<String> {
    value
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= MAX_STRIPE_ID_CHARS)
        .map(str::to_owned)
}

/// `customer` and `subscription` are ids, or expanded objects carrying one.
fn id_of(value: &Value) -> Option<String> {
    text(value).or_else(|| text(&value["id"]))
}

/// The tier an object buys: its `metadata.tier`, else a configured price, else `pro`.
fn tier_of(object: &Value, price_tiers: &[(String, Tier)]) -> Option<Tier> {
    if let Some(named) = object["metadata"]["tier"].as_str() {
        return Tier::parse(named);
    }
    let prices = object["items"]["data"].as_array().into_iter().flatten();
    for item in prices {
        if let Some(price) = item["price"]["id"].as_str() {
            if let Some((_, tier)) = price_tiers.iter().find(|(p, _)| p == price) {
                return Some(*tier);
            }
        }
    }
    Some(Tier::Pro)
}

fn org_of(value: &Value) -> Option<String> {
    value.as_str().filter(|id| is_id(id)).map(str::to_owned)
}

/// Reads an event: `checkout.session.completed` names its organization in `client_reference_id`;
/// subscription events in `metadata.org_id`, or by the customer and subscription a checkout
/// recorded.
pub fn instruction(event: &StripeEvent, price_tiers: &[(String, Tier)]) -> Instruction {
    let object = &event.object;
    match event.event_type.as_str() {
        "checkout.session.completed" => {
            if object["payment_status"].as_str() == Some("unpaid") {
                return Instruction::Ignore("the checkout is not paid yet");
            }
            let Some(tier) = tier_of(object, price_tiers) else {
                return Instruction::Ignore("metadata.tier names no tier");
            };
            let Some(org_id) = org_of(&object["client_reference_id"]) else {
                return Instruction::Ignore("client_reference_id names no organization");
            };
            Instruction::SetTier {
                party: BillingParty {
                    org_id: Some(org_id),
                    customer: id_of(&object["customer"]),
                    // A one-time payment is a subscription of its own that no event ends.
                    subscription: id_of(&object["subscription"]).or_else(|| id_of(&object["id"])),
                    checkout: true,
                },
                tier,
            }
        }
        "customer.subscription.updated" | "customer.subscription.deleted" => {
            let party = BillingParty {
                org_id: org_of(&object["metadata"]["org_id"]),
                customer: id_of(&object["customer"]),
                subscription: id_of(&object["id"]),
                checkout: false,
            };
            let status = object["status"].as_str().unwrap_or_default();
            let ended = event.event_type == "customer.subscription.deleted"
                || matches!(
                    status,
                    "canceled" | "unpaid" | "incomplete_expired" | "paused"
                );
            if ended {
                return Instruction::SetTier {
                    party,
                    tier: Tier::Free,
                };
            }
            if !matches!(status, "active" | "trialing" | "past_due") {
                return Instruction::Ignore("the subscription is not active yet");
            }
            match tier_of(object, price_tiers) {
                Some(tier) => Instruction::SetTier { party, tier },
                None => Instruction::Ignore("metadata.tier names no tier"),
            }
        }
        _ => Instruction::Ignore("not an event type this service acts on"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn sign(secret: &str, t: i64, body: &str) -> String {
        hex(&hmac_sha256::HMAC::mac(
            format!("{t}.{body}").as_bytes(),
            secret.as_bytes(),
        ))
    }

    #[test]
    fn signatures_verify_as_stripe_signs_them() {
        let (secret, body, now) = ("whsec_test", r#"{"id":"evt_1"}"#, 1_700_000_000);
        let good = sign(secret, now, body);
        let header = format!("t={now},v1={good}");
        assert_eq!(
            verify_signature(Some(&header), body.as_bytes(), secret, now),
            Ok(())
        );
        // During a roll Stripe sends one v1 per secret, and a v0 test-mode signature.
        let rolled = format!(
            "t={now},v1={},v1={good},v0=abc",
            sign("whsec_old", now, body)
        );
        assert_eq!(
            verify_signature(Some(&rolled), body.as_bytes(), secret, now + 299),
            Ok(())
        );
        let cases = [
            (None, SignatureError::Missing),
            (Some("garbage".to_owned()), SignatureError::Malformed),
            (Some(format!("v1={good}")), SignatureError::Malformed),
            (Some(format!("t={now}")), SignatureError::Malformed),
            (
                Some(format!("t={now},v1={}", sign("whsec_other", now, body))),
                SignatureError::Mismatch,
            ),
            (
                Some(format!("t={},v1={good}", now + 1)),
                SignatureError::Mismatch,
            ),
        ];
        for (header, error) in cases {
            assert_eq!(
                verify_signature(header.as_deref(), body.as_bytes(), secret, now),
                Err(error),
                "{header:?}"
            );
        }
        assert_eq!(
            verify_signature(Some(&header), b"{\"id\":\"evt_2\"}", secret, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(Some(&header), body.as_bytes(), secret, now + 301),
            Err(SignatureError::Stale)
        );
    }

    fn event(event_type: &str, object: Value) -> StripeEvent {
        StripeEvent {
            id: "evt_1".into(),
            event_type: event_type.into(),
            created: 1,
            object,
        }
    }

    const ORG: &str = "00000000-0000-4000-8000-000000000001";

    #[test]
    fn checkouts_and_subscriptions_set_tiers() {
        let checkout = event(
            "checkout.session.completed",
            json!({ "client_reference_id": ORG, "customer": "cus_1", "subscription": "sub_1",
                    "payment_status": "paid", "metadata": { "tier": "enterprise" } }),
        );
        assert_eq!(
            instruction(&checkout, &[]),
            Instruction::SetTier {
                party: BillingParty {
                    org_id: Some(ORG.into()),
                    customer: Some("cus_1".into()),
                    subscription: Some("sub_1".into()),
                    checkout: true,
                },
                tier: Tier::Enterprise
            }
        );
        let priced = event(
            "customer.subscription.updated",
            json!({ "id": "sub_1", "customer": "cus_1", "status": "active",
                    "items": { "data": [ { "price": { "id": "price_e" } } ] } }),
        );
        let prices = [("price_e".to_owned(), Tier::Enterprise)];
        assert!(matches!(
            instruction(&priced, &prices),
            Instruction::SetTier {
                tier: Tier::Enterprise,
                ..
            }
        ));
        assert!(matches!(
            instruction(&priced, &[]),
            Instruction::SetTier {
                tier: Tier::Pro,
                ..
            }
        ));
        let canceled = event(
            "customer.subscription.updated",
            json!({ "id": "sub_1", "status": "canceled" }),
        );
        assert!(matches!(
            instruction(&canceled, &[]),
            Instruction::SetTier {
                tier: Tier::Free,
                ..
            }
        ));
        let deleted = event("customer.subscription.deleted", json!({ "id": "sub_1" }));
        assert!(matches!(
            instruction(&deleted, &[]),
            Instruction::SetTier {
                tier: Tier::Free,
                ..
            }
        ));
    }

    #[test]
    fn what_is_not_for_us_changes_nothing() {
        for (event_type, object) in [
            ("invoice.paid", json!({})),
            (
                "checkout.session.completed",
                json!({ "client_reference_id": "not-an-org" }),
            ),
            (
                "checkout.session.completed",
                json!({ "client_reference_id": ORG, "payment_status": "unpaid" }),
            ),
            (
                "checkout.session.completed",
                json!({ "client_reference_id": ORG, "metadata": { "tier": "gold" } }),
            ),
            (
                "customer.subscription.updated",
                json!({ "id": "sub_1", "status": "incomplete" }),
            ),
        ] {
            assert!(
                matches!(
                    instruction(&event(event_type, object), &[]),
                    Instruction::Ignore(_)
                ),
                "{event_type}"
            );
        }
    }
}
