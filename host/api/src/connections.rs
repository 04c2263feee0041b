//! Serving a router on a listener with limits on what clients may hold:
//! how long they may take to send a request, how many connections one
//! client address and everyone together may keep open, and how many
//! requests are handled at once.
//!
//! - **Head and idle timeout.** A connection waiting for a request head —
//!   a new one, or a kept-alive one between requests — is closed when the
//!   head has not arrived within [`ServeLimits::header_timeout`].
//! - **Body timeout.** A body must arrive within
//!   [`ServeLimits::body_timeout`] (`408`), and be at most
//!   [`ServeLimits::max_body_bytes`] (`413`). Bodies are read before a
//!   request takes a handling slot, so slow senders hold only connections.
//! - **Requests at once.** At most [`ServeLimits::max_in_flight`] requests
//!   are handled together; the next is answered `503` with `Retry-After` at
//!   once rather than queued. `GET /healthz` is never refused.
//! - **Write timeout.** A client that stops reading its answer is cut off
//!   once a write has made no progress for [`ServeLimits::write_timeout`].
//! - **Request timeout.** A request still unanswered after
//!   [`ServeLimits::request_timeout`] is answered `503`.
//! - **Connections.** One client address may hold
//!   [`ServeLimits::max_connections_per_client`] connections, everyone
//!   together [`ServeLimits::max_connections`]; a connection beyond either
//!   is answered `503` with `Retry-After` and closed. A trusted proxy
//!   ([`ServeLimits::uncapped_peers`]) carries many clients and is held to
//!   the total only.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// What clients of one listener may hold; see the module documentation.
#[derive(Clone, Debug)]
pub struct ServeLimits {
    /// Time to send a request head, counted from when the connection
    /// awaits one (so also how long an idle connection stays open).
    pub header_timeout: Duration,
    /// Time to send a request body once its head has arrived.
    pub body_timeout: Duration,
    /// Time a request may take from its head to its answer.
    pub request_timeout: Duration,
    /// Time a write of the answer may wait for the client to read.
    pub write_timeout: Duration,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Requests handled at once.
    pub max_in_flight: usize,
    /// Open connections from one client address.
    pub max_connections_per_client: usize,
    /// Open connections in all.
    pub max_connections: usize,
    /// Peers not held to the per-client cap: the load balancers in front
    /// of the host, whose connections carry many clients.
    pub uncapped_peers: Vec<IpAddr>,
    /// Told the code of each refusal made here (`too-many-connections`,
    /// `busy`, `request-timeout`, `body-timeout`, `body-too-large`), for
    /// the metrics.
    pub refused: Option<Refused>,
}

/// Counts the refusals of [`ServeLimits`] by their code.
#[derive(Clone)]
pub struct Refused(pub Arc<dyn Fn(&'static str) + Send + Sync>);

impl std::fmt::Debug for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Refused")
    }
}

impl Refused {
    fn count(refused: &Option<Refused>, code: &'static str) {
        if let Some(refused) = refused {
            (refused.0)(code);
        }
    }
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            max_body_bytes: crate::server::MAX_BODY_BYTES,
            max_in_flight: 512,
            max_connections_per_client: 256,
            max_connections: 16_384,
            uncapped_peers: Vec::new(),
            refused: None,
        }
    }
}

/// The open connections, by client address.
#[derive(Default)]
struct Open {
    by_client: HashMap<IpAddr, usize>,
    total: usize,
}

/// One accepted connection's place in [`Open`]; given back on drop.
struct Slot {
    open: Arc<Mutex<Open>>,
    client: IpAddr,
}

impl Slot {
    /// A place for a connection from `client`, if the limits leave one.
    fn take(open: &Arc<Mutex<Open>>, client: IpAddr, limits: &ServeLimits) -> Option<Self> {
        let mut counts = open.lock().unwrap_or_else(|e| e.into_inner());
        let from_client = counts.by_client.get(&client).copied().unwrap_or(0);
        let capped = !limits.uncapped_peers.contains(&client);
        if counts.total >= limits.max_connections
            || (capped && from_client >= limits.max_connections_per_client)
        {
            return None;
        }
        counts.total += 1;
        counts.by_client.insert(client, from_client + 1);
        Some(Self {
            open: open.clone(),
            client,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.open.lock().unwrap_or_else(|e| e.into_inner());
        counts.total -= 1;
        if let Some(count) = counts.by_client.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                counts.by_client.remove(&self.client);
            }
        }
    }
}

