//! When a token counts as revoked: its own `jti` entry, or an entry revoking every token of its
//! subject issued up to a moment. What a missing answer means is the configured failure policy.

use crate::config::FailurePolicy;

/// Judges the values of a token's revocation entries: its `jti` first, then cut-offs (its
/// subject's, its client's) each revoking every token issued up to a moment.
pub fn revoked_by(issued_at: i64, values: &[Option<String>]) -> bool {
    let jti_revoked = values.first().is_some_and(Option::is_some);
    let cut_off = values
        .iter()
        .skip(1)
        .filter_map(|v| v.as_deref()?.parse::<i64>().ok())
        .any(|cutoff| issued_at <= cutoff);
    jti_revoked || cut_off
}

/// Applies the failure policy when the entries could not be read: closed (the default) refuses
/// the token with the store's error; open accepts it, loudly.
pub fn judge<E: std::fmt::Display>(
    policy: FailurePolicy,
    issued_at: i64,
    values: Result<Vec<Option<String>>, E>,
) -> Result<bool, E> {
    match values {
        Ok(values) => Ok(revoked_by(issued_at, &values)),
        Err(e) if policy == FailurePolicy::Closed => Err(e),
        Err(e) => {
            tracing::warn!(error = %e, "revocation store failed; accepting the token unchecked (fail open)");
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_cutoff_covers_tokens_issued_up_to_it() {
        let cutoff = vec![None, Some("100".to_owned())];
        assert!(revoked_by(100, &cutoff));
        assert!(!revoked_by(101, &cutoff));
        assert!(revoked_by(500, &[Some("1".to_owned()), None]));
        assert!(!revoked_by(500, &[None, None]));
        assert!(revoked_by(100, &[None, None, Some("100".to_owned())]));
        assert!(!revoked_by(
            101,
            &[None, Some("1".to_owned()), Some("100".to_owned())]
        ));
    }

    #[test]
    fn an_unreadable_store_follows_the_policy() {
        let failed: Result<Vec<Option<String>>, &str> = Err("down");
        assert!(judge(FailurePolicy::Closed, 1, failed.clone()).is_err());
        assert_eq!(judge(FailurePolicy::Open, 1, failed), Ok(false));
    }
}
