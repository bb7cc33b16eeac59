//! Local stand-ins for the edge's managed backends, for running and testing the wasm builds without
//! a cloud account: libSQL's Hrana-over-HTTP protocol served from the embedded engine (as Turso's
//! `sqld` would), and Upstash's REST protocol translated onto a real Redis over RESP.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use agentidp_shared::axum::body::Bytes;
use agentidp_shared::axum::extract::State;
use agentidp_shared::axum::http::{HeaderMap, StatusCode};
use agentidp_shared::axum::response::{IntoResponse, Response};
use agentidp_shared::axum::routing::{get, post};
use agentidp_shared::axum::{self, Json, Router};
use agentidp_shared::platform::hrana::{
    Batch, BatchCond, BatchResult, Col, HranaError, HranaValue, PipelineRequest, PipelineResponse,
    Stmt, StmtResult, StreamRequest, StreamResponse, StreamResult,
};
use serde_json::{json, Value as Json_};
use tokio::sync::Mutex;

/// Serves both stand-ins until the process is stopped.
pub async fn serve(
    data_dir: &Path,
    hrana_listen: SocketAddr,
    upstash_listen: SocketAddr,
    redis_url: &str,
    token: Option<String>,
) -> Result<(), String> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let database = libsql::Builder::new_local(data_dir.join("turso-standin.db"))
        .build()
        .await
        .map_err(|e| format!("opening the stand-in database: {e}"))?;
    let conn = database.connect().map_err(|e| e.to_string())?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    )
    .await
    .map_err(|e| e.to_string())?;
    let hrana = Arc::new(HranaStandIn {
        conn: Mutex::new(conn),
        token: token.clone(),
        _database: database,
    });
    let hrana_app = Router::new()
        .route("/v2", get(|| async { StatusCode::OK }))
        .route("/v3", get(|| async { StatusCode::OK }))
        .route("/v2/pipeline", post(pipeline))
        .route("/v3/pipeline", post(pipeline))
        .with_state(hrana);

    let client = redis::Client::open(redis_url).map_err(|e| format!("REDIS_URL: {e}"))?;
    let redis = redis::aio::ConnectionManager::new(client)
        .await
        .map_err(|e| format!("connecting to Redis at {redis_url}: {e}"))?;
    let upstash = Arc::new(UpstashStandIn { redis, token });
    let upstash_app = Router::new()
        .route("/", post(upstash_command))
        .route("/pipeline", post(upstash_pipeline))
        .route("/multi-exec", post(upstash_pipeline))
        .with_state(upstash);

    let hrana_listener = tokio::net::TcpListener::bind(hrana_listen)
        .await
        .map_err(|e| format!("cannot listen on {hrana_listen}: {e}"))?;
    let upstash_listener = tokio::net::TcpListener::bind(upstash_listen)
        .await
        .map_err(|e| format!("cannot listen on {upstash_listen}: {e}"))?;
    tracing::info!(%hrana_listen, %upstash_listen, "local Turso and Upstash stand-ins serving");
    let (a, b) = tokio::join!(
        axum::serve(hrana_listener, hrana_app),
        axum::serve(upstash_listener, upstash_app)
    );
    a.and(b).map_err(|e| e.to_string())
}

fn authorized(headers: &HeaderMap, token: &Option<String>) -> bool {
    let Some(expected) = token else { return true };
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    presented
        .is_some_and(|p| subtle::ConstantTimeEq::ct_eq(p.as_bytes(), expected.as_bytes()).into())
}

struct HranaStandIn {
    /// One connection, one pipeline at a time: each pipeline is as isolated as on `sqld`.
    conn: Mutex<libsql::Connection>,
    token: Option<String>,
    _database: libsql::Database,
}

