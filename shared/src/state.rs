//! The state every handler receives: configuration plus the platform's services.

use std::ops::Deref;
use std::sync::Arc;

use crate::audit::{AuditDraft, Outcome};
use crate::config::Config;
use crate::error::ApiError;
use crate::keys::{KeyRing, KeySet};
use crate::kv::KeyValue;
use crate::rate_limit::Limiter;
use crate::runtime::{new_time_ordered_uuid, new_uuid, Clock, Entropy};
use crate::sql::{Database, DbError};
use crate::tokens::VerifiedCache;

pub struct Services {
    pub config: Config,
    pub db: Arc<dyn Database>,
    pub kv: Arc<dyn KeyValue>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub keys: KeyRing,
    pub verified_tokens: VerifiedCache,
    pub limiter: Limiter,
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
    pub fn new(
        config: Config,
        db: Arc<dyn Database>,
        kv: Arc<dyn KeyValue>,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn Entropy>,
    ) -> Self {
        AppState(Arc::new(Services {
            config,
            db,
            kv,
            clock,
            entropy,
            keys: KeyRing::new(),
            verified_tokens: VerifiedCache::default(),
            limiter: Limiter::default(),
        }))
    }

    pub fn now_millis(&self) -> i64 {
        self.clock.now_millis()
    }

    pub fn new_id(&self) -> String {
        new_uuid(self.entropy.as_ref())
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

    pub async fn key_set(&self) -> Result<Arc<KeySet>, DbError> {
        self.keys
            .current(
                self.db.as_ref(),
                self.clock.as_ref(),
                self.config.token_ttl_seconds,
            )
            .await
    }

    pub async fn key_set_for(&self, kid: &str) -> Result<Arc<KeySet>, DbError> {
        self.keys
            .verifier_set(
                kid,
                self.db.as_ref(),
                self.clock.as_ref(),
                self.config.token_ttl_seconds,
            )
            .await
    }
}

impl AuditDraft {
    pub fn agent(mut self, agent_id: &str) -> Self {
        self.agent_id = Some(agent_id.to_owned());
        self
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// Shorthand for handlers: a database failure becomes the right problem.
pub fn db<T>(result: Result<T, DbError>) -> Result<T, ApiError> {
    result.map_err(ApiError::from)
}
