//! Per-platform adapters; the only place in the crate where `cfg(target_...)` appears.

pub mod edge;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;

#[cfg(not(target_arch = "wasm32"))]
pub mod redis;

#[cfg(not(target_arch = "wasm32"))]
pub mod durable_kv;

#[cfg(not(target_arch = "wasm32"))]
pub mod wal;

pub mod kv_timeout;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub mod workers;

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
pub mod spin;

/// ES256 signing over raw bytes: the message in, the 64-byte `r || s` signature (RFC 7518 §3.4) out.
pub trait RawEs256Signer: Send + Sync {
    fn sign(&self, message: &[u8]) -> Option<Vec<u8>>;
}

/// The platform's faster ES256 signer, if it has one: natively `ring`'s assembly P-256 (several
/// times faster than the portable implementation the wasm builds use through jwt-simple).
#[cfg(not(target_arch = "wasm32"))]
pub fn accelerated_es256(
    private_scalar: &[u8],
    public_point: &[u8],
) -> Option<Box<dyn RawEs256Signer>> {
    native::RingEs256::new(private_scalar, public_point)
        .map(|s| Box::new(s) as Box<dyn RawEs256Signer>)
}

#[cfg(target_arch = "wasm32")]
pub fn accelerated_es256(
    _private_scalar: &[u8],
    _public_point: &[u8],
) -> Option<Box<dyn RawEs256Signer>> {
    None
}

/// The host's wall clock where `std` has one (native and WASI; not Workers).
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub struct SystemClock;

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
impl crate::runtime::Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Entry points of a function crate for each edge platform, selected by the build target;
/// `$routes` is the crate's `fn routes() -> Router<AppState>`.
#[macro_export]
macro_rules! edge_entry_points {
    ($routes:path) => {
        #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
        #[worker::event(fetch)]
        async fn fetch(
            request: worker::HttpRequest,
            env: worker::Env,
            _context: worker::Context,
        ) -> worker::Result<$crate::axum::http::Response<$crate::axum::body::Body>> {
            Ok($crate::platform::workers::serve($routes, request, env).await)
        }

        #[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
        #[spin_sdk::http_service]
        async fn handle(
            request: spin_sdk::http::Request,
        ) -> $crate::axum::http::Response<$crate::axum::body::Body> {
            $crate::platform::spin::serve($routes, request).await
        }
    };
}
