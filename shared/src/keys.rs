//! Token signing keys: generation, rotation, the JWKS, and a per-instance cache of the key set.

use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::runtime::Clock;
use crate::sql::{Database, DbError, Row, Statement};

/// Signature algorithm of a signing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    Es256,
    EdDsa,
}

impl Alg {
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }

    pub fn parse(name: &str) -> Option<Alg> {
        match name {
            "ES256" => Some(Alg::Es256),
            "EdDSA" => Some(Alg::EdDsa),
            _ => None,
        }
    }
}

pub enum Signer {
    Es256(ES256KeyPair),
    /// ES256 through the platform's faster P-256 implementation, where it has one.
    Es256Accelerated(Box<dyn crate::platform::RawEs256Signer>),
    EdDsa(Ed25519KeyPair),
}

pub enum Verifier {
    Es256(ES256PublicKey),
    EdDsa(Ed25519PublicKey),
}

impl Verifier {
    /// Builds a verifier from a public JWK (RFC 7517): EC P-256 or OKP Ed25519 only.
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<(Verifier, Alg), String> {
        let field = |name: &str| {
            jwk.get(name)
                .and_then(|v| v.as_str())
                .ok_or_else(|| format!("JWK is missing `{name}`"))
        };
        let decode = |name: &str| {
            URL_SAFE_NO_PAD
                .decode(field(name)?)
                .map_err(|_| format!("JWK `{name}` is not base64url"))
        };
        if jwk.get("d").is_some() {
            return Err("JWK contains a private key (`d`); register only the public key".into());
        }
        match (field("kty")?, field("crv")?) {
            ("EC", "P-256") => {
                let (x, y) = (decode("x")?, decode("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err("JWK `x` and `y` must be 32 bytes for P-256".into());
                }
                let mut sec1 = Vec::with_capacity(65);
                sec1.push(4);
                sec1.extend_from_slice(&x);
                sec1.extend_from_slice(&y);
                let key = ES256PublicKey::from_bytes(&sec1)
                    .map_err(|_| "JWK is not a point on P-256".to_owned())?;
                Ok((Verifier::Es256(key), Alg::Es256))
            }
            ("OKP", "Ed25519") => {
                let x = decode("x")?;
                let key = Ed25519PublicKey::from_bytes(&x)
                    .map_err(|_| "JWK `x` is not an Ed25519 public key".to_owned())?;
                Ok((Verifier::EdDsa(key), Alg::EdDsa))
            }
            (kty, crv) => Err(format!(
                "unsupported key type {kty}/{crv}: use EC P-256 (ES256) or OKP Ed25519 (EdDSA)"
            )),
        }
    }

    /// Verifies with the algorithm pinned to the key's type: `alg: none`, HS256 confusion and
    /// algorithm swaps fail here.
    pub fn verify<C: Serialize + DeserializeOwned>(
        &self,
        token: &str,
        options: VerificationOptions,
    ) -> Result<JWTClaims<C>, jwt_simple::Error> {
        match self {
            Verifier::Es256(k) => k.verify_token::<C>(token, Some(options)),
            Verifier::EdDsa(k) => k.verify_token::<C>(token, Some(options)),
        }
    }
}

pub struct SigningKey {
    pub kid: String,
    pub alg: Alg,
    pub signer: Signer,
}

impl SigningKey {
    pub fn sign<C: Serialize + DeserializeOwned>(
        &self,
        claims: JWTClaims<C>,
        typ: &str,
    ) -> Result<String, jwt_simple::Error> {
        let options = HeaderOptions {
            signature_type: Some(typ.to_owned()),
            ..Default::default()
        };
        match &self.signer {
            Signer::Es256(k) => k.sign_with_options(claims, &options),
            Signer::EdDsa(k) => k.sign_with_options(claims, &options),
            Signer::Es256Accelerated(raw) => self.sign_compact(raw.as_ref(), &claims, typ),
        }
    }

