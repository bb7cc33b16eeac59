//! Detached JWS signatures over canonical JSON (signed A2A cards), and the per-instance memo of
//! those already made, so a document is signed once per version and key rather than per request.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::jose::keys::SigningKey;

/// Signatures kept per instance: one per published agent in use; past it the memo starts over
/// (signing again costs a fraction of a millisecond, so a reset is cheap and memory stays bounded).
const MEMO_ENTRIES: usize = 4_096;

/// A detached JWS: the base64url protected header and signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetachedSignature {
    pub protected: String,
    pub signature: String,
}

/// Signatures by (document name, signing key, exact payload): a changed document or a rotated key
/// is a different entry, so a hit is always a valid signature of what is served now.
#[derive(Default)]
pub struct SignatureMemo {
    entries: Mutex<HashMap<String, ([u8; 32], DetachedSignature)>>,
}

impl SignatureMemo {
    /// The signature of `payload` under `key` with `header`, from the memo when this exact
    /// payload was signed with this key before.
    pub fn sign(
        &self,
        name: &str,
        key: &SigningKey,
        header: &serde_json::Value,
        payload: &[u8],
    ) -> Result<DetachedSignature, jwt_simple::Error> {
        let mut digest = Sha256::new();
        digest.update(key.kid.as_bytes());
        digest.update([0]);
        digest.update(header.to_string().as_bytes());
        digest.update([0]);
        digest.update(payload);
        let version: [u8; 32] = digest.finalize().into();
        if let Ok(entries) = self.entries.lock() {
            if let Some((cached, signature)) = entries.get(name) {
                if *cached == version {
                    return Ok(signature.clone());
                }
            }
        }
        let (protected, signature) = key.sign_detached(header, payload)?;
        let signed = DetachedSignature {
            protected,
            signature,
        };
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MEMO_ENTRIES && !entries.contains_key(name) {
                entries.clear();
            }
            entries.insert(name.to_owned(), (version, signed.clone()));
        }
        Ok(signed)
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
