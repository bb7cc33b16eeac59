//! This issuer's signing keys: generation through the entropy seam, rotation (an operator's, and
//! the scheduled one every instance keeps as it loads the keys), the JWKS, and a per-instance cache
//! of the key set that picks up other instances' rotations.

use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::config::{KeyRotation, KEY_ENCRYPTION_KEY};
use crate::domain::sealed::{self, Keks};
use crate::jose::jwk::{Alg, Verifier};
use crate::ports::crypto::{Es256Accelerator, RawEs256Signer};
use crate::ports::runtime::{random_bytes, Clock, Entropy};
use crate::ports::sql::{Database, DbError};
use crate::store::signing_keys::{self, StoredKey, START_SKEW_MS};

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

/// A new key's private half, sealed for its row: it is never stored in clear.
fn sealed_key(
    alg: Alg,
    entropy: &dyn Entropy,
    keks: &Keks,
) -> (String, Vec<u8>, serde_json::Value) {
    let (kid, private_key, jwk) = generate(alg, entropy);
    let sealed = keks.seal(
        &sealed::signing_key_row(&kid),
        &private_key,
        random_bytes(entropy),
    );
    (kid, sealed.into_bytes(), jwk)
}

fn insert_key(
    alg: Alg,
    now: i64,
    entropy: &dyn Entropy,
    keks: &Keks,
) -> (String, crate::ports::sql::Statement) {
    let (kid, private_key, jwk) = sealed_key(alg, entropy, keks);
    let statement = signing_keys::insert(&kid, alg.as_str(), private_key, &jwk.to_string(), now);
    (kid, statement)
}

/// Creates a signing key if none is active. Returns the new key's `kid`, if one was made.
pub async fn ensure_active_key(
    db: &dyn Database,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    keks: &Keks,
    alg: Alg,
) -> Result<Option<String>, DbError> {
    if signing_keys::has_active(db, clock.now_millis()).await? {
        return Ok(None);
    }
    let (kid, insert) = insert_key(alg, clock.now_millis(), entropy, keks);
    db.transaction(vec![insert]).await?;
    Ok(Some(kid))
}

/// Makes a new key the signing key; the old ones stay published until their tokens have expired.
pub async fn rotate(
    db: &dyn Database,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    keks: &Keks,
    alg: Alg,
) -> Result<String, DbError> {
    let now = clock.now_millis();
    let (kid, insert) = insert_key(alg, now, entropy, keks);
    db.transaction(vec![signing_keys::retire_active(now), insert])
        .await?;
    Ok(kid)
}

/// How long a retired key stays published: its last token's lifetime plus clock-skew leeway.
pub fn publication_window_ms(token_ttl_seconds: i64) -> i64 {
    (token_ttl_seconds + 300) * 1000
}

/// Keeps the rotation schedule from what `stored` shows at `now`: retires the keys the signing key
/// took over from (as of the moment it did), and schedules the next key once the signing key is
/// within `publish_ahead` of its period's end, to sign from then (or `publish_ahead` from now,
/// whichever is later), so that it is in every JWKS before its first token. Every instance runs
/// this; the writes are the same whoever makes them first, and scheduling is one conditional
/// insert, so instances agree on one signing key at every moment. Returns whether it wrote.
async fn keep_schedule(
    source: KeySource<'_>,
    rotation: KeyRotation,
    stored: &[StoredKey],
    now: i64,
) -> Result<bool, DbError> {
    let Some(signing) = stored
        .iter()
        .find(|k| k.retired_at.is_none() && k.created_at <= now + START_SKEW_MS)
    else {
        return Ok(false);
    };
    let mut writes = Vec::new();
    if stored
        .iter()
        .any(|k| k.retired_at.is_none() && k.created_at < signing.created_at)
    {
        writes.push(signing_keys::retire_superseded(signing.created_at));
    }
    let scheduled = stored
        .iter()
        .any(|k| k.retired_at.is_none() && k.created_at > now + START_SKEW_MS);
    let due = signing.created_at + rotation.period_ms;
    if !scheduled && now >= due - rotation.publish_ahead_ms {
        let alg = Alg::parse(&signing.alg).unwrap_or(Alg::Es256);
        let (kid, private_key, jwk) = sealed_key(alg, source.entropy, source.keks);
        let signs_from = due.max(now + rotation.publish_ahead_ms);
        writes.push(signing_keys::schedule(
            &kid,
            alg.as_str(),
            private_key,
            &jwk.to_string(),
            signs_from,
            now,
        ));
    }
    if writes.is_empty() {
        return Ok(false);
    }
    source.db.transaction(writes).await?;
    Ok(true)
}

