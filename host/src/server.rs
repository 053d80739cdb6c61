//! Accepts connections on every binding and hands each request to its
//! binding's [`Endpoint`].
//!
//! * **Protocols.** hyper-util's auto builder speaks HTTP/1.1 (keep-alive)
//!   and HTTP/2, detected per connection: ALPN on TLS, the h2 preface (h2c
//!   with prior knowledge) on plain TCP. `http2 = false` keeps a binding to
//!   HTTP/1.1.
//! * **Timeouts.** HTTP/1 headers must arrive within `header_read_timeout`
//!   (the TLS handshake too); a connection with no bytes moving either way
//!   for `idle_timeout` is closed (an upload that stalls is cut, and never
//!   committed).
//! * **Connection limit.** Each binding holds at most `max_connections`;
//!   more are closed as soon as they are accepted, and so are connections
//!   from a banned IP when the defender's action is `drop`.
//! * **Graceful shutdown.** On the shutdown signal every listener closes at
//!   once, open connections are asked to finish (HTTP/1 finishes the request
//!   in flight; HTTP/2 sends GOAWAY) and get `shutdown_grace` to do so. Then
//!   [`serve`] returns and the process exits: requests still running are
//!   dropped, and with them any upload's storage writer, which discards its
//!   content, so an upload cut off is never committed half-written.
//! * **Admin listener.** `GET /metrics` (Prometheus text) and
//!   `GET /healthz`, plain HTTP/1.1 on its own address.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::access::Endpoint;
use crate::config::BanAction;
use crate::limits::Defender;
use crate::metrics;

