//! The deployment's own operations, for its operator: signing-key rotation, migration status, and
//! the detailed health of everything an instance depends on.

use serde::Serialize;
use serde_json::{json, Value};

use crate::domain::caller::Operator;
use crate::jose::jwk::Alg;
use crate::jose::keys;
use crate::ports::outbound::{OutboundRequest, Target};
use crate::services::ServiceError;
use crate::state::AppState;
use crate::store::{self, kv_keys, migrations, signing_keys};

/// The key that signs from now on; the previous one stays published until its tokens expire.
#[derive(Debug, Serialize)]
pub struct RotatedKey {
    pub kid: String,
    pub alg: &'static str,
    /// The key that signed until now, still in the JWKS for its tokens' lifetime.
    pub previous_kid: Option<String>,
    /// When the previous key leaves the JWKS (milliseconds since the epoch).
    pub previous_published_until: Option<i64>,
}

/// Makes a new key the signing key. This instance signs with it at once; other instances pick it
/// up within their key cache's refresh (30 s) and verify its tokens at once (an unknown `kid`
/// reloads the keys).
pub async fn rotate_signing_key(
    state: &AppState,
    _: &Operator,
    alg: Alg,
) -> Result<RotatedKey, ServiceError> {
    let previous = signing_keys::active(state.db.as_ref(), state.now_millis()).await?;
    let kid = keys::rotate(
        state.db.as_ref(),
        state.clock.as_ref(),
        state.entropy.as_ref(),
        &state.keks,
        alg,
    )
    .await?;
    state.reload_key_set().await?;
    let now = state.now_millis();
    tracing::info!(kid, previous = ?previous.as_ref().map(|p| &p.0), "operator rotated the signing key");
    Ok(RotatedKey {
        kid,
        alg: alg.as_str(),
        previous_published_until: previous
            .as_ref()
            .map(|_| now + keys::publication_window_ms(state.config.token_ttl_seconds)),
        previous_kid: previous.map(|(kid, _)| kid),
    })
}

/// Which migrations the database has applied, and which schema this binary knows.
#[derive(Debug, Serialize)]
pub struct MigrationStatus {
    /// The newest migration this binary knows.
    pub binary: &'static str,
    /// The newest migration the database has applied.
    pub database: Option<String>,
    /// Known to this binary, not yet applied (applied on an instance's next start).
    pub pending: Vec<&'static str>,
    pub applied: Vec<migrations::Applied>,
}

pub async fn migration_status(
    state: &AppState,
    _: &Operator,
) -> Result<MigrationStatus, ServiceError> {
    let applied = migrations::applied(state.db.as_ref()).await?;
    let pending = migrations::MIGRATIONS
        .iter()
        .map(|(version, _)| *version)
        .filter(|version| !applied.iter().any(|a| a.version == *version))
        .collect();
    Ok(MigrationStatus {
        binary: migrations::binary_version(),
        database: applied.iter().map(|a| a.version.clone()).max(),
        pending,
        applied,
    })
}

/// Each dependency's state: the database, the key-value store, outbound HTTP (the first trusted
/// issuer's key set, else this deployment's own `/health` through its public URL) and the active
/// signing key's age. `healthy` is false when any of them is down.
pub async fn health(state: &AppState, _: &Operator) -> (bool, Value) {
    let clock = state.clock.clone();
    let started = clock.now_millis();
    let database = match state.db.query(store::probe()).await {
        Ok(_) => json!({ "status": "ok", "latency_ms": clock.now_millis() - started }),
        Err(e) => json!({ "status": "unavailable", "error": e.to_string() }),
    };
    let started = clock.now_millis();
    let kv = match state.kv.get_many(&[kv_keys::HEALTH_PROBE.to_owned()]).await {
        Ok(_) => json!({ "status": "ok", "latency_ms": clock.now_millis() - started }),
        Err(e) => json!({ "status": "unavailable", "error": e.to_string() }),
    };
    let url = match state.config.trusted_issuers.first() {
        Some(issuer) => issuer.jwks_url.clone(),
        None => format!("{}/health", state.config.issuer),
    };
    let started = clock.now_millis();
    let request = OutboundRequest {
        method: "GET",
        url: url.clone(),
        headers: Vec::new(),
        body: Vec::new(),
        target: Target::Operator,
    };
    let outbound = match state.outbound.send(request).await {
        Ok(response) if (200..300).contains(&response.status) => {
            json!({ "status": "ok", "url": url, "latency_ms": clock.now_millis() - started })
        }
        Ok(response) => json!({
            "status": "unavailable", "url": url,
            "error": format!("answered {}", response.status),
        }),
        Err(e) => json!({ "status": "unavailable", "url": url, "error": e.to_string() }),
    };
    // Loading the key set is the issuance path itself: it creates the first key of a new
    // deployment and unseals the active one, so "ok" means this instance can sign.
    let key = match state.key_set().await {
        Err(e) => Err(e),
        Ok(_) => signing_keys::active(state.db.as_ref(), state.now_millis()).await,
    };
    let key = match key {
        Ok(Some((kid, created_at))) => json!({
            "status": "ok",
            "kid": kid,
            "created_at": created_at,
            "age_seconds": (clock.now_millis() - created_at) / 1000,
        }),
        Ok(None) => json!({ "status": "unavailable", "error": "no active signing key" }),
        Err(e) => json!({ "status": "unavailable", "error": e.to_string() }),
    };
    let schema = match migration_status(state, &Operator::verified()).await {
        Ok(status) => json!({
            "status": if status.pending.is_empty() { "ok" } else { "pending" },
            "binary": status.binary,
            "database": status.database,
        }),
        Err(e) => json!({ "status": "unavailable", "error": e.to_string() }),
    };
    let healthy = [&database, &kv, &outbound, &key]
        .iter()
        .all(|check| check["status"] == "ok");
    let body = json!({
        "status": if healthy { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "checks": {
            "database": database,
            "key_value": kv,
            "outbound_http": outbound,
            "signing_key": key,
            "schema": schema,
        },
    });
    (healthy, body)
}