async fn pipeline(
    State(standin): State<Arc<HranaStandIn>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers, &standin.token) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "message": "unauthorized" })),
        )
            .into_response();
    }
    let request: PipelineRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "message": e.to_string() })),
            )
                .into_response()
        }
    };
    if request.baton.is_some() {
        let message = "this stand-in serves only stateless pipelines (baton null)";
        return (StatusCode::BAD_REQUEST, Json(json!({ "message": message }))).into_response();
    }
    let conn = standin.conn.lock().await;
    let mut results = Vec::with_capacity(request.requests.len());
    for stream_request in request.requests {
        results.push(match run(&conn, stream_request).await {
            Ok(response) => StreamResult::Ok { response },
            Err(error) => StreamResult::Error { error },
        });
    }
    // A pipeline that leaves a transaction open would leak it into the next caller's stream.
    if !conn.is_autocommit() {
        let _ = conn.execute("ROLLBACK", ()).await;
    }
    Json(PipelineResponse {
        baton: None,
        base_url: None,
        results,
    })
    .into_response()
}

fn hrana_error(e: libsql::Error) -> HranaError {
    let message = match e {
        libsql::Error::SqliteFailure(_, m) => m,
        other => other.to_string(),
    };
    HranaError {
        message,
        code: Some("SQLITE_ERROR".into()),
    }
}

async fn run(
    conn: &libsql::Connection,
    request: StreamRequest,
) -> Result<StreamResponse, HranaError> {
    match request {
        StreamRequest::Execute { stmt } => Ok(StreamResponse::Execute {
            result: execute(conn, &stmt).await?,
        }),
        StreamRequest::Batch { batch } => Ok(StreamResponse::Batch {
            result: run_batch(conn, batch).await,
        }),
        StreamRequest::Sequence { sql } => {
            conn.execute_batch(&sql).await.map_err(hrana_error)?;
            Ok(StreamResponse::Sequence)
        }
        StreamRequest::Close => Ok(StreamResponse::Close),
    }
}

