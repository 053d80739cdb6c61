//! The CPU time a request's guest uses, for its execution deadline.
//!
//! Counted per poll of the future that runs the guest ([`Timed`]): a poll is
//! the guest running wasm, or the host running a call the guest made on the
//! same thread (a stat, a read from the page cache); a call that waits (for
//! the client's body, for S3, for a throttled transfer) ends the poll, and
//! the wait does not count. Timing polls rather than every guest-host
//! transition (wasmtime's call hooks) reads the clock twice per poll instead
//! of twice per host call: a 4 KiB GET makes dozens of host calls in one or
//! two polls.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Time used by one request's guest, shared by the future that runs it and
/// the store's epoch callback, which checks the deadline while wasm runs.
pub struct CpuClock {
    limit: Option<Duration>,
    origin: Instant,
    /// Nanoseconds used by finished polls.
    used: AtomicU64,
    /// When the current poll started, in nanoseconds since `origin` plus
    /// one; 0 while the guest is not being polled.
    since: AtomicU64,
}

impl CpuClock {
    pub fn new(limit: Option<Duration>) -> Self {
        Self {
            limit,
            origin: Instant::now(),
            used: AtomicU64::new(0),
            since: AtomicU64::new(0),
        }
    }

    pub fn limit(&self) -> Option<Duration> {
        self.limit
    }

    /// Whether the guest has used more than its limit.
    pub fn exceeded(&self) -> bool {
        self.limit.is_some_and(|limit| self.used() > limit)
    }

    /// Time used so far, including the poll under way.
    pub fn used(&self) -> Duration {
        let since = self.since.load(Ordering::Relaxed);
        let running = if since == 0 {
            0
        } else {
            self.now().saturating_sub(since - 1)
        };
        Duration::from_nanos(self.used.load(Ordering::Relaxed) + running)
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
    }

    fn start(&self) {
        self.since.store(self.now() + 1, Ordering::Relaxed);
    }

    fn stop(&self) {
        let since = self.since.swap(0, Ordering::Relaxed);
        if since != 0 {
            let ran = self.now().saturating_sub(since - 1);
            self.used.fetch_add(ran, Ordering::Relaxed);
        }
    }
}

/// A future whose polls count on a [`CpuClock`].
pub struct Timed<F> {
    clock: Arc<CpuClock>,
    inner: Pin<Box<F>>,
}

impl<F: Future> Timed<F> {
    pub fn new(clock: Arc<CpuClock>, inner: F) -> Self {
        Self {
            clock,
            inner: Box::pin(inner),
        }
    }
}

impl<F: Future> Future for Timed<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        this.clock.start();
        let polled = this.inner.as_mut().poll(cx);
        this.clock.stop();
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Time counts while a poll runs and not between polls.
    #[tokio::test]
    async fn counts_polls_only() {
        let clock = Arc::new(CpuClock::new(Some(Duration::from_millis(5))));
        let inner = clock.clone();
        Timed::new(clock.clone(), async move {
            let spin = Instant::now();
            while spin.elapsed() < Duration::from_millis(10) {
                std::hint::spin_loop();
            }
            // Inside the poll the running part counts.
            assert!(inner.exceeded());
            tokio::task::yield_now().await;
        })
        .await;
        let after = clock.used();
        assert!(after >= Duration::from_millis(10), "{after:?}");
        assert!(clock.exceeded());
        // Waiting outside a poll adds nothing.
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.used(), after);
        assert!(!CpuClock::new(None).exceeded());
    }
}
