//! The crypto seam: a platform's faster ES256 signer where it has one (natively `ring`'s assembly
//! P-256; the wasm builds keep jwt-simple's portable implementation).

/// ES256 signing over raw bytes: the message in, the 64-byte `r || s` signature (RFC 7518 §3.4) out.
pub trait RawEs256Signer: Send + Sync {
    fn sign(&self, message: &[u8]) -> Option<Vec<u8>>;
}

/// Builds a signer from a P-256 private scalar and its uncompressed public point, or declines.
pub type Es256Accelerator =
    fn(private_scalar: &[u8], public_point: &[u8]) -> Option<Box<dyn RawEs256Signer>>;
