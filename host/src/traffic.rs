//! Request and response bodies as they cross the host: counted (metrics and
//! the access log), throttled (per-user bandwidth limits), and, when a
//! response body ends or is dropped, logged.
//!
//! Bandwidth limits are applied here, at the HTTP body, so they hold for
//! every method and every backend. A throttled body holds each chunk until
//! the user's bucket has paid for it; the guest, blocked on the body, spends
//! that time in a host call, which does not count towards its CPU-time
//! deadline.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;
use tracing::info;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::limits::Throttle;
use crate::metrics;

/// Holds each data frame until a throttle has paid for it.
struct Pacer {
    throttle: Option<Arc<Throttle>>,
    /// A frame waiting for `wait`.
    held: Option<Frame<Bytes>>,
    wait: Option<Pin<Box<Sleep>>>,
}

impl Pacer {
    fn new(throttle: Option<Arc<Throttle>>) -> Self {
        Self {
            throttle,
            held: None,
            wait: None,
        }
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
        match ready!(inner.poll_frame(cx)) {
            Some(Ok(frame)) => {
                let Some(bytes) = frame.data_ref().map(|d| d.len()) else {
                    return Poll::Ready(Some(Ok(frame)));
                };
                count(bytes);
                match self.charge(frame, bytes) {
                    Some(frame) => Poll::Ready(Some(Ok(frame))),
                    None => self.poll_held(cx).map(|frame| frame.map(Ok)),
                }
            }
            other => Poll::Ready(other),
        }
    }
}

/// A request body on its way to the guest.
pub struct RequestBody<B> {
    inner: B,
    received: Arc<AtomicU64>,
    pacer: Pacer,
}

impl<B> RequestBody<B> {
    pub fn new(inner: B, received: Arc<AtomicU64>, throttle: Option<Arc<Throttle>>) -> Self {
        Self {
            inner,
            received,
            pacer: Pacer::new(throttle),
        }
    }
}

impl<B> Body for RequestBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let received = &this.received;
        this.pacer
            .poll_next(cx, Pin::new(&mut this.inner), |bytes| {
                received.fetch_add(bytes as u64, Relaxed);
                metrics::get()
                    .bytes_received
                    .fetch_add(bytes as u64, Relaxed);
            })
    }

    fn is_end_stream(&self) -> bool {
        self.pacer.held.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What the access log line of a request says.
pub struct AccessLog {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub user: Option<Arc<str>>,
    pub remote: IpAddr,
    pub started: Instant,
    pub received: Arc<AtomicU64>,
}

impl AccessLog {
    /// Logs the request (one line, target `edgedav::access`) and counts it.
    fn emit(&self, sent: u64, aborted: bool) {
        metrics::get().request(&self.method, self.status);
        info!(
            target: "edgedav::access",
            method = %self.method,
            path = %self.path,
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

/// A response body on its way to the client; logs the request when it ends.
pub struct ResponseBody {
    inner: HyperOutgoingBody,
    pacer: Pacer,
    sent: u64,
    /// The body ended with an error (the guest failed while streaming it).
    aborted: bool,
    log: Option<AccessLog>,
}

impl ResponseBody {
    pub fn new(inner: HyperOutgoingBody, throttle: Option<Arc<Throttle>>, log: AccessLog) -> Self {
        Self {
            inner,
            pacer: Pacer::new(throttle),
            sent: 0,
            aborted: false,
            log: Some(log),
        }
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
        if matches!(frame, Some(Err(_))) {
            this.aborted = true;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.pacer.held.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if let Some(log) = self.log.take() {
            log.emit(self.sent, self.aborted);
        }
    }
}
