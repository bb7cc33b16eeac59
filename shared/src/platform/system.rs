//! The host's own clock and randomness, on every target that has them.

/// The operating system's (or host's) CSPRNG through `getrandom`, on every target.
pub struct OsEntropy;

impl crate::ports::runtime::Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        // Failing closed: an identity provider that cannot get randomness must not mint secrets.
        getrandom::fill(buf).expect("the platform's secure random number generator failed");
    }
}

/// The host's wall clock where `std` has one (native and WASI; not Workers).
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub struct SystemClock;

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
impl crate::ports::runtime::Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
    }
}
