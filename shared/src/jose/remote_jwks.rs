//! Trusted OIDC issuers' signing keys: their JWKS fetched through the outbound seam, cached per the
//! response's `Cache-Control`, refreshed at most once a minute for an unknown `kid`, and bounded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::RS256PublicKey;

use crate::ports::outbound::{body_excerpt, Outbound, OutboundRequest, OutboundResponse};

/// An unknown `kid` fetches the key set again at most this often, so tokens naming made-up keys
/// cannot make this server hammer an issuer.
pub const REFRESH_INTERVAL_SECONDS: i64 = 60;
/// Cache lifetime without a usable `max-age`, and its bounds.
const DEFAULT_MAX_AGE_SECONDS: i64 = 300;
const MIN_MAX_AGE_SECONDS: i64 = 60;
const MAX_MAX_AGE_SECONDS: i64 = 24 * 3600;
/// How long keys past their cache lifetime still verify while the issuer cannot be reached.
const MAX_STALE_SECONDS: i64 = 24 * 3600;
/// Bounds on what an issuer's answer may make this server hold.
const MAX_KEYS: usize = 32;
const MAX_JWKS_BYTES: usize = 256 * 1024;
const MAX_KID_CHARS: usize = 256;

#[derive(Debug, thiserror::Error)]
#[error("the issuer's key set at {url} cannot be read: {reason}")]
pub struct JwksError {
    pub url: String,
    pub reason: String,
}

struct CachedSet {
    keys: Arc<Vec<(String, Arc<RS256PublicKey>)>>,
    /// Until when the set is fresh (Unix seconds).
    fresh_until: i64,
    /// When the set was last fetched, or a fetch last failed.
    attempted_at: i64,
    /// The last fetch's failure, if it failed.
    error: Option<String>,
}

/// What the cache alone can answer.
enum Cached {
    Key(Arc<RS256PublicKey>),
    UnknownKid,
    Failed(String),
    /// Fetch (again) and look.
    Fetch,
}

/// The key sets of every configured issuer, per instance, keyed by JWKS URL (a handful of entries:
/// the URLs come from configuration, never from a token).
#[derive(Default)]
pub struct RemoteKeySets {
    sets: Mutex<HashMap<String, CachedSet>>,
    /// One fetch at a time per instance: a burst of requests for a cold or rotated set waits for
    /// one fetch instead of sending one each.
    fetching: futures_util::lock::Mutex<()>,
}

impl RemoteKeySets {
    /// The RS256 key `kid` of the set at `url`; `None` when the set, fetched at most once a minute
    /// for this purpose, does not have it.
    pub async fn key(
        &self,
        outbound: &dyn Outbound,
        url: &str,
        kid: &str,
        now_seconds: i64,
    ) -> Result<Option<Arc<RS256PublicKey>>, JwksError> {
        if let Some(answer) = self.answer(self.cached(url, kid, now_seconds), url) {
            return answer;
        }
        let _one_at_a_time = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(answer) = self.answer(self.cached(url, kid, now_seconds), url) {
            return answer;
        }
        let fetched = fetch(outbound, url).await;
        let mut sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        match fetched {
            Ok((keys, max_age)) => {
                sets.insert(
                    url.to_owned(),
                    CachedSet {
                        keys: Arc::new(keys),
                        fresh_until: now_seconds + max_age,
                        attempted_at: now_seconds,
                        error: None,
                    },
                );
            }
            Err(reason) => {
                tracing::warn!(url, reason = %reason, "fetching an OIDC issuer's key set failed");
                let entry = sets.entry(url.to_owned()).or_insert_with(|| CachedSet {
                    keys: Arc::new(Vec::new()),
                    fresh_until: 0,
                    attempted_at: now_seconds,
                    error: None,
                });
                entry.attempted_at = now_seconds;
                entry.error = Some(reason);
            }
        }
        drop(sets);
        match self.cached(url, kid, now_seconds) {
            Cached::Key(key) => Ok(Some(key)),
            Cached::UnknownKid | Cached::Fetch => Ok(None),
            Cached::Failed(reason) => Err(JwksError {
                url: url.to_owned(),
                reason,
            }),
        }
    }

    fn answer(
        &self,
        cached: Cached,
        url: &str,
    ) -> Option<Result<Option<Arc<RS256PublicKey>>, JwksError>> {
        match cached {
            Cached::Key(key) => Some(Ok(Some(key))),
            Cached::UnknownKid => Some(Ok(None)),
            Cached::Failed(reason) => Some(Err(JwksError {
                url: url.to_owned(),
                reason,
            })),
            Cached::Fetch => None,
        }
    }

