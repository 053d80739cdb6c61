//! Request and response bodies as they cross the host: counted (metrics and
//! the access log), throttled (per-user bandwidth limits), policed (a
//! minimum request-body rate), drained when refused, and, when a response
//! body ends or is dropped, logged.
//!
//! Bandwidth limits are applied here, at the HTTP body, so they hold for
//! every method and every backend. A throttled body holds each chunk until
//! the user's bucket has paid for it; the guest, blocked on the body, spends
//! that time in a host call, which does not count towards its CPU-time
//! deadline.
//!
//! **Read ahead.** A body declared no longer than [`READ_AHEAD`] is read
//! whole before an instance is taken for its request, so a client
//! trickling one holds a connection, not an instance.
//!
//! **Minimum body rate.** An instance is held while a longer request body
//! arrives, so a client trickling one would hold it for as long as it likes.
//! After a grace period, a body whose average rate, counted over the time
//! spent waiting for the *client* (not for a throttle or for the guest),
//! falls below the binding's `min_body_rate` is cut: the guest sees a read
//! error (so an upload is discarded) and the client gets 408.
//!
//! **Draining.** A request refused before its body was read (413, 507, 401)
//! leaves the client still sending. Dropping the body would make hyper stop
//! reading and close the connection, and the client would see a reset
//! instead of the status. So a body dropped before its end is read and
//! discarded for a bounded amount ([`DRAIN_BYTES`], [`DRAIN_TIME`]); when it
//! ends within that, the connection even stays open for the next request.
//! Not with `Expect: 100-continue`: the client is waiting for our word
//! before sending, and polling the body would tell hyper to send
//! `100 Continue` after the refusal; the connection just closes.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::http::{Method, Uri};
use tokio::time::Sleep;
use tracing::info;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::gate::limits::Throttle;
use crate::metrics::{self, Refusal};

/// Request bodies declared this long or shorter are read before an
/// instance is taken ([`RequestBody::read_ahead`]): the XML bodies clients
/// send and small uploads; 1,024 connections reading ahead hold 16 MiB.
pub const READ_AHEAD: u64 = 16 << 10;

/// A refused request's body is discarded up to this much more...
const DRAIN_BYTES: u64 = 1 << 20;
/// ...for at most this long.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// The most a throttled body moves at once: a larger data frame (a
/// download's chunks are 512 KiB) is paid for and passed on in pieces, so
/// a slow limit sends steadily instead of in bursts seconds apart.
const PACE: usize = 32 * 1024;

/// Holds each data frame until a throttle has paid for it.
struct Pacer {
    throttle: Option<Arc<Throttle>>,
    /// A frame waiting for `wait`.
    held: Option<Frame<Bytes>>,
    wait: Option<Pin<Box<Sleep>>>,
    /// What is left to pass on of a throttled frame larger than [`PACE`].
    rest: Bytes,
}

impl Pacer {
    fn new(throttle: Option<Arc<Throttle>>) -> Self {
        Self {
            throttle,
            held: None,
            wait: None,
            rest: Bytes::new(),
        }
    }

    /// Whether every frame taken from the body underneath was passed on.
    fn is_idle(&self) -> bool {
        self.held.is_none() && self.rest.is_empty()
    }

