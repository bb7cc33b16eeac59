//! Rate limits in one place: which window a request counts against, the single admission round
//! trip (with revocation reads and usage metering folded in), the failure policy, and the headers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::config::{int_in, ConfigError, ConfigSource, FailurePolicy};
use crate::error::{ApiError, OAuthError};
use crate::http::ClientIp;
use crate::kv::{Admission, KvError, Window};
use crate::runtime::random_token;
use crate::sql::{query_one, Statement};
use crate::state::AppState;
use crate::usage;

pub const PER_MINUTE: &str = "RATE_LIMIT_PER_MINUTE";
pub const TIERS: &str = "AGENTIDP_RATE_LIMIT_TIERS";
pub const CLIENT_PER_MINUTE: &str = "AGENTIDP_RATE_LIMIT_CLIENT_PER_MINUTE";
pub const IP_PER_MINUTE: &str = "AGENTIDP_RATE_LIMIT_IP_PER_MINUTE";
pub const WINDOW_SECONDS: &str = "AGENTIDP_RATE_LIMIT_WINDOW_SECONDS";
pub const ON_KV_FAILURE: &str = "AGENTIDP_RATE_LIMIT_ON_KV_FAILURE";

/// Largest configurable limit; `0` means unlimited.
const MAX_LIMIT: i64 = 100_000_000;
/// How long an organization's tier is trusted before it is read again.
const TIER_CACHE_MILLIS: i64 = 60_000;
const TIER_CACHE_ENTRIES: usize = 10_000;
/// Longest client address kept in a key: enough for IPv6, bounded for odd platform headers.
const MAX_IP_CHARS: usize = 64;

/// The configured limits. Each count is per window (one minute unless configured otherwise).
#[derive(Clone, Debug)]
pub struct RateLimits {
    pub window_seconds: i64,
    /// Per organization on authenticated `/v1/*`, for tiers not listed in `tiers`; 0 = unlimited.
    pub organization: u64,
    /// Per-organization limit by `orgs.tier`.
    pub tiers: Vec<(String, u64)>,
    /// Per client on `/oauth2/token`, `/oauth2/introspect` and `/oauth2/revoke`.
    pub client: u64,
    /// Per client IP on unauthenticated endpoints and failed client authentications.
    pub ip: u64,
    pub on_kv_failure: FailurePolicy,
}

impl RateLimits {
    pub fn load(source: &dyn ConfigSource) -> Result<Self, ConfigError> {
        let limit = |variable, default| int_in(source, variable, default, 0..=MAX_LIMIT);
        Ok(RateLimits {
            window_seconds: int_in(source, WINDOW_SECONDS, 60, 1..=3600)?,
            organization: limit(PER_MINUTE, 100)?.unsigned_abs(),
            tiers: parse_tiers(source.get(TIERS).as_deref().unwrap_or(""))?,
            client: limit(CLIENT_PER_MINUTE, 600)?.unsigned_abs(),
            ip: limit(IP_PER_MINUTE, 60)?.unsigned_abs(),
            on_kv_failure: FailurePolicy::load(source, ON_KV_FAILURE, FailurePolicy::Open)?,
        })
    }

    fn window_millis(&self) -> i64 {
        self.window_seconds * 1000
    }
}

/// `free=100,pro=1000,enterprise=0`: tier names as stored in `orgs.tier`, limits per window.
fn parse_tiers(raw: &str) -> Result<Vec<(String, u64)>, ConfigError> {
    let invalid = |reason: String| ConfigError {
        variable: TIERS,
        reason,
    };
    let mut tiers: Vec<(String, u64)> = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, limit) = entry
            .split_once('=')
            .ok_or_else(|| invalid(format!("`{entry}` is not TIER=LIMIT")))?;
        let name = name.trim();
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            return Err(invalid(format!("`{name}` is not a tier name")));
        }
        let limit = limit
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|l| *l <= MAX_LIMIT.unsigned_abs())
            .ok_or_else(|| {
                invalid(format!(
                    "the limit of tier `{name}` is not an integer from 0 to {MAX_LIMIT}"
                ))
            })?;
        if tiers.iter().any(|(n, _)| n == name) {
            return Err(invalid(format!("tier `{name}` is listed twice")));
        }
        tiers.push((name.to_owned(), limit));
    }
    Ok(tiers)
}

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
            Subject::Organization(org) => format!("ratelimit:org:{org}"),
            Subject::Client(client) => format!("ratelimit:client:{client}"),
            Subject::Ip(ip) => {
                let ip: String = ip.chars().take(MAX_IP_CHARS).collect();
                format!("ratelimit:ip:{ip}")
            }
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
        outcome: &crate::kv::AdmissionOutcome,
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

    /// `RateLimit-Limit`, `-Remaining`, `-Reset`, and `Retry-After` when refused.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let mut put = |name: &'static str, value: u64| {
            headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
        };
        put("ratelimit-limit", self.limit);
        put("ratelimit-remaining", self.remaining);
        put("ratelimit-reset", self.reset_seconds);
        if !self.admitted {
            put("retry-after", self.reset_seconds);
        }
    }
}

