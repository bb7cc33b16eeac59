//! HTTP: the route table, extractors, the one mapping of errors to responses, bearer
//! authentication, rate-limit headers, per-request metrics, what every function serves, and how
//! browser pages are served. The only layer (with `platform/`) that knows axum.

pub mod app;
pub mod auth;
pub mod cache;
pub mod descriptors;
pub mod error;
pub mod extract;
pub mod limits;
pub mod observe;
pub mod operator;
pub mod pages;
pub mod routes;
