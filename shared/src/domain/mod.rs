//! The model: what organizations, agents, credentials, audit events and usage are, and the rules
//! they obey. Pure: no I/O, no SQL, no HTTP, no clock or randomness of its own.

pub mod agent_card;
pub mod agents;
pub mod analytics;
pub mod audit;
pub mod auth_failures;
pub mod authz;
pub mod billing;
pub mod caller;
pub mod checkpoint;
pub mod compliance;
pub mod credentials;
pub mod did;
pub mod marketplace;
pub mod merkle;
pub mod orgs;
pub mod page;
pub mod policies;
pub mod revocation;
pub mod scopes;
pub mod sealed;
pub mod secrets;
pub mod ssrf;
pub mod time;
pub mod trust_policies;
pub mod usage;
pub mod validate;
pub mod webhooks;
