//! A local stand-in for Upstash Redis: its REST protocol (a command as a JSON array or as path
//! segments, `/pipeline`, atomic `/multi-exec`, base64 responses, bearer or `_token` auth) played
//! onto a real Redis over RESP.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use redis::aio::{ConnectionLike, ConnectionManager};
use serde_json::{json, Value as Json_};

use crate::auth::{self, Credential};

/// A Redis command: its name and arguments, binary-safe.
type Command = Vec<Vec<u8>>;

/// Commands that would change the shared connection's state for every other request (a
/// transaction left open, a subscription, another database) or make no sense over REST.
const CONNECTION_COMMANDS: &[&str] = &[
    "MULTI",
    "EXEC",
    "DISCARD",
    "WATCH",
    "UNWATCH",
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "SSUBSCRIBE",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "SUNSUBSCRIBE",
    "MONITOR",
    "SELECT",
    "QUIT",
    "RESET",
    "HELLO",
    "AUTH",
    "CLIENT",
];

struct Upstash {
    /// One multiplexed connection: each request's commands are written to it contiguously, so a
    /// `/multi-exec` transaction (MULTI … EXEC) never interleaves with another request.
    redis: ConnectionManager,
    token: Option<String>,
}

/// The stand-in's routes over the Redis at `redis_url`.
pub async fn app(redis_url: &str, token: Option<String>) -> Result<Router, String> {
    let client = redis::Client::open(redis_url).map_err(|e| format!("--redis-url: {e}"))?;
    let redis = ConnectionManager::new(client)
        .await
        .map_err(|e| format!("connecting to Redis at {redis_url}: {e}"))?;
    let state = Arc::new(Upstash { redis, token });
    Ok(Router::new()
        .route("/pipeline", post(pipeline))
        .route("/multi-exec", post(multi_exec))
        .fallback(single)
        .with_state(state))
}

/// Why a request gets no Redis reply: status and Upstash's `{"error": …}` body.
#[derive(Debug)]
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad_request(message: impl Into<String>) -> Failure {
    Failure(StatusCode::BAD_REQUEST, message.into())
}

/// How results are written: Upstash base64-encodes every string (except a plain `OK` reply)
/// when the client asks with `Upstash-Encoding: base64`, as `@upstash/redis` does by default.
#[derive(Clone, Copy)]
struct Encoding {
    base64: bool,
}

impl Encoding {
    fn of(headers: &HeaderMap) -> Encoding {
        Encoding {
            base64: headers
                .get("upstash-encoding")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("base64")),
        }
    }

    fn text(self, bytes: &[u8]) -> Json_ {
        if self.base64 {
            Json_::String(STANDARD.encode(bytes))
        } else {
            // Upstash replaces invalid UTF-8 with U+FFFD unless base64 was asked for.
            Json_::String(String::from_utf8_lossy(bytes).into_owned())
        }
    }

    /// A reply as JSON; `top` is the whole result, where `OK` stays readable even in base64.
    fn reply(self, value: &redis::Value, top: bool) -> Json_ {
        use redis::Value as V;
        match value {
            V::Nil => Json_::Null,
            V::Int(i) => json!(i),
            V::Double(d) => json!(d),
            V::Boolean(b) => json!(i64::from(*b)),
            V::Okay if top => Json_::String("OK".into()),
            V::Okay => self.text(b"OK"),
            V::SimpleString(s) if top && s == "OK" => Json_::String("OK".into()),
            V::SimpleString(s) => self.text(s.as_bytes()),
            V::BulkString(bytes) => self.text(bytes),
            V::VerbatimString { text, .. } => self.text(text.as_bytes()),
            V::Array(items) | V::Set(items) => {
                Json_::Array(items.iter().map(|v| self.reply(v, false)).collect())
            }
            V::Map(pairs) => Json_::Array(
                pairs
                    .iter()
                    .flat_map(|(k, v)| [self.reply(k, false), self.reply(v, false)])
                    .collect(),
            ),
            V::ServerError(e) => Json_::String(error_text(e)),
            other => self.text(format!("{other:?}").as_bytes()),
        }
    }

    /// One command's outcome as Upstash writes it: `{"result": …}` or `{"error": "…"}`.
    fn outcome(self, value: &redis::Value) -> Json_ {
        match value {
            redis::Value::ServerError(e) => json!({ "error": error_text(e) }),
            other => json!({ "result": self.reply(other, true) }),
        }
    }
}

/// Redis's own error line, e.g. `WRONGTYPE Operation against a key holding the wrong kind of value`.
fn error_text(e: &redis::ServerError) -> String {
    match e.details() {
        Some(details) => format!("{} {details}", e.code()),
        None => e.code().to_owned(),
    }
}

