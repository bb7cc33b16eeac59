//! Authorization server metadata (RFC 8414), served also as `openid-configuration`.

use serde_json::{json, Value};

use crate::auth::scopes;
use crate::config::Config;

pub fn document(config: &Config) -> Value {
    let issuer = &config.issuer;
    let auth_methods = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ];
    let signing_algs = ["ES256", "EdDSA"];
    json!({
        "issuer": issuer,
        "token_endpoint": config.token_endpoint(),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "grant_types_supported": ["client_credentials"],
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