async fn load(source: KeySource<'_>, now: i64) -> Result<Option<KeySet>, DbError> {
    let retired_after = now - publication_window_ms(source.token_ttl_seconds);
    let mut stored = signing_keys::published(source.db, retired_after).await?;
    if let Some(rotation) = source.rotation {
        if keep_schedule(source, rotation, &stored, now).await? {
            stored = signing_keys::published(source.db, retired_after).await?;
        }
    }
    let mut signing = None;
    let mut verifiers = Vec::new();
    let mut jwks = Vec::new();
    for key in stored {
        let (alg, jwk, signer) = decode(&key, source.keks, source.accelerate)?;
        let (verifier, _) = Verifier::from_jwk(&jwk).map_err(DbError::Decode)?;
        // Newest first: the first key not retired that signs by now; a scheduled key is only
        // published.
        if key.retired_at.is_none() && key.created_at <= now + START_SKEW_MS && signing.is_none() {
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
    keks: &Keks,
    accelerate: Option<Es256Accelerator>,
) -> Result<(Alg, serde_json::Value, Signer), DbError> {
    let kid = &key.kid;
    let alg = Alg::parse(&key.alg)
        .ok_or_else(|| DbError::Decode(format!("key {kid}: alg {}", key.alg)))?;
    let jwk: serde_json::Value = serde_json::from_str(&key.public_jwk)
        .map_err(|e| DbError::Decode(format!("key {kid}: {e}")))?;
    let private_key = keks
        .open(&sealed::signing_key_row(kid), &key.private_key)
        .map_err(|e| {
            DbError::Decode(format!(
                "signing key {kid}: {e} ({})",
                KEY_ENCRYPTION_KEY.name
            ))
        })?;
    let signer = signer(alg, kid, &private_key, accelerate)?;
    Ok((alg, jwk, signer))
}

/// Where a key ring loads its keys from (and, on an empty database, creates the first one).
#[derive(Clone, Copy)]
pub struct KeySource<'a> {
    pub db: &'a dyn Database,
    pub clock: &'a dyn Clock,
    pub entropy: &'a dyn Entropy,
    pub token_ttl_seconds: i64,
    /// Scheduled rotation, when on.
    pub rotation: Option<KeyRotation>,
    /// What the private keys are sealed under.
    pub keks: &'a Keks,
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
                ensure_active_key(
                    source.db,
                    source.clock,
                    source.entropy,
                    source.keks,
                    Alg::Es256,
                )
                .await?;
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

    struct StepClock(std::sync::atomic::AtomicI64);

    impl Clock for StepClock {
        fn now_millis(&self) -> i64 {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    fn kids_of(jwks: &str) -> Vec<String> {
        let jwks: serde_json::Value = serde_json::from_str(jwks).unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Ninety simulated days of two instances over one database, every half hour: they always
    /// sign with the same key, every token verifies against the JWKS for its whole lifetime, the
    /// JWKS never holds more than three keys, a key is published a day before it signs, and the
    /// schedule never holds two keys at once.
    /// A migrated embedded database of its own in a fresh directory (removed by the caller).
    async fn database(
        name: &str,
    ) -> (
        crate::platform::native::EmbeddedDatabase,
        std::path::PathBuf,
    ) {
        use crate::platform::native::{Durability, EmbeddedDatabase};
        let dir = std::env::temp_dir().join(format!("agentidp-keys-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = EmbeddedDatabase::open(&dir.join("keys.db"), Durability::Normal)
            .await
            .unwrap();
        crate::store::migrations::apply(&db, &StepClock(std::sync::atomic::AtomicI64::new(0)))
            .await
            .unwrap();
        (db, dir)
    }

    #[tokio::test]
    async fn scheduled_rotation_keeps_every_token_verifiable_for_ninety_days() {
        use std::sync::atomic::{AtomicI64, Ordering};
        let (db, dir) = database("ninety-days").await;
        let start = 1_700_000_000_000;
        let clock = StepClock(AtomicI64::new(start));
        let entropy = crate::platform::system::OsEntropy;
        let ttl_seconds = 3600;
        let day = 86_400_000;
        let source = KeySource {
            db: &db,
            clock: &clock,
            entropy: &entropy,
            token_ttl_seconds: ttl_seconds,
            rotation: Some(KeyRotation {
                period_ms: 30 * day,
                publish_ahead_ms: day,
            }),
            keks: &Keks::new(sealed::Kek::from_bytes(&[3; 32]), Vec::new()),
            accelerate: None,
        };
        let (first, second) = (KeyRing::new(), KeyRing::new());
        let mut live: Vec<(String, String, i64)> = Vec::new();
        let mut first_published = std::collections::HashMap::new();
        let mut signers = Vec::new();
        let step = 30 * 60 * 1000;
        for n in 0..(90 * 48) {
            let now = start + n * step;
            clock.0.store(now, Ordering::SeqCst);
            let (a, b) = tokio::join!(first.current(source), second.current(source));
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!(a.signing.kid, b.signing.kid, "at step {n}");
            let kids = kids_of(&a.jwks);
            assert!(kids.len() <= 3, "{} keys at step {n}", kids.len());
            for kid in &kids {
                first_published.entry(kid.clone()).or_insert(now);
            }
            if signers.last() != Some(&a.signing.kid) {
                let published = first_published[&a.signing.kid];
                assert!(
                    n == 0 || now - published >= day,
                    "{} signs {} ms after it was published",
                    a.signing.kid,
                    now - published
                );
                signers.push(a.signing.kid.clone());
            }
            let claims = Claims::create(Duration::from_days(3650)).with_issuer("i");
            let token = a.signing.sign(claims, "at+jwt").unwrap();
            live.push((a.signing.kid.clone(), token, now + ttl_seconds * 1000));
            live.retain(|(_, _, expires)| *expires > now);
            for (kid, token, _) in &live {
                let verifier = a.verifier(kid).unwrap_or_else(|| {
                    panic!("{kid} left the JWKS before its token expired (step {n})")
                });
                verifier
                    .verify::<NoCustomClaims>(token, VerificationOptions::default())
                    .unwrap();
            }
            let scheduled = db
                .query(
                    crate::ports::sql::Statement::new(
                        "SELECT COUNT(*) AS n FROM signing_keys \
                         WHERE retired_at IS NULL AND created_at > ?1",
                    )
                    .bind(now),
                )
                .await
                .unwrap();
            let scheduled: i64 = scheduled[0].get("n").unwrap();
            assert!(scheduled <= 1, "{scheduled} keys scheduled at step {n}");
        }
        // Ninety days in thirty-day periods: the first key and the two that took over on schedule.
        assert_eq!(signers.len(), 3, "{signers:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A clock that moves on at every reading, as a real one does between creating the first key
    /// and loading it, and as another instance's may stand a little behind.
    struct TickingClock(std::sync::atomic::AtomicI64);

    impl Clock for TickingClock {
        fn now_millis(&self) -> i64 {
            self.0.fetch_add(7, std::sync::atomic::Ordering::SeqCst)
        }
    }

    #[tokio::test]
    async fn a_key_stamped_a_moment_later_or_by_a_clock_ahead_signs_at_once() {
        let (db, dir) = database("ticking").await;
        let clock = TickingClock(std::sync::atomic::AtomicI64::new(1_700_000_000_000));
        let entropy = crate::platform::system::OsEntropy;
        let keks = Keks::new(sealed::Kek::from_bytes(&[4; 32]), Vec::new());
        let source = |clock: &'static dyn Clock| KeySource {
            db: &db,
            clock,
            entropy: &entropy,
            token_ttl_seconds: 3600,
            rotation: None,
            keks: &keks,
            accelerate: None,
        };
        let clock: &'static TickingClock = Box::leak(Box::new(clock));
        let first = KeyRing::new().reload(source(clock)).await.unwrap();
        // Another instance rotates with a clock two seconds ahead; this one still signs with the
        // new key at once, and creates none of its own.
        let ahead = StepClock(std::sync::atomic::AtomicI64::new(
            clock.now_millis() + 2_000,
        ));
        let rotated = rotate(&db, &ahead, &entropy, &keks, Alg::Es256)
            .await
            .unwrap();
        let again = KeyRing::new().reload(source(clock)).await.unwrap();
        assert_ne!(first.signing.kid, again.signing.kid);
        assert_eq!(again.signing.kid, rotated);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
