//! RFC 9068 access tokens: minting and strict verification (alg pinned, `typ`, `iss`, `aud`, `exp`, `nbf`).

use std::collections::HashSet;

use jwt_simple::prelude::*;

use crate::keys::KeySet;

/// The `typ` header of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Tolerated clock difference between edge instances when checking `iat`, `nbf` and `exp`.
pub const CLOCK_SKEW_SECONDS: u64 = 5;

/// Claims beyond the registered ones.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub client_id: String,
    pub scope: String,
    pub org_id: String,
}

/// What the token endpoint asks to be minted.
pub struct TokenRequest<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub audiences: &'a [String],
    pub client_id: &'a str,
    pub org_id: &'a str,
    pub scope: &'a str,
    pub jti: &'a str,
    pub now_seconds: i64,
    pub ttl_seconds: i64,
}

pub fn mint(keys: &KeySet, request: &TokenRequest<'_>) -> Result<String, jwt_simple::Error> {
    let now = UnixTimeStamp::from_secs(request.now_seconds.max(0) as u64);
    let custom = AccessClaims {
        client_id: request.client_id.to_owned(),
        scope: request.scope.to_owned(),
        org_id: request.org_id.to_owned(),
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
        max_token_length: Some(8 * 1024),
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
