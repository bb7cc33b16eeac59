//! The key-value seam: short-lived shared state (revocation entries, replay guards, rate-limit
//! windows, usage counters) and the one-round-trip admission every rate-limited request makes.

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("key-value store unavailable: {0}")]
    Unavailable(String),
}

/// What a platform provides for short-lived shared state. TTLs are in whole seconds (at least 1).
#[async_trait]
pub trait KeyValue: Send + Sync + 'static {
    /// Reads several keys in one round trip; absent or expired keys are `None`.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, KvError>;

    /// Sets a key that expires after `ttl_seconds`.
    async fn set(&self, key: &str, value: &str, ttl_seconds: u64) -> Result<(), KvError>;

    /// Sets a key only if absent; `true` when this call set it (single-use values such as `jti`s).
    async fn set_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: u64,
    ) -> Result<bool, KvError>;

    /// Runs one [`Admission`] atomically in one round trip.
    async fn admit(&self, admission: &Admission) -> Result<AdmissionOutcome, KvError>;
}

/// One rate-limited request in a single round trip: read some keys (revocation entries), record a
/// hit in sliding-window logs unless one of them is full, and bump usage counters if admitted.
#[derive(Clone, Debug)]
pub struct Admission {
    /// The windows the hit counts against: admitted only when every one has room, and then
    /// recorded in every one. None admits unconditionally (limits off).
    pub windows: Vec<Window>,
    /// Only ask whether every window has room: record no hit and bump no counter. For checks made
    /// before any work, such as a client's failure budget before its secret is compared.
    pub peek: bool,
    /// Keys read in the same round trip, answered in order like `get_many`.
    pub reads: Vec<String>,
    /// When the first two reads are a token's revocation entries (its `jti`, its subject's
    /// cutoff), the token's issue time (Unix seconds): if they revoke it, the admission counts in
    /// no window and meters nothing (the call is refused anyway, so it spends no one's budget),
    /// and it is not refused for want of room either; the reads are answered as always.
    pub unless_revoked: Option<i64>,
    /// Counters incremented by one when the request is admitted (and not a peek).
    pub counters: Vec<String>,
    /// Lifetime of the counters, refreshed on every increment.
    pub counter_ttl_seconds: u64,
    /// The caller's clock: every instance must agree on it to within the precision that matters.
    pub now_millis: i64,
    /// Unique per hit, so two hits in the same millisecond are two entries of the log.
    pub hit_id: String,
}

/// An exact sliding window: at most `limit` admitted hits in any `window_millis` interval.
#[derive(Clone, Debug)]
pub struct Window {
    pub key: String,
    pub limit: u64,
    pub window_millis: i64,
}

/// A window's state after the admission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowState {
    /// Hits in the window after this request (including it when admitted and recorded).
    pub in_window: u64,
    /// When the oldest hit still in the window was recorded (`now` for an empty window).
    pub oldest_millis: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionOutcome {
    pub admitted: bool,
    /// One per window of the admission, in order; none when a revoked token was not counted.
    pub windows: Vec<WindowState>,
    /// The values of `reads`, in order.
    pub values: Vec<Option<String>>,
}
