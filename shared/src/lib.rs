//! AgentIdP core: everything the five functions share, independent of the platform they run on.

pub mod agents;
pub mod app;
pub mod audit;
pub mod audit_trail;
pub mod auth;
pub mod config;
pub mod credentials;
pub mod error;
pub mod hrana;
pub mod http;
pub mod keys;
pub mod kv;
pub mod marketplace;
pub mod migrations;
pub mod oauth;
pub mod orgs;
pub mod outbound;
pub mod platform;
pub mod rate_limit;
pub mod revocation;
pub mod runtime;
pub mod secrets;
pub mod sql;
pub mod state;
pub mod tokens;
pub mod upstash;
pub mod usage;

pub use axum;