/// One binding, bound.
pub struct Listener {
    pub tcp: TcpListener,
    pub endpoint: Arc<Endpoint>,
    pub tls: Option<TlsAcceptor>,
    pub http2: bool,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// The admin listener and what its metrics report on.
pub struct Admin {
    pub tcp: TcpListener,
    pub defenders: Vec<Arc<Defender>>,
}

/// Serves every listener until `shutdown` completes, then drains open
/// connections for at most `grace`.
pub async fn serve(
    listeners: Vec<Listener>,
    admin: Option<Admin>,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let (stop, stopped) = watch::channel(false);
    // Every accept loop and connection holds a sender; when all are gone,
    // everything has closed.
    let (alive, mut all_closed) = mpsc::channel::<()>(1);
    for listener in listeners {
        tokio::spawn(accept_loop(listener, stopped.clone(), alive.clone()));
    }
    if let Some(admin) = admin {
        tokio::spawn(admin_loop(admin, stopped.clone(), alive.clone()));
    }
    drop(alive);

    shutdown.await;
    info!(
        "shutting down: no new connections; waiting up to {:?} for open ones",
        grace
    );
    let _ = stop.send(true);
    match tokio::time::timeout(grace, all_closed.recv()).await {
        Ok(_) => info!("all connections closed"),
        Err(_) => warn!(
            "gave up waiting after {grace:?}: {} connections still open; requests in flight are \
             aborted and unfinished uploads discarded",
            metrics::get().active_connections.load(Relaxed)
        ),
    }
}

async fn accept_loop(
    listener: Listener,
    mut stopped: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) {
    let limit = Arc::new(Semaphore::new(listener.max_connections));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(listener.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(if listener.http2 {
        builder
    } else {
        builder.http1_only()
    });
    let drop_banned = listener
        .endpoint
        .defender
        .as_ref()
        .filter(|d| d.action == BanAction::Drop)
        .cloned();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.tcp.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        if drop_banned.as_ref().is_some_and(|d| d.is_banned(peer.ip()))
            && !listener
                .endpoint
                .trusted_proxies
                .iter()
                .any(|net| net.contains(peer.ip()))
        {
            metrics::get().connections_rejected.fetch_add(1, Relaxed);
            metrics::get().banned_requests.fetch_add(1, Relaxed);
            continue;
        }
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            metrics::get().connections_rejected.fetch_add(1, Relaxed);
            debug!(%peer, "connection limit reached; closing");
            continue;
        };
        if let Err(e) = stream.set_nodelay(true) {
            debug!(%peer, "TCP_NODELAY not set: {e}");
        }
        metrics::get().connections_accepted.fetch_add(1, Relaxed);
        let connection = Connection {
            peer,
            endpoint: listener.endpoint.clone(),
            builder: builder.clone(),
            idle_timeout: listener.idle_timeout,
            stopped: stopped.clone(),
        };
        let tls = listener.tls.clone();
        let handshake_timeout = listener.header_read_timeout;
        let alive = alive.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _alive = alive;
            let _active = ActiveConnection::new();
            let activity = Arc::new(Activity::new());
            let io = Tracked {
                inner: stream,
                activity: activity.clone(),
            };
            match tls {
                None => connection.run(io, activity).await,
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(io)).await {
                        Ok(Ok(tls)) => connection.run(tls, activity).await,
                        Ok(Err(e)) => debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    info!(address = %listener.tcp.local_addr().map_or_else(|_| "?".into(), |a| a.to_string()), "listener closed");
}

/// One accepted connection.
struct Connection {
    peer: SocketAddr,
    endpoint: Arc<Endpoint>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    idle_timeout: Duration,
    stopped: watch::Receiver<bool>,
}

impl Connection {
    async fn run<I>(mut self, io: I, activity: Arc<Activity>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (endpoint, peer) = (self.endpoint.clone(), self.peer);
        let service = service_fn(move |request: Request<Incoming>| {
            let endpoint = endpoint.clone();
            async move { endpoint.serve(request, peer).await }
        });
        let connection = self
            .builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        tokio::pin!(connection);
        let check_every =
            (self.idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        let mut check = tokio::time::interval(check_every);
        let mut draining = *self.stopped.borrow();
        if draining {
            connection.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                done = connection.as_mut() => {
                    if let Err(e) = done {
                        debug!(%peer, "connection closed with an error: {e}");
                    }
                    return;
                }
                _ = self.stopped.changed(), if !draining => {
                    draining = true;
                    connection.as_mut().graceful_shutdown();
                }
                _ = check.tick() => {
                    if activity.idle_for() >= self.idle_timeout {
                        debug!(%peer, "closing a connection idle for {:?}", self.idle_timeout);
                        return;
                    }
                }
            }
        }
    }
}

/// Counts a connection as active while it lives.
struct ActiveConnection;

impl ActiveConnection {
    fn new() -> Self {
        metrics::get().active_connections.fetch_add(1, Relaxed);
        Self
    }
}

impl Drop for ActiveConnection {
    fn drop(&mut self) {
        metrics::get().active_connections.fetch_sub(1, Relaxed);
    }
}

/// When bytes last moved on a connection.
struct Activity {
    /// Milliseconds since [`epoch`].
    last: AtomicU64,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Activity {
    fn new() -> Self {
        let activity = Self {
            last: AtomicU64::new(0),
        };
        activity.touch();
        activity
    }

    fn touch(&self) {
        self.last
            .store(epoch().elapsed().as_millis() as u64, Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let now = epoch().elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last.load(Relaxed)))
    }
}

/// A stream that records activity.
struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn admin_loop(admin: Admin, mut stopped: watch::Receiver<bool>, alive: mpsc::Sender<()>) {
    let defenders = Arc::new(admin.defenders);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = admin.tcp.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!("admin accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let defenders = defenders.clone();
        let alive = alive.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let _alive = alive;
            let service = service_fn(move |request: Request<Incoming>| {
                let defenders = defenders.clone();
                async move { Ok::<_, Infallible>(admin_response(&request, &defenders)) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                done = connection.as_mut() => if let Err(e) = done {
                    debug!(%peer, "admin connection closed with an error: {e}");
                },
                _ = stopped.changed() => {}
            }
        });
    }
}

fn admin_response(
    request: &Request<Incoming>,
    defenders: &[Arc<Defender>],
) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method().as_str(), request.uri().path()) {
        ("GET", "/metrics") => {
            let banned = defenders.iter().map(|d| d.banned_count()).sum();
            (
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                metrics::get().render(banned),
            )
        }
        ("GET", "/healthz") => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

/// Binds a TCP listener (port 0 picks a free port).
pub async fn bind(address: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(address).await
}
