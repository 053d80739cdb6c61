//! One accepted connection, from accept to close: its deadlines, its socket
//! and how it is refused or closed.
//!
//! * **Deadlines.** While a request is in flight, only `idle_timeout` (no
//!   bytes moving either way) applies. While none is:
//!   - the first request must have arrived whole (TLS handshake, HTTP/2
//!     preface and request headers) `header_read_timeout` after the accept;
//!   - a later HTTP/1 request must have arrived whole `header_read_timeout`
//!     after its first byte;
//!   - a connection with no request for `keepalive_timeout` is closed.
//!
//!   Bytes trickling in do not extend any of these, only a complete request
//!   head does; so a client cannot hold a connection by sending a byte now
//!   and then.
//! * **Refusals are answered.** A connection over a limit gets a minimal
//!   `503` with `Retry-After` (plain TCP) before it is closed, so the client
//!   knows to come back instead of seeing a reset.
//! * **Lingering close.** Closing a socket with unread data makes the
//!   kernel send a reset, which can destroy the response the client has not
//!   read yet (a `413` to an upload it is still sending). When the server
//!   closes a connection with data still arriving, the socket is shut down
//!   for writing and what arrives is read and discarded for a bounded time
//!   first.
//! * **Answers leave together.** The first write after a request arrived
//!   waits one turn of the worker's queue (see [`WriteTurn`]).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper::{Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use crate::gate::access::{Dropped, Endpoint};
use crate::metrics::{self, Refusal};
use crate::net::sendfile;
use crate::net::traffic::ResponseBody;
use crate::runtime::admission::IpHold;
use crate::runtime::file_splice::PlainHttp1;

/// A closing socket reads and discards for at most this long in all...
const LINGER_TIME: Duration = Duration::from_secs(10);
/// ...stops as soon as the client is quiet this long...
const LINGER_IDLE: Duration = Duration::from_secs(2);
/// ...and at most this much.
const LINGER_BYTES: u64 = 8 << 20;
/// Connections being refused (answered 503) at once; beyond that a refused
/// connection is closed without an answer.
const REFUSALS_AT_ONCE: usize = 64;
/// What a refused client is told to wait before trying again, in seconds.
pub const RETRY_AFTER_SECS: u64 = 2;

/// The timeouts of a binding's connections.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header_read: Duration,
    pub idle: Duration,
    pub keepalive: Duration,
}

/// What a connection holds until its socket is closed: its place under the
/// binding's limits.
pub struct Held {
    pub _binding: OwnedSemaphorePermit,
    pub _ip: Option<IpHold>,
}

/// One accepted connection.
pub struct Connection {
    pub peer: SocketAddr,
    pub endpoint: Arc<Endpoint>,
    pub builder: Arc<auto::Builder<TokioExecutor>>,
    pub timeouts: Timeouts,
    pub stopped: watch::Receiver<bool>,
    pub accepted: Instant,
}

impl Connection {
    /// Serves the connection (after the TLS handshake, with `tls`) until it
    /// closes.
    pub async fn serve(self, socket: Socket, tls: Option<TlsAcceptor>) {
        let state = socket.state.clone();
        let peer = self.peer;
        let Some(acceptor) = tls else {
            return self.run(socket, state, true).await;
        };
        let deadline = tokio::time::Instant::from_std(self.accepted + self.timeouts.header_read);
        match tokio::time::timeout_at(deadline, acceptor.accept(socket)).await {
            Ok(Ok(tls)) => self.run(tls, state, false).await,
            Ok(Err(e)) => debug!(%peer, "TLS handshake failed: {e}"),
            Err(_) => {
                metrics::get().connection_timed_out(metrics::Timeout::FirstRequest);
                debug!(%peer, "TLS handshake timed out");
            }
        }
    }

    /// Serves the connection; `plain` when `io` is the [`Socket`] itself
    /// (no TLS), whose HTTP/1 answers may then carry unread chunks
    /// (`runtime::file_splice`).
    async fn run<I>(mut self, io: I, state: Arc<State>, plain: bool)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (endpoint, peer) = (self.endpoint.clone(), self.peer);
        let service_state = state.clone();
        let service = service_fn(move |mut request: Request<Incoming>| {
            if plain && request.version() <= Version::HTTP_11 {
                request.extensions_mut().insert(PlainHttp1);
            }
            let endpoint = endpoint.clone();
            let in_flight = InFlight::start(&service_state, &request);
            async move {
                let response = endpoint.serve(request, peer).await?;
                Ok::<_, Dropped>(response.map(|body| InFlightBody {
                    body,
                    _in_flight: in_flight,
                }))
            }
        });
        let connection = self
            .builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        tokio::pin!(connection);
        let t = self.timeouts;
        let shortest = t.header_read.min(t.idle).min(t.keepalive);
        let mut check = tokio::time::interval(
            (shortest / 4).clamp(Duration::from_millis(50), Duration::from_secs(1)),
        );
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
                    if let Some(expired) = state.expired(&t, self.accepted) {
                        metrics::get().connection_timed_out(expired);
                        debug!(%peer, "closing the connection: {}", expired.label());
                        return;
                    }
                }
            }
        }
    }
}

