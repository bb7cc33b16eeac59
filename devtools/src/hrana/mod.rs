//! A local stand-in for Turso: libSQL's Hrana 3 protocol over HTTP (JSON), served from the
//! embedded libSQL engine with streams, batons and errors as Turso's `sqld` serves them.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::auth::{self, Credential};

mod proto;
mod session;
mod streams;

use proto::{CursorReqBody, CursorRespBody, PipelineReqBody, PipelineRespBody};
use session::{ProtocolError, Session, Version};
use streams::{AcquireError, Lease, Streams};

#[derive(Clone)]
struct Hrana {
    streams: Arc<Streams>,
    token: Option<String>,
}

/// The stand-in's routes, over the database file in `data_dir`; idle streams expire in the
/// background.
pub fn app(data_dir: &Path, token: Option<String>) -> Result<Router, String> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let database = data_dir.join("turso-standin.db");
    session::prepare_database(&database)?;
    let streams = Arc::new(Streams::new(database));
    let expiring = Arc::downgrade(&streams);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let Some(streams) = expiring.upgrade() else {
                return;
            };
            streams.expire_idle(Instant::now());
        }
    });
    let state = Hrana { streams, token };
    Ok(Router::new()
        .route(
            "/",
            get(|| async { "Hello, this is a local stand-in for sqld (Hrana over HTTP)" }),
        )
        .route("/health", get(|| async { StatusCode::OK }))
        .route("/v2", get(|| async { StatusCode::OK }))
        .route("/v3", get(|| async { StatusCode::OK }))
        .route(
            "/v2/pipeline",
            post(|s, h, b| pipeline(s, h, b, Version::Hrana2)),
        )
        .route(
            "/v3/pipeline",
            post(|s, h, b| pipeline(s, h, b, Version::Hrana3)),
        )
        .route("/v3/cursor", post(cursor))
        .with_state(state))
}

/// `sqld` answers a protocol violation with 400 and the reason as plain text.
fn protocol_error(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain")],
        message.into(),
    )
        .into_response()
}

/// Why a request gets no results.
enum Refusal {
    Unauthorized(&'static str),
    Protocol(String),
    Stream(AcquireError),
    /// The stream's thread is gone (it panicked): nothing can run on it.
    Died,
}

impl From<ProtocolError> for Refusal {
    fn from(ProtocolError(message): ProtocolError) -> Self {
        Refusal::Protocol(message)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Unauthorized(reason) => {
                (StatusCode::UNAUTHORIZED, Json(json!({ "error": reason }))).into_response()
            }
            Refusal::Protocol(message) => protocol_error(message),
            Refusal::Stream(e) => e.into_response(),
            Refusal::Died => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({
                    "message": "the stream's connection thread stopped",
                    "code": "INTERNAL",
                })),
            )
                .into_response(),
        }
    }
}

impl IntoResponse for AcquireError {
    fn into_response(self) -> Response {
        match self {
            AcquireError::BatonInvalid => protocol_error("Received an invalid baton"),
            AcquireError::BatonReused => {
                protocol_error("Received a baton that has already been used")
            }
            AcquireError::Expired => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({
                    "message": "The stream has expired due to inactivity",
                    "code": "STREAM_EXPIRED",
                })),
            )
                .into_response(),
            AcquireError::TooMany => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "message": format!("The server already has {} open streams", streams::MAX_STREAMS),
                    "code": "STREAMS_EXHAUSTED",
                })),
            )
                .into_response(),
            AcquireError::Open(message) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "message": message, "code": "INTERNAL" })),
            )
                .into_response(),
        }
    }
}

/// A request body that names its stream.
trait OnStream: serde::de::DeserializeOwned {
    fn baton(&self) -> Option<&str>;
}

impl OnStream for PipelineReqBody {
    fn baton(&self) -> Option<&str> {
        self.baton.as_deref()
    }
}

impl OnStream for CursorReqBody {
    fn baton(&self) -> Option<&str> {
        self.baton.as_deref()
    }
}

/// Checks the token, parses the body and takes the stream its baton names (or a new one).
fn begin<T: OnStream>(
    hrana: &Hrana,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(T, Lease), Refusal> {
    match auth::check(headers, None, hrana.token.as_deref()) {
        Credential::Accepted => {}
        Credential::Missing => {
            return Err(Refusal::Unauthorized(
                "Unauthorized: no authorization token",
            ))
        }
        Credential::Wrong => {
            return Err(Refusal::Unauthorized(
                "Unauthorized: the authorization token is not valid",
            ))
        }
    }
    let request: T = serde_json::from_slice(body).map_err(|e| {
        Refusal::Protocol(format!("Cannot deserialize client message from JSON: {e}"))
    })?;
    let lease = hrana
        .streams
        .acquire(request.baton())
        .map_err(Refusal::Stream)?;
    Ok((request, lease))
}

async fn pipeline(
    State(hrana): State<Hrana>,
    headers: HeaderMap,
    body: Bytes,
    version: Version,
) -> Response {
    run_pipeline(&hrana, &headers, &body, version)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn run_pipeline(
    hrana: &Hrana,
    headers: &HeaderMap,
    body: &[u8],
    version: Version,
) -> Result<Response, Refusal> {
    let (request, lease) = begin::<PipelineReqBody>(hrana, headers, body)?;
    // On a protocol error the lease is dropped, which closes the stream, as on `sqld`.
    let (results, closed) = lease
        .run(move |session: &mut Session| {
            let mut results = Vec::with_capacity(request.requests.len());
            for stream_request in request.requests {
                results.push(session.handle(stream_request, version)?);
            }
            Ok::<_, ProtocolError>((results, session.is_closed()))
        })
        .await
        .ok_or(Refusal::Died)??;
    Ok(Json(PipelineRespBody {
        baton: lease.release(!closed),
        base_url: None,
        results,
    })
    .into_response())
}

/// `/v3/cursor`: a batch whose results come back as lines of JSON, the first line carrying the
/// baton. The batch runs to completion before the first line is sent.
async fn cursor(State(hrana): State<Hrana>, headers: HeaderMap, body: Bytes) -> Response {
    run_cursor(&hrana, &headers, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn run_cursor(hrana: &Hrana, headers: &HeaderMap, body: &[u8]) -> Result<Response, Refusal> {
    let (request, lease) = begin::<CursorReqBody>(hrana, headers, body)?;
    let entries = lease
        .run(move |session: &mut Session| session.cursor(&request.batch, Version::Hrana3))
        .await
        .ok_or(Refusal::Died)??;
    let head = CursorRespBody {
        baton: lease.release(true),
        base_url: None,
    };
    let mut lines = serde_json::to_vec(&head).expect("protocol types always serialize");
    lines.push(b'\n');
    for entry in &entries {
        serde_json::to_writer(&mut lines, entry).expect("protocol types always serialize");
        lines.push(b'\n');
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        lines,
    )
        .into_response())
}
