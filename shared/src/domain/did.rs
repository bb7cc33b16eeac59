//! `did:web` documents of published agents: their registered public keys as verification methods,
//! and where their A2A card and this deployment's OAuth metadata are.

use serde_json::{json, Map, Value};

use crate::domain::agent_card::Endpoints;

/// A registered public key of an agent: the `private_key_jwt` credential's id and its JWK.
pub struct AgentKey {
    pub credential_id: String,
    pub public_jwk: Map<String, Value>,
}

/// The DID document of `did` (W3C DID Core, with `JsonWebKey` verification methods as the W3C
/// Controlled Identifiers specification defines them). Every key authenticates the agent and
/// asserts for it: they are the keys its client assertions are signed with.
pub fn document(did: &str, keys: &[AgentKey], card_url: &str, endpoints: &Endpoints) -> Value {
    let methods: Vec<Value> = keys
        .iter()
        .map(|key| {
            json!({
                "id": format!("{did}#{}", key.credential_id),
                "type": "JsonWebKey",
                "controller": did,
                "publicKeyJwk": key.public_jwk,
            })
        })
        .collect();
    let references: Vec<Value> = keys
        .iter()
        .map(|key| Value::from(format!("{did}#{}", key.credential_id)))
        .collect();
    json!({
        "@context": ["https://www.w3.org/ns/did/v1", "https://www.w3.org/ns/cid/v1"],
        "id": did,
        "verificationMethod": methods,
        "authentication": references,
        "assertionMethod": references,
        "service": [
            { "id": format!("{did}#a2a-card"), "type": "A2AAgentCard", "serviceEndpoint": card_url },
            {
                "id": format!("{did}#oauth"),
                "type": "OAuthAuthorizationServer",
                "serviceEndpoint": endpoints.metadata,
            },
        ],
    })
}
