//! The only SQL: one file per table family, the audit chain's append, migrations, and every
//! key-value key shape in one file.

pub mod admission_script;
pub mod agents;
pub mod analytics;
pub mod audit_trail;
pub mod audit_tree;
pub mod billing;
pub mod chain;
pub mod compliance;
pub mod credentials;
pub mod kv_entries;
pub mod kv_keys;
pub mod marketplace;
pub mod migrations;
pub mod orgs;
pub mod policies;
pub mod sealed;
pub mod signing_keys;
pub mod trust_policies;
pub mod usage;
pub mod webhooks;

use crate::ports::sql::{DbError, Statement};

/// A statement that aborts its transaction with `code` when `violated` (an SQL boolean over the
/// statement's parameters) is true at that point of the transaction. The `guard_failures` table's
/// trigger raises the error the engines report, whichever engine runs it.
pub fn guard(code: &'static str, violated: &str) -> Statement {
    let mut statement = Statement::new(format!(
        "INSERT INTO guard_failures (code) SELECT 'guard' WHERE {violated}"
    ));
    statement.guard = Some(code);
    statement
}

/// The cheapest statement that proves the database answers.
pub fn probe() -> Statement {
    Statement::new("SELECT 1 AS ok")
}

/// A column holding a value the code does not know.
pub(crate) fn unknown_value<T>(column: &str, value: Option<T>) -> Result<T, DbError> {
    value.ok_or_else(|| DbError::Decode(format!("column `{column}`: unknown value")))
}

/// A JSON text column.
pub(crate) fn json_column<T: serde::de::DeserializeOwned>(
    column: &str,
    text: &str,
) -> Result<T, DbError> {
    serde_json::from_str(text).map_err(|e| DbError::Decode(format!("column `{column}`: {e}")))
}
