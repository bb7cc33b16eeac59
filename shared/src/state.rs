//! The state every handler receives: configuration, the platform's services, and the per-instance
//! caches built on them (signing keys, verified tokens, rate limiter).

use std::collections::{BTreeSet, HashMap};
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::domain::audit::{AuditDraft, Outcome};
use crate::domain::caller::OrgId;
use crate::domain::policies::CompiledPolicies;
use crate::domain::sealed::Keks;
use crate::jose::access_token::{self, TokenError, VerifiedToken};
use crate::jose::detached::SignatureMemo;
use crate::jose::keys::{KeyRing, KeySet, KeySource};
use crate::jose::remote_jwks::RemoteKeySets;
use crate::jose::verified_cache::VerifiedCache;
use crate::limits::Limiter;
use crate::ports::crypto::Es256Accelerator;
use crate::ports::kv::KeyValue;
use crate::ports::outbound::Outbound;
use crate::ports::runtime::{
    new_time_ordered_uuid, new_uuid, random_bytes, Background, Clock, Entropy,
};
use crate::ports::sql::{Database, DbError};

/// What a platform hands the core: its implementations of the seams.
pub struct Platform {
    pub db: Arc<dyn Database>,
    pub kv: Arc<dyn KeyValue>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    /// Outbound HTTP: trusted OIDC issuers' key sets and webhook deliveries. Redirects are never
    /// followed and every request has a deadline; a request to a URL a tenant chose
    /// (`Target::Tenant`) is refused, natively, when its name resolves to a private address.
    pub outbound: Arc<dyn Outbound>,
    /// A faster ES256 signer, where the platform has one.
    pub es256_accelerator: Option<Es256Accelerator>,
    /// Work after the response, where the platform has no per-request way (Workers does).
    pub background: Arc<dyn Background>,
    /// The key-encryption keys stored secrets are sealed under (`domain::sealed`).
    pub keks: Arc<Keks>,
}

/// Organizations whose requests on this instance enqueued webhook deliveries since the last look:
/// they are delivered right after the response (`services::webhooks::after_response`).
#[derive(Default)]
pub struct DeliveriesDue(Mutex<BTreeSet<OrgId>>);

impl DeliveriesDue {
    pub fn note(&self, org_id: &OrgId) {
        let mut orgs = self.0.lock().unwrap_or_else(|p| p.into_inner());
        orgs.insert(org_id.clone());
    }

    pub fn take(&self) -> Vec<OrgId> {
        let mut orgs = self.0.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *orgs).into_iter().collect()
    }
}

/// Organizations' compiled policies, each at the version of its set it was compiled from; a
/// newer version read with a request's own data replaces it (`services::policies::compiled`).
#[derive(Default)]
pub struct PolicySets(Mutex<HashMap<String, (i64, Arc<CompiledPolicies>)>>);

/// Organizations whose compiled policies one instance keeps; past it the cache starts over, which
/// costs recompiling, never a wrong decision.
const MAX_CACHED_POLICY_SETS: usize = 4096;

impl PolicySets {
    pub fn get(&self, org_id: &str, version: i64) -> Option<Arc<CompiledPolicies>> {
        let sets = self.0.lock().unwrap_or_else(|p| p.into_inner());
        sets.get(org_id)
            .filter(|(cached, _)| *cached == version)
            .map(|(_, compiled)| Arc::clone(compiled))
    }

    pub fn put(&self, org_id: &str, version: i64, compiled: Arc<CompiledPolicies>) {
        let mut sets = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if sets.len() >= MAX_CACHED_POLICY_SETS && !sets.contains_key(org_id) {
            sets.clear();
        }
        let newer = sets
            .get(org_id)
            .is_none_or(|(cached, _)| *cached <= version);
        if newer {
            sets.insert(org_id.to_owned(), (version, compiled));
        }
    }
}

/// What one instance computed for marketplace searches (rankings, facet samples), valid at one
/// marketplace version (`services::marketplace::version`). The version is bumped in the commit of
/// every change a listing shows, so an entry is reused only while nothing it depends on has
/// changed, and a newer version read by any request empties the memo.
pub struct SearchMemo<V>(Mutex<(i64, HashMap<String, Arc<V>>)>);

impl<V> Default for SearchMemo<V> {
    fn default() -> Self {
        SearchMemo(Mutex::new((i64::MIN, HashMap::new())))
    }
}

/// Searches one memo keeps; past it the memo starts over, which costs a recomputation, never a
/// wrong answer.
const MAX_MEMOIZED_SEARCHES: usize = 1024;

impl<V> SearchMemo<V> {
    pub fn get(&self, version: i64, key: &str) -> Option<Arc<V>> {
        let memo = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (memo.0 == version)
            .then(|| memo.1.get(key).cloned())
            .flatten()
    }

    /// Keeps `value`, computed after reading `version`; a value of an older version than the
    /// memo's is dropped (the request that read it raced a change).
    pub fn put(&self, version: i64, key: String, value: Arc<V>) {
        let mut memo = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if version < memo.0 {
            return;
        }
        if version > memo.0 || memo.1.len() >= MAX_MEMOIZED_SEARCHES {
            *memo = (version, HashMap::new());
        }
        memo.1.insert(key, value);
    }
}

