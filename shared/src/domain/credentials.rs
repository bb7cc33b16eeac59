//! Credentials as the domain sees them: client secrets (shown once, stored as hashes, rotatable)
//! and registered public keys for `private_key_jwt`; never a secret in what is shown or logged.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{json, Map, Value};

use crate::domain::time::{optional_timestamp, timestamp};

/// Longest grace period during which a rotated-out secret still authenticates: one week.
pub const MAX_GRACE_PERIOD_SECONDS: i64 = 7 * 24 * 3600;

/// Members of a public JWK worth keeping; anything else a client sends is dropped, not stored.
pub const PUBLIC_JWK_MEMBERS: &[&str] = &["kty", "crv", "x", "y", "kid", "alg", "use"];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    #[default]
    ClientSecret,
    PrivateKeyJwt,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::ClientSecret => "client_secret",
            CredentialKind::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// A secret on its way to the caller, once. Redacted from `Debug` so it cannot reach a log.
#[derive(Clone)]
pub struct ClientSecret(pub String);

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

impl Serialize for ClientSecret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A credential's metadata: never its secret or the secret's hash.
#[derive(Clone, Debug, Serialize)]
pub struct Credential {
    pub id: String,
    pub agent_id: String,
    pub kind: CredentialKind,
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_jwk: Option<Value>,
    pub status: String,
    #[serde(serialize_with = "timestamp")]
    pub created_at: i64,
    #[serde(serialize_with = "optional_timestamp")]
    pub rotated_at: Option<i64>,
    #[serde(serialize_with = "optional_timestamp")]
    pub revoked_at: Option<i64>,
    #[serde(serialize_with = "optional_timestamp")]
    pub last_used_at: Option<i64>,
    #[serde(serialize_with = "optional_timestamp")]
    pub previous_secret_expires_at: Option<i64>,
}

/// A credential with the secret just generated for it (creation and rotation only).
#[derive(Debug, Serialize)]
pub struct IssuedCredential {
    #[serde(flatten)]
    pub credential: Credential,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<ClientSecret>,
}

/// Body of `POST /v1/agents/{id}/credentials`; `{}` asks for a client secret.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCredential {
    #[serde(default)]
    pub kind: CredentialKind,
    #[serde(default)]
    pub public_jwk: Option<Map<String, Value>>,
}

/// Body of `POST /v1/agents/{id}/credentials/{cid}/rotate`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    #[serde(default)]
    pub grace_period_seconds: Option<i64>,
}

/// Query of the credential list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl Credential {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }

    /// The details every credential audit event carries: never a secret.
    pub fn audit_details(&self) -> Value {
        json!({ "credential_id": self.id, "client_id": self.client_id, "kind": self.kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let secret = ClientSecret("aidp_sk_topsecret".into());
        assert!(!format!("{secret:?}").contains("topsecret"));
    }
}
