//! This issuer's signing keys: generation through the entropy seam, rotation, the JWKS, and a
//! per-instance cache of the key set that picks up other instances' rotations.

use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::jose::jwk::{Alg, Verifier};
use crate::ports::crypto::{Es256Accelerator, RawEs256Signer};
use crate::ports::runtime::{random_bytes, Clock, Entropy};
use crate::ports::sql::{Database, DbError};
use crate::store::signing_keys::{self, StoredKey};

pub enum Signer {
    Es256(ES256KeyPair),
    /// ES256 through the platform's faster P-256 implementation, where it has one.
    Es256Accelerated(Box<dyn RawEs256Signer>),
    EdDsa(Ed25519KeyPair),
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

    /// A JWS with detached content (RFC 7515 Appendix F) over `payload`: the base64url protected
    /// header (`header` with this key's `alg` and `kid` set) and signature. Verifiers rebuild the
    /// signing input `protected.BASE64URL(payload)` from the payload they hold.
    pub fn sign_detached(
        &self,
        header: &serde_json::Value,
        payload: &[u8],
    ) -> Result<(String, String), jwt_simple::Error> {
        let mut header = header.clone();
        header["alg"] = self.alg.as_str().into();
        header["kid"] = self.kid.as_str().into();
        let protected = URL_SAFE_NO_PAD.encode(header.to_string());
        let input = format!("{protected}.{}", URL_SAFE_NO_PAD.encode(payload));
        let signature = match &self.signer {
            Signer::Es256Accelerated(raw) => raw
                .sign(input.as_bytes())
                .ok_or_else(|| jwt_simple::Error::msg("the platform's ES256 signer failed"))?,
            Signer::Es256(k) => {
                use p256::ecdsa::signature::Signer as _;
                let secret = k.key_pair().to_bytes();
                let key = p256::ecdsa::SigningKey::from_slice(&secret)
                    .map_err(|_| jwt_simple::Error::msg("unusable ES256 signing key"))?;
                let signature: p256::ecdsa::Signature = key.sign(input.as_bytes());
                signature.to_bytes().to_vec()
            }
            Signer::EdDsa(k) => {
                let pair = ed25519_compact::KeyPair::from_slice(&k.key_pair().to_bytes())
                    .map_err(|_| jwt_simple::Error::msg("unusable EdDSA signing key"))?;
                pair.sk.sign(input.as_bytes(), None).to_vec()
            }
        };
        Ok((protected, URL_SAFE_NO_PAD.encode(signature)))
    }

