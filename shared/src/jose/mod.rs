//! JOSE: this issuer's signing keys and JWKS, RFC 9068 access tokens, JWK parsing, and the
//! verified-token memo.

pub mod access_token;
pub mod jwk;
pub mod keys;
pub mod verified_cache;
