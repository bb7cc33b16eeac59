//! The seams: traits for everything that differs per platform (SQL, key-value, outbound HTTP,
//! clock, timer, entropy, metrics) and the plain data that crosses them. No implementations live here.

pub mod crypto;
pub mod kv;
pub mod metrics;
pub mod outbound;
pub mod runtime;
pub mod sql;
