//! Client identifiers and secrets: 256-bit random secrets, stored only as SHA-256, compared in
//! constant time. The randomness comes from the caller (the entropy seam).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefixes make leaked values recognisable to secret scanners.
pub const CLIENT_ID_PREFIX: &str = "aidp_";
const SECRET_PREFIX: &str = "aidp_sk_";

/// A client id from 128 random bits.
pub fn client_id_from(random: [u8; 16]) -> String {
    format!("{CLIENT_ID_PREFIX}{}", URL_SAFE_NO_PAD.encode(random))
}

/// A client secret from 256 random bits, and the hash to store. The secret itself is returned to
/// the caller once and never stored; a slow hash adds nothing for 256 random bits.
pub fn client_secret_from(random: [u8; 32]) -> (String, Vec<u8>) {
    let secret = format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(random));
    let hash = hash_secret(&secret);
    (secret, hash)
}

pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Compares the presented secret's hash with a stored hash in constant time.
pub fn secret_matches(presented: &str, stored_hash: &[u8]) -> bool {
    let presented_hash = hash_secret(presented);
    presented_hash.len() == stored_hash.len() && bool::from(presented_hash.ct_eq(stored_hash))
}

/// Compares a presented token with a configured one in constant time. Both are hashed first so
/// neither their contents nor their lengths show in the timing.
pub fn token_matches(configured: &str, presented: &str) -> bool {
    let expected = hash_secret(configured);
    bool::from(hash_secret(presented).ct_eq(&expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_matches_only_its_own_hash() {
        let (secret, hash) = client_secret_from([7; 32]);
        assert!(secret.len() >= SECRET_PREFIX.len() + 43);
        assert!(secret_matches(&secret, &hash));
        assert!(!secret_matches(&format!("{secret}x"), &hash));
        assert!(!secret_matches(&secret, &hash[..31]));
        let (other, _) = client_secret_from([8; 32]);
        assert_ne!(secret, other);
    }

    #[test]
    fn configured_tokens_match_only_exactly() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cret", "s3cret "));
        assert!(!token_matches("s3cret", ""));
    }
}