/// Where a request's limit check leaves its decision, so the response carries the headers
/// whichever extractor or handler made the check.
#[derive(Clone, Default)]
pub struct DecisionSlot(Arc<Mutex<Option<Decision>>>);

impl DecisionSlot {
    fn set(&self, decision: Decision) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(decision);
    }

    fn take(&self) -> Option<Decision> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// The request's slot; a detached one (headers lost, limits still enforced) without the layer.
    pub fn of(parts: &Parts) -> Self {
        parts
            .extensions
            .get::<DecisionSlot>()
            .cloned()
            .unwrap_or_default()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for DecisionSlot {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(DecisionSlot::of(parts))
    }
}

/// Middleware every function app runs: gives the request a slot, then writes its decision out.
pub async fn headers_layer(mut request: Request, next: Next) -> Response {
    let slot = DecisionSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    if let Some(decision) = slot.take() {
        decision.write_headers(response.headers_mut());
    }
    response
}

/// Why a request was not admitted.
#[derive(Debug)]
pub enum Refusal {
    Limited(Decision),
    /// The store failed and the configured policy for limits is to fail closed.
    Unavailable(KvError),
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Limited(decision) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "too many requests: at most {} per window; retry in {} s",
                    decision.limit, decision.reset_seconds
                ),
            ),
            Refusal::Unavailable(e) => ApiError::unavailable(e),
        }
    }
}

impl From<Refusal> for OAuthError {
    /// RFC 6749 defines no rate-limit error; `slow_down` is the registered token-endpoint error
    /// meaning exactly this (RFC 8628 §3.5), and leaves `temporarily_unavailable` to mean "down".
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Limited(decision) => OAuthError::slow_down(format!(
                "too many requests for this client; retry in {} s",
                decision.reset_seconds
            )),
            Refusal::Unavailable(e) => OAuthError::temporarily_unavailable(e),
        }
    }
}

/// An admitted request: the values of the keys it asked to read, or why they are unknown (the
/// store failed and limits failed open; the caller's own policy decides what that means).
#[derive(Debug)]
pub struct Admitted {
    pub reads: Result<Vec<Option<String>>, KvError>,
}

/// Per-instance limiter state: fail-open counts for `/health/detailed` and the tier cache.
#[derive(Default)]
pub struct Limiter {
    fail_open_total: AtomicU64,
    last_fail_open_millis: AtomicI64,
    tiers: Mutex<HashMap<String, (String, i64)>>,
}

impl Limiter {
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
}

/// The limit for an organization: its tier's when tiers are configured, else the default.
async fn organization_limit(state: &AppState, org_id: &str) -> u64 {
    let limits = &state.config.rate_limits;
    if limits.tiers.is_empty() {
        return limits.organization;
    }
    let now = state.now_millis();
    let tier = match state.limiter.cached_tier(org_id, now) {
        Some(tier) => tier,
        None => {
            let statement = Statement::new("SELECT tier FROM orgs WHERE id = ?1").bind(org_id);
            match query_one(state.db.as_ref(), statement).await {
                Ok(row) => {
                    let tier: String = row
                        .and_then(|r| r.get::<String>("tier").ok())
                        .unwrap_or_default();
                    state.limiter.cache_tier(org_id, tier.clone(), now);
                    tier
                }
                Err(e) => {
                    // The request is authenticated already; the default limit still applies.
                    tracing::warn!(error = %e, "reading an organization's tier failed");
                    return limits.organization;
                }
            }
        }
    };
    limits
        .tiers
        .iter()
        .find(|(name, _)| *name == tier)
        .map_or(limits.organization, |(_, limit)| *limit)
}