    /// JWS compact serialization (RFC 7515 §7.1) with the header jwt-simple would write.
    fn sign_compact<C: Serialize>(
        &self,
        raw: &dyn crate::platform::RawEs256Signer,
        claims: &JWTClaims<C>,
        typ: &str,
    ) -> Result<String, jwt_simple::Error> {
        let header = json!({ "alg": "ES256", "typ": typ, "kid": self.kid });
        let payload = serde_json::to_vec(claims)?;
        let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let signature = raw
            .sign(token.as_bytes())
            .ok_or_else(|| jwt_simple::Error::msg("the platform's ES256 signer failed"))?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(token)
    }
}

/// The keys an instance signs and verifies with, and the JWKS document it publishes.
pub struct KeySet {
    pub loaded_at: i64,
    pub signing: SigningKey,
    pub verifiers: Vec<(String, Verifier)>,
    pub jwks: String,
}

impl KeySet {
    pub fn verifier(&self, kid: &str) -> Option<&Verifier> {
        self.verifiers
            .iter()
            .find(|(k, _)| k == kid)
            .map(|(_, v)| v)
    }
}

impl KeySet {
    /// A fresh single-key set that is never stored: for benchmarks and tools.
    pub fn ephemeral(alg: Alg, now: i64) -> Result<KeySet, DbError> {
        let (kid, private_key, jwk) = generate(alg);
        let signer = signer(alg, &kid, &private_key)?;
        let (verifier, _) = Verifier::from_jwk(&jwk).map_err(DbError::Decode)?;
        Ok(KeySet {
            loaded_at: now,
            signing: SigningKey {
                kid: kid.clone(),
                alg,
                signer,
            },
            verifiers: vec![(kid, verifier)],
            jwks: json!({ "keys": [jwk] }).to_string(),
        })
    }
}

/// The signing half of a stored or generated key.
fn signer(alg: Alg, kid: &str, private_key: &[u8]) -> Result<Signer, DbError> {
    let bad = |e: jwt_simple::Error| DbError::Decode(format!("key {kid}: {e}"));
    Ok(match alg {
        Alg::Es256 => {
            let pair = ES256KeyPair::from_bytes(private_key)
                .map_err(bad)?
                .with_key_id(kid);
            let public_point = pair.public_key().public_key().to_bytes_uncompressed();
            match crate::platform::accelerated_es256(private_key, &public_point) {
                Some(raw) => Signer::Es256Accelerated(raw),
                None => Signer::Es256(pair),
            }
        }
        Alg::EdDsa => Signer::EdDsa(
            Ed25519KeyPair::from_bytes(private_key)
                .map_err(bad)?
                .with_key_id(kid),
        ),
    })
}

/// A generated key pair ready to store: (kid, private key bytes, public JWK).
fn generate(alg: Alg) -> (String, Vec<u8>, serde_json::Value) {
    match alg {
        Alg::Es256 => {
            let pair = ES256KeyPair::generate();
            let public = pair.public_key();
            let point = public.public_key().to_bytes_uncompressed();
            let kid = public.jwk_thumbprint();
            let jwk = json!({
                "kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
                "kid": kid, "alg": "ES256", "use": "sig",
            });
            (kid, pair.to_bytes(), jwk)
        }
        Alg::EdDsa => {
            let pair = Ed25519KeyPair::generate();
            let public = pair.public_key();
            let kid = public.jwk_thumbprint();
            let jwk = json!({
                "kty": "OKP", "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(public.to_bytes()),
                "kid": kid, "alg": "EdDSA", "use": "sig",
            });
            (kid, pair.to_bytes(), jwk)
        }
    }
}

fn insert_key(alg: Alg, now: i64) -> (String, Statement) {
    let (kid, private_key, jwk) = generate(alg);
    let statement = Statement::new(
        "INSERT INTO signing_keys (kid, alg, private_key, public_jwk, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(&kid)
    .bind(alg.as_str())
    .bind(private_key)
    .bind(jwk.to_string())
    .bind(now);
    (kid, statement)
}

/// Creates a signing key if none is active. Returns the new key's `kid`, if one was made.
pub async fn ensure_active_key(
    db: &dyn Database,
    clock: &dyn Clock,
    alg: Alg,
) -> Result<Option<String>, DbError> {
    let active = db
        .query(Statement::new(
            "SELECT kid FROM signing_keys WHERE retired_at IS NULL LIMIT 1",
        ))
        .await?;
    if !active.is_empty() {
        return Ok(None);
    }
    let (kid, insert) = insert_key(alg, clock.now_millis());
    db.transaction(vec![insert]).await?;
    Ok(Some(kid))
}

/// Makes a new key the signing key; the old ones stay published until their tokens have expired.
pub async fn rotate(db: &dyn Database, clock: &dyn Clock, alg: Alg) -> Result<String, DbError> {
    let now = clock.now_millis();
    let (kid, insert) = insert_key(alg, now);
    db.transaction(vec![
        Statement::new("UPDATE signing_keys SET retired_at = ?1 WHERE retired_at IS NULL")
            .bind(now),
        insert,
    ])
    .await?;
    Ok(kid)
}

/// How long a retired key stays published: its last token's lifetime plus clock-skew leeway.
fn publication_window_ms(token_ttl_seconds: i64) -> i64 {
    (token_ttl_seconds + 300) * 1000
}

async fn load(
    db: &dyn Database,
    now: i64,
    token_ttl_seconds: i64,
) -> Result<Option<KeySet>, DbError> {
    let rows = db
        .query(
            Statement::new(
                "SELECT kid, alg, private_key, public_jwk, retired_at FROM signing_keys \
                 WHERE retired_at IS NULL OR retired_at > ?1 ORDER BY created_at DESC, kid",
            )
            .bind(now - publication_window_ms(token_ttl_seconds)),
        )
        .await?;
    let mut signing = None;
    let mut verifiers = Vec::new();
    let mut jwks = Vec::new();
    for row in &rows {
        let (kid, alg, jwk, key_pair) = decode_row(row)?;
        let retired: Option<i64> = row.get("retired_at")?;
        let (verifier, _) = Verifier::from_jwk(&jwk).map_err(DbError::Decode)?;
        if retired.is_none() && signing.is_none() {
            signing = Some(SigningKey {
                kid: kid.clone(),
                alg,
                signer: key_pair,
            });
        }
        verifiers.push((kid, verifier));
        jwks.push(jwk);
    }
    Ok(signing.map(|signing| KeySet {
        loaded_at: now,
        signing,
        verifiers,
        jwks: json!({ "keys": jwks }).to_string(),
    }))
}

fn decode_row(row: &Row) -> Result<(String, Alg, serde_json::Value, Signer), DbError> {
    let kid: String = row.get("kid")?;
    let alg_name: String = row.get("alg")?;
    let alg = Alg::parse(&alg_name)
        .ok_or_else(|| DbError::Decode(format!("key {kid}: alg {alg_name}")))?;
    let private_key: Vec<u8> = row.get("private_key")?;
    let jwk: serde_json::Value = serde_json::from_str(&row.get::<String>("public_jwk")?)
        .map_err(|e| DbError::Decode(format!("key {kid}: {e}")))?;
    let signer = signer(alg, &kid, &private_key)?;
    Ok((kid, alg, jwk, signer))
}

/// Caches the key set per instance; other instances' rotations show up within `REFRESH_MS`.
#[derive(Default)]
pub struct KeyRing {
    cached: RwLock<Option<Arc<KeySet>>>,
}

const REFRESH_MS: i64 = 30_000;
/// An unknown `kid` may mean a rotation elsewhere, but must not let callers force a reload per request.
const UNKNOWN_KID_RELOAD_MS: i64 = 5_000;

impl KeyRing {
    pub fn new() -> Self {
        KeyRing::default()
    }

    fn cached(&self) -> Option<Arc<KeySet>> {
        self.cached
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The current key set, loading (and at the edge, creating) it when stale.
    pub async fn current(
        &self,
        db: &dyn Database,
        clock: &dyn Clock,
        token_ttl_seconds: i64,
    ) -> Result<Arc<KeySet>, DbError> {
        let now = clock.now_millis();
        if let Some(set) = self.cached().filter(|s| now - s.loaded_at < REFRESH_MS) {
            return Ok(set);
        }
        self.reload(db, clock, token_ttl_seconds).await
    }

    pub async fn reload(
        &self,
        db: &dyn Database,
        clock: &dyn Clock,
        token_ttl_seconds: i64,
    ) -> Result<Arc<KeySet>, DbError> {
        let now = clock.now_millis();
        let set = match load(db, now, token_ttl_seconds).await? {
            Some(set) => set,
            None => {
                ensure_active_key(db, clock, Alg::Es256).await?;
                load(db, now, token_ttl_seconds)
                    .await?
                    .ok_or_else(|| DbError::Other("no signing key after creating one".into()))?
            }
        };
        let set = Arc::new(set);
        *self.cached.write().unwrap_or_else(|p| p.into_inner()) = Some(set.clone());
        Ok(set)
    }

    /// The verifier for `kid`, reloading at most every few seconds when it is unknown.
    pub async fn verifier_set(
        &self,
        kid: &str,
        db: &dyn Database,
        clock: &dyn Clock,
        token_ttl_seconds: i64,
    ) -> Result<Arc<KeySet>, DbError> {
        let set = self.current(db, clock, token_ttl_seconds).await?;
        if set.verifier(kid).is_some() || clock.now_millis() - set.loaded_at < UNKNOWN_KID_RELOAD_MS
        {
            return Ok(set);
        }
        self.reload(db, clock, token_ttl_seconds).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natively_es256_uses_the_accelerated_signer_and_verifies() {
        let set = KeySet::ephemeral(Alg::Es256, 0).unwrap();
        assert!(
            matches!(set.signing.signer, Signer::Es256Accelerated(_)),
            "the native build should sign with the platform's P-256"
        );
        let claims = Claims::create(Duration::from_secs(60)).with_issuer("i");
        let token = set.signing.sign(claims, "at+jwt").unwrap();
        let (_, verifier) = &set.verifiers[0];
        verifier
            .verify::<NoCustomClaims>(&token, VerificationOptions::default())
            .unwrap();
    }
}
