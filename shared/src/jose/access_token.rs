//! RFC 9068 access tokens: minting with room for extension claims (`act`, `cnf`, ...) and strict
//! verification (alg pinned by the key, `typ`, `iss`, `aud`, `exp`, `nbf`).

use std::collections::HashSet;

use jwt_simple::prelude::*;
use serde_json::{Map, Value};

use crate::jose::keys::KeySet;

/// The `typ` header of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Tolerated clock difference between edge instances when checking `iat`, `nbf` and `exp`.
pub const CLOCK_SKEW_SECONDS: u64 = 5;

/// Claims every access token carries beyond the registered ones, and whatever a grant adds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub client_id: String,
    pub scope: String,
    pub org_id: String,
    #[serde(flatten)]
    pub extensions: ClaimExtensions,
}

/// Optional claims a grant adds without touching the others: RFC 8693's `act` (who acts for the
/// subject), RFC 7800/9449's `cnf` (proof-of-possession key), and any further named claim.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimExtensions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Value>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Claim names an extension may not take: the registered ones and the core ones above.
const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "client_id",
    "scope",
    "org_id",
    "act",
    "cnf",
];

/// What a grant asks to be minted.
pub struct MintRequest<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub audiences: &'a [String],
    pub client_id: &'a str,
    pub org_id: &'a str,
    pub scope: &'a str,
    pub jti: &'a str,
    pub now_seconds: i64,
    pub ttl_seconds: i64,
    pub extensions: &'a ClaimExtensions,
}

pub fn mint(keys: &KeySet, request: &MintRequest<'_>) -> Result<String, jwt_simple::Error> {
    if let Some(name) = request
        .extensions
        .other
        .keys()
        .find(|k| RESERVED_CLAIMS.contains(&k.as_str()))
    {
        return Err(jwt_simple::Error::msg(format!(
            "extension claim `{name}` would shadow a core claim"
        )));
    }
    let now = UnixTimeStamp::from_secs(request.now_seconds.max(0) as u64);
    let custom = AccessClaims {
        client_id: request.client_id.to_owned(),
        scope: request.scope.to_owned(),
        org_id: request.org_id.to_owned(),
        extensions: request.extensions.clone(),
    };
    let mut claims =
        Claims::with_custom_claims(custom, Duration::from_secs(request.ttl_seconds as u64))
            .with_issuer(request.issuer)
            .with_subject(request.subject)
            .with_jwt_id(request.jti);
    claims = match request.audiences {
        [one] => claims.with_audience(one),
        many => claims.with_audiences(many.iter().collect::<HashSet<_>>()),
    };
    claims.issued_at = Some(now);
    claims.invalid_before = Some(now);
    claims.expires_at = Some(now + Duration::from_secs(request.ttl_seconds as u64));
    keys.signing.sign(claims, ACCESS_TOKEN_TYP)
}

/// A token that passed every check.
#[derive(Clone, Debug)]
pub struct VerifiedToken {
    pub subject: String,
    pub jti: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub audiences: Vec<String>,
    pub claims: AccessClaims,
}

