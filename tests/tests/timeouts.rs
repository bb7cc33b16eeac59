//! The listener against misbehaving clients, over raw TCP: slow heads, idle keep-alive
//! connections, slow bodies, more connections than allowed, a shutdown with half-sent requests,
//! and requests hyper itself refuses.

use std::time::{Duration, Instant};

use agentidp_tests::{serde_json, Server};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Short limits so each misbehaviour is cut off within a test's patience.
const LIMITS: [(&str, &str); 4] = [
    ("AGENTIDP_HEADER_TIMEOUT_SECONDS", "2"),
    ("AGENTIDP_BODY_TIMEOUT_SECONDS", "2"),
    ("AGENTIDP_IDLE_TIMEOUT_SECONDS", "2"),
    ("AGENTIDP_SHUTDOWN_GRACE_SECONDS", "2"),
];
/// Beyond a limit, how long the server may take to act on it (a loaded debug build, 2 cores).
const SLACK: Duration = Duration::from_secs(2);
/// How long a test waits before concluding the server will never act.
const PATIENCE: Duration = Duration::from_secs(8);

async fn connect(server: &Server) -> TcpStream {
    TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection or `patience` runs out; returns what was read
/// and when the connection closed (`None`: still open).
async fn read_until_closed(
    stream: &mut TcpStream,
    patience: Duration,
) -> (Vec<u8>, Option<Instant>) {
    let deadline = Instant::now() + patience;
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Err(_) => return (received, None),
            Ok(Ok(0)) | Ok(Err(_)) => return (received, Some(Instant::now())),
            Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Writes `bytes` one per second from a task, ignoring errors once the server has hung up.
fn drip(mut writer: tokio::net::tcp::OwnedWriteHalf, bytes: &'static [u8]) {
    tokio::spawn(async move {
        for byte in bytes {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

fn status_of(response: &[u8]) -> Option<u16> {
    std::str::from_utf8(response.get(9..12)?).ok()?.parse().ok()
}

/// The head and JSON body of a single response.
fn parse_response(response: &[u8]) -> (String, Value) {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_slowloris_head_is_cut_off_after_the_header_timeout() {
    let server = Server::start_with(&LIMITS).await;
    let stream = connect(&server).await;
    let opened = Instant::now();
    let (mut reader, writer) = stream.into_split();
    // One byte a second: never idle, never done.
    drip(
        writer,
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa\r\n\r\n",
    );
    let deadline = Instant::now() + PATIENCE;
    let mut received = Vec::new();
    let mut chunk = [0u8; 1024];
    let closed = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, reader.read(&mut chunk)).await {
            Err(_) => break None,
            Ok(Ok(0)) | Ok(Err(_)) => break Some(Instant::now()),
            Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
        }
    };
    let closed = closed.expect("a client sending one header byte a second was never disconnected");
    assert!(
        closed - opened <= Duration::from_secs(2) + SLACK,
        "disconnected only after {:?}",
        closed - opened
    );
    // It is told why, in the API's error format.
    assert_eq!(
        status_of(&received),
        Some(408),
        "{}",
        String::from_utf8_lossy(&received)
    );
    let (head, body) = parse_response(&received);
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    assert_eq!(body["code"], "request_timeout");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = Server::start_with(&LIMITS).await;
    let mut stream = connect(&server).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    // The response arrives; then the connection sits idle.
    let mut first = [0u8; 1024];
    let n = stream.read(&mut first).await.unwrap();
    assert_eq!(status_of(&first[..n]), Some(200));
    let answered = Instant::now();
    let (_, closed) = read_until_closed(&mut stream, PATIENCE).await;
    let closed = closed.expect("an idle keep-alive connection was never closed");
    assert!(
        closed - answered >= Duration::from_millis(1500),
        "closed after only {:?}, before the idle timeout",
        closed - answered
    );
    assert!(closed - answered <= Duration::from_secs(2) + SLACK);
}

#[tokio::test]
async fn a_slow_body_is_cut_off_after_the_body_timeout() {
    let server = Server::start_with(&LIMITS).await;
    let stream = connect(&server).await;
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(
            b"POST /v1/orgs HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n\
              content-length: 40\r\n\r\n",
        )
        .await
        .unwrap();
    let started = Instant::now();
    drip(writer, b"{\"name\": \"slow body, one byte a second\"}");
    let deadline = Instant::now() + PATIENCE;
    let mut received = Vec::new();
    let mut chunk = [0u8; 1024];
    let closed = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, reader.read(&mut chunk)).await {
            Err(_) => break None,
            Ok(Ok(0)) | Ok(Err(_)) => break Some(Instant::now()),
            Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
        }
    };
    let closed = closed.expect("a body sent one byte a second was never cut off");
    assert!(
        closed - started <= Duration::from_secs(2) + SLACK,
        "cut off only after {:?}",
        closed - started
    );
    assert_eq!(
        status_of(&received),
        Some(408),
        "{}",
        String::from_utf8_lossy(&received)
    );
    assert_eq!(parse_response(&received).1["code"], "request_timeout");
}

/// More idle connections than the cap (and than the process's descriptors would allow): the cap
/// sheds the idlest for each new one, so `/health` from a fresh connection still answers.
#[tokio::test]
async fn health_answers_with_connections_held_beyond_the_cap() {
    let mut env = LIMITS.to_vec();
    env.push(("AGENTIDP_MAX_CONNECTIONS", "64"));
    // 256 descriptors: without a cap the held connections exhaust them and accept fails.
    let server = Server::start_with_fd_limit(&env, 256).await;
    let mut held = Vec::new();
    for _ in 0..300 {
        held.push(connect(&server).await);
    }
    let http = agentidp_tests::reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    for _ in 0..3 {
        let response = http.get(server.url("/health")).send().await;
        assert!(
            response.as_ref().is_ok_and(|r| r.status() == 200),
            "/health did not answer with 300 connections held: {response:?}"
        );
    }
    drop(held);
}

#[tokio::test]
async fn shutdown_ends_within_the_grace_period_despite_half_sent_requests() {
    // Long header and body timeouts, so only the grace period can end these connections.
    let mut server = Server::start_with(&[
        ("AGENTIDP_HEADER_TIMEOUT_SECONDS", "60"),
        ("AGENTIDP_BODY_TIMEOUT_SECONDS", "60"),
        ("AGENTIDP_SHUTDOWN_GRACE_SECONDS", "2"),
    ])
    .await;
    let mut half_head = connect(&server).await;
    half_head
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.")
        .await
        .unwrap();
    let mut half_body = connect(&server).await;
    half_body
        .write_all(
            b"POST /v1/orgs HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{\"name\":",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    let exit = server.stop_within(PATIENCE);
    let exit = exit.expect("the server did not exit after SIGTERM with half-sent requests open");
    assert!(exit.success(), "{exit:?}");
    assert!(
        signalled.elapsed() <= Duration::from_secs(2) + SLACK,
        "exited only after {:?}",
        signalled.elapsed()
    );
}

/// Requests hyper refuses before any handler runs still get the API's problem documents.
#[tokio::test]
async fn malformed_requests_get_problem_documents() {
    let server = Server::start_with(&LIMITS).await;
    let mut many_headers = String::from("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for i in 0..150 {
        many_headers.push_str(&format!("x-h{i}: {i}\r\n"));
    }
    many_headers.push_str("\r\n");
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            b"POST /oauth2/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n"
                .to_vec(),
            400,
        ),
        // A byte that is not UTF-8 in the target (well-formed UTF-8 passes through to a 404).
        (
            b"GET /\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec(),
            400,
        ),
        (many_headers.into_bytes(), 431),
    ];
    for (request, status) in cases {
        let mut stream = connect(&server).await;
        stream.write_all(&request).await.unwrap();
        let (response, closed) = read_until_closed(&mut stream, PATIENCE).await;
        assert!(
            closed.is_some(),
            "the connection should close after a refusal"
        );
        let text = String::from_utf8_lossy(&response).into_owned();
        assert_eq!(status_of(&response), Some(status), "{text}");
        let (head, body) = parse_response(&response);
        assert!(
            head.contains("content-type: application/problem+json"),
            "{text}"
        );
        assert_eq!(body["status"], status, "{text}");
        assert!(body["code"].is_string(), "{text}");
    }
    // The server is unharmed.
    let health = server.http.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn an_http2_prior_knowledge_preface_gets_a_505() {
    let server = Server::start_with(&LIMITS).await;
    let mut stream = connect(&server).await;
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let (response, closed) = read_until_closed(&mut stream, PATIENCE).await;
    assert!(closed.is_some(), "the connection stays open");
    assert_eq!(status_of(&response), Some(505), "{response:?}");
    let (head, body) = parse_response(&response);
    assert!(head.contains("application/problem+json"), "{head}");
    assert_eq!(body["code"], "http_version_not_supported");
}
