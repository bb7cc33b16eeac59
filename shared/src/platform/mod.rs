//! The adapters: every implementation of the seams in `ports/` (embedded libSQL, libSQL over HTTP,
//! Redis, Upstash REST, the in-process store, clocks, timers, entropy, outbound HTTP, metrics sinks)
//! and the edge entry points. The only place in the crate where `cfg(target_...)` appears.

pub mod edge;
pub mod hrana;
pub mod memory_kv;
pub mod outbound_timeout;
pub mod system;
pub mod upstash;

pub use system::OsEntropy;
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub use system::SystemClock;

use crate::ports::crypto::Es256Accelerator;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;

#[cfg(not(target_arch = "wasm32"))]
pub mod redis;

#[cfg(not(target_arch = "wasm32"))]
pub mod durable_kv;

#[cfg(not(target_arch = "wasm32"))]
pub mod wal;

#[cfg(not(target_arch = "wasm32"))]
pub mod metrics_prometheus;

pub mod metrics_log;
pub mod observed;

pub mod kv_timeout;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub mod workers;

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
pub mod spin;

/// The platform's faster ES256 signer, if it has one: natively `ring`'s assembly P-256 (several
/// times faster than the portable implementation the wasm builds use through jwt-simple).
/// The platform's faster ES256 signer, if it has one.
pub fn es256_accelerator() -> Option<Es256Accelerator> {
    #[cfg(not(target_arch = "wasm32"))]
    return Some(accelerated_es256);
    #[cfg(target_arch = "wasm32")]
    None
}

#[cfg(not(target_arch = "wasm32"))]
fn accelerated_es256(
    private_scalar: &[u8],
    public_point: &[u8],
) -> Option<Box<dyn crate::ports::crypto::RawEs256Signer>> {
    native::RingEs256::new(private_scalar, public_point)
        .map(|s| Box::new(s) as Box<dyn crate::ports::crypto::RawEs256Signer>)
}

/// Entry points of a function crate for each edge platform, selected by the build target;
/// `$routes` is the crate's `fn routes() -> Router<AppState>`. With `dispatcher`, the Worker also
/// gets a scheduled (Cron Trigger) entry point that delivers every organization's due webhooks.
#[macro_export]
macro_rules! edge_entry_points {
    ($routes:path, dispatcher) => {
        $crate::edge_entry_points!($routes);

        #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
        #[worker::event(scheduled)]
        async fn scheduled(
            _event: worker::ScheduledEvent,
            env: worker::Env,
            _context: worker::ScheduleContext,
        ) {
            $crate::platform::workers::dispatch_on_schedule($routes, env).await
        }
    };
    ($routes:path) => {
        #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
        #[worker::event(fetch)]
        async fn fetch(
            request: worker::HttpRequest,
            env: worker::Env,
            context: worker::Context,
        ) -> worker::Result<$crate::axum::http::Response<$crate::axum::body::Body>> {
            Ok($crate::platform::workers::serve($routes, request, env, context).await)
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