impl VerifiedToken {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.claims.scope.split_ascii_whitespace()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token was not signed by a key of this issuer")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

/// Header fields read before verification, to pick the key.
pub fn key_id(token: &str) -> Result<String, TokenError> {
    let metadata = Token::decode_metadata(token).map_err(|_| TokenError::Malformed)?;
    metadata
        .key_id()
        .map(str::to_owned)
        .ok_or(TokenError::UnknownKey)
}

/// Longest access token accepted. Above the largest one this server mints within its own bounds
/// (100 capabilities of 128 characters in `scope`, 10 audiences of 512 characters, about 25 KiB
/// encoded), so every token it issues is one it accepts; a bound nonetheless, as verification
/// parses what callers send.
pub const MAX_ACCESS_TOKEN_BYTES: usize = 32 * 1024;

/// Verifies an access token issued by `issuer`; `audience` restricts `aud` when given.
pub fn verify(
    keys: &KeySet,
    token: &str,
    issuer: &str,
    audience: Option<&str>,
    now_seconds: i64,
) -> Result<VerifiedToken, TokenError> {
    let kid = key_id(token)?;
    let verifier = keys.verifier(&kid).ok_or(TokenError::UnknownKey)?;
    let options = VerificationOptions {
        required_key_id: Some(kid),
        required_signature_type: Some(ACCESS_TOKEN_TYP.to_owned()),
        allowed_issuers: Some(HashSet::from([issuer.to_owned()])),
        allowed_audiences: audience.map(|a| HashSet::from([a.to_owned()])),
        time_tolerance: Some(Duration::from_secs(CLOCK_SKEW_SECONDS)),
        artificial_time: Some(UnixTimeStamp::from_secs(now_seconds.max(0) as u64)),
        max_token_length: Some(MAX_ACCESS_TOKEN_BYTES),
        ..Default::default()
    };
    let claims = verifier
        .verify::<AccessClaims>(token, options)
        .map_err(|e| TokenError::Invalid(e.to_string()))?;
    let missing = |name: &str| TokenError::Invalid(format!("missing `{name}` claim"));
    let audiences = match claims.audiences {
        Some(Audiences::AsString(a)) => vec![a],
        Some(Audiences::AsSet(set)) => set.into_iter().collect(),
        None => return Err(missing("aud")),
    };
    Ok(VerifiedToken {
        subject: claims.subject.ok_or_else(|| missing("sub"))?,
        jti: claims.jwt_id.ok_or_else(|| missing("jti"))?,
        issued_at: claims.issued_at.ok_or_else(|| missing("iat"))?.as_secs() as i64,
        expires_at: claims.expires_at.ok_or_else(|| missing("exp"))?.as_secs() as i64,
        audiences,
        claims: claims.custom,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::jwk::Alg;
    use crate::platform::OsEntropy;
    use serde_json::json;

    fn request<'a>(audiences: &'a [String], extensions: &'a ClaimExtensions) -> MintRequest<'a> {
        MintRequest {
            issuer: "https://id.example.com",
            subject: "agent",
            audiences,
            client_id: "client",
            org_id: "org",
            scope: "read:docs",
            jti: "jti-1",
            now_seconds: 1_700_000_000,
            ttl_seconds: 600,
            extensions,
        }
    }

    #[test]
    fn extension_claims_round_trip_without_touching_the_core_ones() {
        let keys = KeySet::ephemeral(Alg::Es256, 0, &OsEntropy, None).unwrap();
        let audiences = vec!["https://id.example.com".to_owned()];
        let mut extensions = ClaimExtensions {
            act: Some(json!({ "sub": "repo:octo/app:ref:refs/heads/main" })),
            ..ClaimExtensions::default()
        };
        extensions
            .other
            .insert("repository".into(), json!("octo/app"));
        let token = mint(&keys, &request(&audiences, &extensions)).unwrap();
        let verified =
            verify(&keys, &token, "https://id.example.com", None, 1_700_000_001).unwrap();
        assert_eq!(verified.claims.extensions, extensions);
        assert_eq!(verified.claims.scope, "read:docs");
        assert_eq!(verified.subject, "agent");
        let plain = mint(&keys, &request(&audiences, &ClaimExtensions::default())).unwrap();
        let verified =
            verify(&keys, &plain, "https://id.example.com", None, 1_700_000_001).unwrap();
        assert_eq!(verified.claims.extensions, ClaimExtensions::default());
    }

    #[test]
    fn an_extension_cannot_shadow_a_core_claim() {
        let keys = KeySet::ephemeral(Alg::EdDsa, 0, &OsEntropy, None).unwrap();
        let audiences = vec!["a".to_owned()];
        for name in ["sub", "scope", "org_id", "exp"] {
            let mut extensions = ClaimExtensions::default();
            extensions.other.insert(name.into(), json!("x"));
            assert!(
                mint(&keys, &request(&audiences, &extensions)).is_err(),
                "{name}"
            );
        }
    }
}