fn authorize(
    headers: &HeaderMap,
    query: &[(String, String)],
    token: Option<&str>,
) -> Result<(), Failure> {
    let query_token = query
        .iter()
        .find(|(k, _)| k == "_token")
        .map(|(_, v)| v.as_str());
    match auth::check(headers, query_token, token) {
        Credential::Accepted => Ok(()),
        Credential::Missing => Err(Failure(StatusCode::UNAUTHORIZED, "Unauthorized".into())),
        Credential::Wrong => Err(Failure(
            StatusCode::UNAUTHORIZED,
            "WRONGPASS invalid or missing auth token".into(),
        )),
    }
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// A command written as a JSON array: the name, then arguments as strings or numbers.
fn command_from_json(value: &Json_) -> Result<Command, Failure> {
    let parts = value
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| bad_request("ERR a command is a non-empty JSON array"))?;
    parts
        .iter()
        .map(|part| match part {
            Json_::String(s) => Ok(s.as_bytes().to_vec()),
            Json_::Number(n) => Ok(n.to_string().into_bytes()),
            Json_::Bool(b) => Ok(b.to_string().into_bytes()),
            other => Err(bad_request(format!(
                "ERR command arguments are strings or numbers, not {other}"
            ))),
        })
        .collect()
}

fn name_of(command: &Command) -> String {
    String::from_utf8_lossy(&command[0]).to_ascii_uppercase()
}

fn check_allowed(command: &Command) -> Result<(), Failure> {
    let name = name_of(command);
    if CONNECTION_COMMANDS.contains(&name.as_str()) {
        return Err(bad_request(format!(
            "ERR Command is not available over REST: {}",
            name.to_ascii_lowercase()
        )));
    }
    Ok(())
}

fn redis_command(command: &Command) -> redis::Cmd {
    let mut cmd = redis::cmd(&name_of(command));
    for arg in &command[1..] {
        cmd.arg(arg.as_slice());
    }
    cmd
}

impl Upstash {
    /// Sends the commands as one pipeline; each reply comes back as a value, errors included.
    async fn send(
        &self,
        pipe: &redis::Pipeline,
        replies: usize,
    ) -> Result<Vec<redis::Value>, Failure> {
        let mut redis = self.redis.clone();
        redis
            .req_packed_commands(pipe, 0, replies)
            .await
            .map_err(|e| {
                Failure(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("ERR Redis is unreachable: {e}"),
                )
            })
    }

    async fn run(&self, commands: &[Command]) -> Result<Vec<redis::Value>, Failure> {
        let mut pipe = redis::pipe();
        for command in commands {
            pipe.add_command(redis_command(command));
        }
        self.send(&pipe, commands.len()).await
    }

    /// MULTI, the commands, EXEC: Redis runs them atomically. A command Redis refuses to queue
    /// discards the whole transaction, as Upstash does.
    async fn run_atomically(&self, commands: &[Command]) -> Result<Vec<redis::Value>, Failure> {
        let mut pipe = redis::pipe();
        pipe.cmd("MULTI");
        for command in commands {
            pipe.add_command(redis_command(command));
        }
        pipe.cmd("EXEC");
        let mut replies = self.send(&pipe, commands.len() + 2).await?;
        let queued = &replies[1..=commands.len()];
        if let Some(redis::Value::ServerError(e)) = queued
            .iter()
            .find(|r| matches!(r, redis::Value::ServerError(_)))
        {
            return Err(bad_request(error_text(e)));
        }
        match replies.pop() {
            Some(redis::Value::Array(results)) => Ok(results),
            Some(redis::Value::ServerError(e)) => Err(bad_request(error_text(&e))),
            other => Err(bad_request(format!(
                "ERR the transaction was not executed: {other:?}"
            ))),
        }
    }
}

/// `POST /` with `["SET","k","v"]`, or the path form `/set/k/v` (any of HEAD, GET, POST, PUT),
/// where a POST body is the last argument and query parameters add more (`?EX=100`).
async fn single(State(upstash): State<Arc<Upstash>>, request: Request) -> Response {
    match run_single(&upstash, request).await {
        Ok(response) => response,
        Err(failure) => failure.into_response(),
    }
}