async fn limit_for(state: &AppState, subject: Subject<'_>) -> u64 {
    let limits = &state.config.rate_limits;
    match subject {
        Subject::Organization(org_id) => organization_limit(state, org_id).await,
        Subject::Client(_) => limits.client,
        Subject::Ip(_) => limits.ip,
    }
}

/// Counts one request against `subject`'s window, meters it, and reads `reads`, in one round trip.
/// A limit of 0 skips the window; with nothing to count, meter or read, the store is not touched.
pub async fn admit(
    state: &AppState,
    slot: &DecisionSlot,
    subject: Subject<'_>,
    meter: Meter<'_>,
    reads: Vec<String>,
) -> Result<Admitted, Refusal> {
    let limits = &state.config.rate_limits;
    let limit = limit_for(state, subject).await;
    let now = state.now_millis();
    let window = (limit > 0).then(|| Window {
        key: subject.key(),
        limit,
        window_millis: limits.window_millis(),
    });
    let counters = match meter {
        Meter::Nothing => Vec::new(),
        Meter::ApiCall { org_id } => vec![usage::api_calls_key(org_id, now)],
        Meter::TokenIssued { org_id } => vec![usage::tokens_issued_key(org_id, now)],
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
        counter_ttl_seconds: usage::COUNTER_TTL_SECONDS,
        now_millis: now,
        hit_id: format!("{now}-{}", random_token::<9>(state.entropy.as_ref())),
    };
    match state.kv.admit(&admission).await {
        Ok(outcome) => {
            if limit > 0 {
                let decision = Decision::new(limit, limits.window_millis(), now, &outcome);
                slot.set(decision);
                if !decision.admitted {
                    return Err(Refusal::Limited(decision));
                }
            }
            Ok(Admitted {
                reads: Ok(outcome.values),
            })
        }
        Err(e) if limit > 0 && limits.on_kv_failure == FailurePolicy::Closed => {
            Err(Refusal::Unavailable(e))
        }
        Err(e) => {
            if limit > 0 {
                state
                    .limiter
                    .fail_open_total
                    .fetch_add(1, Ordering::Relaxed);
                state
                    .limiter
                    .last_fail_open_millis
                    .store(now, Ordering::Relaxed);
                tracing::warn!(error = %e, "rate limit store failed; admitting unchecked (fail open)");
            }
            Ok(Admitted { reads: Err(e) })
        }
    }
}

/// Counts a request against its client IP, for endpoints no credential protects.
pub struct IpLimited;

impl FromRequestParts<AppState> for IpLimited {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = ip_of(parts);
        let slot = DecisionSlot::of(parts);
        admit(state, &slot, Subject::Ip(&ip), Meter::Nothing, Vec::new()).await?;
        Ok(IpLimited)
    }
}