async fn execute(conn: &libsql::Connection, stmt: &Stmt) -> Result<StmtResult, HranaError> {
    let params = stmt
        .args
        .iter()
        .cloned()
        .map(|v| {
            agentidp_shared::ports::sql::Value::try_from(v).map(|v| match v {
                agentidp_shared::ports::sql::Value::Null => libsql::Value::Null,
                agentidp_shared::ports::sql::Value::Integer(i) => libsql::Value::Integer(i),
                agentidp_shared::ports::sql::Value::Real(r) => libsql::Value::Real(r),
                agentidp_shared::ports::sql::Value::Text(t) => libsql::Value::Text(t),
                agentidp_shared::ports::sql::Value::Blob(b) => libsql::Value::Blob(b),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| HranaError {
            message: m,
            code: None,
        })?;
    let mut rows = conn
        .query(&stmt.sql, libsql::params::Params::Positional(params))
        .await
        .map_err(hrana_error)?;
    let cols: Vec<Col> = (0..rows.column_count())
        .map(|i| Col {
            name: rows.column_name(i).map(str::to_owned),
            decltype: None,
        })
        .collect();
    let mut out = Vec::new();
    while let Some(row) = rows.next().await.map_err(hrana_error)? {
        if !stmt.want_rows {
            continue;
        }
        let mut values = Vec::with_capacity(cols.len());
        for i in 0..cols.len() as i32 {
            let value = row.get_value(i).map_err(hrana_error)?;
            values.push(match value {
                libsql::Value::Null => HranaValue::Null,
                libsql::Value::Integer(i) => HranaValue::Integer {
                    value: i.to_string(),
                },
                libsql::Value::Real(r) => HranaValue::Float { value: r },
                libsql::Value::Text(t) => HranaValue::Text { value: t },
                libsql::Value::Blob(b) => {
                    HranaValue::from(&agentidp_shared::ports::sql::Value::Blob(b))
                }
            });
        }
        out.push(values);
    }
    Ok(StmtResult {
        cols,
        rows: out,
        affected_row_count: conn.changes(),
        last_insert_rowid: Some(conn.last_insert_rowid().to_string()),
    })
}

fn holds(cond: &BatchCond, result: &BatchResult, conn: &libsql::Connection) -> bool {
    let executed_ok = |step: u32| {
        result
            .step_results
            .get(step as usize)
            .is_some_and(Option::is_some)
    };
    let failed = |step: u32| {
        result
            .step_errors
            .get(step as usize)
            .is_some_and(Option::is_some)
    };
    match cond {
        BatchCond::Ok { step } => executed_ok(*step),
        BatchCond::Error { step } => failed(*step),
        BatchCond::Not { cond } => !holds(cond, result, conn),
        BatchCond::And { conds } => conds.iter().all(|c| holds(c, result, conn)),
        BatchCond::Or { conds } => conds.iter().any(|c| holds(c, result, conn)),
        BatchCond::IsAutocommit => conn.is_autocommit(),
    }
}

async fn run_batch(conn: &libsql::Connection, batch: Batch) -> BatchResult {
    let mut result = BatchResult {
        step_results: Vec::with_capacity(batch.steps.len()),
        step_errors: Vec::with_capacity(batch.steps.len()),
    };
    for step in batch.steps {
        let run_it = step
            .condition
            .as_ref()
            .is_none_or(|c| holds(c, &result, conn));
        if !run_it {
            result.step_results.push(None);
            result.step_errors.push(None);
            continue;
        }
        match execute(conn, &step.stmt).await {
            Ok(r) => {
                result.step_results.push(Some(r));
                result.step_errors.push(None);
            }
            Err(e) => {
                result.step_results.push(None);
                result.step_errors.push(Some(e));
            }
        }
    }
    result
}

struct UpstashStandIn {
    redis: redis::aio::ConnectionManager,
    token: Option<String>,
}

fn to_redis_args(command: &Json_) -> Result<redis::Cmd, String> {
    let parts = command
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or("a command is a non-empty JSON array")?;
    let text = |v: &Json_| match v {
        Json_::String(s) => Ok(s.clone()),
        Json_::Number(n) => Ok(n.to_string()),
        Json_::Bool(b) => Ok(b.to_string()),
        _ => Err("command arguments are strings or numbers".to_owned()),
    };
    let mut cmd = redis::cmd(&text(&parts[0])?);
    for part in &parts[1..] {
        cmd.arg(text(part)?);
    }
    Ok(cmd)
}

fn to_json(value: redis::Value) -> Json_ {
    match value {
        redis::Value::Nil => Json_::Null,
        redis::Value::Int(i) => json!(i),
        redis::Value::BulkString(b) => Json_::String(String::from_utf8_lossy(&b).into_owned()),
        redis::Value::SimpleString(s) => Json_::String(s),
        redis::Value::Okay => Json_::String("OK".into()),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            Json_::Array(items.into_iter().map(to_json).collect())
        }
        redis::Value::Double(d) => json!(d),
        redis::Value::Boolean(b) => json!(if b { 1 } else { 0 }),
        other => Json_::String(format!("{other:?}")),
    }
}

async fn run_command(standin: &UpstashStandIn, command: &Json_) -> (StatusCode, Json_) {
    let cmd = match to_redis_args(command) {
        Ok(cmd) => cmd,
        Err(e) => return (StatusCode::BAD_REQUEST, json!({ "error": e })),
    };
    let mut redis = standin.redis.clone();
    match cmd.query_async::<redis::Value>(&mut redis).await {
        Ok(value) => (StatusCode::OK, json!({ "result": to_json(value) })),
        Err(e) if e.is_io_error() || e.is_connection_dropped() => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": e.to_string() }),
        ),
        Err(e) => (StatusCode::BAD_REQUEST, json!({ "error": e.to_string() })),
    }
}

async fn upstash_command(
    State(standin): State<Arc<UpstashStandIn>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers, &standin.token) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "Unauthorized" })),
        )
            .into_response();
    }
    let Ok(command) = serde_json::from_slice::<Json_>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "body is not JSON" })),
        )
            .into_response();
    };
    let (status, body) = run_command(&standin, &command).await;
    (status, Json(body)).into_response()
}

async fn upstash_pipeline(
    State(standin): State<Arc<UpstashStandIn>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers, &standin.token) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "Unauthorized" })),
        )
            .into_response();
    }
    let Ok(Json_::Array(commands)) = serde_json::from_slice::<Json_>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "body is not a JSON array of commands" })),
        )
            .into_response();
    };
    let mut results = Vec::with_capacity(commands.len());
    for command in &commands {
        results.push(run_command(&standin, command).await.1);
    }
    Json(Json_::Array(results)).into_response()
}
