//! JOSE: this issuer's signing keys and JWKS, RFC 9068 access tokens, JWK parsing, the
//! verified-token memo, trusted OIDC issuers' ID tokens and key sets, and detached signatures.

pub mod access_token;
pub mod detached;
pub mod id_token;
pub mod jwk;
pub mod keys;
pub mod remote_jwks;
pub mod verified_cache;
