//! Secrets the server must read back (token signing keys, webhook signing secrets), sealed at rest
//! with AES-256-GCM under a key-encryption key, each bound to the row that holds it.
//!
//! A sealed value is the text `sealed.v1.<kek id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. It
//! names the key-encryption key that sealed it, so a deployment moving to a new one opens both
//! while the values move; its associated data names its table and row, so a value copied into
//! another row (another key's, another subscription's) does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

const PREFIX: &str = "sealed.v1.";
const NONCE_BYTES: usize = 12;

/// Why a stored value did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("sealed under key-encryption key {0}, which this deployment was not given")]
    UnknownKey(String),
    #[error("a sealed value does not open (altered, or copied from another row)")]
    DoesNotOpen,
    #[error("a sealed value is malformed")]
    Malformed,
}

/// A key-encryption key.
#[derive(Clone)]
pub struct Kek {
    id: String,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek").field("id", &self.id).finish()
    }
}

impl Kek {
    /// From its configured form: 32 bytes as unpadded base64url (what `generate` writes) or as
    /// 64 hex digits.
    pub fn parse(text: &str) -> Result<Kek, String> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| "is not hex".to_owned())?
        } else {
            URL_SAFE_NO_PAD
                .decode(text.trim_end_matches('='))
                .map_err(|_| "is neither 64 hex digits nor base64url".to_owned())?
        };
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "must be 32 bytes (base64url or 64 hex digits)".to_owned())?;
        Ok(Kek::from_bytes(&key))
    }

    pub fn from_bytes(key: &[u8; 32]) -> Kek {
        let digest = Sha256::new()
            .chain_update(b"agentidp key-encryption key id\0")
            .chain_update(key)
            .finalize();
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Kek {
            id,
            cipher: Aes256Gcm::new_from_slice(key).expect("a 32-byte key"),
        }
    }

    /// The configured form of a new key made of `random`.
    pub fn encode(random: &[u8; 32]) -> String {
        URL_SAFE_NO_PAD.encode(random)
    }

    /// What sealed values record of it; not secret.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Whether a stored value is sealed (rather than left in clear by an older release).
pub fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(PREFIX.as_bytes())
}

/// The key-encryption key of the sealed value `stored`, if it is sealed.
pub fn sealed_by(stored: &[u8]) -> Option<&str> {
    let rest = std::str::from_utf8(stored.strip_prefix(PREFIX.as_bytes())?).ok()?;
    rest.split_once('.').map(|(id, _)| id)
}

/// The key-encryption keys a deployment holds: the one it seals with, and those it still opens
/// (while a rewrap moves values to the current one).
#[derive(Clone, Debug)]
pub struct Keks {
    current: Kek,
    also_opens: Vec<Kek>,
}

impl Keks {
    pub fn new(current: Kek, also_opens: Vec<Kek>) -> Keks {
        Keks {
            current,
            also_opens,
        }
    }

    pub fn current(&self) -> &Kek {
        &self.current
    }

    /// Whether values sealed under the key-encryption key `id` open here.
    pub fn knows(&self, id: &str) -> bool {
        std::iter::once(&self.current)
            .chain(&self.also_opens)
            .any(|k| k.id == id)
    }

    /// Seals `plaintext` for the row `row` (its table and id) with a fresh `nonce`.
    pub fn seal(&self, row: &str, plaintext: &[u8], nonce: [u8; NONCE_BYTES]) -> String {
        let ciphertext = self
            .current
            .cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plaintext,
                    aad: row.as_bytes(),
                },
            )
            .expect("AES-GCM seals any length this server stores");
        let mut body = nonce.to_vec();
        body.extend_from_slice(&ciphertext);
        format!(
            "{PREFIX}{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(body)
        )
    }

    /// The plaintext of `stored` for the row `row`; a value an older release left in clear is
    /// returned as it is (the next sealing pass seals it).
    pub fn open(&self, row: &str, stored: &[u8]) -> Result<Vec<u8>, SealError> {
        if !is_sealed(stored) {
            return Ok(stored.to_vec());
        }
        let text =
            std::str::from_utf8(&stored[PREFIX.len()..]).map_err(|_| SealError::Malformed)?;
        let (id, body) = text.split_once('.').ok_or(SealError::Malformed)?;
        let kek = std::iter::once(&self.current)
            .chain(&self.also_opens)
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Malformed)?;
        if body.len() < NONCE_BYTES {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = body.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::Malformed)?;
        kek.cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: ciphertext,
                    aad: row.as_bytes(),
                },
            )
            .map_err(|_| SealError::DoesNotOpen)
    }
}

/// The associated data of a signing key's private key.
pub fn signing_key_row(kid: &str) -> String {
    format!("signing_keys/{kid}")
}

/// The associated data of a webhook subscription's signing secrets (current and previous: a
/// rotation moves the current one into the previous column of the same row).
pub fn webhook_row(subscription_id: &str) -> String {
    format!("webhook_subscriptions/{subscription_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keks(byte: u8) -> Keks {
        Keks::new(Kek::from_bytes(&[byte; 32]), Vec::new())
    }

    #[test]
    fn a_sealed_value_opens_only_in_its_row_and_under_its_key() {
        let keks = keks(1);
        let sealed = keks.seal("signing_keys/a", b"private", [7; 12]);
        assert!(sealed.starts_with(&format!("sealed.v1.{}.", keks.current().id())));
        assert!(!sealed.contains("private"));
        assert_eq!(
            keks.open("signing_keys/a", sealed.as_bytes()).unwrap(),
            b"private"
        );
        assert_eq!(
            keks.open("signing_keys/b", sealed.as_bytes()),
            Err(SealError::DoesNotOpen)
        );
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            keks.open("signing_keys/a", &altered),
            Err(SealError::DoesNotOpen)
        );
        let other = self::keks(2);
        assert_eq!(
            other.open("signing_keys/a", sealed.as_bytes()),
            Err(SealError::UnknownKey(keks.current().id().to_owned()))
        );
        // During a move to a new key, values sealed under the old one still open.
        let moving = Keks::new(Kek::from_bytes(&[2; 32]), vec![Kek::from_bytes(&[1; 32])]);
        assert_eq!(
            moving.open("signing_keys/a", sealed.as_bytes()).unwrap(),
            b"private"
        );
        assert_eq!(sealed_by(sealed.as_bytes()), Some(keks.current().id()));
        // A value an older release left in clear reads as it is.
        assert_eq!(keks.open("signing_keys/a", b"clear").unwrap(), b"clear");
    }

    #[test]
    fn a_key_parses_from_base64url_or_hex_and_nothing_else() {
        let encoded = Kek::encode(&[9; 32]);
        assert_eq!(
            Kek::parse(&encoded).unwrap().id(),
            Kek::from_bytes(&[9; 32]).id()
        );
        assert_eq!(
            Kek::parse(&"09".repeat(32)).unwrap().id(),
            Kek::from_bytes(&[9; 32]).id()
        );
        assert!(Kek::parse("short").is_err());
        assert!(Kek::parse(&"zz".repeat(32)).is_err());
        assert!(!format!("{:?}", Kek::from_bytes(&[9; 32])).contains("cipher"));
    }
}
