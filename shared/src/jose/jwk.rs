//! JSON Web Keys (RFC 7517) as verifiers: registered client keys and this issuer's own public keys,
//! each pinned to its one algorithm.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use serde::de::DeserializeOwned;

/// Signature algorithm of a signing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    Es256,
    EdDsa,
}

impl Alg {
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }

    pub fn parse(name: &str) -> Option<Alg> {
        match name {
            "ES256" => Some(Alg::Es256),
            "EdDSA" => Some(Alg::EdDsa),
            _ => None,
        }
    }
}

/// A public key that verifies one algorithm only.
pub enum Verifier {
    Es256(ES256PublicKey),
    EdDsa(Ed25519PublicKey),
}

impl Verifier {
    /// Builds a verifier from a public JWK (RFC 7517): EC P-256 or OKP Ed25519 only.
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<(Verifier, Alg), String> {
        let field = |name: &str| {
            jwk.get(name)
                .and_then(|v| v.as_str())
                .ok_or_else(|| format!("JWK is missing `{name}`"))
        };
        let decode = |name: &str| {
            URL_SAFE_NO_PAD
                .decode(field(name)?)
                .map_err(|_| format!("JWK `{name}` is not base64url"))
        };
        if jwk.get("d").is_some() {
            return Err("JWK contains a private key (`d`); register only the public key".into());
        }
        match (field("kty")?, field("crv")?) {
            ("EC", "P-256") => {
                let (x, y) = (decode("x")?, decode("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err("JWK `x` and `y` must be 32 bytes for P-256".into());
                }
                let mut sec1 = Vec::with_capacity(65);
                sec1.push(4);
                sec1.extend_from_slice(&x);
                sec1.extend_from_slice(&y);
                let key = ES256PublicKey::from_bytes(&sec1)
                    .map_err(|_| "JWK is not a point on P-256".to_owned())?;
                Ok((Verifier::Es256(key), Alg::Es256))
            }
            ("OKP", "Ed25519") => {
                let x = decode("x")?;
                let key = Ed25519PublicKey::from_bytes(&x)
                    .map_err(|_| "JWK `x` is not an Ed25519 public key".to_owned())?;
                Ok((Verifier::EdDsa(key), Alg::EdDsa))
            }
            (kty, crv) => Err(format!(
                "unsupported key type {kty}/{crv}: use EC P-256 (ES256) or OKP Ed25519 (EdDSA)"
            )),
        }
    }

    /// Verifies with the algorithm pinned to the key's type: `alg: none`, HS256 confusion and
    /// algorithm swaps fail here.
    pub fn verify<C: Serialize + DeserializeOwned>(
        &self,
        token: &str,
        options: VerificationOptions,
    ) -> Result<JWTClaims<C>, jwt_simple::Error> {
        match self {
            Verifier::Es256(k) => k.verify_token::<C>(token, Some(options)),
            Verifier::EdDsa(k) => k.verify_token::<C>(token, Some(options)),
        }
    }
}
