//! Token revocation in the key-value store: one entry per revoked `jti`, one per revoked subject
//! ("every token issued up to now"), each expiring when the tokens it covers would.

use crate::config::FailurePolicy;
use crate::kv::{KeyValue, KvError};
use crate::tokens::VerifiedToken;

fn jti_key(jti: &str) -> String {
    format!("revoked:jti:{jti}")
}

fn subject_key(subject: &str) -> String {
    format!("revoked:sub:{subject}")
}

/// Revokes one token until its expiry.
pub async fn revoke_token(
    kv: &dyn KeyValue,
    jti: &str,
    expires_at: i64,
    now_seconds: i64,
) -> Result<(), KvError> {
    let ttl = (expires_at - now_seconds).max(1) as u64;
    kv.set(&jti_key(jti), "1", ttl).await
}

/// Revokes every token of `subject` issued at or before now. Tokens issued later in the same
/// second are refused too: failing closed beats a one-second hole.
pub async fn revoke_subject(
    kv: &dyn KeyValue,
    subject: &str,
    now_seconds: i64,
    token_ttl_seconds: i64,
) -> Result<(), KvError> {
    let ttl = (token_ttl_seconds + crate::tokens::CLOCK_SKEW_SECONDS as i64 + 1) as u64;
    kv.set(&subject_key(subject), &now_seconds.to_string(), ttl)
        .await
}

/// The two entries that decide whether `token` is revoked, read together in one round trip
/// (alone, or folded into a rate-limit admission).
pub fn keys(token: &VerifiedToken) -> Vec<String> {
    vec![jti_key(&token.jti), subject_key(&token.subject)]
}

/// Judges the values of [`keys`], in order.
pub fn revoked_by(token: &VerifiedToken, values: &[Option<String>]) -> bool {
    let jti_revoked = values.first().is_some_and(Option::is_some);
    let subject_cutoff = values
        .get(1)
        .and_then(Option::as_deref)
        .and_then(|v| v.parse::<i64>().ok());
    jti_revoked || subject_cutoff.is_some_and(|cutoff| token.issued_at <= cutoff)
}

/// Applies the failure policy when the entries could not be read: closed (the default) refuses
/// the token with the store's error; open accepts it, loudly.
pub fn judge(
    policy: FailurePolicy,
    token: &VerifiedToken,
    values: Result<Vec<Option<String>>, KvError>,
) -> Result<bool, KvError> {
    match values {
        Ok(values) => Ok(revoked_by(token, &values)),
        Err(e) if policy == FailurePolicy::Closed => Err(e),
        Err(e) => {
            tracing::warn!(error = %e, "revocation store failed; accepting the token unchecked (fail open)");
            Ok(false)
        }
    }
}
