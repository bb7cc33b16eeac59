//! The native HTTP/1 listener: header, body and idle timeouts, a connection cap that sheds idle connections first, problem documents for hyper's own refusals, and a bounded graceful shutdown.
//!
//! `axum::serve` exposes none of this, so connections are served with hyper's HTTP/1 builder
//! directly, one task each. Each connection is in one phase at a time (see [`Phase`]): waiting
//! for a request, receiving a request head, or being served. The socket wrapper enforces the
//! waiting and head deadlines; the request-body wrapper enforces the body deadline; a response
//! body wrapper marks the end of a request.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use agentidp_shared::axum::body::{Body, Bytes};
use agentidp_shared::axum::extract::ConnectInfo;
use agentidp_shared::axum::http::{Request, StatusCode};
use agentidp_shared::axum::Router;
use agentidp_shared::config::{self, ConfigError, ConfigSource};
use agentidp_shared::http::error::ApiError;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// File descriptors kept for everything but client connections (database, logs, outbound).
const RESERVED_FDS: u64 = 64;

/// The listener's limits, from the environment.
#[derive(Clone, Debug)]
pub struct Limits {
    /// From a new connection, or from the first byte of a later request, to its complete head.
    pub header_timeout: Duration,
    /// From a complete request head to the end of its body.
    pub body_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// How long a shutdown waits for requests in flight before closing their connections.
    pub shutdown_grace: Duration,
}

impl Limits {
    pub fn load(source: &dyn ConfigSource) -> Result<Self, ConfigError> {
        let seconds = |variable: &config::Variable| {
            variable
                .integer(source)
                .map(|s| Duration::from_secs(s.unsigned_abs()))
        };
        Ok(Limits {
            header_timeout: seconds(&config::HEADER_TIMEOUT_SECONDS)?,
            body_timeout: seconds(&config::BODY_TIMEOUT_SECONDS)?,
            idle_timeout: seconds(&config::IDLE_TIMEOUT_SECONDS)?,
            max_connections: usize::try_from(config::MAX_CONNECTIONS.integer(source)?)
                .unwrap_or(usize::MAX),
            shutdown_grace: seconds(&config::SHUTDOWN_GRACE_SECONDS)?,
        })
    }
}

/// Raises the soft file-descriptor limit towards what the connection cap needs, or lowers the cap
/// to what the limit allows: running out of descriptors would stop `accept` for everyone.
// `rlim_t` is `u64` here but not on every platform, so the casts stay.
#[allow(clippy::unnecessary_cast)]
fn fit_to_descriptor_limit(max_connections: usize) -> usize {
    let needed = max_connections as u64 + RESERVED_FDS;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return max_connections;
        }
        if (limit.rlim_cur as u64) < needed {
            let raised = libc::rlimit {
                rlim_cur: needed.min(limit.rlim_max as u64) as libc::rlim_t,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = raised.rlim_cur;
            }
        }
    }
    let available = (limit.rlim_cur as u64).saturating_sub(RESERVED_FDS).max(1);
    if available < max_connections as u64 {
        tracing::warn!(
            max_connections,
            allowed = available,
            "the file-descriptor limit is below AGENTIDP_MAX_CONNECTIONS; lowering the cap"
        );
        return available as usize;
    }
    max_connections
}

/// Where a connection is in its life, which decides its deadline and whether it may be shed.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// No byte of a request yet: a new connection (header deadline from its opening) or a
    /// keep-alive one between requests (idle deadline).
    Waiting { since: Instant, fresh: bool },
    /// Part of a request head has arrived; all of it is due by the header deadline.
    Head { since: Instant },
    /// A request is being served; the body deadline lives in [`TimeoutBody`].
    Busy {
        since: Instant,
        awaiting_body: bool,
        request: u64,
    },
}

/// One connection's shared state: its phase, and the signal that sheds it at the cap.
struct Connection {
    phase: Mutex<Phase>,
    shed: Notify,
    requests: AtomicU64,
    /// The last read that found nothing: woken when a request ends, so the idle deadline is
    /// armed even though hyper polled the socket before the response was done.
    reader: Mutex<Option<std::task::Waker>>,
}