/// Serves `router` on `listener` under `limits` until `shutdown`
/// completes; requests in flight then finish (for at most the request
/// timeout). The router sees each request's peer as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve_limited(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router.layer(axum::middleware::from_fn_with_state(
        Arc::new(Gate::new(&limits)),
        gate,
    ));
    let open = Arc::new(Mutex::new(Open::default()));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let (stop_connections, _) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: wait a moment rather than spin.
                    tracing::warn!(%error, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = Slot::take(&open, peer.ip(), &limits) else {
            Refused::count(&limits.refused, "too-many-connections");
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = hyper::service::service_fn({
            let router = router.clone();
            move |mut request: Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                let router = router.clone();
                async move {
                    use tower::ServiceExt;
                    router.oneshot(request.map(Body::new)).await
                }
            }
        });
        let stream = WriteDeadline::new(stream, limits.write_timeout);
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let mut stop = stop_connections.subscribe();
        let grace = limits.request_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = stop.changed() => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(grace, connection).await;
        });
    }
    drop(listener);
    let _ = stop_connections.send(());
    stop_connections.closed().await;
    Ok(())
}

/// A connection whose writes fail once one has waited `limit` for the
/// client to read: a client that asks for an answer and never reads it
/// does not hold its connection (and a task) for ever.
struct WriteDeadline<T> {
    inner: T,
    limit: Duration,
    /// Since when the pending write has waited.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> WriteDeadline<T> {
    fn new(inner: T, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
        }
    }

    /// `outcome` of a write, unless it has been pending too long.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        outcome: Poll<R>,
    ) -> Poll<Result<R, std::io::Error>> {
        match outcome {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(Ok(result))
            }
            Poll::Pending => {
                let limit = self.limit;
                let stalled = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match stalled.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client stopped reading its answer",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let outcome = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, outcome).map(Result::flatten)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let outcome = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, outcome).map(Result::flatten)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Answers a connection beyond the limits with `503` and closes it.
async fn refuse(mut stream: tokio::net::TcpStream) {
    let body = ApiError::new(
        503,
        "too-many-connections",
        "this client, or everyone together, holds as many connections as the host allows; retry in a second",
    )
    .body()
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// The per-request limits: body time and size, requests at once, request
/// time.
struct Gate {
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    body_timeout: Duration,
    request_timeout: Duration,
    max_body_bytes: usize,
    refused: Option<Refused>,
}

impl Gate {
    fn new(limits: &ServeLimits) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
            max_in_flight: limits.max_in_flight,
            body_timeout: limits.body_timeout,
            request_timeout: limits.request_timeout,
            max_body_bytes: limits.max_body_bytes,
            refused: limits.refused.clone(),
        }
    }
}

/// Reads the body (in time, within size), takes a handling slot (or
/// answers `503` at once), then runs the request (in time).
async fn gate(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(
        gate.body_timeout,
        axum::body::to_bytes(body, gate.max_body_bytes),
    )
    .await;
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            Refused::count(&gate.refused, "body-too-large");
            return ApiError::new(
                413,
                "body-too-large",
                format!(
                    "the request body is larger than {} bytes, or was cut off",
                    gate.max_body_bytes
                ),
            )
            .into_response();
        }
        Err(_) => {
            Refused::count(&gate.refused, "body-timeout");
            return with_connection_close(
                ApiError::new(
                    408,
                    "request-timeout",
                    format!(
                        "the request body did not arrive within {} s",
                        gate.body_timeout.as_secs()
                    ),
                )
                .into_response(),
            );
        }
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    let permit = if request.uri().path() == "/healthz" {
        None
    } else {
        match gate.in_flight.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                Refused::count(&gate.refused, "busy");
                return retry_soon(
                    "busy",
                    format!(
                        "the host is handling {} requests, its limit; retry in a second",
                        gate.max_in_flight
                    ),
                );
            }
        }
    };
    let answered = tokio::time::timeout(gate.request_timeout, next.run(request)).await;
    drop(permit);
    match answered {
        Ok(response) => response,
        Err(_) => {
            Refused::count(&gate.refused, "request-timeout");
            retry_soon(
                "request-timeout",
                format!(
                    "the request was not answered within {} s",
                    gate.request_timeout.as_secs()
                ),
            )
        }
    }
}

/// `503` with `code`, and so (as every `503` answer) `Retry-After: 1`.
fn retry_soon(code: &str, message: String) -> Response {
    ApiError::new(503, code, message).into_response()
}

