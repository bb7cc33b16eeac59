//! A2A Agent Cards as this identity provider issues them: the card of a published agent, its
//! RFC 8785 (JCS) canonical form, and the detached JWS signing input the card's signature covers.

use serde_json::{json, Map, Value};

use crate::domain::marketplace::PublicAgent;

/// The A2A protocol version the cards follow.
pub const A2A_PROTOCOL_VERSION: &str = "0.3.0";

/// The extension that carries the agent's DID: A2A cards have no member for it.
pub const DID_EXTENSION_URI: &str = "urn:agentidp:a2a:extension:did:v1";

/// The security scheme name the card's `security` requirement refers to.
const SCHEME: &str = "agentidp";

/// Where this deployment's documents are, for a card's links.
pub struct Endpoints<'a> {
    pub issuer: &'a str,
    pub token: String,
    pub metadata: String,
    pub jwks: String,
    pub listing: String,
    pub did_document: String,
}

impl<'a> Endpoints<'a> {
    pub fn of(issuer: &'a str, agent_id: &str) -> Endpoints<'a> {
        let base = issuer.trim_end_matches('/');
        Endpoints {
            issuer,
            token: format!("{base}/oauth2/token"),
            metadata: format!("{base}/.well-known/oauth-authorization-server"),
            jwks: format!("{base}/.well-known/jwks.json"),
            listing: format!("{base}/v1/marketplace/agents/{agent_id}"),
            did_document: format!("{base}/agents/{agent_id}/did.json"),
        }
    }
}

/// The card of a published agent, without `signatures`. Only strings, booleans, arrays and
/// objects: no number, so every JCS implementation canonicalises it to the same bytes.
pub fn card(agent: &PublicAgent, provider: &str, endpoints: &Endpoints) -> Value {
    let scopes: Map<String, Value> = agent
        .capabilities
        .iter()
        .map(|c| (c.clone(), Value::from(format!("The `{c}` capability"))))
        .collect();
    let skills: Vec<Value> = agent
        .skills
        .iter()
        .map(|s| {
            let mut skill = json!({
                "id": s.id,
                "name": s.name,
                "description": s.description,
                "tags": s.tags,
            });
            if !s.examples.is_empty() {
                skill["examples"] = json!(s.examples);
            }
            skill
        })
        .collect();
    let description = if agent.description.is_empty() {
        format!("{} ({})", agent.name, agent.agent_type)
    } else {
        agent.description.clone()
    };
    let mut card = json!({
        "protocolVersion": A2A_PROTOCOL_VERSION,
        "name": agent.name,
        "description": description,
        // Without its own A2A endpoint, the card points at the agent's public listing.
        "url": agent.a2a_url.clone().unwrap_or_else(|| endpoints.listing.clone()),
        "preferredTransport": "JSONRPC",
        "version": agent.version.clone().unwrap_or_else(|| "unversioned".to_owned()),
        "provider": { "organization": provider, "url": endpoints.issuer },
        "capabilities": {
            "extensions": [{
                "uri": DID_EXTENSION_URI,
                "description": "The agent's W3C DID (did:web), whose document lists the keys it authenticates with",
                "required": false,
                "params": { "did": agent.did, "didDocument": endpoints.did_document },
            }],
        },
        "securitySchemes": {
            SCHEME: {
                "type": "oauth2",
                "description": "OAuth 2.0 client credentials at the agent's identity provider",
                "oauth2MetadataUrl": endpoints.metadata,
                "flows": { "clientCredentials": { "tokenUrl": endpoints.token, "scopes": scopes } },
            },
        },
        "security": [{ SCHEME: agent.capabilities }],
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": skills,
    });
    if let Some(homepage) = &agent.homepage_url {
        card["documentationUrl"] = Value::from(homepage.clone());
    }
    card
}

/// The card's RFC 8785 canonical form: members sorted by their names' UTF-16 code units, no
/// whitespace, strings escaped as ECMAScript's `JSON.stringify` does (which is serde_json's
/// escaping: `"`, `\` and control characters only, lowercase `\u00xx`). Numbers are written as
/// serde_json writes them, which is JCS's form for the integers a card could hold; cards hold none.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, (name, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(name.as_str()).to_string());
                out.push(':');
                write_canonical(member, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The JWS protected header of a card signature: the key by `kid` in the JWKS at `jku`.
pub fn protected_header(alg: &str, kid: &str, jwks: &str) -> Value {
    json!({ "alg": alg, "kid": kid, "typ": "JOSE", "jku": jwks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_sorts_by_utf16_and_escapes_like_json_stringify() {
        // RFC 8785 §3.2.3's sorting example: "\u{20ac}" sorts before "\u{1f600}" (a surrogate
        // pair starts at 0xD83D), and "\r" before "1".
        let value = json!({
            "\u{20ac}": "Euro Sign",
            "\r": "Carriage Return",
            "\u{fb33}": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\u{1f600}": "Emoji: Grinning Face",
            "\u{0080}": "Control",
            "\u{00f6}": "Latin Small Letter O With Diaeresis",
        });
        assert_eq!(
            canonical(&value),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{0080}\":\"Control\",\"\u{00f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
        assert_eq!(
            canonical(&json!({ "b": [true, null, "a\u{1}/é"], "a": {} })),
            "{\"a\":{},\"b\":[true,null,\"a\\u0001/é\"]}"
        );
    }
}