    /// Releases a held frame once paid for; `None` when nothing is held.
    fn poll_held(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<Bytes>>> {
        if self.held.is_none() {
            return Poll::Ready(None);
        }
        if let Some(wait) = &mut self.wait {
            ready!(wait.as_mut().poll(cx));
            self.wait = None;
        }
        Poll::Ready(self.held.take())
    }

    /// Charges a frame of `bytes`: passes it on (`Some`) or holds it.
    fn charge(&mut self, frame: Frame<Bytes>, bytes: usize) -> Option<Frame<Bytes>> {
        let delay = self
            .throttle
            .as_ref()
            .map_or(std::time::Duration::ZERO, |t| t.take(bytes));
        if delay.is_zero() {
            return Some(frame);
        }
        self.held = Some(frame);
        self.wait = Some(Box::pin(tokio::time::sleep(delay)));
        None
    }

    /// Charges the next piece of `rest`: passes it on or holds it.
    fn charge_rest(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<Bytes>>> {
        let piece = self.rest.split_to(PACE.min(self.rest.len()));
        let bytes = piece.len();
        match self.charge(Frame::data(piece), bytes) {
            Some(frame) => Poll::Ready(Some(frame)),
            None => self.poll_held(cx),
        }
    }

    /// Polls `inner` for the next frame, counting data with `count` and
    /// holding it as long as the throttle says.
    fn poll_next<B, E>(
        &mut self,
        cx: &mut Context<'_>,
        inner: Pin<&mut B>,
        count: impl FnOnce(usize),
    ) -> Poll<Option<Result<Frame<Bytes>, E>>>
    where
        B: Body<Data = Bytes, Error = E>,
    {
        if let Some(frame) = ready!(self.poll_held(cx)) {
            return Poll::Ready(Some(Ok(frame)));
        }
        if self.rest.is_empty() {
            match ready!(inner.poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let Some(bytes) = frame.data_ref().map(|d| d.len()) else {
                        return Poll::Ready(Some(Ok(frame)));
                    };
                    count(bytes);
                    if self.throttle.is_none() || bytes <= PACE {
                        return match self.charge(frame, bytes) {
                            Some(frame) => Poll::Ready(Some(Ok(frame))),
                            None => self.poll_held(cx).map(|frame| frame.map(Ok)),
                        };
                    }
                    self.rest = frame.into_data().unwrap_or_default();
                }
                other => return Poll::Ready(other),
            }
        }
        self.charge_rest(cx).map(|frame| frame.map(Ok))
    }
}

/// A binding's minimum request-body rate.
#[derive(Debug, Clone, Copy)]
pub struct BodyRate {
    pub min_bytes_per_sec: u64,
    /// Time before the rate is enforced.
    pub grace: Duration,
}

/// Enforces a [`BodyRate`] on the time spent waiting for the client.
struct RateFloor {
    rate: BodyRate,
    received: u64,
    /// Time spent waiting for the client so far, besides the current wait.
    waited: Duration,
    waiting_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl RateFloor {
    fn new(rate: BodyRate) -> Self {
        Self {
            rate,
            received: 0,
            waited: Duration::ZERO,
            waiting_since: None,
            timer: None,
        }
    }

    /// The client delivered `bytes`.
    fn delivered(&mut self, bytes: usize) {
        if let Some(since) = self.waiting_since.take() {
            self.waited += since.elapsed();
        }
        self.received += bytes as u64;
    }

    /// The client is keeping us waiting: `Ready` once it is too slow.
    fn poll_too_slow(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let since = *self.waiting_since.get_or_insert_with(Instant::now);
        let earned =
            Duration::from_secs_f64(self.received as f64 / self.rate.min_bytes_per_sec as f64);
        let allowed = self.rate.grace.max(earned);
        loop {
            let waited = self.waited + since.elapsed();
            if waited >= allowed {
                return Poll::Ready(());
            }
            let at = tokio::time::Instant::now() + (allowed - waited);
            let timer = match &mut self.timer {
                Some(timer) => {
                    timer.as_mut().reset(at);
                    timer
                }
                None => self.timer.insert(Box::pin(tokio::time::sleep_until(at))),
            };
            ready!(timer.as_mut().poll(cx));
        }
    }
}

/// What became of a request body, as the host sees it when it answers.
pub struct BodyOutcome {
    /// Cut for being too slow.
    cut: AtomicBool,
    /// Read to its end.
    ended: AtomicBool,
    /// Drained when dropped early (not with `Expect: 100-continue`).
    drain: bool,
    /// The Content-Length.
    declared: Option<u64>,
    received: Arc<AtomicU64>,
}

impl BodyOutcome {
    pub fn cut(&self) -> bool {
        self.cut.load(Relaxed)
    }

    /// Whether the connection can carry another request after this one:
    /// the body was read to its end, or what is left of it is small enough
    /// to be drained. Otherwise the response says `Connection: close`, so
    /// the client does not reuse a connection about to close.
    pub fn connection_survives(&self) -> bool {
        if self.ended.load(Relaxed) {
            return true;
        }
        !self.cut()
            && self.drain
            && self
                .declared
                .is_some_and(|len| len.saturating_sub(self.received.load(Relaxed)) <= DRAIN_BYTES)
    }
}

/// A request body on its way to the guest.
pub struct RequestBody {
    /// None once it ended, was cut or was handed to a drain.
    inner: Option<Incoming>,
    /// Frames read ahead of the guest ([`Self::read_ahead`]), handed out
    /// before `inner` is polled again.
    ahead: VecDeque<Result<Frame<Bytes>, wasmtime_wasi_http::Error>>,
    pacer: Pacer,
    floor: Option<RateFloor>,
    outcome: Arc<BodyOutcome>,
}

impl RequestBody {
    pub fn new(
        inner: Incoming,
        received: Arc<AtomicU64>,
        rate: Option<BodyRate>,
        expects_continue: bool,
    ) -> Self {
        let outcome = BodyOutcome {
            cut: AtomicBool::new(false),
            ended: AtomicBool::new(inner.is_end_stream()),
            drain: !expects_continue,
            declared: inner.size_hint().exact(),
            received,
        };
        Self {
            inner: Some(inner),
            ahead: VecDeque::new(),
            pacer: Pacer::new(None),
            floor: rate.map(RateFloor::new),
            outcome: Arc::new(outcome),
        }
    }