impl Connection {
    fn new() -> Self {
        Connection {
            phase: Mutex::new(Phase::Waiting {
                since: Instant::now(),
                fresh: true,
            }),
            shed: Notify::new(),
            requests: AtomicU64::new(0),
            reader: Mutex::new(None),
        }
    }

    fn park_reader(&self, waker: &std::task::Waker) {
        let mut reader = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        if !reader.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *reader = Some(waker.clone());
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn on_bytes_read(&self) {
        let mut phase = self.phase();
        if let Phase::Waiting { since, fresh } = *phase {
            // A new connection's head is due within the header timeout of its opening.
            let since = if fresh { since } else { Instant::now() };
            *phase = Phase::Head { since };
        }
    }

    fn on_request(&self) -> u64 {
        let request = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        *self.phase() = Phase::Busy {
            since: Instant::now(),
            awaiting_body: false,
            request,
        };
        request
    }

    fn on_awaiting_body(&self, request: u64, awaiting: bool) {
        if let Phase::Busy {
            awaiting_body,
            request: current,
            ..
        } = &mut *self.phase()
        {
            if *current == request {
                *awaiting_body = awaiting;
            }
        }
    }

    fn on_response_done(&self, request: u64) {
        {
            let mut phase = self.phase();
            if !matches!(*phase, Phase::Busy { request: current, .. } if current == request) {
                return;
            }
            *phase = Phase::Waiting {
                since: Instant::now(),
                fresh: false,
            };
        }
        let reader = self.reader.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(waker) = reader {
            waker.wake();
        }
    }

    /// When the socket wrapper gives up on this connection, and whether a head was under way.
    fn deadline(&self, limits: &Limits) -> Option<(Instant, bool)> {
        match *self.phase() {
            Phase::Waiting { since, fresh: true } => Some((since + limits.header_timeout, false)),
            Phase::Waiting { since, .. } => Some((since + limits.idle_timeout, false)),
            Phase::Head { since } => Some((since + limits.header_timeout, true)),
            Phase::Busy { .. } => None,
        }
    }

    /// How readily this connection is shed at the cap: waiting or sending a head first, then
    /// sending a body, oldest first; a request being processed never.
    fn shed_rank(&self) -> Option<(u8, Instant)> {
        match *self.phase() {
            Phase::Waiting { since, .. } | Phase::Head { since } => Some((0, since)),
            Phase::Busy {
                since,
                awaiting_body: true,
                ..
            } => Some((1, since)),
            Phase::Busy { .. } => None,
        }
    }
}

/// Every open connection, so the one to shed can be found when the cap is reached.
#[derive(Default)]
struct Registry {
    connections: Mutex<HashMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, connection: Arc<Connection>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, connection);
        id
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Signals the most sheddable connection to close; false when every one is mid-request.
    fn shed_one(&self) -> bool {
        let victim = self
            .lock()
            .values()
            .filter_map(|c| c.shed_rank().map(|rank| (rank, c.clone())))
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, c)| c);
        match victim {
            Some(connection) => {
                connection.shed.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight finish for
/// at most the grace period and closes whatever is left.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let limits = Arc::new(Limits {
        max_connections: fit_to_descriptor_limit(limits.max_connections),
        ..limits
    });
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let registry = Arc::new(Registry::default());
    let graceful = GracefulShutdown::new();
    let mut tasks = JoinSet::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Deadlines are enforced by the wrappers below; hyper's own header timer would need a timer
    // and could only express one of them.
    builder.keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: pause, retry.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // At the cap: shed an idle or slow connection for this one; if every connection
                // is mid-request, wait for one to finish (later clients queue in the backlog).
                registry.shed_one();
                tokio::select! {
                    permit = slots.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let connection = Arc::new(Connection::new());
        let id = registry.add(connection.clone());
        let io = TokioIo::new(Guarded::new(stream, connection.clone(), limits.clone()));
        let service = {
            let (app, connection, limits) = (app.clone(), connection.clone(), limits.clone());
            hyper::service::service_fn(move |request: Request<Incoming>| {
                let request_id = connection.on_request();
                let (parts, incoming) = request.into_parts();
                let body = TimeoutBody::new(
                    incoming,
                    limits.body_timeout,
                    connection.clone(),
                    request_id,
                );
                let mut request = Request::from_parts(parts, Body::new(body));
                request.extensions_mut().insert(ConnectInfo(peer));
                let (app, connection) = (app.clone(), connection.clone());
                async move {
                    let response = app.oneshot(request).await.unwrap_or_else(|e| match e {});
                    Ok::<_, Infallible>(response.map(|body| TrackedBody {
                        inner: body,
                        connection,
                        request: request_id,
                    }))
                }
            })
        };
        let served = graceful.watch(builder.serve_connection(io, service));
        let registry = registry.clone();
        tasks.spawn(async move {
            tokio::select! {
                result = served => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                () = connection.shed.notified() => {
                    tracing::debug!("connection shed at the connection cap");
                }
            }
            registry.remove(id);
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!(
        open = graceful.count(),
        grace_seconds = limits.shutdown_grace.as_secs(),
        "shutting down: finishing in-flight requests"
    );
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = tasks.len(),
            "shutdown grace period over; closing the remaining connections"
        );
    }
    tasks.shutdown().await;
}

