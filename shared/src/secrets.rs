//! Client identifiers and secrets: 256-bit random secrets, stored only as SHA-256, compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::runtime::{random_token, Entropy};

/// Prefixes make leaked values recognisable to secret scanners.
const CLIENT_ID_PREFIX: &str = "aidp_";
const SECRET_PREFIX: &str = "aidp_sk_";

pub fn new_client_id(entropy: &dyn Entropy) -> String {
    format!("{CLIENT_ID_PREFIX}{}", random_token::<16>(entropy))
}

/// A new client secret and the hash to store. The secret itself is returned to the caller once
/// and never stored; a slow hash adds nothing for 256 random bits.
pub fn new_client_secret(entropy: &dyn Entropy) -> (String, Vec<u8>) {
    let secret = format!("{SECRET_PREFIX}{}", random_token::<32>(entropy));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::OsEntropy;

    #[test]
    fn a_secret_matches_only_its_own_hash() {
        let (secret, hash) = new_client_secret(&OsEntropy);
        assert!(secret.len() >= SECRET_PREFIX.len() + 43);
        assert!(secret_matches(&secret, &hash));
        assert!(!secret_matches(&format!("{secret}x"), &hash));
        assert!(!secret_matches(&secret, &hash[..31]));
        let (other, _) = new_client_secret(&OsEntropy);
        assert_ne!(secret, other);
    }
}