    /// Applies the user's upload bandwidth limit.
    pub fn throttle(&mut self, throttle: Option<Arc<Throttle>>) {
        self.pacer.throttle = throttle;
    }

    /// Reads a body whole now when it declares at most `max` bytes: a small
    /// body (a PROPFIND's XML, a small PUT) then arrives before an instance
    /// is taken for it, so a client trickling one holds no instance, and
    /// the guest finds it there instead of waiting for hyper to read it.
    /// Counted, throttled and policed as the guest's reads are. Not with
    /// `Expect: 100-continue` (polling would send `100 Continue` before the
    /// request is judged) nor for bodies that are long or of unknown length.
    pub async fn read_ahead(&mut self, max: u64) {
        // `drain` is false exactly when the client expects 100-continue.
        let small = self.outcome.declared.is_some_and(|n| n > 0 && n <= max);
        if !small || !self.outcome.drain {
            return;
        }
        while let Some(frame) = std::future::poll_fn(|cx| self.poll_inner(cx)).await {
            let failed = frame.is_err();
            self.ahead.push_back(frame);
            if failed {
                break;
            }
        }
    }

    /// What becomes of the body (shared, so it can be read after the guest
    /// has dropped the body).
    pub fn outcome(&self) -> Arc<BodyOutcome> {
        self.outcome.clone()
    }
}

/// The client side of a [`RequestBody`]: the incoming body under the rate
/// floor.
struct Policed<'a> {
    inner: &'a mut Incoming,
    floor: &'a mut Option<RateFloor>,
}

impl Body for Policed<'_> {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut *this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let (Some(floor), Some(Ok(frame))) = (this.floor.as_mut(), &frame) {
                    floor.delivered(frame.data_ref().map_or(0, |d| d.len()));
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let too_slow = this
                    .floor
                    .as_mut()
                    .is_some_and(|floor| floor.poll_too_slow(cx).is_ready());
                if too_slow {
                    Poll::Ready(Some(Err(wasmtime_wasi_http::Error::ConnectionReadTimeout)))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl RequestBody {
    /// The next frame from the client, counted, throttled and policed.
    fn poll_inner(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, wasmtime_wasi_http::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let received = &self.outcome.received;
        let mut policed = Policed {
            inner,
            floor: &mut self.floor,
        };
        let frame = ready!(self.pacer.poll_next(cx, Pin::new(&mut policed), |bytes| {
            received.fetch_add(bytes as u64, Relaxed);
            metrics::get()
                .bytes_received
                .fetch_add(bytes as u64, Relaxed);
        }));
        match &frame {
            None => {
                self.outcome.ended.store(true, Relaxed);
                self.inner = None;
            }
            Some(Err(wasmtime_wasi_http::Error::ConnectionReadTimeout)) => {
                self.outcome.cut.store(true, Relaxed);
                metrics::get().refused(Refusal::SlowBody);
                self.inner = None;
            }
            _ => {}
        }
        Poll::Ready(frame)
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.ahead.pop_front() {
            Some(frame) => Poll::Ready(Some(frame)),
            None => self.poll_inner(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ahead.is_empty()
            && self.pacer.is_idle()
            && self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let ahead: u64 = self
            .ahead
            .iter()
            .filter_map(|frame| frame.as_ref().ok()?.data_ref())
            .map(|data| data.len() as u64)
            .sum();
        let inner = self
            .inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint());
        let mut hint = SizeHint::new();
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + ahead);
        }
        hint.set_lower(inner.lower() + ahead);
        hint
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        let Some(body) = self.inner.take() else {
            return;
        };
        if !self.outcome.drain || body.is_end_stream() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(drain(body));
        }
    }
}

