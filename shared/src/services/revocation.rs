//! Token revocation in the key-value store: one entry per revoked `jti`, one per revoked subject
//! ("every token issued up to now"), each expiring when the tokens it covers would.

use crate::config::FailurePolicy;
use crate::domain::caller::ClientId;
use crate::domain::revocation;
use crate::jose::access_token::{VerifiedToken, CLOCK_SKEW_SECONDS};
use crate::ports::kv::{KeyValue, KvError};
use crate::store::kv_keys;

/// Revokes one token until its expiry.
pub async fn revoke_token(
    kv: &dyn KeyValue,
    jti: &str,
    expires_at: i64,
    now_seconds: i64,
) -> Result<(), KvError> {
    let ttl = (expires_at - now_seconds).max(1) as u64;
    kv.set(&kv_keys::revoked_jti(jti), "1", ttl).await
}

/// Revokes every token of `subject` issued at or before now. Tokens issued later in the same
/// second are refused too: failing closed beats a one-second hole.
pub async fn revoke_subject(
    kv: &dyn KeyValue,
    subject: &str,
    now_seconds: i64,
    token_ttl_seconds: i64,
) -> Result<(), KvError> {
    cut_off(
        kv,
        &kv_keys::revoked_subject(subject),
        now_seconds,
        token_ttl_seconds,
    )
    .await
}

/// Revokes every token issued to `client_id` at or before now (a trust policy's, whose deletion
/// ends the tokens workflows obtained through it), like [`revoke_subject`].
pub async fn revoke_client(
    kv: &dyn KeyValue,
    client_id: &ClientId,
    now_seconds: i64,
    token_ttl_seconds: i64,
) -> Result<(), KvError> {
    cut_off(
        kv,
        &kv_keys::revoked_client(client_id.as_str()),
        now_seconds,
        token_ttl_seconds,
    )
    .await
}

/// A cut-off entry: every token issued up to now, kept until the last of them would expire.
async fn cut_off(
    kv: &dyn KeyValue,
    key: &str,
    now_seconds: i64,
    token_ttl_seconds: i64,
) -> Result<(), KvError> {
    let ttl = (token_ttl_seconds + CLOCK_SKEW_SECONDS as i64 + 1) as u64;
    kv.set(key, &now_seconds.to_string(), ttl).await
}

/// The entries that decide whether `token` is revoked, read together in one round trip (alone,
/// or folded into a rate-limit admission): its `jti`, then the cut-offs of its subject and, when
/// the client differs from the subject, of its client.
pub fn keys(token: &VerifiedToken) -> Vec<String> {
    let mut keys = vec![
        kv_keys::revoked_jti(&token.jti),
        kv_keys::revoked_subject(&token.subject),
    ];
    if token.claims.client_id != token.subject {
        keys.push(kv_keys::revoked_client(&token.claims.client_id));
    }
    keys
}

/// Judges the values of [`keys`] (or the store's failure) under `policy`.
pub fn is_revoked(
    policy: FailurePolicy,
    token: &VerifiedToken,
    values: Result<Vec<Option<String>>, KvError>,
) -> Result<bool, KvError> {
    revocation::judge(policy, token.issued_at, values)
}
