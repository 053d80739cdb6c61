//! Accepts connections on every binding and hands each to a
//! [`Connection`], which serves its requests through the binding's
//! [`Endpoint`].
//!
//! * **Protocols.** hyper-util's auto builder speaks HTTP/1.1 (keep-alive)
//!   and HTTP/2, detected per connection: ALPN on TLS, the h2 preface (h2c
//!   with prior knowledge) on plain TCP. `http2 = false` keeps a binding to
//!   HTTP/1.1.
//! * **Timeouts.** See [`crate::net::connection`]: a deadline for the first
//!   request (handshake, preface and headers together), one for each later
//!   HTTP/1 request's headers, a keep-alive limit between requests, and an
//!   idle limit while a request is in flight (an upload that stalls is cut,
//!   and never committed).
//! * **Connection limits.** Each binding holds at most `max_connections`,
//!   and at most `max_connections_per_ip` from one client address (trusted
//!   proxies are exempt). A connection over a limit is answered `503` with
//!   `Retry-After` and closed; a banned IP's connection, when the
//!   defender's action is `drop`, is closed unanswered.
//! * **Graceful shutdown.** On the shutdown signal every listener closes at
//!   once, open connections are asked to finish (HTTP/1 finishes the request
//!   in flight; HTTP/2 sends GOAWAY) and get `shutdown_grace` to do so. Then
//!   [`serve`] returns and the process exits: requests still running are
//!   dropped (and logged as aborted), and with them any upload's storage
//!   writer, which discards its content, so an upload cut off is never
//!   committed half-written.
//! * **Admin listener.** `GET /metrics` (Prometheus text) and
//!   `GET /healthz`, plain HTTP/1.1 on its own address.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::cluster::Cluster;
use crate::config::BanAction;
use crate::gate::access::Endpoint;
use crate::gate::limits::Defender;
use crate::metrics::{self, Refusal};
use crate::net::connection::{self, Connection, Held, Socket, Timeouts};
use crate::net::workers::Workers;
use crate::runtime::admission::PerIp;

/// One binding, bound.
pub struct Listener {
    pub tcp: TcpListener,
    pub endpoint: Arc<Endpoint>,
    pub tls: Option<TlsAcceptor>,
    pub http2: bool,
    pub timeouts: Timeouts,
    pub max_connections: usize,
    pub max_connections_per_ip: u32,
}

/// The admin listener and what its metrics report on.
pub struct Admin {
    pub tcp: TcpListener,
    pub defenders: Vec<Arc<Defender>>,
    /// The cluster's database, whose reachability `/healthz` reports.
    pub cluster: Option<Arc<Cluster>>,
}

/// How long the exit waits for blocking work (file I/O, password hashing)
/// once serving is over.
pub const EXIT_WAIT: Duration = Duration::from_millis(500);

/// Serves every listener until `shutdown` completes, then drains open
/// connections for at most `grace`.
pub async fn serve(
    listeners: Vec<Listener>,
    admin: Option<Admin>,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let workers = Arc::new(Workers::start(EXIT_WAIT)?);
    let (stop, stopped) = watch::channel(false);
    // Every accept loop and connection holds a sender; when all are gone,
    // everything has closed.
    let (alive, mut all_closed) = mpsc::channel::<()>(1);
    for listener in listeners {
        tokio::spawn(accept_loop(
            listener,
            workers.clone(),
            stopped.clone(),
            alive.clone(),
        ));
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
    // What still runs is dropped now; the wait for the workers' blocking
    // work is bounded by `EXIT_WAIT`.
    let _ = tokio::task::spawn_blocking(move || workers.stop()).await;
    Ok(())
}

/// Accepts with a growing pause after failures (typically out of file
/// descriptors, which persists until connections close), and warns at most
/// once per [`Self::WARN_EVERY`] with the number of failures.
struct AcceptBackoff {
    pause: Duration,
    failures: u64,
    warned: Option<Instant>,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);
    const WARN_EVERY: Duration = Duration::from_secs(10);

    fn new() -> Self {
        Self {
            pause: Self::FIRST,
            failures: 0,
            warned: None,
        }
    }

    async fn accept(&mut self, tcp: &TcpListener, what: &str) -> (TcpStream, SocketAddr) {
        loop {
            match tcp.accept().await {
                Ok(accepted) => {
                    self.pause = Self::FIRST;
                    return accepted;
                }
                Err(e) => {
                    self.failures += 1;
                    if self
                        .warned
                        .is_none_or(|at| at.elapsed() >= Self::WARN_EVERY)
                    {
                        warn!(
                            failures = self.failures,
                            "{what} accept failed: {e}; pausing up to {:?} between attempts",
                            Self::MAX
                        );
                        self.warned = Some(Instant::now());
                        self.failures = 0;
                    }
                    tokio::time::sleep(self.pause).await;
                    self.pause = (self.pause * 2).min(Self::MAX);
                }
            }
        }
    }
}