/// Reads and discards the rest of a refused request's body, up to
/// [`DRAIN_BYTES`] and [`DRAIN_TIME`].
async fn drain(mut body: Incoming) {
    let discard = async {
        let mut total = 0u64;
        while total < DRAIN_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => total += frame.data_ref().map_or(0, |d| d.len()) as u64,
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
}

/// What the access log line of a request says. Logged once: by the
/// response body when it ends or is dropped, or, for a request dropped
/// before it had a response (the client went away, or the server shut down
/// during an upload), when dropped, with status 0 and `aborted`.
pub struct AccessLog {
    /// The request's method and target, shared with the request (clones
    /// that copy nothing: the log line is written after it has gone).
    pub method: Method,
    pub uri: Uri,
    pub status: u16,
    pub user: Option<Arc<str>>,
    pub remote: IpAddr,
    pub started: Instant,
    pub received: Arc<AtomicU64>,
    pub logged: bool,
}

impl AccessLog {
    /// Logs the request (one line, target `edgedav::access`) and counts it
    /// if it was answered.
    fn emit(&mut self, sent: u64, aborted: bool) {
        self.logged = true;
        if self.status != 0 {
            metrics::get().request(self.method.as_str(), self.status);
        }
        info!(
            target: "edgedav::access",
            method = %self.method,
            path = %self.uri.path(),
            status = self.status,
            bytes_in = self.received.load(Relaxed),
            bytes_out = sent,
            user = self.user.as_deref().unwrap_or("-"),
            duration_ms = (self.started.elapsed().as_secs_f64() * 1e3 * 10.0).round() / 10.0,
            remote = %self.remote,
            aborted,
            "request"
        );
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        if !self.logged {
            self.status = 0;
            self.emit(0, true);
        }
    }
}

/// A response body on its way to the client; logs the request when it ends.
pub struct ResponseBody {
    inner: HyperOutgoingBody,
    pacer: Pacer,
    sent: u64,
    /// The body ended with an error (the guest failed while streaming it).
    failed: bool,
    /// The body was sent to its end.
    complete: bool,
    /// Its length, when known: hyper stops polling once that much is sent.
    length: Option<u64>,
    log: AccessLog,
}

impl ResponseBody {
    /// `declared`: the response's `Content-Length`. hyper drops a body as
    /// soon as it has sent that many bytes, without asking it for its end,
    /// and the guest's body does not know its length itself.
    pub fn new(
        inner: HyperOutgoingBody,
        throttle: Option<Arc<Throttle>>,
        log: AccessLog,
        declared: Option<u64>,
    ) -> Self {
        Self {
            length: inner.size_hint().exact().or(declared),
            inner,
            pacer: Pacer::new(throttle),
            sent: 0,
            failed: false,
            complete: false,
            log,
        }
    }

    /// Whether HTTP sends this response without a body at all (hyper drops
    /// such bodies unread).
    fn bodiless(&self) -> bool {
        self.log.method == Method::HEAD || matches!(self.log.status, 100..=199 | 204 | 304)
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let sent = &mut this.sent;
        let frame = ready!(
            this.pacer
                .poll_next(cx, Pin::new(&mut this.inner), |bytes| {
                    *sent += bytes as u64;
                    metrics::get().bytes_sent.fetch_add(bytes as u64, Relaxed);
                })
        );
        match &frame {
            Some(Err(_)) => this.failed = true,
            None => this.complete = true,
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.pacer.is_idle() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // Cut short: the guest failed, or the connection went away (or the
        // server shut down) before the end.
        let ended = self.complete
            || self.length == Some(self.sent)
            || self.is_end_stream()
            || self.bodiless();
        let aborted = self.failed || !ended;
        self.log.emit(self.sent, aborted);
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;

    use super::*;

    /// The frames `pacer` passes on from a body of one frame of `len` bytes.
    async fn paced(mut pacer: Pacer, len: usize) -> Vec<Bytes> {
        let data: Bytes = (0..len).map(|i| i as u8).collect();
        let mut body = Full::new(data.clone());
        let mut out = Vec::new();
        while let Some(frame) =
            std::future::poll_fn(|cx| pacer.poll_next(cx, Pin::new(&mut body), |_| {})).await
        {
            out.push(frame.unwrap().into_data().unwrap());
        }
        assert!(pacer.is_idle());
        assert_eq!(out.concat(), data, "every byte, in order");
        out
    }

    #[tokio::test]
    async fn a_throttled_big_frame_goes_out_in_pieces() {
        // A bucket holding the whole frame: no waiting, only the pieces.
        let throttle = Arc::new(Throttle::new(1 << 20));
        let pieces = paced(Pacer::new(Some(throttle)), 512 * 1024 + 1).await;
        assert_eq!(pieces.len(), 17);
        assert!(pieces.iter().all(|p| p.len() <= PACE));
        // Unthrottled, the frame passes as it is.
        assert_eq!(paced(Pacer::new(None), 512 * 1024).await.len(), 1);
    }
}
