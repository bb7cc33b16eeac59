//! Per-platform adapters; the only place in the crate where `cfg(target_...)` appears.

#[cfg(not(target_arch = "wasm32"))]
pub mod native;

#[cfg(not(target_arch = "wasm32"))]
pub mod redis;
