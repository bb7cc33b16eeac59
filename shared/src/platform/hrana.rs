//! libSQL over HTTP (Hrana 3, JSON pipeline): the protocol's types, shared by the edge client here
//! and the local stand-in server, and the `Database` the edge builds use to reach Turso.
//!
//! Written by hand because no crate serves both edge platforms: `libsql`'s `cloudflare` feature pins
//! `worker` 0.6 and keeps its transport private, and `libsql-client` pins `spin-sdk` 2.2.

use std::sync::Arc;

use async_trait::async_trait;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::ports::outbound::{body_excerpt, Outbound, OutboundRequest};
use crate::ports::sql::{Change, Database, DbError, Row, Statement, Value};
use crate::store::chain;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HranaValue {
    Null,
    /// 64-bit integers travel as strings so JSON doubles cannot round them.
    Integer {
        value: String,
    },
    Float {
        value: f64,
    },
    Text {
        value: String,
    },
    Blob {
        base64: String,
    },
}

impl From<&Value> for HranaValue {
    fn from(value: &Value) -> Self {
        match value {
            Value::Null => HranaValue::Null,
            Value::Integer(i) => HranaValue::Integer {
                value: i.to_string(),
            },
            Value::Real(r) => HranaValue::Float { value: *r },
            Value::Text(t) => HranaValue::Text { value: t.clone() },
            Value::Blob(b) => HranaValue::Blob {
                base64: STANDARD.encode(b),
            },
        }
    }
}

impl TryFrom<HranaValue> for Value {
    type Error = String;

