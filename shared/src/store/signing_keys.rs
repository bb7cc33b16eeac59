//! The `signing_keys` table: token signing keys, the active one, the next one scheduled (its
//! `created_at`, when it starts signing, still ahead) and those retired but still published.

use crate::ports::sql::{Database, DbError, Statement};

/// A key as stored; `jose::keys` turns it into a signer and a verifier.
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub private_key: Vec<u8>,
    pub public_jwk: String,
    /// When it signs from (in the future for a scheduled key).
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// A key whose start is this close counts as started: another instance's clock (or this one's, a
/// moment later) may have stamped it. Scheduled keys start at least a minute ahead, so none is
/// taken for one that has started.
pub const START_SKEW_MS: i64 = 5_000;

pub async fn has_active(db: &dyn Database, now: i64) -> Result<bool, DbError> {
    let statement = Statement::new(
        "SELECT kid FROM signing_keys WHERE retired_at IS NULL AND created_at <= ?1 LIMIT 1",
    )
    .bind(now + START_SKEW_MS);
    Ok(db.query_one(statement).await?.is_some())
}

/// The active key's id and creation time, if there is one.
pub async fn active(db: &dyn Database, now: i64) -> Result<Option<(String, i64)>, DbError> {
    let statement = Statement::new(
        "SELECT kid, created_at FROM signing_keys WHERE retired_at IS NULL AND created_at <= ?1 \
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(now + START_SKEW_MS);
    match db.query_one(statement).await? {
        Some(row) => Ok(Some((row.get("kid")?, row.get("created_at")?))),
        None => Ok(None),
    }
}

pub fn insert(kid: &str, alg: &str, private_key: Vec<u8>, public_jwk: &str, now: i64) -> Statement {
    Statement::new(
        "INSERT INTO signing_keys (kid, alg, private_key, public_jwk, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(kid)
    .bind(alg)
    .bind(private_key)
    .bind(public_jwk)
    .bind(now)
}

/// Schedules the next key to sign from `signs_from`, unless another instance already scheduled
/// one (a key not retired and not yet signing at `now`): one statement, so two instances racing
/// to schedule end with one key.
pub fn schedule(
    kid: &str,
    alg: &str,
    private_key: Vec<u8>,
    public_jwk: &str,
    signs_from: i64,
    now: i64,
) -> Statement {
    Statement::new(
        "INSERT INTO signing_keys (kid, alg, private_key, public_jwk, created_at) \
         SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS \
         (SELECT 1 FROM signing_keys WHERE retired_at IS NULL AND created_at > ?6)",
    )
    .bind(kid)
    .bind(alg)
    .bind(private_key)
    .bind(public_jwk)
    .bind(signs_from)
    .bind(now + START_SKEW_MS)
}

/// Retires every key the key signing from `signs_from` took over from, as of that moment: the
/// same values whichever instance writes them first.
pub fn retire_superseded(signs_from: i64) -> Statement {
    Statement::new(
        "UPDATE signing_keys SET retired_at = ?1 WHERE retired_at IS NULL AND created_at < ?1",
    )
    .bind(signs_from)
}

/// Retires the active key and any scheduled one (an operator's rotation starts the schedule over).
pub fn retire_active(now: i64) -> Statement {
    Statement::new("UPDATE signing_keys SET retired_at = ?1 WHERE retired_at IS NULL").bind(now)
}

/// The active key and every key retired after `retired_after`, newest first.
pub async fn published(db: &dyn Database, retired_after: i64) -> Result<Vec<StoredKey>, DbError> {
    let statement = Statement::new(
        "SELECT kid, alg, private_key, public_jwk, created_at, retired_at FROM signing_keys \
         WHERE retired_at IS NULL OR retired_at > ?1 ORDER BY created_at DESC, kid",
    )
    .bind(retired_after);
    db.query(statement)
        .await?
        .iter()
        .map(|row| {
            Ok(StoredKey {
                kid: row.get("kid")?,
                alg: row.get("alg")?,
                private_key: row.get("private_key")?,
                public_jwk: row.get("public_jwk")?,
                created_at: row.get("created_at")?,
                retired_at: row.get("retired_at")?,
            })
        })
        .collect()
}