async fn accept_loop(
    listener: Listener,
    workers: Arc<Workers>,
    mut stopped: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) {
    let limit = Arc::new(Semaphore::new(listener.max_connections));
    let per_ip = Arc::new(PerIp::default());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Header deadlines are the connection's own (see `connection`).
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(if listener.http2 {
        builder
    } else {
        builder.http1_only()
    });
    let endpoint = &listener.endpoint;
    let drop_banned = endpoint
        .defender
        .as_ref()
        .filter(|d| d.action == BanAction::Drop)
        .cloned();
    let mut backoff = AcceptBackoff::new();
    let answer_refusals = listener.tls.is_none();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = backoff.accept(&listener.tcp, "connection") => accepted,
            _ = stopped.changed() => break,
        };
        let accepted = Instant::now();
        let trusted = endpoint
            .trusted_proxies
            .iter()
            .any(|net| net.contains(peer.ip()));
        if drop_banned.as_ref().is_some_and(|d| d.is_banned(peer.ip())) && !trusted {
            metrics::get().banned_requests.fetch_add(1, Relaxed);
            connection::refuse(stream, peer, Refusal::Banned, false);
            continue;
        }
        let ip_hold = if trusted {
            None
        } else {
            match per_ip.try_take(peer.ip(), listener.max_connections_per_ip) {
                Some(hold) => Some(hold),
                None => {
                    connection::refuse(stream, peer, Refusal::MaxConnectionsPerIp, answer_refusals);
                    continue;
                }
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            connection::refuse(stream, peer, Refusal::MaxConnections, answer_refusals);
            continue;
        };
        if let Err(e) = stream.set_nodelay(true) {
            debug!(%peer, "TCP_NODELAY not set: {e}");
        }
        metrics::get().connections_accepted.fetch_add(1, Relaxed);
        // The socket moves to a worker's reactor (see `workers`).
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                debug!(%peer, "accepted socket lost: {e}");
                continue;
            }
        };
        let held = Held {
            _binding: permit,
            _ip: ip_hold,
        };
        let connection = Connection {
            peer,
            endpoint: endpoint.clone(),
            builder: builder.clone(),
            timeouts: listener.timeouts,
            stopped: stopped.clone(),
            accepted,
        };
        let tls = listener.tls.clone();
        let alive = alive.clone();
        workers.spawn(async move {
            let _alive = alive;
            let _active = ActiveConnection::new();
            match TcpStream::from_std(stream) {
                Ok(stream) => connection.serve(Socket::new(stream, held), tls).await,
                Err(e) => debug!(%peer, "accepted socket lost: {e}"),
            }
        });
    }
    info!(address = %listener.tcp.local_addr().map_or_else(|_| "?".into(), |a| a.to_string()), "listener closed");
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

async fn admin_loop(admin: Admin, mut stopped: watch::Receiver<bool>, alive: mpsc::Sender<()>) {
    let defenders = Arc::new(admin.defenders);
    let cluster = admin.cluster;
    let mut backoff = AcceptBackoff::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = backoff.accept(&admin.tcp, "admin") => accepted,
            _ = stopped.changed() => break,
        };
        let defenders = defenders.clone();
        let cluster = cluster.clone();
        let alive = alive.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let _alive = alive;
            let service = service_fn(move |request: Request<Incoming>| {
                let defenders = defenders.clone();
                let cluster = cluster.clone();
                async move {
                    Ok::<_, Infallible>(admin_response(&request, &defenders, cluster.as_deref()))
                }
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
    cluster: Option<&Cluster>,
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
        // Reads keep working without the cluster's database, so the host
        // stays healthy; the body says whether the database answers.
        ("GET", "/healthz") => (
            StatusCode::OK,
            "text/plain",
            match cluster {
                Some(cluster) if cluster.is_up() => "ok\ndatabase: up\n",
                Some(_) => "ok\ndatabase: unreachable\n",
                None => "ok\n",
            }
            .to_owned(),
        ),
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
