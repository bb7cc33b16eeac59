//! OIDC ID tokens from trusted issuers (a CI workflow's token): RS256 only, `iss` and `aud` exact,
//! `exp`/`nbf`/`iat` within 60 s, a bounded lifetime and `jti`; every refusal says what was wrong.

use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use jwt_simple::JWTError;
use serde_json::{Map, Value};

/// Clock difference tolerated between the issuer and this server.
pub const LEEWAY_SECONDS: i64 = 60;
/// Longest lifetime (`exp` − `iat`) accepted; it also bounds how long a used `jti` is remembered.
/// GitHub's tokens live minutes; a Kubernetes service-account token an hour by default.
pub const MAX_LIFETIME_SECONDS: i64 = 3600;
const MAX_TOKEN_BYTES: usize = 16 * 1024;
const MAX_JTI_CHARS: usize = 256;

/// Why a subject token is refused, worded for the caller who sent it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IdTokenError(pub String);

fn refuse(reason: impl Into<String>) -> IdTokenError {
    IdTokenError(reason.into())
}

/// What is read before verification: which issuer to ask, and for which key.
#[derive(Clone, Debug)]
pub struct Unverified {
    pub issuer: String,
    pub kid: String,
}

fn decode_part(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// Reads the header and `iss` of a token without trusting them: RS256 only (so `none`, HS256
/// keyed with a public key and algorithm swaps fail here), a `kid`, and a string `iss`.
pub fn inspect(token: &str) -> Result<Unverified, IdTokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(refuse(format!(
            "the subject token exceeds {MAX_TOKEN_BYTES} bytes"
        )));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refuse(
            "the subject token is not a signed JWT (three parts)",
        ));
    };
    let (Some(header), Some(payload)) = (decode_part(header), decode_part(payload)) else {
        return Err(refuse(
            "the subject token's header or payload is not base64url JSON",
        ));
    };
    match header.get("alg").and_then(Value::as_str) {
        Some("RS256") => {}
        Some(other) => {
            return Err(refuse(format!(
                "alg {other} is not accepted: subject tokens must be signed with RS256"
            )))
        }
        None => return Err(refuse("the subject token's header has no alg")),
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| refuse("the subject token's header has no kid"))?;
    let issuer = payload
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse("the subject token has no iss"))?;
    Ok(Unverified {
        issuer: issuer.to_owned(),
        kid: kid.to_owned(),
    })
}

/// A token whose signature and registered claims passed.
#[derive(Clone, Debug)]
pub struct VerifiedIdToken {
    pub issuer: String,
    pub jti: String,
    pub expires_at: i64,
    /// Every claim of the payload, registered ones included.
    pub claims: Map<String, Value>,
}

/// Verifies the signature with the issuer's key, then `iss`, `aud`, `exp`, `nbf`, `iat` (60 s
/// leeway), the lifetime and the `jti`.
pub fn verify(
    key: &RS256PublicKey,
    token: &str,
    kid: &str,
    issuer: &str,
    audience: &str,
    now_seconds: i64,
) -> Result<VerifiedIdToken, IdTokenError> {
    let options = VerificationOptions {
        required_key_id: Some(kid.to_owned()),
        allowed_issuers: Some(HashSet::from([issuer.to_owned()])),
        allowed_audiences: Some(HashSet::from([audience.to_owned()])),
        time_tolerance: Some(Duration::from_secs(LEEWAY_SECONDS.unsigned_abs())),
        artificial_time: Some(UnixTimeStamp::from_secs(now_seconds.max(0).unsigned_abs())),
        max_token_length: Some(MAX_TOKEN_BYTES),
        ..Default::default()
    };
    // Registered claims are checked by jwt-simple; the payload is read once more for the rest
    // and, on a refusal, to say what the token carried (its signature has verified by then).
    let payload = token
        .split('.')
        .nth(1)
        .and_then(decode_part)
        .unwrap_or_default();
    let text = |name: &str| match payload.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "(none)".to_owned(),
    };
    if let Err(e) = key.verify_token::<NoCustomClaims>(token, Some(options)) {
        let reason = match e.downcast_ref::<JWTError>() {
            Some(JWTError::InvalidSignature) => {
                format!("the subject token's signature does not verify with the issuer's key {kid}")
            }
            Some(JWTError::TokenHasExpired) => format!(
                "the subject token expired (exp {}, now {now_seconds})",
                text("exp")
            ),
            Some(JWTError::TokenNotValidYet) => format!(
                "the subject token is not valid yet (nbf {}, now {now_seconds})",
                text("nbf")
            ),
            Some(JWTError::ClockDrift) => format!(
                "the subject token was issued in the future (iat {}, now {now_seconds})",
                text("iat")
            ),
            Some(JWTError::RequiredAudienceMismatch | JWTError::RequiredAudienceMissing) => {
                format!(
                    "aud {} is not this deployment's audience {audience}: request the token \
                     with that audience",
                    text("aud")
                )
            }
            Some(JWTError::RequiredIssuerMismatch | JWTError::RequiredIssuerMissing) => {
                format!("iss {} is not {issuer}", text("iss"))
            }
            _ => format!("the subject token is invalid: {e}"),
        };
        return Err(refuse(reason));
    }
    // Exactly this deployment's audience: a token also meant for someone else is not accepted.
    let exact_audience = match payload.get("aud") {
        Some(Value::String(a)) => a == audience,
        Some(Value::Array(list)) => list.len() == 1 && list[0] == audience,
        _ => false,
    };
    if !exact_audience {
        return Err(refuse(format!(
            "aud {} must be exactly this deployment's audience {audience}",
            text("aud")
        )));
    }
    let number = |name: &str| payload.get(name).and_then(Value::as_i64);
    let (Some(expires_at), Some(issued_at)) = (number("exp"), number("iat")) else {
        return Err(refuse("the subject token must carry exp and iat"));
    };
    if expires_at - issued_at > MAX_LIFETIME_SECONDS {
        return Err(refuse(format!(
            "the subject token lives {} s; at most {MAX_LIFETIME_SECONDS} s is accepted",
            expires_at - issued_at
        )));
    }
    let jti = payload
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_CHARS)
        .ok_or_else(|| {
            refuse(format!(
                "the subject token must carry a jti of 1 to {MAX_JTI_CHARS} characters"
            ))
        })?;
    Ok(VerifiedIdToken {
        issuer: issuer.to_owned(),
        jti: jti.to_owned(),
        expires_at,
        claims: payload.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    #[test]
    fn only_rs256_with_a_kid_and_an_issuer_gets_looked_at() {
        let payload = encode(&serde_json::json!({ "iss": "https://issuer" }));
        for (header, expected) in [
            (serde_json::json!({ "alg": "none" }), "alg none"),
            (
                serde_json::json!({ "alg": "HS256", "kid": "k" }),
                "alg HS256",
            ),
            (serde_json::json!({ "alg": "RS256" }), "no kid"),
        ] {
            let token = format!("{}.{payload}.sig", encode(&header));
            let err = inspect(&token).unwrap_err();
            assert!(err.0.contains(expected), "{err}");
        }
        let header = encode(&serde_json::json!({ "alg": "RS256", "kid": "k" }));
        let seen = inspect(&format!("{header}.{payload}.sig")).unwrap();
        assert_eq!(
            (seen.issuer.as_str(), seen.kid.as_str()),
            ("https://issuer", "k")
        );
        assert!(inspect("a.b").is_err());
        assert!(inspect(&"a".repeat(20_000)).is_err());
    }
}
