//! Hrana 3 over HTTP, JSON encoding: the server's side of the wire (what clients send, what they
//! read back), field for field as `docs/HRANA_3_SPEC.md` in the libSQL repository defines it.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
pub struct PipelineReqBody {
    #[serde(default)]
    pub baton: Option<String>,
    pub requests: Vec<StreamRequest>,
}

#[derive(Debug, Serialize)]
pub struct PipelineRespBody {
    pub baton: Option<String>,
    pub base_url: Option<String>,
    pub results: Vec<StreamResult>,
}

#[derive(Debug, Deserialize)]
pub struct CursorReqBody {
    #[serde(default)]
    pub baton: Option<String>,
    pub batch: Batch,
}

#[derive(Debug, Serialize)]
pub struct CursorRespBody {
    pub baton: Option<String>,
    pub base_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamRequest {
    Close,
    Execute {
        stmt: Stmt,
    },
    Batch {
        batch: Batch,
    },
    Sequence {
        #[serde(default)]
        sql: Option<String>,
        #[serde(default)]
        sql_id: Option<i32>,
    },
    Describe {
        #[serde(default)]
        sql: Option<String>,
        #[serde(default)]
        sql_id: Option<i32>,
    },
    StoreSql {
        sql_id: i32,
        sql: String,
    },
    CloseSql {
        sql_id: i32,
    },
    GetAutocommit,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamResult {
    Ok { response: StreamResponse },
    Error { error: Error },
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamResponse {
    Close,
    Execute { result: StmtResult },
    Batch { result: BatchResult },
    Sequence,
    Describe { result: DescribeResult },
    StoreSql,
    CloseSql,
    GetAutocommit { is_autocommit: bool },
}

/// `code` is always present, as `sqld` sends it; clients map it to their error codes.
#[derive(Clone, Debug, Serialize)]
pub struct Error {
    pub message: String,
    pub code: String,
}

#[derive(Debug, Deserialize)]
pub struct Stmt {
    #[serde(default)]
    pub sql: Option<String>,
    #[serde(default)]
    pub sql_id: Option<i32>,
    #[serde(default)]
    pub args: Vec<Value>,
    #[serde(default)]
    pub named_args: Vec<NamedArg>,
    #[serde(default)]
    pub want_rows: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct NamedArg {
    pub name: String,
    pub value: Value,
}

#[derive(Debug, Serialize)]
pub struct StmtResult {
    pub cols: Vec<Col>,
    pub rows: Vec<Vec<Value>>,
    pub affected_row_count: u64,
    #[serde(serialize_with = "option_i64_as_string")]
    pub last_insert_rowid: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct Col {
    pub name: Option<String>,
    pub decltype: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Batch {
    pub steps: Vec<BatchStep>,
}

#[derive(Debug, Deserialize)]
pub struct BatchStep {
    #[serde(default)]
    pub condition: Option<BatchCond>,
    pub stmt: Stmt,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BatchCond {
    Ok { step: u32 },
    Error { step: u32 },
    Not { cond: Box<BatchCond> },
    And { conds: Vec<BatchCond> },
    Or { conds: Vec<BatchCond> },
    IsAutocommit,
}

#[derive(Debug, Default, Serialize)]
pub struct BatchResult {
    pub step_results: Vec<Option<StmtResult>>,
    pub step_errors: Vec<Option<Error>>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CursorEntry {
    StepBegin {
        step: u32,
        cols: Vec<Col>,
    },
    StepEnd {
        affected_row_count: u64,
        #[serde(serialize_with = "option_i64_as_string")]
        last_insert_rowid: Option<i64>,
    },
    StepError {
        step: u32,
        error: Error,
    },
    Row {
        row: Vec<Value>,
    },
}

#[derive(Debug, Serialize)]
pub struct DescribeResult {
    pub params: Vec<DescribeParam>,
    pub cols: Vec<DescribeCol>,
    pub is_explain: bool,
    pub is_readonly: bool,
}

#[derive(Debug, Serialize)]
pub struct DescribeParam {
    pub name: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DescribeCol {
    pub name: String,
    pub decltype: Option<String>,
}

/// A SQLite value. Integers travel as decimal strings (JSON numbers would lose precision past
/// 2^53); blobs as base64, written without padding and read with or without it, as `sqld` does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Value {
    Null,
    Integer {
        #[serde(with = "i64_as_string")]
        value: i64,
    },
    Float {
        value: f64,
    },
    Text {
        value: String,
    },
    Blob {
        #[serde(rename = "base64", with = "bytes_as_base64")]
        value: Vec<u8>,
    },
}

fn option_i64_as_string<S: serde::Serializer>(
    value: &Option<i64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    value.map(|v| v.to_string()).serialize(s)
}

mod i64_as_string {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(value: &i64, s: S) -> Result<S::Ok, S::Error> {
        value.to_string().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(|_| {
            D::Error::custom(format!(
                "integer value `{text}` is not a 64-bit decimal string"
            ))
        })
    }
}

mod bytes_as_base64 {
    use super::{Engine as _, STANDARD_NO_PAD};
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(value: &[u8], s: S) -> Result<S::Ok, S::Error> {
        STANDARD_NO_PAD.encode(value).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| D::Error::custom("blob value is not base64"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_use_the_wire_forms_clients_expect() {
        let wire = |v: &Value| serde_json::to_value(v).unwrap();
        assert_eq!(
            wire(&Value::Integer { value: i64::MIN }),
            json!({"type": "integer", "value": "-9223372036854775808"})
        );
        assert_eq!(
            wire(&Value::Blob { value: vec![1, 2] }),
            json!({"type": "blob", "base64": "AQI"})
        );
        for padded in ["AQI=", "AQI"] {
            let back: Value =
                serde_json::from_value(json!({"type": "blob", "base64": padded})).unwrap();
            assert_eq!(back, Value::Blob { value: vec![1, 2] });
        }
        let float: Value = serde_json::from_value(json!({"type": "float", "value": 42})).unwrap();
        assert_eq!(float, Value::Float { value: 42.0 });
        assert!(serde_json::from_value::<Value>(json!({"type": "integer", "value": 1})).is_err());
    }

    #[test]
    fn requests_parse_as_the_official_client_writes_them() {
        let body: PipelineReqBody = serde_json::from_value(json!({
            "baton": null,
            "requests": [
                {"type": "store_sql", "sql_id": 1, "sql": "SELECT :x"},
                {"type": "execute", "stmt": {"sql_id": 1, "args": [], "want_rows": true,
                    "named_args": [{"name": "x", "value": {"type": "float", "value": 42}}]}},
                {"type": "batch", "batch": {"steps": [
                    {"stmt": {"sql": "BEGIN"}},
                    {"condition": {"type": "not", "cond": {"type": "is_autocommit"}},
                     "stmt": {"sql": "COMMIT"}}]}},
                {"type": "get_autocommit"},
                {"type": "close"}
            ]
        }))
        .unwrap();
        assert_eq!(body.requests.len(), 5);
    }
}
