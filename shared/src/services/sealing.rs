//! Sealing at rest as a deployment runs it: the pass that seals what an older release stored in
//! clear, and the check, before serving, that every sealed value is under a key it was given.

use crate::config::KEY_ENCRYPTION_KEY;
use crate::domain::sealed::{self, Keks};
use crate::ports::runtime::{random_bytes, Entropy};
use crate::ports::sql::{Database, DbError, Statement};
use crate::store::sealed as store;

/// Seals every stored secret still in clear, in one transaction; returns how many. Each write
/// replaces only the value it read, so a rotation racing it keeps its own (sealed) value.
pub async fn seal_clear(
    db: &dyn Database,
    keks: &Keks,
    entropy: &dyn Entropy,
) -> Result<usize, DbError> {
    let statements: Vec<Statement> = store::all(db, true)
        .await?
        .iter()
        .filter(|secret| !sealed::is_sealed(&secret.value))
        .map(|secret| {
            let sealed = keks.seal(&secret.row(), &secret.value, random_bytes(entropy));
            store::replace(secret, &sealed)
        })
        .collect();
    let sealed = statements.len();
    if sealed > 0 {
        db.transaction(statements).await?;
    }
    Ok(sealed)
}

/// Whether the database holds any sealed secret: then it opens with its key-encryption key only.
pub async fn holds_sealed(db: &dyn Database) -> Result<bool, DbError> {
    Ok(store::all(db, false)
        .await?
        .iter()
        .any(|secret| sealed::is_sealed(&secret.value)))
}

/// Refuses a database holding secrets sealed under a key-encryption key this deployment was not
/// given, naming the setting, rather than failing later on the first token.
pub async fn check_keys(db: &dyn Database, keks: &Keks) -> Result<(), String> {
    let secrets = store::all(db, false)
        .await
        .map_err(|e| format!("reading the sealed secrets: {e}"))?;
    match secrets
        .iter()
        .find_map(|secret| sealed::sealed_by(&secret.value).filter(|id| !keks.knows(id)))
    {
        Some(id) => Err(format!(
            "the database holds secrets sealed under key-encryption key {id}, but {} gives key {}: \
             set {} to the key this database was sealed with",
            KEY_ENCRYPTION_KEY.name,
            keks.current().id(),
            KEY_ENCRYPTION_KEY.name
        )),
        None => Ok(()),
    }
}
