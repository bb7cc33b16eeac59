//! Rate limits in one place: which window a request counts against, the single admission round
//! trip (with revocation reads and usage metering folded in), and the failure policy. The HTTP side
//! (headers, extractors) lives in `http::limits`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use crate::config::tiers::{Tier, Tiers};
use crate::config::{FailurePolicy, RateLimits};
use crate::domain::auth_failures::period_start;
use crate::ports::kv::{Admission, KeyValue, KvError, Window, WindowState};
use crate::ports::metrics;
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
    /// The organization's `/v1/*` calls.
    Organization(&'a str),
    /// One client's own `/v1/*` calls within its organization: an agent's share of the
    /// organization's limit, or the whole of it for an admin credential.
    OrganizationClient {
        org_id: &'a str,
        client_id: &'a str,
        is_agent: bool,
    },
    /// A client's `/oauth2/*` calls.
    Client(&'a str),
    /// An address's unauthenticated calls.
    Ip(&'a str),
    /// An address's failed client authentications.
    FailedFromIp(&'a str),
    /// A client's failed authentications, from every address.
    FailedAsClient(&'a str),
}

impl Subject<'_> {
    /// Which limit this is, as metrics label it.
    pub fn limit_name(&self) -> &'static str {
        match self {
            Subject::Organization(_) => "organization",
            Subject::OrganizationClient { is_agent: true, .. } => "agent",
            Subject::OrganizationClient {
                is_agent: false, ..
            } => "admin_client",
            Subject::Client(_) => "client",
            Subject::Ip(_) => "ip",
            Subject::FailedFromIp(_) => "failed_authentication_ip",
            Subject::FailedAsClient(_) => "failed_authentication_client",
        }
    }

    fn key(&self, ipv6_prefix: u8) -> String {
        match self {
            Subject::Organization(org) => kv_keys::organization_window(org),
            Subject::OrganizationClient {
                org_id, client_id, ..
            } => kv_keys::organization_client_window(org_id, client_id),
            Subject::Client(client) => kv_keys::client_window(client),
            Subject::Ip(ip) => kv_keys::ip_window(&address_block(ip, ipv6_prefix)),
            Subject::FailedFromIp(ip) => {
                kv_keys::ip_failures_window(&address_block(ip, ipv6_prefix))
            }
            Subject::FailedAsClient(client) => kv_keys::client_failures_window(client),
        }
    }
}

/// What a per-address limit counts: an IPv4 address as itself, an IPv6 address by its network of
/// `ipv6_prefix` bits (one host, or one customer of a provider, is given a whole /64), and anything
/// unparsable as it is. IPv4-mapped IPv6 addresses count as their IPv4 address.
pub fn address_block(address: &str, ipv6_prefix: u8) -> String {
    let bare = address.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let length = u32::from(ipv6_prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - length).unwrap_or(0);
                format!("{}/{length}", Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
        Err(_) => address.to_owned(),
    }
}

/// What an admitted request adds to a counter: its organization's monthly usage, or a client's
/// tally of failed authentications (whose value before this one the admission reads back).
#[derive(Clone, Copy, Debug)]
pub enum Meter<'a> {
    Nothing,
    ApiCall { org_id: &'a str },
    TokenIssued { org_id: &'a str },
    FailedAuthentication { client_id: &'a str },
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
    /// Derives the headers' figures from a window's state after this request.
    pub fn new(
        limit: u64,
        window_millis: i64,
        now_millis: i64,
        admitted: bool,
        state: &WindowState,
    ) -> Self {
        // The store's answer is not trusted to be sane: no oldest time may overflow the arithmetic.
        let reset_millis = (state.oldest_millis.saturating_add(window_millis))
            .saturating_sub(now_millis)
            .clamp(0, window_millis);
        // Rounded up: a client that waits `reset` seconds must find room, never one millisecond short.
        let reset_seconds = u64::try_from((reset_millis + 999) / 1000)
            .unwrap_or(0)
            .max(1);
        Decision {
            limit,
            remaining: limit.saturating_sub(state.in_window),
            reset_seconds,
            admitted,
        }
    }

    /// The decision the headers report when a request counts against several windows: a full
    /// window when refused (the one that frees up last, so waiting `Retry-After` suffices),
    /// else the one with the least room left.
    fn binding(decisions: impl IntoIterator<Item = Decision>) -> Option<Decision> {
        decisions.into_iter().reduce(|a, b| {
            let key = |d: &Decision| (d.remaining == 0, u64::MAX - d.remaining, d.reset_seconds);
            if key(&b) > key(&a) {
                b
            } else {
                a
            }
        })
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

/// One window's state, looked at without counting ([`Limiter::peek`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peeked {
    pub decision: Decision,
    /// Hits in the window now.
    pub in_window: u64,
}

impl Peeked {
    pub fn is_full(&self) -> bool {
        !self.decision.admitted
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
    /// For [`Meter::FailedAuthentication`], the client's tally including this failure, when the
    /// store answered.
    pub tally: Option<Tally>,
}

/// A client's failed authentications in one tally period, counted atomically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    /// Failures this period, this one included.
    pub count: u64,
    pub period_start_millis: i64,
    /// When this failure was counted.
    pub at_millis: i64,
}

/// Admits requests: the configured limits over the key-value store, with per-instance state (a
/// cache of organizations' tiers).
pub struct Limiter {
    limits: RateLimits,
    tiers: Tiers,
    kv: Arc<dyn KeyValue>,
    db: Arc<dyn Database>,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
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
            tier_cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> &RateLimits {
        &self.limits
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
            Subject::OrganizationClient {
                org_id, is_agent, ..
            } => {
                let limit = self.organization_limit(org_id).await;
                if is_agent {
                    self.limits.agent_share(limit)
                } else {
                    limit
                }
            }
            Subject::Client(_) => self.limits.client,
            Subject::Ip(_) | Subject::FailedFromIp(_) => self.limits.ip,
            Subject::FailedAsClient(_) => self.limits.client_failures,
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
        self.admit_all(slot, &[subject], meter, reads).await
    }

    /// Like [`Limiter::admit`], against several windows at once: admitted only when every one has
    /// room, and then counted in every one.
    pub async fn admit_all(
        &self,
        slot: &DecisionSlot,
        subjects: &[Subject<'_>],
        meter: Meter<'_>,
        reads: Vec<String>,
    ) -> Result<Admitted, Refusal> {
        self.run(slot, subjects, meter, reads, None).await
    }

    /// The windows of the subjects whose limit is on, with each one's position in `subjects`.
    async fn windows_of(&self, subjects: &[Subject<'_>]) -> Vec<(usize, Window)> {
        let mut windows = Vec::with_capacity(subjects.len());
        for (position, subject) in subjects.iter().enumerate() {
            let limit = self.limit_for(*subject).await;
            if limit > 0 {
                windows.push((
                    position,
                    Window {
                        key: subject.key(self.limits.ipv6_prefix),
                        limit,
                        window_millis: self.limits.window_millis(),
                    },
                ));
            }
        }
        windows
    }

    /// Each window's state without counting anything (`None` for a limit that is off, or when the
    /// store failed and limits fail open): for checks that depend on more than "is there room",
    /// such as whether an address has been failing. Refusing on what it shows is
    /// [`Limiter::record_refusal`].
    pub async fn peek(&self, subjects: &[Subject<'_>]) -> Result<Vec<Option<Peeked>>, Refusal> {
        let now = self.clock.now_millis();
        let window_millis = self.limits.window_millis();
        let (positions, windows): (Vec<usize>, Vec<Window>) =
            self.windows_of(subjects).await.into_iter().unzip();
        let mut peeked = vec![None; subjects.len()];
        if windows.is_empty() {
            return Ok(peeked);
        }
        let admission = Admission {
            windows,
            peek: true,
            reads: Vec::new(),
            unless_revoked: None,
            counters: Vec::new(),
            counter_ttl_seconds: kv_keys::USAGE_COUNTER_TTL_SECONDS,
            now_millis: now,
            hit_id: format!("{now}-{}", random_token::<9>(self.entropy.as_ref())),
        };
        match self.kv.admit(&admission).await {
            Ok(outcome) => {
                for ((window, state), position) in admission
                    .windows
                    .iter()
                    .zip(&outcome.windows)
                    .zip(positions)
                {
                    let full = state.in_window >= window.limit;
                    peeked[position] = Some(Peeked {
                        decision: Decision::new(window.limit, window_millis, now, !full, state),
                        in_window: state.in_window,
                    });
                }
                Ok(peeked)
            }
            Err(e) if self.limits.on_kv_failure == FailurePolicy::Closed => {
                Err(Refusal::Unavailable(e))
            }
            Err(e) => {
                metrics::record(metrics::Event::RateLimitFailedOpen);
                tracing::warn!(error = %e, "rate limit store failed; admitting unchecked (fail open)");
                Ok(peeked)
            }
        }
    }

    /// Records a refusal by `subject`'s peeked window: its decision goes to the response's
    /// headers (`Retry-After` included) and the refusal to the metrics.
    pub fn record_refusal(&self, slot: &DecisionSlot, subject: Subject<'_>, peeked: Peeked) {
        slot.set(peeked.decision);
        metrics::record(metrics::Event::RateLimited {
            limit: subject.limit_name(),
        });
    }

    /// Like [`Limiter::admit_all`], for a call made with an access token whose revocation entries
    /// `revocation_keys` are (its `jti`'s, its subject's): read in the same round trip, and when
    /// they revoke the token (issued at `issued_at`, Unix seconds) nothing is counted or metered,
    /// so a revoked token's calls spend no one's budget. The caller judges the reads as usual.
    pub async fn admit_unless_revoked(
        &self,
        slot: &DecisionSlot,
        subjects: &[Subject<'_>],
        meter: Meter<'_>,
        revocation_keys: Vec<String>,
        issued_at: i64,
    ) -> Result<Admitted, Refusal> {
        self.run(slot, subjects, meter, revocation_keys, Some(issued_at))
            .await
    }

    async fn run(
        &self,
        slot: &DecisionSlot,
        subjects: &[Subject<'_>],
        meter: Meter<'_>,
        reads: Vec<String>,
        unless_revoked: Option<i64>,
    ) -> Result<Admitted, Refusal> {
        let now = self.clock.now_millis();
        let window_millis = self.limits.window_millis();
        let (names, windows): (Vec<&str>, Vec<Window>) = self
            .windows_of(subjects)
            .await
            .into_iter()
            .map(|(position, window)| (subjects[position].limit_name(), window))
            .unzip();
        let (counters, counter_ttl_seconds) = match meter {
            Meter::Nothing => (Vec::new(), kv_keys::USAGE_COUNTER_TTL_SECONDS),
            Meter::ApiCall { org_id } => (
                vec![kv_keys::api_calls(org_id, now)],
                kv_keys::USAGE_COUNTER_TTL_SECONDS,
            ),
            Meter::TokenIssued { org_id } => (
                vec![kv_keys::tokens_issued(org_id, now)],
                kv_keys::USAGE_COUNTER_TTL_SECONDS,
            ),
            Meter::FailedAuthentication { client_id } => (
                vec![kv_keys::failure_tally(client_id, period_start(now))],
                kv_keys::FAILURE_TALLY_TTL_SECONDS,
            ),
        };
        if windows.is_empty() && counters.is_empty() && reads.is_empty() {
            return Ok(Admitted {
                reads: Ok(Vec::new()),
                tally: None,
            });
        }
        // The tally's value before this failure, read in the same atomic step that counts it.
        let tallied = matches!(meter, Meter::FailedAuthentication { .. });
        let mut reads = reads;
        if tallied {
            reads.extend(counters.first().cloned());
        }
        let limited = !windows.is_empty();
        let admission = Admission {
            windows,
            peek: false,
            reads,
            unless_revoked,
            counters,
            counter_ttl_seconds,
            now_millis: now,
            hit_id: format!("{now}-{}", random_token::<9>(self.entropy.as_ref())),
        };
        match self.kv.admit(&admission).await {
            Ok(outcome) => {
                let decisions = admission
                    .windows
                    .iter()
                    .zip(&outcome.windows)
                    .map(|(w, state)| {
                        Decision::new(w.limit, window_millis, now, outcome.admitted, state)
                    });
                if let Some(decision) = Decision::binding(decisions) {
                    slot.set(decision);
                    if !outcome.admitted {
                        // Labelled by the first full window: the one that refused.
                        let full = names
                            .iter()
                            .zip(&admission.windows)
                            .zip(&outcome.windows)
                            .find(|((_, w), state)| state.in_window >= w.limit)
                            .map(|((name, _), _)| *name);
                        if let Some(limit) = full.or(names.first().copied()) {
                            metrics::record(metrics::Event::RateLimited { limit });
                        }
                        return Err(Refusal::Limited(decision));
                    }
                }
                let mut values = outcome.values;
                let tally = if tallied {
                    let before = values.pop().flatten().and_then(|v| v.parse::<u64>().ok());
                    Some(Tally {
                        count: before.unwrap_or(0) + 1,
                        period_start_millis: period_start(now),
                        at_millis: now,
                    })
                } else {
                    None
                };
                Ok(Admitted {
                    reads: Ok(values),
                    tally,
                })
            }
            Err(e) if limited && self.limits.on_kv_failure == FailurePolicy::Closed => {
                Err(Refusal::Unavailable(e))
            }
            Err(e) => {
                if limited {
                    metrics::record(metrics::Event::RateLimitFailedOpen);
                    tracing::warn!(error = %e, "rate limit store failed; admitting unchecked (fail open)");
                }
                Ok(Admitted {
                    reads: Err(e),
                    tally: None,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_host_counts_as_its_network_and_an_ipv4_one_as_itself() {
        let key = |subject: Subject<'_>, prefix| subject.key(prefix);
        // One /64: sign-up and failure budgets alike are shared by its 2^64 addresses, whichever
        // form the platform gives (Spin's `[addr]`, an uncompressed form).
        for (a, b) in [
            ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe"),
            ("2001:db8:1:2::1", "[2001:db8:1:2:0:0:0:9]"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
        ] {
            assert_eq!(key(Subject::Ip(a), 64), key(Subject::Ip(b), 64), "{a} {b}");
            assert_eq!(
                key(Subject::FailedFromIp(a), 64),
                key(Subject::FailedFromIp(b), 64),
                "{a} {b}"
            );
        }
        for (a, b, prefix) in [
            ("2001:db8:1:2::1", "2001:db8:1:3::1", 64),
            ("2001:db8:1:2::1", "2001:db8:1:2::2", 128),
            ("192.0.2.7", "192.0.2.8", 64),
        ] {
            assert_ne!(key(Subject::Ip(a), prefix), key(Subject::Ip(b), prefix));
        }
        assert_eq!(
            key(Subject::Ip("2001:db8:1:2::1"), 48),
            key(Subject::Ip("2001:db8:1:ffff::1"), 48)
        );
        assert_eq!(
            address_block("2001:db8:1:2:3:4:5:6", 64),
            "2001:db8:1:2::/64"
        );
        assert_eq!(address_block("unknown", 64), "unknown");
    }

    fn state(in_window: u64, oldest_millis: i64) -> WindowState {
        WindowState {
            in_window,
            oldest_millis,
        }
    }

    #[test]
    fn headers_count_down_and_reset_when_the_oldest_request_leaves() {
        let first = Decision::new(2, 60_000, 1_000, true, &state(1, 1_000));
        assert_eq!((first.remaining, first.reset_seconds), (1, 60));
        let second = Decision::new(2, 60_000, 30_500, true, &state(2, 1_000));
        assert_eq!((second.remaining, second.reset_seconds), (0, 31));
        let third = Decision::new(2, 60_000, 30_600, false, &state(2, 1_000));
        assert!(!third.admitted);
        // 30.4 s until the request at 1.0 s leaves: rounded up so waiting that long suffices.
        assert_eq!((third.remaining, third.reset_seconds), (0, 31));
    }

    #[test]
    fn several_windows_report_the_one_that_binds() {
        let roomy = Decision::new(10, 60_000, 1_000, true, &state(3, 1_000));
        let tight = Decision::new(4, 60_000, 1_000, true, &state(3, 1_000));
        assert_eq!(Decision::binding([roomy, tight]), Some(tight));
        let full_soon = Decision::new(2, 60_000, 50_000, false, &state(2, 1_000));
        let full_later = Decision::new(3, 60_000, 50_000, false, &state(3, 40_000));
        let refused = Decision::binding([roomy, full_soon, full_later]).unwrap();
        assert_eq!((refused.limit, refused.reset_seconds), (3, 50));
        assert_eq!(Decision::binding([]), None);
    }

    /// Found by fuzzing the Upstash reply decoder (fuzz/corpus/upstash_response/
    /// admission_extreme_oldest): an absurd `oldest` from the store overflowed in debug builds.
    #[test]
    fn any_oldest_time_from_the_store_gives_a_bounded_reset() {
        for oldest in [i64::MIN, -1, 0, i64::MAX] {
            let decision = Decision::new(2, 60_000, 1_800_000_000_000, true, &state(1, oldest));
            assert!(
                (1..=60).contains(&decision.reset_seconds),
                "{oldest}: {decision:?}"
            );
        }
    }
}