/// What a connection's deadlines are computed from, shared by its socket
/// (bytes moving), its requests and its watcher. Times are milliseconds
/// since [`epoch`].
#[derive(Default)]
pub struct State {
    /// Bytes last moved either way.
    last_io: AtomicU64,
    /// The first byte read since the connection was last idle; 0: none.
    first_read: AtomicU64,
    /// Requests started on this connection.
    requests: AtomicU64,
    in_flight: AtomicU32,
    /// When the last request in flight finished.
    idle_since: AtomicU64,
    http2: AtomicBool,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    // 1 ms after the epoch at least, so that 0 can mean "never".
    epoch().elapsed().as_millis() as u64 + 1
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl State {
    fn new() -> Self {
        let state = Self::default();
        state.last_io.store(now_ms(), Relaxed);
        state
    }

    fn read(&self) {
        let now = now_ms();
        self.last_io.store(now, Relaxed);
        let _ = self.first_read.compare_exchange(0, now, Relaxed, Relaxed);
    }

    fn wrote(&self) {
        self.last_io.store(now_ms(), Relaxed);
    }

    /// The deadline that has passed, if one has.
    fn expired(&self, t: &Timeouts, accepted: Instant) -> Option<metrics::Timeout> {
        use metrics::Timeout;
        let now = now_ms();
        if now.saturating_sub(self.last_io.load(Relaxed)) >= ms(t.idle) {
            return Some(Timeout::Idle);
        }
        if self.in_flight.load(Relaxed) > 0 {
            return None;
        }
        let (since, limit, kind) = if self.requests.load(Relaxed) == 0 {
            let accepted = ms(accepted.saturating_duration_since(epoch())) + 1;
            (accepted, t.header_read, Timeout::FirstRequest)
        } else {
            match self.first_read.load(Relaxed) {
                // HTTP/2 frames between requests (pings, settings) are not
                // the start of a request.
                first if first != 0 && !self.http2.load(Relaxed) => {
                    (first, t.header_read, Timeout::RequestHeaders)
                }
                _ => (
                    self.idle_since.load(Relaxed),
                    t.keepalive,
                    Timeout::KeepAlive,
                ),
            }
        };
        (now.saturating_sub(since) >= ms(limit)).then_some(kind)
    }
}

/// A request in flight on a connection, until its response body is done.
struct InFlight(Arc<State>);

impl InFlight {
    fn start<B>(state: &Arc<State>, request: &Request<B>) -> Self {
        if request.version() == hyper::Version::HTTP_2 {
            state.http2.store(true, Relaxed);
        }
        state.requests.fetch_add(1, Relaxed);
        state.in_flight.fetch_add(1, Relaxed);
        Self(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Relaxed) == 1 {
            self.0.first_read.store(0, Relaxed);
            self.0.idle_since.store(now_ms(), Relaxed);
        }
    }
}

/// A response body that keeps its request counted as in flight.
struct InFlightBody {
    body: ResponseBody,
    _in_flight: InFlight,
}

impl Body for InFlightBody {
    type Data = Bytes;
    type Error = <ResponseBody as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// An accepted TCP stream as the server uses it: it records activity, holds
/// the connection's place under the limits, and closes lingering.
pub struct Socket {
    /// Always present until dropped.
    stream: Option<TcpStream>,
    state: Arc<State>,
    held: Option<Held>,
    turn: WriteTurn,
}

impl Socket {
    pub fn new(stream: TcpStream, held: Held) -> Self {
        Self {
            stream: Some(stream),
            state: Arc::new(State::new()),
            held: Some(held),
            turn: WriteTurn::default(),
        }
    }

    /// Whether this write waits for its turn ([`WriteTurn`]); if so, the
    /// connection's task goes to the back of the worker's queue.
    fn write_later(&mut self, cx: &Context<'_>) -> bool {
        let later = self.turn.write_later();
        if later {
            cx.waker().wake_by_ref();
        }
        later
    }

