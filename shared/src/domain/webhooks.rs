//! Webhooks as the domain sees them: event types, subscriptions and what a caller may send to change
//! them, signing secrets and Standard Webhooks signatures, the retry schedule, and the delivery log.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::domain::time::{optional_timestamp, timestamp};
use crate::domain::validate::{optional_text, Invalid};

/// Every event type, as `type` in the body and in a subscription's `events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    AgentCreated,
    AgentUpdated,
    AgentSuspended,
    AgentDecommissioned,
    CredentialCreated,
    CredentialRotated,
    CredentialRevoked,
    TokenRevoked,
    TrustPolicyCreated,
    TrustPolicyDeleted,
    PolicyCreated,
    PolicyUpdated,
    PolicyDeleted,
    OrganizationTierChanged,
    /// Sent only on request (`POST /v1/webhooks/{id}/test`), to that one subscription.
    WebhookTest,
}

impl EventType {
    /// The types a subscription may list (`webhook.test` is never fanned out).
    pub const SUBSCRIBABLE: [EventType; 14] = [
        EventType::AgentCreated,
        EventType::AgentUpdated,
        EventType::AgentSuspended,
        EventType::AgentDecommissioned,
        EventType::CredentialCreated,
        EventType::CredentialRotated,
        EventType::CredentialRevoked,
        EventType::TokenRevoked,
        EventType::TrustPolicyCreated,
        EventType::TrustPolicyDeleted,
        EventType::PolicyCreated,
        EventType::PolicyUpdated,
        EventType::PolicyDeleted,
        EventType::OrganizationTierChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::AgentCreated => "agent.created",
            EventType::AgentUpdated => "agent.updated",
            EventType::AgentSuspended => "agent.suspended",
            EventType::AgentDecommissioned => "agent.decommissioned",
            EventType::CredentialCreated => "credential.created",
            EventType::CredentialRotated => "credential.rotated",
            EventType::CredentialRevoked => "credential.revoked",
            EventType::TokenRevoked => "token.revoked",
            EventType::TrustPolicyCreated => "trust_policy.created",
            EventType::TrustPolicyDeleted => "trust_policy.deleted",
            EventType::PolicyCreated => "policy.created",
            EventType::PolicyUpdated => "policy.updated",
            EventType::PolicyDeleted => "policy.deleted",
            EventType::OrganizationTierChanged => "organization.tier_changed",
            EventType::WebhookTest => "webhook.test",
        }
    }
}

/// Subscribes to every type.
pub const ALL_EVENTS: &str = "*";

const MAX_URL_CHARS: usize = 2048;
const MAX_DESCRIPTION_CHARS: usize = 500;
/// More subscriptions than this per organization is a mistake, and each one multiplies every event.
pub const MAX_SUBSCRIPTIONS_PER_ORG: i64 = 20;