/// The socket, with the waiting and head deadlines, and hyper's empty automatic refusals replaced
/// by problem documents.
struct Guarded {
    stream: TcpStream,
    connection: Arc<Connection>,
    limits: Arc<Limits>,
    timer: Option<(Instant, Pin<Box<Sleep>>)>,
    /// A replacement for hyper's refusal, and how much of it is written.
    replacement: Option<(Vec<u8>, usize)>,
    /// Whether the connection's first bytes were looked at for an HTTP/2 preface.
    preface_checked: bool,
}

/// What an HTTP/2 client with prior knowledge sends first (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

impl Guarded {
    fn new(stream: TcpStream, connection: Arc<Connection>, limits: Arc<Limits>) -> Self {
        Guarded {
            stream,
            connection,
            limits,
            timer: None,
            replacement: None,
            preface_checked: false,
        }
    }

    /// Ready when the current phase's deadline has passed (registering the waker otherwise).
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let Some((deadline, mid_head)) = self.connection.deadline(&self.limits) else {
            self.timer = None;
            return Poll::Pending;
        };
        match &mut self.timer {
            Some((at, sleep)) if *at == deadline => {
                ready!(sleep.as_mut().poll(cx));
            }
            _ => {
                let mut sleep = Box::pin(tokio::time::sleep_until(deadline));
                let fired = sleep.as_mut().poll(cx).is_ready();
                self.timer = Some((deadline, sleep));
                if !fired {
                    return Poll::Pending;
                }
            }
        }
        Poll::Ready(mid_head)
    }

    /// Writes as much of the replacement as the socket takes; ready once it is all out.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacement {
            if *written == bytes.len() {
                return Poll::Ready(Ok(()));
            }
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// True when `buf` is hyper's automatic answer to an unparsable request head: written while
    /// a head was being received (no request was handed to the application), one status line
    /// of a 4xx and headers, an empty body, and then the connection closes.
    fn is_automatic_refusal(&self, buf: &[u8]) -> Option<StatusCode> {
        if !matches!(*self.connection.phase(), Phase::Head { .. }) {
            return None;
        }
        let text = std::str::from_utf8(buf).ok()?;
        let head = text.strip_suffix("\r\n\r\n")?;
        let status = head.strip_prefix("HTTP/1.1 ")?.get(..3)?;
        let lower = head.to_ascii_lowercase();
        if head.contains("\r\n\r\n")
            || !lower.contains("\r\ncontent-length: 0")
            || lower.contains("\r\ncontent-type:")
        {
            return None;
        }
        StatusCode::from_bytes(status.as_bytes())
            .ok()
            .filter(StatusCode::is_client_error)
    }
}

