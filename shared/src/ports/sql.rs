//! The SQL seam: statements, rows, the unit of work, and the `Database` trait every backend
//! implements once.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::audit::AuditDraft;

/// A SQLite value, as both the embedded engine and the libSQL HTTP protocol carry it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Integer(v.into())
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Integer(v.into())
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One SQL statement with positional parameters (`?1`, `?2`, ...).
#[derive(Clone, Debug)]
pub struct Statement {
    pub sql: Cow<'static, str>,
    pub params: Vec<Value>,
    /// Set on guard statements: the domain code reported when the guard fires.
    pub guard: Option<&'static str>,
}

impl Statement {
    pub fn new(sql: impl Into<Cow<'static, str>>) -> Self {
        Statement {
            sql: sql.into(),
            params: Vec::new(),
            guard: None,
        }
    }

    pub fn bind(mut self, value: impl Into<Value>) -> Self {
        self.params.push(value.into());
        self
    }
}

/// A result row; columns are looked up by name so queries and readers cannot drift apart silently.
#[derive(Clone, Debug)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    pub fn new(columns: Arc<[String]>, values: Vec<Value>) -> Self {
        Row { columns, values }
    }

    fn value(&self, column: &str) -> Result<&Value, DbError> {
        self.columns
            .iter()
            .position(|c| c == column)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| DbError::Decode(format!("no column `{column}` in result")))
    }

    pub fn get<T: FromValue>(&self, column: &str) -> Result<T, DbError> {
        T::from_value(self.value(column)?)
            .map_err(|expected| DbError::Decode(format!("column `{column}`: expected {expected}")))
    }
}

/// Conversion out of a SQL value; the error names the expected type.
pub trait FromValue: Sized {
    fn from_value(value: &Value) -> Result<Self, &'static str>;
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Integer(i) => Ok(*i),
            _ => Err("integer"),
        }
    }
}
impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Text(s) => Ok(s.clone()),
            _ => Err("text"),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Blob(b) => Ok(b.clone()),
            _ => Err("blob"),
        }
    }
}
impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self, &'static str> {
        i64::from_value(value).map(|i| i != 0)
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A guard statement fired: a domain rule checked inside the transaction was violated.
    #[error("transaction guard `{0}` failed")]
    Guard(&'static str),
    /// A UNIQUE / CHECK / FOREIGN KEY constraint refused the write; the message names it.
    #[error("constraint violated: {0}")]
    Constraint(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("could not decode result: {0}")]
    Decode(String),
    #[error("database error: {0}")]
    Other(String),
    /// The database was migrated by a newer release than this binary: serving could misread what
    /// that release wrote, so the instance refuses until it is upgraded too.
    #[error(
        "the database schema is at {database}, newer than this binary understands ({binary}); \
         deploy the release that migrated it to every instance (or roll the database back)"
    )]
    SchemaNewer { database: String, binary: String },
}

impl DbError {
    /// Classifies an engine error message; both the embedded engine and libSQL over HTTP report
    /// constraint failures with SQLite's own wording.
    pub fn from_engine_message(message: String, statement: Option<&Statement>) -> DbError {
        if message.contains("agentidp_guard") {
            return match statement.and_then(|s| s.guard) {
                Some(code) => DbError::Guard(code),
                None => DbError::Constraint(message),
            };
        }
        if message.contains("constraint failed") || message.contains("CONSTRAINT") {
            return DbError::Constraint(message);
        }
        DbError::Other(message)
    }

    /// True when the constraint failure came from a concurrent append to the same audit chain.
    pub fn is_audit_chain_conflict(&self) -> bool {
        matches!(self, DbError::Constraint(m)
            if m.contains("audit_events.org_id") || m.contains("audit_tree_nodes.org_id"))
    }
}

/// A unit of work: state changes and the audit events recording them, committed atomically.
#[derive(Clone, Debug, Default)]
pub struct Change {
    pub statements: Vec<Statement>,
    pub events: Vec<AuditDraft>,
}

impl Change {
    pub fn new() -> Self {
        Change::default()
    }

    pub fn statement(mut self, statement: Statement) -> Self {
        self.statements.push(statement);
        self
    }

    pub fn event(mut self, event: AuditDraft) -> Self {
        self.events.push(event);
        self
    }
}

/// What a platform provides to reach libSQL. Every method is durable on return.
#[async_trait]
pub trait Database: Send + Sync + 'static {
    async fn query(&self, statement: Statement) -> Result<Vec<Row>, DbError>;

    /// Runs the statements in one transaction, all or nothing; returns rows changed per statement.
    async fn transaction(&self, statements: Vec<Statement>) -> Result<Vec<u64>, DbError>;

    /// Runs a multi-statement script (migrations) outside any caller transaction.
    async fn execute_script(&self, sql: &str) -> Result<(), DbError>;

    /// Commits a change with its audit events appended to their organizations' chains, atomically.
    /// Stateless edge backends append optimistically (`store::chain::commit_optimistic`); the
    /// embedded database has one group-committing writer that extends the chains serially.
    async fn commit(&self, change: Change) -> Result<Vec<u64>, DbError>;

    /// Reads one row, or `None`.
    async fn query_one(&self, statement: Statement) -> Result<Option<Row>, DbError> {
        Ok(self.query(statement).await?.into_iter().next())
    }
}