pub struct Services {
    pub config: Config,
    pub db: Arc<dyn Database>,
    pub kv: Arc<dyn KeyValue>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub outbound: Arc<dyn Outbound>,
    pub es256_accelerator: Option<Es256Accelerator>,
    /// The key-encryption keys stored secrets are sealed under.
    pub keks: Arc<Keks>,
    pub keys: KeyRing,
    /// Trusted OIDC issuers' signing keys, fetched through `outbound` and cached per instance.
    pub issuer_keys: RemoteKeySets,
    pub verified_tokens: VerifiedCache,
    pub limiter: Limiter,
    pub background: Arc<dyn Background>,
    pub deliveries_due: DeliveriesDue,
    pub policy_sets: PolicySets,
    /// Signed A2A cards, by agent, card version and signing key.
    pub card_signatures: SignatureMemo,
    /// Marketplace rankings (document, score) by search and snapshot.
    pub search_rankings: SearchMemo<Vec<(i64, i64)>>,
    /// Marketplace facet samples (type, tags of each counted match) by search.
    pub search_facets: SearchMemo<Vec<(String, Vec<String>)>>,
}

#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

impl AppState {
    pub fn new(config: Config, platform: Platform) -> Self {
        if config.webhooks.allow_loopback {
            tracing::warn!(
                "DEVELOPMENT SWITCH ON: AGENTIDP_DEV_WEBHOOKS_ALLOW_LOOPBACK=on lets webhooks \
                 target loopback addresses over plain HTTP. Never use it in production."
            );
        }
        if config.webhooks.time_travel {
            tracing::warn!(
                "DEVELOPMENT SWITCH ON: AGENTIDP_DEV_TIME_TRAVEL=on lets anyone allowed to \
                 dispatch webhooks run the dispatcher at any time they choose. Never use it in \
                 production."
            );
        }
        let limiter = Limiter::new(
            config.rate_limits.clone(),
            config.tiers.clone(),
            platform.kv.clone(),
            platform.db.clone(),
            platform.clock.clone(),
            platform.entropy.clone(),
        );
        AppState(Arc::new(Services {
            config,
            db: platform.db,
            kv: platform.kv,
            clock: platform.clock,
            entropy: platform.entropy,
            outbound: platform.outbound,
            es256_accelerator: platform.es256_accelerator,
            keks: platform.keks,
            keys: KeyRing::new(),
            issuer_keys: RemoteKeySets::default(),
            verified_tokens: VerifiedCache::default(),
            limiter,
            background: platform.background,
            deliveries_due: DeliveriesDue::default(),
            policy_sets: PolicySets::default(),
            card_signatures: SignatureMemo::default(),
            search_rankings: SearchMemo::default(),
            search_facets: SearchMemo::default(),
        }))
    }

    pub fn now_millis(&self) -> i64 {
        self.clock.now_millis()
    }

    pub fn new_id(&self) -> String {
        new_uuid(self.entropy.as_ref())
    }

    /// `plaintext` sealed for `row` under the current key-encryption key, with a fresh nonce.
    pub fn seal(&self, row: &str, plaintext: &[u8]) -> String {
        self.keks.seal(row, plaintext, self.random())
    }

    pub fn random<const N: usize>(&self) -> [u8; N] {
        random_bytes::<N>(self.entropy.as_ref())
    }

    /// An audit event stamped now, for `Change::event`. Its id is time-ordered, so appending
    /// events writes the end of the id index rather than a random page of it per event.
    pub fn audit(
        &self,
        org_id: &str,
        actor: &str,
        action: &'static str,
        outcome: Outcome,
    ) -> AuditDraft {
        let now = self.now_millis();
        AuditDraft {
            org_id: org_id.to_owned(),
            id: new_time_ordered_uuid(now, self.entropy.as_ref()),
            occurred_at: now,
            actor: actor.to_owned(),
            action,
            agent_id: None,
            target: None,
            outcome,
            details: serde_json::Value::Object(Default::default()),
        }
    }

    fn key_source(&self) -> KeySource<'_> {
        KeySource {
            db: self.db.as_ref(),
            clock: self.clock.as_ref(),
            entropy: self.entropy.as_ref(),
            token_ttl_seconds: self.config.token_ttl_seconds,
            rotation: self.config.key_rotation,
            keks: &self.keks,
            accelerate: self.es256_accelerator,
        }
    }

    pub async fn key_set(&self) -> Result<Arc<KeySet>, DbError> {
        self.keys.current(self.key_source()).await
    }

    /// Reloads the key set now (after this instance rotated the signing key).
    pub async fn reload_key_set(&self) -> Result<Arc<KeySet>, DbError> {
        self.keys.reload(self.key_source()).await
    }

    /// Verifies an access token's signature and claims for any audience, through the
    /// per-instance memo. Revocation is the caller's to check, on every use.
    pub async fn verify_access_token(
        &self,
        token: &str,
    ) -> Result<Result<VerifiedToken, TokenError>, DbError> {
        let now = self.clock.now_seconds();
        if let Some(verified) = self.verified_tokens.get(token, now) {
            return Ok(Ok(verified));
        }
        let kid = match access_token::key_id(token) {
            Ok(kid) => kid,
            Err(e) => return Ok(Err(e)),
        };
        let keys = self.keys.verifier_set(&kid, self.key_source()).await?;
        let verified = access_token::verify(&keys, token, &self.config.issuer, None, now);
        if let Ok(v) = &verified {
            self.verified_tokens.insert(token, v, now);
        }
        Ok(verified)
    }
}