/// The event types a subscription receives: each subscribable type at most once, or `*`.
pub fn valid_events(events: Vec<String>) -> Result<Vec<String>, Invalid> {
    if events.is_empty() {
        return Err(Invalid::new(
            "events",
            "list at least one event type, or \"*\" for all",
        ));
    }
    let mut valid: Vec<String> = Vec::new();
    for event in events {
        let known = event == ALL_EVENTS
            || EventType::SUBSCRIBABLE
                .iter()
                .any(|t| t.as_str() == event.as_str());
        if !known {
            return Err(Invalid::new(
                "events",
                format!(
                    "`{}` is not an event type; use \"*\" or any of {}",
                    event.chars().take(64).collect::<String>(),
                    EventType::SUBSCRIBABLE
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if !valid.contains(&event) {
            valid.push(event);
        }
    }
    Ok(valid)
}

/// The stored form of `events`: space-separated with a space at each end, so that one `instr()`
/// finds a type (`' agent.created '`) or the wildcard (`' * '`) in the fan-out statement.
pub fn serialize_events(events: &[String]) -> String {
    format!(" {} ", events.join(" "))
}

pub fn parse_events(stored: &str) -> Vec<String> {
    stored.split_whitespace().map(str::to_owned).collect()
}

pub fn valid_url_length(url: &str) -> Result<(), Invalid> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err(Invalid::new(
            "url",
            format!("must be at most {MAX_URL_CHARS} characters"),
        ));
    }
    Ok(())
}

pub fn valid_description(description: Option<String>) -> Result<Option<String>, Invalid> {
    optional_text("description", description, MAX_DESCRIPTION_CHARS)
}

/// A subscription as the API shows it: never its signing secret.
#[derive(Clone, Debug, Serialize)]
pub struct Subscription {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// Why the service disabled it (`410 Gone`, failing for days); `null` otherwise.
    pub disabled_reason: Option<String>,
    #[serde(serialize_with = "optional_timestamp")]
    pub disabled_at: Option<i64>,
    /// When the current run of failed attempts began; `null` while deliveries succeed.
    #[serde(serialize_with = "optional_timestamp")]
    pub failing_since: Option<i64>,
    /// Until when the previous secret still signs, after a rotation.
    #[serde(serialize_with = "optional_timestamp")]
    pub previous_secret_expires_at: Option<i64>,
    #[serde(serialize_with = "timestamp")]
    pub created_at: i64,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: i64,
}

/// A subscription with its signing secret, shown only at creation and rotation.
#[derive(Debug, Serialize)]
pub struct SubscriptionWithSecret {
    #[serde(flatten)]
    pub subscription: Subscription,
    pub secret: SigningSecret,
}

/// Body of `POST /v1/webhooks`; required fields are optional here so a missing one is named.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Distinguishes an absent field from an explicit `null`.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Body of `PATCH /v1/webhooks/{id}`: only what is present changes; `description: null` clears it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionPatch {
    #[serde(default, deserialize_with = "present")]
    pub url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub events: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub enabled: Option<Option<bool>>,
}

impl SubscriptionPatch {
    pub fn is_empty(&self) -> bool {
        self.url.is_none()
            && self.events.is_none()
            && self.description.is_none()
            && self.enabled.is_none()
    }
}

/// Body of `POST /v1/webhooks/{id}/rotate`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRotation {
    /// How long the previous secret keeps signing alongside the new one (default a day).
    #[serde(default)]
    pub grace_period_seconds: Option<i64>,
}

pub const DEFAULT_ROTATION_GRACE_SECONDS: i64 = 86_400;
pub const MAX_ROTATION_GRACE_SECONDS: i64 = 7 * 86_400;

/// Query of `GET /v1/webhooks` and of the delivery log.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A Standard Webhooks signing secret: `whsec_` and the base64 of the key bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SigningSecret(pub String);

const SECRET_PREFIX: &str = "whsec_";