/// A complete `Connection: close` response carrying the API's problem document.
fn problem_response(status: StatusCode, code: &'static str, detail: &str) -> Vec<u8> {
    let body = ApiError::new(status, code, detail)
        .problem_document()
        .to_string();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        body.len()
    )
    .into_bytes()
}

/// The problem for a request head hyper refused before the application could see it.
fn refusal(status: StatusCode) -> Vec<u8> {
    let (code, detail) = match status {
        StatusCode::URI_TOO_LONG => ("uri_too_long", "the request target is too long"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            "header_fields_too_large",
            "the request has too many or too large header fields",
        ),
        _ => (
            "malformed_request",
            "the request line or headers are not valid HTTP/1.1",
        ),
    };
    problem_response(status, code, detail)
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.connection.on_bytes_read();
                    if !self.preface_checked {
                        self.preface_checked = true;
                        if buf.filled()[before..].starts_with(H2_PREFACE) {
                            // hyper's HTTP/1 server would close without a word: say why, then
                            // end the connection as if the client had.
                            let answer = problem_response(
                                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                                "http_version_not_supported",
                                "this server speaks HTTP/1.1 only (no h2c); use HTTP/1.1, or \
                                 HTTP/2 through TLS in front of it",
                            );
                            let _ = self.stream.try_write(&answer);
                            buf.set_filled(before);
                        }
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match self.poll_deadline(cx) {
                Poll::Pending if self.timer.is_none() => {
                    self.connection.park_reader(cx.waker());
                    Poll::Pending
                }
                Poll::Pending => Poll::Pending,
                Poll::Ready(mid_head) => {
                    if mid_head {
                        // Best effort: a client that stopped mid-head learns why it is cut off.
                        let answer = problem_response(
                            StatusCode::REQUEST_TIMEOUT,
                            "request_timeout",
                            "the request head did not arrive in time",
                        );
                        let _ = self.stream.try_write(&answer);
                    }
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection deadline passed",
                    )))
                }
            },
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replacement.is_none() {
            match self.is_automatic_refusal(buf) {
                Some(status) => self.replacement = Some((refusal(status), 0)),
                None => return Pin::new(&mut self.stream).poll_write(cx, buf),
            }
        }
        // hyper retries the same bytes until they are taken; they are taken once ours are out.
        ready!(self.poll_replacement(cx))?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // Only a connection receiving a head can be answering with hyper's refusal; responses of
        // the application go straight to the socket.
        if self.replacement.is_none() && !matches!(*self.connection.phase(), Phase::Head { .. }) {
            return Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        }
        let joined: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        self.poll_write(cx, &joined)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A request body that must arrive in full within the body timeout of its head.
struct TimeoutBody {
    inner: Incoming,
    timeout: Duration,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    connection: Arc<Connection>,
    request: u64,
}

impl TimeoutBody {
    fn new(inner: Incoming, timeout: Duration, connection: Arc<Connection>, request: u64) -> Self {
        TimeoutBody {
            inner,
            timeout,
            deadline: Instant::now() + timeout,
            sleep: None,
            connection,
            request,
        }
    }
}

impl HttpBody for TimeoutBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.connection.on_awaiting_body(this.request, false);
                Poll::Ready(frame.map(|f| f.map_err(io::Error::other)))
            }
            Poll::Pending => {
                this.connection.on_awaiting_body(this.request, true);
                // The timer is armed only for bodies that are actually late in coming.
                let deadline = this.deadline;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                ready!(sleep.as_mut().poll(cx));
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the request body did not arrive within {} s",
                        this.timeout.as_secs()
                    ),
                ))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that tells its connection when the request is over (sent, or abandoned).
struct TrackedBody {
    inner: Body,
    connection: Arc<Connection>,
    request: u64,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = agentidp_shared::axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if frame.is_none() {
            self.connection.on_response_done(self.request);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        self.connection.on_response_done(self.request);
    }
}
