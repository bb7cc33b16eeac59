//! Rate limits in one place: which window a request counts against, the single admission round
//! trip (with revocation reads and usage metering folded in), and the failure policy. The HTTP side
//! (headers, extractors) lives in `http::limits`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::tiers::{Tier, Tiers};
use crate::config::{FailurePolicy, RateLimits};
use crate::ports::kv::{Admission, AdmissionOutcome, KeyValue, KvError, Window};
use crate::ports::runtime::{random_token, Clock, Entropy};
use crate::ports::sql::Database;
use crate::store::{kv_keys, orgs};

/// How long an organization's tier is trusted before it is read again. A tier change made through
/// this instance takes effect at once ([`Limiter::forget_tier`]); other instances see it within this.
const TIER_CACHE_MILLIS: i64 = 10_000;
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
        let reset_millis = (outcome.oldest_millis.saturating_add(window_millis) - now_millis)
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
    tiers: Tiers,
    kv: Arc<dyn KeyValue>,
    db: Arc<dyn Database>,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
    fail_open_total: AtomicU64,
    last_fail_open_millis: AtomicI64,
    tier_cache: Mutex<HashMap<String, (String, i64)>>,
}

impl Limiter {
    pub fn new(
        limits: RateLimits,
        tiers: Tiers,
        kv: Arc<dyn KeyValue>,
        db: Arc<dyn Database>,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn Entropy>,
    ) -> Self {
        Limiter {
            limits,
            tiers,
            kv,
            db,
            clock,
            entropy,
            fail_open_total: AtomicU64::new(0),
            last_fail_open_millis: AtomicI64::new(0),
            tier_cache: Mutex::new(HashMap::new()),
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
        let cache = self.tier_cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(org_id)
            .filter(|(_, at)| now - *at < TIER_CACHE_MILLIS)
            .map(|(tier, _)| tier.clone())
    }

    fn cache_tier(&self, org_id: &str, tier: String, now: i64) {
        let mut cache = self.tier_cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= TIER_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(org_id.to_owned(), (tier, now));
    }

    /// Drops the cached tier of an organization, so its next request reads the tier afresh.
    pub fn forget_tier(&self, org_id: &str) {
        let mut cache = self.tier_cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.remove(org_id);
    }

    /// The request limit of an organization's tier (`0` = unlimited).
    async fn organization_limit(&self, org_id: &str) -> u64 {
        let free = self.tiers.allowance(Tier::Free).requests_per_window;
        if !self.tiers.requests_vary() {
            return free;
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
                    // The request is authenticated already; the free tier's limit still applies.
                    tracing::warn!(error = %e, "reading an organization's tier failed");
                    return free;
                }
            },
        };
        self.tiers.of(&tier).requests_per_window
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
}
