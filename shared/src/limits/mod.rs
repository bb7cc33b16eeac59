//! Rate limits in one place: which window a request counts against, the single admission round
//! trip (with revocation reads and usage metering folded in), and the failure policy. The HTTP side
//! (headers, extractors) lives in `http::limits`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::{FailurePolicy, RateLimits};
use crate::ports::kv::{Admission, AdmissionOutcome, KeyValue, KvError, Window};
use crate::ports::runtime::{random_token, Clock, Entropy};
use crate::ports::sql::Database;
use crate::store::{kv_keys, orgs};

/// How long an organization's tier is trusted before it is read again.
const TIER_CACHE_MILLIS: i64 = 60_000;
const TIER_CACHE_ENTRIES: usize = 10_000;

/// Who a request counts against.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'a> {
    Organization(&'a str),
    Client(&'a str),
    Ip(&'a str),
}

impl Subject<'_> {
    fn key(&self) -> String {
        match self {
            Subject::Organization(org) => kv_keys::organization_window(org),
            Subject::Client(client) => kv_keys::client_window(client),
            Subject::Ip(ip) => kv_keys::ip_window(ip),
        }
    }
}

/// What an admitted request adds to its organization's monthly usage.
#[derive(Clone, Copy, Debug)]
pub enum Meter<'a> {
    Nothing,
    ApiCall { org_id: &'a str },
    TokenIssued { org_id: &'a str },
}

/// The outcome of one limit check, as the `RateLimit-*` headers report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the oldest counted request leaves the window (and one more is allowed).
    pub reset_seconds: u64,
    pub admitted: bool,
}

impl Decision {
    /// Derives the headers' figures from the window's state after this request.
    pub fn new(
        limit: u64,
        window_millis: i64,
        now_millis: i64,
        outcome: &AdmissionOutcome,
    ) -> Self {
        // The store's answer is not trusted to be sane: no oldest time may overflow the arithmetic.
        let reset_millis = (outcome.oldest_millis.saturating_add(window_millis))
            .saturating_sub(now_millis)
            .clamp(0, window_millis);
        // Rounded up: a client that waits `reset` seconds must find room, never one millisecond short.
        let reset_seconds = u64::try_from((reset_millis + 999) / 1000)
            .unwrap_or(0)
            .max(1);
        Decision {
            limit,
            remaining: limit.saturating_sub(outcome.in_window),
            reset_seconds,
            admitted: outcome.admitted,
        }
    }
}

/// Where a request's limit check leaves its decision, so the response carries the headers
/// whichever extractor or handler made the check.
#[derive(Clone, Debug, Default)]
pub struct DecisionSlot(Arc<Mutex<Option<Decision>>>);

impl DecisionSlot {
    fn set(&self, decision: Decision) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(decision);
    }

    pub fn take(&self) -> Option<Decision> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Why a request was not admitted.
#[derive(Debug)]
pub enum Refusal {
    Limited(Decision),
    /// The store failed and the configured policy for limits is to fail closed.
    Unavailable(KvError),
}

/// An admitted request: the values of the keys it asked to read, or why they are unknown (the
/// store failed and limits failed open; the caller's own policy decides what that means).
#[derive(Debug)]
pub struct Admitted {
    pub reads: Result<Vec<Option<String>>, KvError>,
}

/// Admits requests: the configured limits over the key-value store, with per-instance state (the
/// fail-open counts `/health/detailed` reports, and a cache of organizations' tiers).
pub struct Limiter {
    limits: RateLimits,
    kv: Arc<dyn KeyValue>,
    db: Arc<dyn Database>,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
    fail_open_total: AtomicU64,
    last_fail_open_millis: AtomicI64,
    tiers: Mutex<HashMap<String, (String, i64)>>,
}

impl Limiter {
    pub fn new(
        limits: RateLimits,
        kv: Arc<dyn KeyValue>,
        db: Arc<dyn Database>,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn Entropy>,
    ) -> Self {
        Limiter {
            limits,
            kv,
            db,
            clock,
            entropy,
            fail_open_total: AtomicU64::new(0),
            last_fail_open_millis: AtomicI64::new(0),
            tiers: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// `(requests admitted unchecked because the store failed, when that last happened)`.
    pub fn fail_open_stats(&self) -> (u64, Option<i64>) {
        let at = self.last_fail_open_millis.load(Ordering::Relaxed);
        (
            self.fail_open_total.load(Ordering::Relaxed),
            (at > 0).then_some(at),
        )
    }

    fn cached_tier(&self, org_id: &str, now: i64) -> Option<String> {
        let tiers = self.tiers.lock().unwrap_or_else(|p| p.into_inner());
        tiers
            .get(org_id)
            .filter(|(_, at)| now - *at < TIER_CACHE_MILLIS)
            .map(|(tier, _)| tier.clone())
    }

    fn cache_tier(&self, org_id: &str, tier: String, now: i64) {
        let mut tiers = self.tiers.lock().unwrap_or_else(|p| p.into_inner());
        if tiers.len() >= TIER_CACHE_ENTRIES {
            tiers.clear();
        }
        tiers.insert(org_id.to_owned(), (tier, now));
    }

    /// The limit for an organization: its tier's when tiers are configured, else the default.
    async fn organization_limit(&self, org_id: &str) -> u64 {
        if self.limits.tiers.is_empty() {
            return self.limits.organization;
        }
        let now = self.clock.now_millis();
        let tier = match self.cached_tier(org_id, now) {
            Some(tier) => tier,
            None => match orgs::tier(self.db.as_ref(), org_id).await {
                Ok(tier) => {
                    let tier = tier.unwrap_or_default();
                    self.cache_tier(org_id, tier.clone(), now);
                    tier
                }
                Err(e) => {
                    // The request is authenticated already; the default limit still applies.
                    tracing::warn!(error = %e, "reading an organization's tier failed");
                    return self.limits.organization;
                }
            },
        };
        self.limits.organization_limit(&tier)
    }

    async fn limit_for(&self, subject: Subject<'_>) -> u64 {
        match subject {
            Subject::Organization(org_id) => self.organization_limit(org_id).await,
            Subject::Client(_) => self.limits.client,
            Subject::Ip(_) => self.limits.ip,
        }
    }

    /// Counts one request against `subject`'s window, meters it, and reads `reads`, in one round
    /// trip. A limit of 0 skips the window; with nothing to count, meter or read, the store is not
    /// touched.
    pub async fn admit(
        &self,
        slot: &DecisionSlot,
        subject: Subject<'_>,
        meter: Meter<'_>,
        reads: Vec<String>,
    ) -> Result<Admitted, Refusal> {
        let limit = self.limit_for(subject).await;
        let now = self.clock.now_millis();
        let window_millis = self.limits.window_millis();
        let window = (limit > 0).then(|| Window {
            key: subject.key(),
            limit,
            window_millis,
        });
        let counters = match meter {
            Meter::Nothing => Vec::new(),
            Meter::ApiCall { org_id } => vec![kv_keys::api_calls(org_id, now)],
            Meter::TokenIssued { org_id } => vec![kv_keys::tokens_issued(org_id, now)],
        };
        if window.is_none() && counters.is_empty() && reads.is_empty() {
            return Ok(Admitted {
                reads: Ok(Vec::new()),
            });
        }
        let admission = Admission {
            window,
            reads,
            counters,
            counter_ttl_seconds: kv_keys::USAGE_COUNTER_TTL_SECONDS,
            now_millis: now,
            hit_id: format!("{now}-{}", random_token::<9>(self.entropy.as_ref())),
        };
        match self.kv.admit(&admission).await {
            Ok(outcome) => {
                if limit > 0 {
                    let decision = Decision::new(limit, window_millis, now, &outcome);
                    slot.set(decision);
                    if !decision.admitted {
                        return Err(Refusal::Limited(decision));
                    }
                }
                Ok(Admitted {
                    reads: Ok(outcome.values),
                })
            }
            Err(e) if limit > 0 && self.limits.on_kv_failure == FailurePolicy::Closed => {
                Err(Refusal::Unavailable(e))
            }
            Err(e) => {
                if limit > 0 {
                    self.fail_open_total.fetch_add(1, Ordering::Relaxed);
                    self.last_fail_open_millis.store(now, Ordering::Relaxed);
                    tracing::warn!(error = %e, "rate limit store failed; admitting unchecked (fail open)");
                }
                Ok(Admitted { reads: Err(e) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(admitted: bool, in_window: u64, oldest_millis: i64) -> AdmissionOutcome {
        AdmissionOutcome {
            admitted,
            in_window,
            oldest_millis,
            values: Vec::new(),
        }
    }

    #[test]
    fn headers_count_down_and_reset_when_the_oldest_request_leaves() {
        let first = Decision::new(2, 60_000, 1_000, &outcome(true, 1, 1_000));
        assert_eq!((first.remaining, first.reset_seconds), (1, 60));
        let second = Decision::new(2, 60_000, 30_500, &outcome(true, 2, 1_000));
        assert_eq!((second.remaining, second.reset_seconds), (0, 31));
        let third = Decision::new(2, 60_000, 30_600, &outcome(false, 2, 1_000));
        assert!(!third.admitted);
        // 30.4 s until the request at 1.0 s leaves: rounded up so waiting that long suffices.
        assert_eq!((third.remaining, third.reset_seconds), (0, 31));
    }

    /// Found by fuzzing the Upstash reply decoder (fuzz/corpus/upstash_response/
    /// admission_extreme_oldest): an absurd `oldest` from the store overflowed in debug builds.
    #[test]
    fn any_oldest_time_from_the_store_gives_a_bounded_reset() {
        for oldest in [i64::MIN, -1, 0, i64::MAX] {
            let decision = Decision::new(2, 60_000, 1_800_000_000_000, &outcome(true, 1, oldest));
            assert!(
                (1..=60).contains(&decision.reset_seconds),
                "{oldest}: {decision:?}"
            );
        }
    }
}