/// The client address the platform recorded, or one shared bucket when it recorded none.
pub fn ip_of(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ClientIp>()
        .map_or_else(|| "unknown".to_owned(), |ip| ip.0.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{Admission, AdmissionOutcome, KeyValue, MemoryKv};
    use crate::runtime::Clock;

    /// A clock the test moves by hand.
    #[derive(Default)]
    struct PinnedClock(AtomicI64);

    impl Clock for PinnedClock {
        fn now_millis(&self) -> i64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    struct Harness {
        clock: Arc<PinnedClock>,
        kv: MemoryKv,
        hits: u64,
    }

    impl Harness {
        fn new(start: i64) -> Self {
            let clock = Arc::new(PinnedClock(AtomicI64::new(start)));
            Harness {
                kv: MemoryKv::new(clock.clone()),
                clock,
                hits: 0,
            }
        }

        fn at(&mut self, millis: i64) -> &mut Self {
            self.clock.0.store(millis, Ordering::SeqCst);
            self
        }

        async fn hit(&mut self, limit: u64, window_millis: i64) -> AdmissionOutcome {
            self.hits += 1;
            let admission = Admission {
                window: Some(Window {
                    key: "ratelimit:org:o".into(),
                    limit,
                    window_millis,
                }),
                reads: vec!["revoked:jti:x".into()],
                counters: vec!["usage:o:calls".into()],
                counter_ttl_seconds: 60,
                now_millis: self.clock.now_millis(),
                hit_id: format!("h{}", self.hits),
            };
            self.kv.admit(&admission).await.unwrap()
        }
    }

    #[tokio::test]
    async fn the_limit_is_reached_exactly_at_n() {
        let mut h = Harness::new(1_000_000);
        for n in 1..=5 {
            let outcome = h.hit(5, 60_000).await;
            assert!(outcome.admitted);
            assert_eq!(outcome.in_window, n);
        }
        let sixth = h.hit(5, 60_000).await;
        assert!(!sixth.admitted);
        assert_eq!(sixth.in_window, 5);
        // Only admitted requests are metered.
        let counted = h.kv.get_many(&["usage:o:calls".into()]).await.unwrap();
        assert_eq!(counted, vec![Some("5".to_owned())]);
    }

    #[tokio::test]
    async fn a_window_boundary_cannot_be_doubled() {
        // Five requests at the end of one minute, five more just after the minute turns: a fixed
        // window would admit all ten; the sliding window admits none of the second five.
        let mut h = Harness::new(0);
        for _ in 0..5 {
            assert!(h.at(59_900).hit(5, 60_000).await.admitted);
        }
        for t in [60_000, 60_100, 119_899] {
            assert!(!h.at(t).hit(5, 60_000).await.admitted, "admitted at {t}");
        }
        // Exactly one window after the first hits they leave, all at once.
        for _ in 0..5 {
            assert!(h.at(119_900).hit(5, 60_000).await.admitted);
        }
        assert!(!h.at(119_900).hit(5, 60_000).await.admitted);
    }

    #[tokio::test]
    async fn requests_leave_the_window_one_by_one() {
        let mut h = Harness::new(0);
        for t in [0, 10_000, 20_000] {
            assert!(h.at(t).hit(3, 60_000).await.admitted);
        }
        assert!(!h.at(59_999).hit(3, 60_000).await.admitted);
        assert!(h.at(60_000).hit(3, 60_000).await.admitted);
        assert!(!h.at(60_001).hit(3, 60_000).await.admitted);
        assert!(h.at(70_000).hit(3, 60_000).await.admitted);
    }

    #[tokio::test]
    async fn headers_count_down_and_reset_when_the_oldest_request_leaves() {
        let mut h = Harness::new(0);
        let first = h.at(1_000).hit(2, 60_000).await;
        let decision = Decision::new(2, 60_000, 1_000, &first);
        assert_eq!((decision.remaining, decision.reset_seconds), (1, 60));
        let second = h.at(30_500).hit(2, 60_000).await;
        let decision = Decision::new(2, 60_000, 30_500, &second);
        assert_eq!((decision.remaining, decision.reset_seconds), (0, 31));
        let third = h.at(30_600).hit(2, 60_000).await;
        let decision = Decision::new(2, 60_000, 30_600, &third);
        assert!(!decision.admitted);
        // 30.4 s until the request at 1.0 s leaves: rounded up so waiting that long suffices.
        assert_eq!((decision.remaining, decision.reset_seconds), (0, 31));
        let mut headers = HeaderMap::new();
        decision.write_headers(&mut headers);
        assert_eq!(headers["ratelimit-limit"], "2");
        assert_eq!(headers["ratelimit-remaining"], "0");
        assert_eq!(headers["retry-after"], "31");
    }

    #[tokio::test]
    async fn reads_are_answered_in_the_same_admission() {
        let mut h = Harness::new(5_000);
        h.kv.set("revoked:jti:x", "1", 60).await.unwrap();
        assert_eq!(h.hit(1, 1_000).await.values, vec![Some("1".to_owned())]);
        // Refused requests still read, so revocation is judged either way.
        let refused = h.hit(1, 1_000).await;
        assert!(!refused.admitted);
        assert_eq!(refused.values, vec![Some("1".to_owned())]);
    }

    #[test]
    fn tiers_parse_and_errors_name_the_variable() {
        assert_eq!(
            parse_tiers(" free=100, pro=1000 ,enterprise=0").unwrap(),
            vec![
                ("free".to_owned(), 100),
                ("pro".to_owned(), 1000),
                ("enterprise".to_owned(), 0)
            ]
        );
        assert!(parse_tiers("").unwrap().is_empty());
        for bad in ["free", "free=lots", "=5", "free=1,free=2", "free=-1"] {
            assert_eq!(parse_tiers(bad).unwrap_err().variable, TIERS, "{bad}");
        }
        let source = |name: &str| (name == PER_MINUTE).then(|| "many".to_owned());
        assert_eq!(RateLimits::load(&source).unwrap_err().variable, PER_MINUTE);
        let source = |name: &str| (name == ON_KV_FAILURE).then(|| "ajar".to_owned());
        assert_eq!(
            RateLimits::load(&source).unwrap_err().variable,
            ON_KV_FAILURE
        );
    }
}
