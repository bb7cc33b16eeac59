//! Every stored secret that is sealed at rest, as the sealing pass and the start-up check read
//! them: signing keys' private keys and webhook subscriptions' signing secrets.

use crate::domain::sealed;
use crate::ports::sql::{Database, DbError, Statement};

/// Where a stored secret lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    SigningKey,
    WebhookSecret,
    WebhookPreviousSecret,
}

/// One stored secret: its row (the associated data it is sealed for) and its value as stored.
#[derive(Clone, Debug)]
pub struct StoredSecret {
    pub column: Column,
    pub id: String,
    pub value: Vec<u8>,
}

impl StoredSecret {
    /// The associated data the value is (to be) sealed for.
    pub fn row(&self) -> String {
        match self.column {
            Column::SigningKey => sealed::signing_key_row(&self.id),
            Column::WebhookSecret | Column::WebhookPreviousSecret => sealed::webhook_row(&self.id),
        }
    }
}

/// The stored secrets: every one, or (`only_clear`) those not sealed yet, filtered in SQL so that
/// the scheduled pass transfers nothing once all are sealed.
pub async fn all(db: &dyn Database, only_clear: bool) -> Result<Vec<StoredSecret>, DbError> {
    let (keys, subscriptions) = if only_clear {
        (
            // `sealed.v1.` as bytes: the private keys are BLOBs.
            "SELECT kid, private_key FROM signing_keys \
             WHERE instr(private_key, X'7365616c65642e76312e') != 1",
            "SELECT id, secret, previous_secret FROM webhook_subscriptions \
             WHERE secret NOT LIKE 'sealed.v1.%' OR previous_secret NOT LIKE 'sealed.v1.%'",
        )
    } else {
        (
            "SELECT kid, private_key FROM signing_keys",
            "SELECT id, secret, previous_secret FROM webhook_subscriptions",
        )
    };
    let mut secrets = Vec::new();
    for row in db.query(Statement::new(keys)).await? {
        secrets.push(StoredSecret {
            column: Column::SigningKey,
            id: row.get("kid")?,
            value: row.get("private_key")?,
        });
    }
    for row in db.query(Statement::new(subscriptions)).await? {
        let id: String = row.get("id")?;
        let secret: String = row.get("secret")?;
        secrets.push(StoredSecret {
            column: Column::WebhookSecret,
            id: id.clone(),
            value: secret.into_bytes(),
        });
        if let Some(previous) = row.get::<Option<String>>("previous_secret")? {
            secrets.push(StoredSecret {
                column: Column::WebhookPreviousSecret,
                id,
                value: previous.into_bytes(),
            });
        }
    }
    Ok(secrets)
}

/// Replaces `secret`'s stored value with `sealed`, only if it is still the value read (a
/// concurrent rotation wins, and its new value is sealed already).
pub fn replace(secret: &StoredSecret, sealed: &str) -> Statement {
    let sql = match secret.column {
        Column::SigningKey => {
            "UPDATE signing_keys SET private_key = ?1 WHERE kid = ?2 AND private_key = ?3"
        }
        Column::WebhookSecret => {
            "UPDATE webhook_subscriptions SET secret = ?1 WHERE id = ?2 AND secret = ?3"
        }
        Column::WebhookPreviousSecret => {
            "UPDATE webhook_subscriptions SET previous_secret = ?1 \
             WHERE id = ?2 AND previous_secret = ?3"
        }
    };
    let statement = Statement::new(sql);
    // Signing keys are BLOBs, webhook secrets TEXT: each is written and compared as it is stored.
    if secret.column == Column::SigningKey {
        statement
            .bind(sealed.as_bytes().to_vec())
            .bind(secret.id.as_str())
            .bind(secret.value.clone())
    } else {
        statement
            .bind(sealed)
            .bind(secret.id.as_str())
            .bind(String::from_utf8_lossy(&secret.value).into_owned())
    }
}
