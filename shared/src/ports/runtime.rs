//! Clock, timer, entropy and background-work seams: the core never reads the system time, sleeps,
//! draws from the OS RNG or spawns tasks itself; each platform provides these, and tests may pin them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Wall-clock time in Unix milliseconds.
pub trait Clock: Send + Sync + 'static {
    fn now_millis(&self) -> i64;

    fn now_seconds(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }
}

/// Timers, for deadlines on calls to remote stores; each platform has its own.
pub trait Timer: Send + Sync + 'static {
    fn sleep(
        &self,
        duration: std::time::Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
}

/// Work that outlives the request that started it (delivering the webhooks a change enqueued).
pub type BackgroundWork = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Runs work after the response: natively a spawned task, on Workers the request's
/// `ctx.waitUntil`, on Spin a task the component keeps running after it has answered.
pub trait Background: Send + Sync + 'static {
    fn spawn(&self, work: BackgroundWork);
}

/// Cryptographically secure randomness.
pub trait Entropy: Send + Sync + 'static {
    fn fill(&self, buf: &mut [u8]);
}

pub fn random_bytes<const N: usize>(entropy: &dyn Entropy) -> [u8; N] {
    let mut buf = [0u8; N];
    entropy.fill(&mut buf);
    buf
}

/// A new random (v4) UUID as lowercase hyphenated text.
pub fn new_uuid(entropy: &dyn Entropy) -> String {
    uuid::Builder::from_random_bytes(random_bytes::<16>(entropy))
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// A new time-ordered (v7) UUID: for rows inserted in time order under a unique index, so each
/// insert lands on the index's last page instead of a random one (one page written per commit,
/// not one per row).
pub fn new_time_ordered_uuid(now_millis: i64, entropy: &dyn Entropy) -> String {
    let millis = u64::try_from(now_millis).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &random_bytes::<10>(entropy))
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// `N` random bytes as unpadded base64url text.
pub fn random_token<const N: usize>(entropy: &dyn Entropy) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<N>(entropy))
}