    fn stream(&mut self) -> Pin<&mut TcpStream> {
        Pin::new(
            self.stream
                .as_mut()
                .expect("the stream is present until drop"),
        )
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let (Some(stream), Some(held)) = (self.stream.take(), self.held.take()) else {
            return;
        };
        // A client that has not closed its side may still be sending (the
        // rest of a refused body, still in flight): closing now would turn
        // its next bytes into a reset that destroys the response it has not
        // read yet. Only a client that already closed needs no lingering.
        let mut probe = [0u8; 1];
        let client_closed = matches!(stream.try_read(&mut probe), Ok(0));
        if !client_closed && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                linger(stream).await;
                drop(held);
            });
        }
    }
}

/// When a connection writes: the first write after bytes arrived is put off
/// by one turn of the worker's queue (never two writes in a row), so that
/// the answers of the worker's connections that became readable together
/// leave one after the other once all of them are ready, as an event loop
/// (lighttpd's, nginx's) writes them. Written as soon as each is ready,
/// they reach a client that went to sleep in between, and each `writev`
/// pays for waking it (an inter-processor interrupt, dear in a VM); put
/// off, the client wakes once for them all. A lone request loses one turn
/// of an empty queue. Measured in README → Performance ("What changed").
#[derive(Debug, Default)]
struct WriteTurn {
    /// Bytes arrived since the last write.
    read_since_write: bool,
    /// The last write was put off.
    put_off: bool,
}

impl WriteTurn {
    fn read(&mut self) {
        self.read_since_write = true;
    }

    /// Whether the write now being made waits for a turn.
    fn write_later(&mut self) -> bool {
        let later = self.read_since_write && !self.put_off;
        self.read_since_write = false;
        self.put_off = later;
        later
    }
}

/// Shuts `stream` down for writing, then reads and discards what arrives
/// until the client closes, goes quiet for [`LINGER_IDLE`], or
/// [`LINGER_TIME`] / [`LINGER_BYTES`] are used up (nginx's lingering close).
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let discard = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut total = 0u64;
        while total < LINGER_BYTES {
            match tokio::time::timeout(LINGER_IDLE, stream.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) | Err(_) => break,
                Ok(Ok(n)) => total += n as u64,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, discard).await;
}

impl AsyncRead for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = self.stream().poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.read();
            self.turn.read();
        }
        polled
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.write_later(cx) {
            return Poll::Pending;
        }
        // Through the same path as a vectored write: `data` may lie in a
        // chunk that must be sent from its file.
        let bufs = [io::IoSlice::new(data)];
        let polled = sendfile::poll_write_vectored(self.stream().get_mut(), cx, &bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.state.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.write_later(cx) {
            return Poll::Pending;
        }
        let polled = sendfile::poll_write_vectored(self.stream().get_mut(), cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.state.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_shutdown(cx)
    }
}

/// Answers a connection refused for `reason` with a minimal 503 and closes
/// it; `answer = false` (TLS) closes it at once.
pub fn refuse(stream: TcpStream, peer: SocketAddr, reason: Refusal, answer: bool) {
    static AT_ONCE: OnceLock<Arc<Semaphore>> = OnceLock::new();
    metrics::get().refused(reason);
    debug!(%peer, reason = reason.label(), "connection refused");
    if !answer {
        return;
    }
    let Ok(permit) = AT_ONCE
        .get_or_init(|| Arc::new(Semaphore::new(REFUSALS_AT_ONCE)))
        .clone()
        .try_acquire_owned()
    else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let mut stream = stream;
        let text = format!(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: {RETRY_AFTER_SECS}\r\n\
             Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {}\r\n\r\n{}\n",
            reason.message().len() + 1,
            reason.message()
        );
        let written = tokio::time::timeout(LINGER_IDLE, stream.write_all(text.as_bytes())).await;
        if matches!(written, Ok(Ok(()))) {
            linger(stream).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::WriteTurn;

    #[test]
    fn the_first_write_after_a_read_waits_one_turn_and_never_two() {
        let mut turn = WriteTurn::default();
        assert!(!turn.write_later(), "nothing read: nothing to wait for");
        turn.read();
        assert!(turn.write_later(), "an answer waits its turn");
        assert!(!turn.write_later(), "then goes");
        assert!(!turn.write_later(), "and so does the rest of it");
        // A client that keeps sending cannot hold its answer back.
        turn.read();
        assert!(turn.write_later());
        turn.read();
        assert!(!turn.write_later(), "never put off twice in a row");
        turn.read();
        assert!(turn.write_later(), "the next answer waits again");
    }
}
