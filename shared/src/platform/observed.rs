//! Counting decorators for the storage seams: every failed database or key-value call is counted
//! (`agentidp_store_failures_total`) by operation, whichever adapter is behind, and then returned
//! unchanged. Refusals the domain expects (constraints, guards) are answers, not failures.

use std::sync::Arc;

use async_trait::async_trait;

use crate::ports::kv::{Admission, AdmissionOutcome, KeyValue, KvError};
use crate::ports::metrics::{self, Event, Store};
use crate::ports::sql::{Change, Database, DbError, Row, Statement};

/// A database whose failures are counted.
pub struct ObservedDatabase(pub Arc<dyn Database>);

/// A key-value store whose failures are counted.
pub struct ObservedKv(pub Arc<dyn KeyValue>);

/// `db`, counted when a metrics sink is installed (otherwise as it is).
pub fn database(db: Arc<dyn Database>) -> Arc<dyn Database> {
    if metrics::is_enabled() {
        Arc::new(ObservedDatabase(db))
    } else {
        db
    }
}

/// `kv`, counted when a metrics sink is installed (otherwise as it is).
pub fn key_value(kv: Arc<dyn KeyValue>) -> Arc<dyn KeyValue> {
    if metrics::is_enabled() {
        Arc::new(ObservedKv(kv))
    } else {
        kv
    }
}

fn db_counted<T>(operation: &str, result: Result<T, DbError>) -> Result<T, DbError> {
    if let Err(DbError::Unavailable(_) | DbError::Decode(_) | DbError::Other(_)) = &result {
        metrics::record(Event::StoreFailure {
            store: Store::Database,
            operation,
        });
    }
    result
}

fn kv_counted<T>(operation: &str, result: Result<T, KvError>) -> Result<T, KvError> {
    if result.is_err() {
        metrics::record(Event::StoreFailure {
            store: Store::KeyValue,
            operation,
        });
    }
    result
}

#[async_trait]
impl Database for ObservedDatabase {
    async fn query(&self, statement: Statement) -> Result<Vec<Row>, DbError> {
        db_counted("query", self.0.query(statement).await)
    }

    async fn transaction(&self, statements: Vec<Statement>) -> Result<Vec<u64>, DbError> {
        db_counted("transaction", self.0.transaction(statements).await)
    }

    async fn execute_script(&self, sql: &str) -> Result<(), DbError> {
        db_counted("script", self.0.execute_script(sql).await)
    }

    async fn commit(&self, change: Change) -> Result<Vec<u64>, DbError> {
        db_counted("commit", self.0.commit(change).await)
    }

    async fn query_one(&self, statement: Statement) -> Result<Option<Row>, DbError> {
        db_counted("query", self.0.query_one(statement).await)
    }
}

#[async_trait]
impl KeyValue for ObservedKv {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, KvError> {
        kv_counted("get", self.0.get_many(keys).await)
    }

    async fn set(&self, key: &str, value: &str, ttl_seconds: u64) -> Result<(), KvError> {
        kv_counted("set", self.0.set(key, value, ttl_seconds).await)
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: u64,
    ) -> Result<bool, KvError> {
        kv_counted(
            "set_if_absent",
            self.0.set_if_absent(key, value, ttl_seconds).await,
        )
    }

    async fn admit(&self, admission: &Admission) -> Result<AdmissionOutcome, KvError> {
        kv_counted("admit", self.0.admit(admission).await)
    }
}
