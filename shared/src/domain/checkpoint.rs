//! Signed checkpoints of an organization's audit tree in the C2SP `tlog-checkpoint` format, as
//! C2SP `signed-note`s under a dedicated Ed25519 key, and their verification.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::domain::merkle::Hash;

/// The signed-note signature type of Ed25519.
const ED25519: u8 = 0x01;

/// What a checkpoint states: the log (origin), its size and its root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: origin, size and root hash lines, each ending in a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }
}

/// A deployment's origin for an organization's log: the issuer without its scheme, `/audit/`, the
/// organization (C2SP asks for a schema-less URL that names the log).
pub fn origin(issuer: &str, org_id: &str) -> String {
    format!("{}/audit/{org_id}", key_name(issuer))
}

/// The checkpoint key's name: the issuer without its scheme or trailing slash.
pub fn key_name(issuer: &str) -> String {
    let bare = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"))
        .unwrap_or(issuer);
    bare.trim_end_matches('/')
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '+')
        .collect()
}

/// The signed-note key hash: the first four bytes of SHA-256(name || "\n" || type || public key).
pub fn key_hash(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519]);
    h.update(public_key);
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The verifier key in the signed-note `name+hash+base64` form.
pub fn verifier_key(name: &str, public_key: &[u8; 32]) -> String {
    let mut key = vec![ED25519];
    key.extend_from_slice(public_key);
    format!(
        "{name}+{}+{}",
        super::audit::hex(&key_hash(name, public_key)),
        STANDARD.encode(key)
    )
}

/// The checkpoint signing key, from its 32-byte seed.
pub struct CheckpointKey {
    name: String,
    pair: ed25519_compact::KeyPair,
}

impl CheckpointKey {
    pub fn from_seed(name: String, seed: &[u8]) -> Option<Self> {
        let seed = ed25519_compact::Seed::from_slice(seed).ok()?;
        Some(CheckpointKey {
            name,
            pair: ed25519_compact::KeyPair::from_seed(seed),
        })
    }

    pub fn public_key(&self) -> [u8; 32] {
        *self.pair.pk
    }

    pub fn verifier_key(&self) -> String {
        verifier_key(&self.name, &self.public_key())
    }

    /// The signed note: the body, a blank line, and one signature line.
    pub fn sign(&self, checkpoint: &Checkpoint) -> String {
        let body = checkpoint.body();
        // Ed25519 signatures are deterministic: no randomness is needed here.
        let signature = self.pair.sk.sign(body.as_bytes(), None);
        let mut blob = key_hash(&self.name, &self.public_key()).to_vec();
        blob.extend_from_slice(signature.as_ref());
        format!("{body}\n\u{2014} {} {}\n", self.name, STANDARD.encode(blob))
    }
}

/// Why a note does not verify.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("the verifier key is not a signed-note Ed25519 key")]
    BadKey,
    #[error("the note is not a signed note")]
    Malformed,
    #[error("the note carries no valid signature by the key")]
    Unsigned,
    #[error("the note is not a checkpoint")]
    NotACheckpoint,
}

/// A parsed verifier key: its name and Ed25519 public key.
pub fn parse_verifier_key(text: &str) -> Result<(String, [u8; 32]), NoteError> {
    let mut parts = text.trim().splitn(3, '+');
    let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::BadKey);
    };
    let key = STANDARD.decode(key).map_err(|_| NoteError::BadKey)?;
    if key.len() != 33 || key[0] != ED25519 || name.is_empty() {
        return Err(NoteError::BadKey);
    }
    let mut public = [0u8; 32];
    public.copy_from_slice(&key[1..]);
    if super::audit::hex(&key_hash(name, &public)) != hash {
        return Err(NoteError::BadKey);
    }
    Ok((name.to_owned(), public))
}

/// Verifies a signed checkpoint note with `verifier_key` and returns what it states.
pub fn verify_note(note: &str, verifier_key: &str) -> Result<Checkpoint, NoteError> {
    let (name, public) = parse_verifier_key(verifier_key)?;
    let split = note.find("\n\n").ok_or(NoteError::Malformed)?;
    let (body, signatures) = (&note[..split + 1], &note[split + 2..]);
    if !signatures.ends_with('\n') {
        return Err(NoteError::Malformed);
    }
    let pk = ed25519_compact::PublicKey::new(public);
    let wanted = key_hash(&name, &public);
    let signed = signatures.lines().any(|line| {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            return false;
        };
        let Some((line_name, blob)) = rest.split_once(' ') else {
            return false;
        };
        let Ok(blob) = STANDARD.decode(blob) else {
            return false;
        };
        line_name == name
            && blob.len() == 4 + 64
            && blob[..4] == wanted
            && ed25519_compact::Signature::from_slice(&blob[4..])
                .is_ok_and(|sig| pk.verify(body.as_bytes(), &sig).is_ok())
    });
    if !signed {
        return Err(NoteError::Unsigned);
    }
    parse_body(body)
}

fn parse_body(body: &str) -> Result<Checkpoint, NoteError> {
    let mut lines = body.lines();
    let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
        return Err(NoteError::NotACheckpoint);
    };
    let size = size
        .parse::<u64>()
        .ok()
        .filter(|_| !size.starts_with('+') && (size == "0" || !size.starts_with('0')))
        .ok_or(NoteError::NotACheckpoint)?;
    let root: Hash = STANDARD
        .decode(root)
        .ok()
        .and_then(|r| r.try_into().ok())
        .ok_or(NoteError::NotACheckpoint)?;
    if origin.is_empty() {
        return Err(NoteError::NotACheckpoint);
    }
    Ok(Checkpoint {
        origin: origin.to_owned(),
        size,
        root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_checkpoint_verifies_and_any_flipped_byte_does_not() {
        let key = CheckpointKey::from_seed(key_name("https://idp.example/"), &[7u8; 32]).unwrap();
        let checkpoint = Checkpoint {
            origin: origin("https://idp.example/", "org-1"),
            size: 42,
            root: [9u8; 32],
        };
        let note = key.sign(&checkpoint);
        assert!(note.starts_with("idp.example/audit/org-1\n42\n"));
        let vkey = key.verifier_key();
        assert!(vkey.starts_with("idp.example+"));
        assert_eq!(verify_note(&note, &vkey), Ok(checkpoint));
        for i in 0..note.len() {
            let mut bytes = note.clone().into_bytes();
            bytes[i] ^= 0x01;
            if let Ok(flipped) = String::from_utf8(bytes) {
                assert!(verify_note(&flipped, &vkey).is_err(), "byte {i}");
            }
        }
        let other = CheckpointKey::from_seed(key_name("https://idp.example/"), &[8u8; 32]).unwrap();
        assert_eq!(
            verify_note(&note, &other.verifier_key()),
            Err(NoteError::Unsigned)
        );
    }
}
