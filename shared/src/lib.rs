//! AgentIdP core: everything the five functions share, independent of the platform they run on.
//! Layers, lowest first: `config`, `domain`, `ports`, `store`, `jose` and `limits`, `state`,
//! `services`, `oauth`, `http`, and `platform` (the adapters) on top.

pub mod config;
pub mod domain;
pub mod http;
pub mod jose;
pub mod limits;
pub mod oauth;
pub mod platform;
pub mod ports;
pub mod services;
pub mod state;
pub mod store;

pub use axum;