async fn run_single(upstash: &Upstash, request: Request) -> Result<Response, Failure> {
    let (parts, body) = request.into_parts();
    if ![Method::HEAD, Method::GET, Method::POST, Method::PUT].contains(&parts.method) {
        return Err(Failure(
            StatusCode::METHOD_NOT_ALLOWED,
            "Only HEAD, GET, POST and PUT are allowed".into(),
        ));
    }
    let query = query_pairs(parts.uri.query());
    authorize(&parts.headers, &query, upstash.token.as_deref())?;
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .map_err(|_| bad_request("ERR request body too large"))?;
    let path = parts.uri.path().trim_matches('/');
    let command = if path.is_empty() {
        let json: Json_ = serde_json::from_slice(&body)
            .map_err(|_| bad_request("ERR failed to parse command: the body is not JSON"))?;
        command_from_json(&json)?
    } else {
        let mut command: Command = path
            .split('/')
            .map(|segment| percent_encoding::percent_decode_str(segment).collect())
            .collect();
        if !body.is_empty() {
            command.push(body.to_vec());
        }
        for (key, value) in query.into_iter().filter(|(k, _)| k != "_token") {
            command.push(key.into_bytes());
            if !value.is_empty() {
                command.push(value.into_bytes());
            }
        }
        command
    };
    check_allowed(&command)?;
    let encoding = Encoding::of(&parts.headers);
    let reply = upstash.run(std::slice::from_ref(&command)).await?;
    match &reply[0] {
        redis::Value::ServerError(e) => Err(bad_request(error_text(e))),
        value => Ok(Json(json!({ "result": encoding.reply(value, true) })).into_response()),
    }
}

/// The body of `/pipeline` and `/multi-exec`: an array of commands.
fn commands_of(
    headers: &HeaderMap,
    body: &[u8],
    upstash: &Upstash,
) -> Result<Vec<Command>, Failure> {
    authorize(headers, &[], upstash.token.as_deref())?;
    let Ok(Json_::Array(rows)) = serde_json::from_slice::<Json_>(body) else {
        return Err(bad_request("ERR the body is not a JSON array of commands"));
    };
    let commands = rows
        .iter()
        .map(command_from_json)
        .collect::<Result<Vec<_>, _>>()?;
    commands.iter().try_for_each(check_allowed)?;
    Ok(commands)
}

/// Not atomic: each command's reply or error, in order.
async fn pipeline(
    State(upstash): State<Arc<Upstash>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run_batch(&upstash, &headers, &body, false).await
}

/// Atomic: the same answer shape as `/pipeline`, or one error if the transaction was discarded.
async fn multi_exec(
    State(upstash): State<Arc<Upstash>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run_batch(&upstash, &headers, &body, true).await
}

async fn run_batch(upstash: &Upstash, headers: &HeaderMap, body: &[u8], atomic: bool) -> Response {
    let outcome = async {
        let commands = commands_of(headers, body, upstash)?;
        if atomic {
            upstash.run_atomically(&commands).await
        } else {
            upstash.run(&commands).await
        }
    };
    match outcome.await {
        Ok(replies) => {
            let encoding = Encoding::of(headers);
            Json(Json_::Array(
                replies.iter().map(|r| encoding.outcome(r)).collect(),
            ))
            .into_response()
        }
        Err(failure) => failure.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_encodes_every_string_but_a_plain_ok() {
        let b64 = Encoding { base64: true };
        assert_eq!(b64.reply(&redis::Value::Okay, true), json!("OK"));
        assert_eq!(
            b64.reply(&redis::Value::BulkString(b"OK".to_vec()), true),
            json!("T0s=")
        );
        assert_eq!(
            b64.reply(&redis::Value::SimpleString("PONG".into()), true),
            json!("UE9ORw==")
        );
        let nested = redis::Value::Array(vec![
            redis::Value::BulkString(b"a".to_vec()),
            redis::Value::Int(2),
            redis::Value::Nil,
        ]);
        assert_eq!(b64.reply(&nested, true), json!(["YQ==", 2, null]));
        let plain = Encoding { base64: false };
        assert_eq!(
            plain.reply(&redis::Value::BulkString(vec![0xff, b'a']), true),
            json!("\u{fffd}a")
        );
    }

    #[test]
    fn json_commands_accept_strings_and_numbers() {
        let command = command_from_json(&json!(["SET", "k", 1.5, "EX", 100])).unwrap();
        assert_eq!(
            command,
            vec![
                b"SET".to_vec(),
                b"k".to_vec(),
                b"1.5".to_vec(),
                b"EX".to_vec(),
                b"100".to_vec()
            ]
        );
        assert!(command_from_json(&json!([])).is_err());
        assert!(command_from_json(&json!(["SET", {"a": 1}])).is_err());
        assert!(check_allowed(&vec![b"multi".to_vec()]).is_err());
    }
}
