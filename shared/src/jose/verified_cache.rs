//! A per-instance memo of access tokens whose signature and claims already verified.

use crate::jose::access_token::{VerifiedToken, CLOCK_SKEW_SECONDS};

/// Per-instance memo of tokens whose signature and claims already verified. Agents present the same
/// token for its whole lifetime, and a P-256 verification costs far more than a lookup. Expiry is
/// re-checked on every hit; revocation is never cached (callers check it on every use).
pub struct VerifiedCache {
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], VerifiedToken>>,
}

/// Bounds the memo's memory (a few MB); when full, expired entries go first, then everything.
const VERIFIED_CACHE_CAPACITY: usize = 20_000;

impl Default for VerifiedCache {
    fn default() -> Self {
        VerifiedCache {
            entries: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }
}

impl VerifiedCache {
    fn key(token: &str) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(token.as_bytes()).into()
    }

    pub fn get(&self, token: &str, now_seconds: i64) -> Option<VerifiedToken> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&Self::key(token))
            .filter(|t| now_seconds <= t.expires_at + CLOCK_SKEW_SECONDS as i64)
            .cloned()
    }

    pub fn insert(&self, token: &str, verified: &VerifiedToken, now_seconds: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= VERIFIED_CACHE_CAPACITY {
            entries.retain(|_, t| now_seconds <= t.expires_at);
            if entries.len() >= VERIFIED_CACHE_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(Self::key(token), verified.clone());
    }
}