    fn try_from(value: HranaValue) -> Result<Self, String> {
        Ok(match value {
            HranaValue::Null => Value::Null,
            HranaValue::Integer { value } => {
                Value::Integer(value.parse().map_err(|_| format!("integer `{value}`"))?)
            }
            HranaValue::Float { value } => Value::Real(value),
            HranaValue::Text { value } => Value::Text(value),
            // sqld writes blobs without base64 padding; accept both forms.
            HranaValue::Blob { base64 } => Value::Blob(
                STANDARD_NO_PAD
                    .decode(base64.trim_end_matches('='))
                    .map_err(|_| "blob base64".to_owned())?,
            ),
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stmt {
    pub sql: String,
    #[serde(default)]
    pub args: Vec<HranaValue>,
    #[serde(default = "want_rows_default")]
    pub want_rows: bool,
}

fn want_rows_default() -> bool {
    true
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BatchCond {
    Ok { step: u32 },
    Error { step: u32 },
    Not { cond: Box<BatchCond> },
    And { conds: Vec<BatchCond> },
    Or { conds: Vec<BatchCond> },
    IsAutocommit,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<BatchCond>,
    pub stmt: Stmt,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Batch {
    pub steps: Vec<BatchStep>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamRequest {
    Execute { stmt: Stmt },
    Batch { batch: Batch },
    Sequence { sql: String },
    Close,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PipelineRequest {
    pub baton: Option<String>,
    pub requests: Vec<StreamRequest>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Col {
    pub name: Option<String>,
    #[serde(default)]
    pub decltype: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StmtResult {
    pub cols: Vec<Col>,
    pub rows: Vec<Vec<HranaValue>>,
    pub affected_row_count: u64,
    #[serde(default)]
    pub last_insert_rowid: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HranaError {
    pub message: String,
    #[serde(default)]
    pub code: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchResult {
    pub step_results: Vec<Option<StmtResult>>,
    pub step_errors: Vec<Option<HranaError>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamResponse {
    Execute { result: StmtResult },
    Batch { result: BatchResult },
    Sequence,
    Close,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamResult {
    Ok { response: StreamResponse },
    Error { error: HranaError },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PipelineResponse {
    pub baton: Option<String>,
    #[serde(default)]
    pub base_url: Option<String>,
    pub results: Vec<StreamResult>,
}

fn stmt(statement: &Statement, want_rows: bool) -> Stmt {
    Stmt {
        sql: statement.sql.to_string(),
        args: statement.params.iter().map(HranaValue::from).collect(),
        want_rows,
    }
}

/// Converts a result set into rows with named columns.
pub fn rows_of(result: StmtResult) -> Result<Vec<Row>, DbError> {
    let columns: Arc<[String]> = result
        .cols
        .into_iter()
        .map(|c| c.name.unwrap_or_default())
        .collect();
    result
        .rows
        .into_iter()
        .map(|values| {
            let values = values
                .into_iter()
                .map(Value::try_from)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| DbError::Decode(format!("hrana value: {e}")))?;
            Ok(Row::new(columns.clone(), values))
        })
        .collect()
}

/// A libSQL server (Turso, `sqld`, or the local stand-in) reached over HTTP. Every call is one
/// stateless pipeline (no baton), so edge instances hold no connection state between requests.
pub struct HranaDatabase {
    http: Arc<dyn Outbound>,
    pipeline_url: String,
    auth_token: Option<String>,
}

impl HranaDatabase {
    /// `url` is the database URL (`https://…`, or `libsql://…` which means HTTPS).
    pub fn new(http: Arc<dyn Outbound>, url: &str, auth_token: Option<String>) -> Self {
        let base = match url.strip_prefix("libsql://") {
            Some(rest) => format!("https://{rest}"),
            None => url.to_owned(),
        };
        HranaDatabase {
            http,
            pipeline_url: format!("{}/v3/pipeline", base.trim_end_matches('/')),
            auth_token,
        }
    }

    async fn pipeline(&self, requests: Vec<StreamRequest>) -> Result<Vec<StreamResult>, DbError> {
        let body = serde_json::to_vec(&PipelineRequest {
            baton: None,
            requests,
        })
        .map_err(|e| DbError::Other(e.to_string()))?;
        let request =
            OutboundRequest::post_json(self.pipeline_url.clone(), self.auth_token.as_deref(), body);
        let response = self
            .http
            .send(request)
            .await
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        decode_pipeline_response(response.status, &response.body)
    }

    async fn single(&self, request: StreamRequest) -> Result<StreamResponse, DbError> {
        first_response(self.pipeline(vec![request, StreamRequest::Close]).await?)
    }
}

/// A pipeline's HTTP answer as its stream results, or why it is not one.
pub fn decode_pipeline_response(status: u16, body: &[u8]) -> Result<Vec<StreamResult>, DbError> {
    if !(200..300).contains(&status) {
        return Err(DbError::Unavailable(format!(
            "libSQL server answered {status}: {}",
            body_excerpt(body)
        )));
    }
    let parsed: PipelineResponse = serde_json::from_slice(body)
        .map_err(|e| DbError::Decode(format!("libSQL pipeline response: {e}")))?;
    Ok(parsed.results)
}

/// The answer to the first request of a pipeline (the one before its `close`).
pub fn first_response(results: Vec<StreamResult>) -> Result<StreamResponse, DbError> {
    match results.into_iter().next() {
        Some(StreamResult::Ok { response }) => Ok(response),
        Some(StreamResult::Error { error }) => {
            Err(DbError::from_engine_message(error.message, None))
        }
        None => Err(DbError::Decode("libSQL pipeline returned no result".into())),
    }
}

/// What a `transaction_batch` of `statements` did, from its batch result: the rows each statement
/// changed, or the first error that explains the rollback.
pub fn transaction_outcome(
    statements: &[Statement],
    response: StreamResponse,
) -> Result<Vec<u64>, DbError> {
    let StreamResponse::Batch { result } = response else {
        return Err(DbError::Decode("unexpected libSQL response type".into()));
    };
    // The first failing statement explains the rollback.
    for (i, statement) in statements.iter().enumerate() {
        if let Some(Some(error)) = result.step_errors.get(i + 1) {
            return Err(DbError::from_engine_message(
                error.message.clone(),
                Some(statement),
            ));
        }
    }
    let commit = statements.len() + 1;
    if let Some(Some(error)) = result.step_errors.get(commit) {
        return Err(DbError::Unavailable(format!(
            "commit failed: {}",
            error.message
        )));
    }
    if let Some(Some(error)) = result.step_errors.first() {
        return Err(DbError::Unavailable(format!(
            "begin failed: {}",
            error.message
        )));
    }
    let committed = result.step_results.get(commit).is_some_and(Option::is_some);
    if !committed {
        return Err(DbError::Unavailable(
            "the transaction did not commit".into(),
        ));
    }
    Ok((1..=statements.len())
        .map(|i| {
            result
                .step_results
                .get(i)
                .and_then(Option::as_ref)
                .map_or(0, |r| r.affected_row_count)
        })
        .collect())
}

/// BEGIN, each statement only if the previous step succeeded, COMMIT if the last did, and
/// ROLLBACK unless COMMIT succeeded: atomic in one round trip.
pub fn transaction_batch(statements: &[Statement]) -> Batch {
    let mut steps = vec![BatchStep {
        condition: None,
        stmt: stmt(&Statement::new("BEGIN IMMEDIATE"), false),
    }];
    for (i, statement) in statements.iter().enumerate() {
        steps.push(BatchStep {
            condition: Some(BatchCond::Ok { step: i as u32 }),
            stmt: stmt(statement, false),
        });
    }
    let last = statements.len() as u32;
    steps.push(BatchStep {
        condition: Some(BatchCond::Ok { step: last }),
        stmt: stmt(&Statement::new("COMMIT"), false),
    });
    steps.push(BatchStep {
        condition: Some(BatchCond::Not {
            cond: Box::new(BatchCond::Ok { step: last + 1 }),
        }),
        stmt: stmt(&Statement::new("ROLLBACK"), false),
    });
    Batch { steps }
}

#[async_trait]
impl Database for HranaDatabase {
    async fn query(&self, statement: Statement) -> Result<Vec<Row>, DbError> {
        match self
            .single(StreamRequest::Execute {
                stmt: stmt(&statement, true),
            })
            .await
        {
            Ok(StreamResponse::Execute { result }) => rows_of(result),
            Ok(_) => Err(DbError::Decode("unexpected libSQL response type".into())),
            Err(DbError::Constraint(m)) | Err(DbError::Other(m)) => {
                Err(DbError::from_engine_message(m, Some(&statement)))
            }
            Err(e) => Err(e),
        }
    }

    async fn commit(&self, change: Change) -> Result<Vec<u64>, DbError> {
        chain::commit_optimistic(self, change).await
    }

    async fn transaction(&self, statements: Vec<Statement>) -> Result<Vec<u64>, DbError> {
        let batch = transaction_batch(&statements);
        let response = self.single(StreamRequest::Batch { batch }).await?;
        transaction_outcome(&statements, response)
    }

    async fn execute_script(&self, sql: &str) -> Result<(), DbError> {
        self.single(StreamRequest::Sequence {
            sql: sql.to_owned(),
        })
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_the_wire_format() {
        for value in [
            Value::Null,
            Value::Integer(i64::MAX),
            Value::Real(1.5),
            Value::Text("ü".into()),
            Value::Blob(vec![0, 255]),
        ] {
            let wire = serde_json::to_string(&HranaValue::from(&value)).unwrap();
            let back: HranaValue = serde_json::from_str(&wire).unwrap();
            assert_eq!(Value::try_from(back).unwrap(), value);
        }
        let unpadded = HranaValue::Blob {
            base64: "AQI".into(),
        };
        assert_eq!(Value::try_from(unpadded).unwrap(), Value::Blob(vec![1, 2]));
        assert_eq!(
            serde_json::to_value(HranaValue::from(&Value::Integer(7))).unwrap(),
            serde_json::json!({"type": "integer", "value": "7"})
        );
    }

    #[test]
    fn a_transaction_is_guarded_step_by_step() {
        let batch = transaction_batch(&[Statement::new("INSERT 1"), Statement::new("INSERT 2")]);
        let json = serde_json::to_value(&batch).unwrap();
        assert_eq!(json["steps"][0]["stmt"]["sql"], "BEGIN IMMEDIATE");
        assert_eq!(
            json["steps"][2]["condition"],
            serde_json::json!({"type": "ok", "step": 1})
        );
        assert_eq!(json["steps"][3]["stmt"]["sql"], "COMMIT");
        assert_eq!(
            json["steps"][4]["condition"],
            serde_json::json!({"type": "not", "cond": {"type": "ok", "step": 3}})
        );
    }
}
