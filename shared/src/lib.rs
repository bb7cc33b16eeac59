//! AgentIdP core: everything the five functions share, independent of the platform they run on.

pub mod app;
pub mod audit;
pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod keys;
pub mod kv;
pub mod migrations;
pub mod platform;
pub mod revocation;
pub mod runtime;
pub mod secrets;
pub mod sql;
pub mod state;
pub mod tokens;

pub use axum;