    fn cached(&self, url: &str, kid: &str, now: i64) -> Cached {
        let sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        let Some(set) = sets.get(url) else {
            return Cached::Fetch;
        };
        let key = set
            .keys
            .iter()
            .find(|(k, _)| k == kid)
            .map(|(_, key)| key.clone());
        let fresh = now < set.fresh_until;
        let recently_attempted = now - set.attempted_at < REFRESH_INTERVAL_SECONDS;
        let usable_stale = now < set.fresh_until + MAX_STALE_SECONDS;
        match key {
            Some(key) if fresh || (recently_attempted && usable_stale) => Cached::Key(key),
            _ if !recently_attempted => Cached::Fetch,
            _ => match &set.error {
                Some(reason) => Cached::Failed(reason.clone()),
                None => Cached::UnknownKid,
            },
        }
    }
}

async fn fetch(
    outbound: &dyn Outbound,
    url: &str,
) -> Result<(Vec<(String, Arc<RS256PublicKey>)>, i64), String> {
    let response: OutboundResponse = outbound
        .send(OutboundRequest::get(url.to_owned()))
        .await
        .map_err(|e| e.to_string())?;
    if response.status != 200 {
        return Err(format!(
            "status {}: {}",
            response.status,
            body_excerpt(&response.body)
        ));
    }
    if response.body.len() > MAX_JWKS_BYTES {
        return Err(format!("the key set exceeds {MAX_JWKS_BYTES} bytes"));
    }
    let keys = parse_jwks(&response.body)?;
    Ok((keys, max_age(response.header("cache-control"))))
}

/// The RS256 signing keys of a JWKS document; other keys are skipped, and at most [`MAX_KEYS`]
/// kept.
pub fn parse_jwks(body: &[u8]) -> Result<Vec<(String, Arc<RS256PublicKey>)>, String> {
    let document: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let entries = document
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or("no `keys` array")?;
    let mut keys = Vec::new();
    for jwk in entries {
        let text = |name: &str| jwk.get(name).and_then(|v| v.as_str());
        let signs_rs256 = text("kty") == Some("RSA")
            && text("use").is_none_or(|u| u == "sig")
            && text("alg").is_none_or(|a| a == "RS256");
        let Some(kid) = text("kid").filter(|k| !k.is_empty() && k.len() <= MAX_KID_CHARS) else {
            continue;
        };
        if !signs_rs256 {
            continue;
        }
        let decode = |name: &str| text(name).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
        let (Some(n), Some(e)) = (decode("n"), decode("e")) else {
            continue;
        };
        // jwt-simple refuses moduli under 2048 bits and exponents other than 65537.
        match RS256PublicKey::from_components(&n, &e) {
            Ok(key) => keys.push((kid.to_owned(), Arc::new(key))),
            Err(e) => tracing::warn!(kid, error = %e, "skipping an unusable issuer key"),
        }
        if keys.len() == MAX_KEYS {
            break;
        }
    }
    Ok(keys)
}