    /// JWS compact serialization (RFC 7515 §7.1) with the header jwt-simple would write.
    fn sign_compact<C: Serialize>(
        &self,
        raw: &dyn RawEs256Signer,
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
    pub fn ephemeral(
        alg: Alg,
        now: i64,
        entropy: &dyn Entropy,
        accelerate: Option<Es256Accelerator>,
    ) -> Result<KeySet, DbError> {
        let (kid, private_key, jwk) = generate(alg, entropy);
        let signer = signer(alg, &kid, &private_key, accelerate)?;
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
fn signer(
    alg: Alg,
    kid: &str,
    private_key: &[u8],
    accelerate: Option<Es256Accelerator>,
) -> Result<Signer, DbError> {
    let bad = |e: jwt_simple::Error| DbError::Decode(format!("key {kid}: {e}"));
    Ok(match alg {
        Alg::Es256 => {
            let pair = ES256KeyPair::from_bytes(private_key)
                .map_err(bad)?
                .with_key_id(kid);
            let public_point = pair.public_key().public_key().to_bytes_uncompressed();
            match accelerate.and_then(|build| build(private_key, &public_point)) {
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

/// A new key pair ready to store: (kid, private key bytes, public JWK). The private key is drawn
/// from the entropy seam, never from a library's own generator.
fn generate(alg: Alg, entropy: &dyn Entropy) -> (String, Vec<u8>, serde_json::Value) {
    match alg {
        Alg::Es256 => {
            // A random 256-bit string is a valid P-256 scalar unless it is zero or at least the
            // group order: a chance of about 2^-32, so one more draw settles it.
            let pair = loop {
                if let Ok(pair) = ES256KeyPair::from_bytes(&random_bytes::<32>(entropy)) {
                    break pair;
                }
            };
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
            let seed = ed25519_compact::Seed::new(random_bytes::<32>(entropy));
            let pair = Ed25519KeyPair::from_bytes(&ed25519_compact::KeyPair::from_seed(seed)[..])
                .expect("a key pair derived from a seed is valid");
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

fn insert_key(alg: Alg, now: i64, entropy: &dyn Entropy) -> (String, crate::ports::sql::Statement) {
    let (kid, private_key, jwk) = generate(alg, entropy);
    let statement = signing_keys::insert(&kid, alg.as_str(), private_key, &jwk.to_string(), now);
    (kid, statement)
}

/// Creates a signing key if none is active. Returns the new key's `kid`, if one was made.
pub async fn ensure_active_key(
    db: &dyn Database,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    alg: Alg,
) -> Result<Option<String>, DbError> {
    if signing_keys::has_active(db).await? {
        return Ok(None);
    }
    let (kid, insert) = insert_key(alg, clock.now_millis(), entropy);
    db.transaction(vec![insert]).await?;
    Ok(Some(kid))
}

/// Makes a new key the signing key; the old ones stay published until their tokens have expired.
pub async fn rotate(
    db: &dyn Database,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    alg: Alg,
) -> Result<String, DbError> {
    let now = clock.now_millis();
    let (kid, insert) = insert_key(alg, now, entropy);
    db.transaction(vec![signing_keys::retire_active(now), insert])
        .await?;
    Ok(kid)
}

/// How long a retired key stays published: its last token's lifetime plus clock-skew leeway.
pub fn publication_window_ms(token_ttl_seconds: i64) -> i64 {
    (token_ttl_seconds + 300) * 1000
}

async fn load(source: KeySource<'_>, now: i64) -> Result<Option<KeySet>, DbError> {
    let retired_after = now - publication_window_ms(source.token_ttl_seconds);
    let stored = signing_keys::published(source.db, retired_after).await?;
    let mut signing = None;
    let mut verifiers = Vec::new();
    let mut jwks = Vec::new();
    for key in stored {
        let (alg, jwk, signer) = decode(&key, source.accelerate)?;
        let (verifier, _) = Verifier::from_jwk(&jwk).map_err(DbError::Decode)?;
        if key.retired_at.is_none() && signing.is_none() {
            signing = Some(SigningKey {
                kid: key.kid.clone(),
                alg,
                signer,
            });
        }
        verifiers.push((key.kid, verifier));
        jwks.push(jwk);
    }
    Ok(signing.map(|signing| KeySet {
        loaded_at: now,
        signing,
        verifiers,
        jwks: json!({ "keys": jwks }).to_string(),
    }))
}

fn decode(
    key: &StoredKey,
    accelerate: Option<Es256Accelerator>,
) -> Result<(Alg, serde_json::Value, Signer), DbError> {
    let kid = &key.kid;
    let alg = Alg::parse(&key.alg)
        .ok_or_else(|| DbError::Decode(format!("key {kid}: alg {}", key.alg)))?;
    let jwk: serde_json::Value = serde_json::from_str(&key.public_jwk)
        .map_err(|e| DbError::Decode(format!("key {kid}: {e}")))?;
    let signer = signer(alg, kid, &key.private_key, accelerate)?;
    Ok((alg, jwk, signer))
}

/// Where a key ring loads its keys from (and, on an empty database, creates the first one).
#[derive(Clone, Copy)]
pub struct KeySource<'a> {
    pub db: &'a dyn Database,
    pub clock: &'a dyn Clock,
    pub entropy: &'a dyn Entropy,
    pub token_ttl_seconds: i64,
    /// The platform's faster ES256 signer, if it has one.
    pub accelerate: Option<Es256Accelerator>,
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
    pub async fn current(&self, source: KeySource<'_>) -> Result<Arc<KeySet>, DbError> {
        let now = source.clock.now_millis();
        if let Some(set) = self.cached().filter(|s| now - s.loaded_at < REFRESH_MS) {
            return Ok(set);
        }
        self.reload(source).await
    }

    pub async fn reload(&self, source: KeySource<'_>) -> Result<Arc<KeySet>, DbError> {
        let now = source.clock.now_millis();
        let set = match load(source, now).await? {
            Some(set) => set,
            None => {
                ensure_active_key(source.db, source.clock, source.entropy, Alg::Es256).await?;
                load(source, now)
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
        source: KeySource<'_>,
    ) -> Result<Arc<KeySet>, DbError> {
        let set = self.current(source).await?;
        if set.verifier(kid).is_some()
            || source.clock.now_millis() - set.loaded_at < UNKNOWN_KID_RELOAD_MS
        {
            return Ok(set);
        }
        self.reload(source).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic bytes: key generation must take all its randomness from the seam.
    struct FixedEntropy(u8);

    impl Entropy for FixedEntropy {
        fn fill(&self, buf: &mut [u8]) {
            buf.fill(self.0);
        }
    }

    #[test]
    fn keys_come_from_the_entropy_seam() {
        for alg in [Alg::Es256, Alg::EdDsa] {
            let (kid_a, key_a, _) = generate(alg, &FixedEntropy(1));
            let (kid_b, key_b, _) = generate(alg, &FixedEntropy(1));
            let (kid_c, _, _) = generate(alg, &FixedEntropy(2));
            assert_eq!((&kid_a, &key_a), (&kid_b, &key_b), "{alg:?}");
            assert_ne!(kid_a, kid_c, "{alg:?}");
        }
    }

    #[test]
    fn natively_es256_uses_the_accelerated_signer_and_verifies() {
        let set = KeySet::ephemeral(
            Alg::Es256,
            0,
            &FixedEntropy(7),
            crate::platform::es256_accelerator(),
        )
        .unwrap();
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
