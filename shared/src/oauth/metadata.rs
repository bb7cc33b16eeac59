//! Authorization server metadata (RFC 8414), served also as `openid-configuration`; the grants and
//! authentication methods it lists are the registered ones, not a hand-written list.

use serde_json::{json, Value};

use crate::config::Config;
use crate::domain::scopes;
use crate::oauth::client_auth::Method;
use crate::oauth::GRANTS;

pub fn document(config: &Config) -> Value {
    let issuer = &config.issuer;
    let auth_methods: Vec<&str> = Method::ALL.iter().map(|m| m.as_str()).collect();
    let grant_types: Vec<&str> = GRANTS
        .iter()
        .filter(|g| g.is_enabled(config))
        .map(|g| g.grant_type())
        .collect();
    let signing_algs = ["ES256", "EdDSA"];
    json!({
        "issuer": issuer,
        "token_endpoint": config.token_endpoint(),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "grant_types_supported": grant_types,
        "response_types_supported": [],
        "scopes_supported": scopes::ADMIN,
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": signing_algs,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": signing_algs,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": signing_algs,
        "access_token_signing_alg_values_supported": signing_algs,
        "service_documentation": format!("{issuer}/openapi.json"),
    })
}
