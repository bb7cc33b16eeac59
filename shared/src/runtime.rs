//! Clock and entropy seams: the core never reads the system time or the OS RNG directly.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Wall-clock time in Unix milliseconds; platforms provide it, tests may pin it.
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

/// Cryptographically secure randomness.
pub trait Entropy: Send + Sync + 'static {
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's (or host's) CSPRNG through `getrandom`, on every target.
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        // Failing closed: an identity provider that cannot get randomness must not mint secrets.
        getrandom::fill(buf).expect("the platform's secure random number generator failed");
    }
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

/// RFC 3339 UTC text with exactly three fraction digits, so timestamps also sort as text.
pub fn rfc3339(millis: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let nanos = i128::from(millis) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned())
}

/// Parses RFC 3339 text to Unix milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_have_fixed_width() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(1_700_000_000_120),
            "2023-11-14T22:13:20.120Z"
        );
        assert_eq!(
            super::parse_rfc3339("2023-11-14T22:13:20.120Z"),
            Some(1_700_000_000_120)
        );
    }
}