/// Seconds a key set may be cached: `Cache-Control: max-age` (or `s-maxage`), bounded; `no-store`
/// and `no-cache` mean the minimum.
pub fn max_age(cache_control: Option<&str>) -> i64 {
    let Some(header) = cache_control else {
        return DEFAULT_MAX_AGE_SECONDS;
    };
    let mut age = None;
    for directive in header.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if directive == "no-store" || directive == "no-cache" {
            return MIN_MAX_AGE_SECONDS;
        }
        if let Some(value) = directive
            .strip_prefix("s-maxage=")
            .or_else(|| directive.strip_prefix("max-age="))
        {
            if let Ok(seconds) = value.trim_matches('"').parse::<i64>() {
                age = Some(age.map_or(seconds, |a: i64| a.min(seconds)));
            }
        }
    }
    age.unwrap_or(DEFAULT_MAX_AGE_SECONDS)
        .clamp(MIN_MAX_AGE_SECONDS, MAX_MAX_AGE_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_lifetime_follows_the_headers_within_bounds() {
        assert_eq!(max_age(None), 300);
        assert_eq!(max_age(Some("public, max-age=3600")), 3600);
        assert_eq!(max_age(Some("max-age=5")), 60);
        assert_eq!(max_age(Some("max-age=99999999")), 86_400);
        assert_eq!(max_age(Some("no-store")), 60);
        assert_eq!(max_age(Some("max-age=600, s-maxage=120")), 120);
        assert_eq!(max_age(Some("max-age=abc")), 300);
    }

    /// A 2048-bit RSA public key (modulus, base64url), to build key sets from.
    const MODULUS: &str = "rC9iK_wvIR1KX7Abr8Ca8AzdDXDLqm3HAZbx--j0BcghXCS7Wfji1Z0HbWrLOjcqmkMS0VEWLIAyAAAU7oZtZgVOyUv3hMuVylR3eGYuk7k0aLELzORSNDp_S4LjU_jHxmMb1-QxnHdnh-i-M25d9UoNGbU4c2VbFedLh5DSK6f_YO7fta5-XsujMnuQXPO3kAbMbd8uqdkBOrH0-O8LlpNsRWxomu_1ro8DwkfgqMbeEng610Yp9JolPeHU7sTXjLvzR6t4BQsngW3_0isfTOVO3urYJhhIfdtDojJjHmszlBLx2gFiC6C65WwS4jZX6km180MvBaxGqZadlnhIMQ";

    fn jwks(kids: &[&str]) -> Vec<u8> {
        let keys: Vec<serde_json::Value> = kids
            .iter()
            .map(|kid| serde_json::json!({ "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": MODULUS, "e": "AQAB" }))
            .collect();
        serde_json::json!({ "keys": keys }).to_string().into_bytes()
    }

    /// An issuer whose answers the test scripts, counting requests.
    struct Scripted {
        answers: Mutex<Vec<OutboundResponse>>,
        requests: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Outbound for Scripted {
        async fn send(
            &self,
            request: OutboundRequest,
        ) -> Result<OutboundResponse, crate::ports::outbound::OutboundError> {
            assert_eq!(request.method, "GET");
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut answers = self.answers.lock().unwrap();
            Ok(if answers.len() > 1 {
                answers.remove(0)
            } else {
                answers[0].clone()
            })
        }
    }

    fn answer(status: u16, body: Vec<u8>, cache_control: &str) -> OutboundResponse {
        OutboundResponse {
            status,
            headers: vec![("cache-control".into(), cache_control.into())],
            body,
        }
    }

    /// The futures here never wait on anything real: one poll with a no-op waker finishes them.
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut future = std::pin::pin!(future);
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("a scripted fetch does not wait"),
        }
    }

    #[test]
    fn unknown_kids_refresh_at_most_once_a_minute_and_failures_serve_stale_keys() {
        let issuer = Scripted {
            answers: Mutex::new(vec![
                answer(200, jwks(&["a"]), "max-age=600"),
                answer(200, jwks(&["a", "b"]), "max-age=600"),
                answer(500, b"down".to_vec(), ""),
            ]),
            requests: Default::default(),
        };
        let sets = RemoteKeySets::default();
        let url = "https://issuer/.well-known/jwks";
        let key = |kid: &str, now: i64| block_on(sets.key(&issuer, url, kid, now));
        let fetched = || issuer.requests.load(std::sync::atomic::Ordering::SeqCst);
        assert!(key("a", 1000).unwrap().is_some());
        assert!(key("a", 1500).unwrap().is_some());
        assert_eq!(fetched(), 1, "cached while fresh");
        // `b` is unknown: fetched again only once a minute has passed since the last fetch.
        assert!(key("b", 1010).unwrap().is_none());
        assert_eq!(fetched(), 1);
        assert!(key("b", 1061).unwrap().is_some());
        assert_eq!(fetched(), 2);
        // Past freshness the issuer fails: the known key still verifies (stale, bounded), an
        // unknown one reports the failure, and the issuer is not asked again within the minute.
        assert!(key("a", 1061 + 600).unwrap().is_some());
        assert_eq!(fetched(), 3);
        assert!(key("c", 1061 + 610).is_err());
        assert_eq!(fetched(), 3);
        // A day past freshness, stale keys are no longer trusted.
        assert!(key("a", 1061 + 600 + 86_400 + 61).is_err());
    }

    #[test]
    fn only_rs256_signing_keys_are_kept() {
        let body = br#"{"keys":[
            {"kty":"EC","kid":"a","crv":"P-256","x":"AA","y":"AA"},
            {"kty":"RSA","kid":"b","use":"enc","n":"AQAB","e":"AQAB"},
            {"kty":"RSA","kid":"c","n":"AQAB","e":"AQAB"}
        ]}"#;
        // The RSA entries are too short to be keys: skipped, not an error.
        assert!(parse_jwks(body).unwrap().is_empty());
        assert!(parse_jwks(b"{}").is_err());
        assert!(parse_jwks(b"<html>").is_err());
    }
}