impl SigningSecret {
    /// A secret from 32 random bytes (the specification asks for 24 to 64).
    pub fn from_random(key: [u8; 32]) -> Self {
        SigningSecret(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
    }

    /// The HMAC key: the bytes the base64 after the prefix stands for.
    pub fn key(&self) -> Option<Vec<u8>> {
        let encoded = self.0.strip_prefix(SECRET_PREFIX)?;
        STANDARD.decode(encoded).ok().filter(|k| !k.is_empty())
    }
}

/// The `webhook-signature` value: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` for each key
/// (signed by the Standard Webhooks reference library), space-separated, so receivers holding
/// either secret of a rotation verify.
pub fn signature_header(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &str) -> String {
    keys.iter()
        .filter_map(|key| {
            let signer = standardwebhooks::Webhook::from_bytes(key.clone()).ok()?;
            signer.sign(id, timestamp, body.as_bytes()).ok()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The body of every delivery: `{"type", "timestamp", "data"}`, `data` carrying the organization.
pub fn payload(event_type: EventType, org_id: &str, occurred_at: &str, data: Value) -> String {
    let mut data = match data {
        Value::Object(map) => map,
        other => {
            let mut map = serde_json::Map::new();
            map.insert("value".into(), other);
            map
        }
    };
    data.insert("org_id".into(), Value::String(org_id.to_owned()));
    serde_json::json!({
        "type": event_type.as_str(),
        "timestamp": occurred_at,
        "data": data,
    })
    .to_string()
}

/// Waits before the 2nd, 3rd, ... 8th attempt: after the last one the delivery has failed.
pub const RETRY_SCHEDULE_SECONDS: [i64; 7] = [5, 300, 1_800, 7_200, 18_000, 36_000, 86_400];

/// After `attempts_made` failed attempts in a row, how long until the next one, with jitter of
/// ±10% from `random` (spreading retries that failed together); `None` once the schedule is done.
pub fn retry_delay_millis(attempts_made: i64, random: u32) -> Option<i64> {
    let index = usize::try_from(attempts_made.checked_sub(1)?).ok()?;
    let base = RETRY_SCHEDULE_SECONDS.get(index)? * 1000;
    let fraction = i64::from(random % 2001) - 1000; // -1000..=1000 thousandths of 10%
    Some(base + base * fraction / 10_000)
}

/// A subscription failing without a single success this long is disabled.
pub const DISABLE_AFTER_FAILING_MILLIS: i64 = 5 * 86_400 * 1000;

/// A `2xx` within the timeout is success; `410 Gone` says the endpoint is gone for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    Gone,
    Failed,
}

pub fn judge(status: Option<u16>) -> Verdict {
    match status {
        Some(200..=299) => Verdict::Delivered,
        Some(410) => Verdict::Gone,
        _ => Verdict::Failed,
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// One attempt to deliver, as the log shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    pub attempt: i64,
    #[serde(serialize_with = "timestamp")]
    pub attempted_at: i64,
    pub duration_ms: i64,
    /// The endpoint's status code; `null` when no answer came (refused, timed out, not allowed).
    pub status_code: Option<i64>,
    pub error: Option<String>,
}

/// One event on its way to one subscription, with its attempts.
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    /// The event's id: the `webhook-id` header, the same on every attempt.
    pub id: String,
    pub subscription_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    #[serde(serialize_with = "optional_timestamp")]
    pub next_attempt_at: Option<i64>,
    #[serde(serialize_with = "timestamp")]
    pub created_at: i64,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_known_types_or_the_wildcard_without_repeats() {
        let events = valid_events(vec![
            "agent.created".into(),
            "*".into(),
            "agent.created".into(),
        ])
        .unwrap();
        assert_eq!(events, vec!["agent.created", "*"]);
        assert!(valid_events(vec![]).is_err());
        assert!(valid_events(vec!["webhook.test".into()]).is_err());
        assert!(valid_events(vec!["agent.*".into()]).is_err());
        assert_eq!(
            parse_events(&serialize_events(&events)),
            vec!["agent.created", "*"]
        );
    }

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signatures_follow_the_specification() {
        let secret = SigningSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        let header = signature_header(
            &[secret.key().unwrap()],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let other = SigningSecret::from_random([9; 32]);
        let both = signature_header(&[secret.key().unwrap(), other.key().unwrap()], "i", 1, "b");
        assert_eq!(both.split(' ').count(), 2);
        assert!(SigningSecret("whsec_".into()).key().is_none());
    }

    #[test]
    fn retries_follow_the_schedule_with_bounded_jitter_then_stop() {
        assert_eq!(retry_delay_millis(0, 0), None);
        for (i, seconds) in RETRY_SCHEDULE_SECONDS.iter().enumerate() {
            let attempts = i as i64 + 1;
            let low = retry_delay_millis(attempts, 0).unwrap();
            let high = retry_delay_millis(attempts, 2000).unwrap();
            let middle = retry_delay_millis(attempts, 1000).unwrap();
            assert_eq!(middle, seconds * 1000);
            assert_eq!(low, seconds * 900);
            assert_eq!(high, seconds * 1100);
        }
        assert_eq!(retry_delay_millis(8, 5), None);
    }

    #[test]
    fn only_2xx_succeeds_and_410_means_gone() {
        assert_eq!(judge(Some(204)), Verdict::Delivered);
        assert_eq!(judge(Some(410)), Verdict::Gone);
        for status in [Some(301), Some(404), Some(500), None] {
            assert_eq!(judge(status), Verdict::Failed);
        }
    }

    #[test]
    fn payloads_name_the_type_and_the_organization() {
        let body = payload(
            EventType::AgentCreated,
            "org-1",
            "2026-01-01T00:00:00.000Z",
            serde_json::json!({ "agent": { "id": "a" } }),
        );
        let parsed: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["type"], "agent.created");
        assert_eq!(parsed["data"]["org_id"], "org-1");
        assert_eq!(parsed["data"]["agent"]["id"], "a");
    }
}