fn with_connection_close(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert("connection", HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpSocket, TcpStream};

    /// Serves a router with `/fast` and `/slow` (half a second) under
    /// `limits`; returns its address.
    async fn start(limits: ServeLimits) -> std::net::SocketAddr {
        let router = Router::new()
            .route(
                "/fast",
                get(|| async { "fast" }).post(|body: String| async move { body }),
            )
            .route("/big", get(|| async { vec![b'x'; 32 * 1024 * 1024] }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    "slow"
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(serve_limited(
            listener,
            router,
            limits,
            std::future::pending(),
        ));
        address
    }

    /// Connects from `source` (a loopback address) to `address`.
    async fn connect_from(source: &str, address: std::net::SocketAddr) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        socket.connect(address).await.unwrap()
    }

    /// Sends `request` and reads until the server closes or 2 s pass.
    async fn exchange(stream: &mut TcpStream, request: &str) -> String {
        stream.write_all(request.as_bytes()).await.unwrap();
        read_for(stream, Duration::from_secs(2)).await
    }

    async fn read_for(stream: &mut TcpStream, time: Duration) -> String {
        let mut received = Vec::new();
        let _ = tokio::time::timeout(time, async {
            let mut buffer = [0u8; 4096];
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => received.extend_from_slice(&buffer[..n]),
                }
            }
        })
        .await;
        String::from_utf8_lossy(&received).into_owned()
    }

    const GET_FAST: &str = "GET /fast HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";

    #[tokio::test]
    async fn a_half_sent_head_is_closed_at_the_header_timeout() {
        let address = start(ServeLimits {
            header_timeout: Duration::from_millis(300),
            ..ServeLimits::default()
        })
        .await;
        let mut stream = connect_from("127.0.0.1", address).await;
        stream
            .write_all(b"GET /fast HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let answer = read_for(&mut stream, Duration::from_secs(5)).await;
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_secs(2),
            "held for {waited:?}: {answer}"
        );
        // An idle kept-alive connection is closed the same way.
        let mut idle = connect_from("127.0.0.1", address).await;
        let started = std::time::Instant::now();
        let _ = read_for(&mut idle, Duration::from_secs(5)).await;
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_half_sent_body_is_answered_408() {
        let address = start(ServeLimits {
            body_timeout: Duration::from_millis(300),
            ..ServeLimits::default()
        })
        .await;
        let mut stream = connect_from("127.0.0.1", address).await;
        let answer = exchange(
            &mut stream,
            "POST /fast HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nonly ten b",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("request-timeout"), "{answer}");
    }

    #[tokio::test]
    async fn requests_beyond_the_limit_are_answered_503_at_once() {
        let counted = Arc::new(Mutex::new(Vec::new()));
        let counter = counted.clone();
        let address = start(ServeLimits {
            max_in_flight: 1,
            refused: Some(Refused(Arc::new(move |code| {
                counter.lock().unwrap().push(code)
            }))),
            ..ServeLimits::default()
        })
        .await;
        let mut slow = connect_from("127.0.0.1", address).await;
        slow.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut other = connect_from("127.0.0.1", address).await;
        let started = std::time::Instant::now();
        let answer = exchange(&mut other, GET_FAST).await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("retry-after: 1"), "{answer}");
        assert!(started.elapsed() < Duration::from_millis(400));
        assert_eq!(*counted.lock().unwrap(), ["busy"], "the refusal is counted");
        assert!(
            read_for(&mut slow, Duration::from_secs(2))
                .await
                .ends_with("slow")
        );
        // Health is answered even when busy.
        let mut slow = connect_from("127.0.0.1", address).await;
        slow.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut health = connect_from("127.0.0.1", address).await;
        let answer = exchange(
            &mut health,
            "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    }

    #[tokio::test]
    async fn a_trusted_proxy_is_held_to_the_total_only() {
        let address = start(ServeLimits {
            max_connections_per_client: 2,
            max_connections: 6,
            uncapped_peers: vec!["127.0.0.3".parse().unwrap()],
            ..ServeLimits::default()
        })
        .await;
        let mut held = Vec::new();
        for _ in 0..6 {
            held.push(connect_from("127.0.0.3", address).await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        // All six are open (a refused one would have been answered 503
        // and closed), three times the per-client cap.
        for stream in &mut held {
            assert_eq!(read_for(stream, Duration::from_millis(50)).await, "");
        }
        // The total is full now.
        let mut seventh = connect_from("127.0.0.3", address).await;
        let answer = exchange(&mut seventh, GET_FAST).await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_cut_off() {
        let address = start(ServeLimits {
            write_timeout: Duration::from_millis(300),
            max_connections_per_client: 1,
            ..ServeLimits::default()
        })
        .await;
        // Asks for 32 MiB and reads none of it: the host's writes stall.
        let mut reader = connect_from("127.0.0.4", address).await;
        reader
            .write_all(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // The stalled connection was closed, so the client's one
        // connection is free again.
        let mut next = connect_from("127.0.0.4", address).await;
        let answer = exchange(&mut next, GET_FAST).await;
        assert!(answer.ends_with("fast"), "{answer}");
        drop(reader);
    }

    #[tokio::test]
    async fn one_client_holds_at_most_its_share_of_connections() {
        let address = start(ServeLimits {
            max_connections_per_client: 4,
            ..ServeLimits::default()
        })
        .await;
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(connect_from("127.0.0.2", address).await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut fifth = connect_from("127.0.0.2", address).await;
        let answer = exchange(&mut fifth, GET_FAST).await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("too-many-connections"), "{answer}");
        assert!(answer.contains("retry-after: 1"), "{answer}");
        // Another client is served meanwhile; once one connection closes,
        // the first client may open another.
        let mut other = connect_from("127.0.0.1", address).await;
        assert!(exchange(&mut other, GET_FAST).await.ends_with("fast"));
        drop(held.pop());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut again = connect_from("127.0.0.2", address).await;
        assert!(exchange(&mut again, GET_FAST).await.ends_with("fast"));
    }
}
