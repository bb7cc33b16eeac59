//! Every key-value key shape in one place, with what it holds and how long it lives.

use crate::domain::usage::month_of;

/// `revoked:jti:<jti>` = "1": one revoked token, until it would have expired.
pub fn revoked_jti(jti: &str) -> String {
    format!("revoked:jti:{jti}")
}

/// `revoked:sub:<subject>` = Unix seconds: every token of the subject issued up to then is
/// revoked, until the last of them would have expired.
pub fn revoked_subject(subject: &str) -> String {
    format!("revoked:sub:{subject}")
}

/// `revoked:client:<client_id>` = Unix seconds: every token issued to the client up to then is
/// revoked, until the last of them would have expired.
pub fn revoked_client(client_id: &str) -> String {
    format!("revoked:client:{client_id}")
}

/// `assertion:<client_id>:<jti>`: a used RFC 7523 client assertion, until it expires.
pub fn used_assertion(client_id: &str, jti: &str) -> String {
    format!("assertion:{client_id}:{jti}")
}

/// `subject_token:<issuer>:<jti>`: a used OIDC subject token (token exchange, jwt-bearer), until
/// it expires. The issuer is one of the configured ones and the `jti` is bounded by the verifier.
pub fn used_subject_token(issuer: &str, jti: &str) -> String {
    format!("subject_token:{issuer}:{jti}")
}

/// Longest client address kept in a key: enough for IPv6, bounded for odd platform headers.
const MAX_IP_CHARS: usize = 64;

/// `ratelimit:org:<org>`: the sliding-window log of an organization's `/v1/*` calls.
pub fn organization_window(org_id: &str) -> String {
    format!("ratelimit:org:{org_id}")
}

/// `ratelimit:org:<org>:client:<client_id>`: one client's own `/v1/*` calls within its
/// organization (an agent's share; an admin's emergency actions).
pub fn organization_client_window(org_id: &str, client_id: &str) -> String {
    format!("ratelimit:org:{org_id}:client:{}", bounded(client_id))
}

/// `ratelimit:client:<client_id>`: the window of a client's `/oauth2/*` calls.
pub fn client_window(client_id: &str) -> String {
    format!("ratelimit:client:{client_id}")
}

/// `ratelimit:ip:<address>`: the window of unauthenticated calls and failed authentications.
pub fn ip_window(ip: &str) -> String {
    let ip: String = ip.chars().take(MAX_IP_CHARS).collect();
    format!("ratelimit:ip:{ip}")
}

/// `authfail:ip:<address>`: the window of an address's failed client authentications.
pub fn ip_failures_window(ip: &str) -> String {
    let ip: String = ip.chars().take(MAX_IP_CHARS).collect();
    format!("authfail:ip:{ip}")
}

/// `authfail:client:<client_id>`: the window of a client's failed authentications, from every
/// address. Checked for any presented id, written only for clients that exist.
pub fn client_failures_window(client_id: &str) -> String {
    format!("authfail:client:{}", bounded(client_id))
}

/// `authfail:tally:<client_id>:<period start>`: how many times the client failed to authenticate
/// in a tally period (`domain::auth_failures`), for the audit trail's summaries.
pub fn failure_tally(client_id: &str, period_start_millis: i64) -> String {
    format!(
        "authfail:tally:{}:{period_start_millis}",
        bounded(client_id)
    )
}

/// `authfail:sample:<client_id>:<period start>:<n>`: the details of the n-th failure of a period,
/// kept for the first few only.
pub fn failure_sample(client_id: &str, period_start_millis: i64, n: u64) -> String {
    format!(
        "authfail:sample:{}:{period_start_millis}:{n}",
        bounded(client_id)
    )
}

/// Tallies and samples outlive their period by one, so the last report of a period still finds them.
pub const FAILURE_TALLY_TTL_SECONDS: u64 = 2 * 3600;

/// Longest client id kept in a key: real ids are far shorter; a presented one is untrusted input.
const MAX_CLIENT_ID_CHARS: usize = 128;

fn bounded(client_id: &str) -> String {
    client_id.chars().take(MAX_CLIENT_ID_CHARS).collect()
}

/// Usage counters outlive their month by a month, so last month's figures can still be persisted.
pub const USAGE_COUNTER_TTL_SECONDS: u64 = 62 * 24 * 3600;

/// The usage counters, by the names their keys end with.
pub const API_CALLS: &str = "api_calls";
pub const TOKENS_ISSUED: &str = "tokens_issued";

/// `usage:<org>:<YYYY-MM>:api_calls`: authenticated `/v1/*` calls this month.
pub fn api_calls(org_id: &str, now_millis: i64) -> String {
    usage_counter(org_id, &month_of(now_millis).label, API_CALLS)
}

/// `usage:<org>:<YYYY-MM>:tokens_issued`: access tokens issued this month.
pub fn tokens_issued(org_id: &str, now_millis: i64) -> String {
    usage_counter(org_id, &month_of(now_millis).label, TOKENS_ISSUED)
}

/// `usage:<org>:<YYYY-MM>:<counter>`: one counter of one organization in one month.
pub fn usage_counter(org_id: &str, month: &str, counter: &str) -> String {
    format!("usage:{org_id}:{month}:{counter}")
}

/// The organization, month and counter a usage counter key names.
pub fn parse_usage_counter(key: &str) -> Option<(&str, &str, &str)> {
    let (rest, counter) = key.strip_prefix("usage:")?.rsplit_once(':')?;
    let (org_id, month) = rest.rsplit_once(':')?;
    Some((org_id, month, counter))
}

/// A key never written, read by health checks to time a round trip.
pub const HEALTH_PROBE: &str = "health:probe";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counter_keys_round_trip() {
        let key = api_calls("org-1", 1_798_761_599_999);
        assert_eq!(
            parse_usage_counter(&key),
            Some(("org-1", "2026-12", API_CALLS))
        );
        assert_eq!(parse_usage_counter("revoked:jti:x"), None);
    }
}
