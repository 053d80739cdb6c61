//! The threads that serve connections: one per core, each running its own
//! single-threaded tokio runtime, and a connection stays on the thread it
//! was given from accept to close (nginx's worker processes, as threads).
//!
//! Why not tokio's work-stealing runtime for connections: there a
//! request's wake-ups (the socket's readiness, the guest's, the body's)
//! run on whichever thread is idle, and every hop is a futex wake-up and a
//! context switch. Measured on this project's 2-core machine, side by side
//! with wrk (32 connections): a 4 KiB GET 33.4 → 30.2 µs of server CPU and
//! 44.6k → 48.1k requests/s; a PROPFIND of a 5-file folder 74–75 → 71–72
//! µs; 1 MiB GETs and PROPFINDs of 1,000 files unchanged. What is given up
//! is stealing: a thread that blocks (a file read from a cold disk) delays
//! its own connections, not the others'; a busy guest still yields at every
//! epoch tick (see [`crate::runtime`]), so one long request does not starve
//! its thread's others.
//!
//! The accept loops, timers of the process and background work stay on the
//! main runtime; an accepted socket moves to the worker serving the fewest
//! connections, whose runtime then owns it (its reactor, its timers, its
//! blocking pool for commits).

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// Blocking threads of all workers together (tokio's default for one
/// runtime), and the fewest one worker has.
const BLOCKING_THREADS: usize = 512;
const MIN_BLOCKING_THREADS: usize = 16;

/// The serving threads.
pub struct Workers {
    workers: Vec<Worker>,
    /// Where the search for the least busy worker starts, rotating so that
    /// ties spread.
    next: AtomicUsize,
}

struct Worker {
    handle: Handle,
    /// Connections this worker serves now.
    connections: Arc<AtomicUsize>,
    /// Taken by [`Workers::stop`].
    running: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl Workers {
    /// Starts one worker per core the process may use; `wait_at_exit` is
    /// how long a stopping worker waits for its blocking work.
    pub fn start(wait_at_exit: Duration) -> io::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_count(cores, wait_at_exit)
    }

    fn with_count(count: usize, wait_at_exit: Duration) -> io::Result<Self> {
        // Each runtime has its own blocking pool (commits, tree operations,
        // password hashes); together they keep tokio's default for one.
        let blocking = (BLOCKING_THREADS / count).max(MIN_BLOCKING_THREADS);
        let workers = (0..count)
            .map(|i| Worker::start(i, blocking, wait_at_exit))
            .collect::<io::Result<_>>()?;
        Ok(Self {
            workers,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs a connection's future on the worker serving the fewest
    /// connections. Sockets must be registered by the future itself (made
    /// from a std socket when first polled), so that they belong to that
    /// worker's reactor.
    pub fn spawn(&self, connection: impl Future<Output = ()> + Send + 'static) {
        let start = self.next.fetch_add(1, Relaxed);
        let count = self.workers.len();
        let worker = (0..count)
            .map(|i| &self.workers[(start + i) % count])
            .min_by_key(|w| w.connections.load(Relaxed))
            .expect("at least one worker");
        let serving = Serving::new(&worker.connections);
        worker.handle.spawn(async move {
            let _serving = serving;
            connection.await;
        });
    }

    /// Stops every worker: what still runs on them is dropped (requests
    /// logged as aborted, unfinished uploads discarded), and their blocking
    /// work is waited for as [`Workers::start`] was told.
    /// Blocks until they are gone.
    pub fn stop(&self) {
        let running: Vec<_> = self
            .workers
            .iter()
            .filter_map(|w| w.running.lock().unwrap_or_else(|e| e.into_inner()).take())
            .collect();
        let threads: Vec<_> = running
            .into_iter()
            .map(|(stop, thread)| {
                let _ = stop.send(());
                thread
            })
            .collect();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Worker {
    fn start(index: usize, blocking: usize, wait_at_exit: Duration) -> io::Result<Self> {
        let runtime = Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(blocking)
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("edgedav-worker-{index}"))
            .spawn(move || {
                let _ = runtime.block_on(stopped);
                runtime.shutdown_timeout(wait_at_exit);
            })?;
        Ok(Self {
            handle,
            connections: Arc::new(AtomicUsize::new(0)),
            running: Mutex::new(Some((stop, thread))),
        })
    }
}

/// Counts a connection on its worker while it lives.
struct Serving(Arc<AtomicUsize>);

impl Serving {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Relaxed);
        Self(count.clone())
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// Reports the name of the thread it is polled on, then never ends.
    async fn hold(on: mpsc::Sender<String>) {
        let name = std::thread::current().name().unwrap_or("?").to_owned();
        on.send(name).unwrap();
        std::future::pending::<()>().await;
    }

    #[test]
    fn connections_go_to_the_worker_serving_the_fewest() {
        let workers = Workers::with_count(2, Duration::ZERO).unwrap();
        let (tx, rx) = mpsc::channel();
        for _ in 0..4 {
            workers.spawn(hold(tx.clone()));
        }
        let mut names: Vec<String> = (0..4).map(|_| rx.recv().unwrap()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "edgedav-worker-0",
                "edgedav-worker-0",
                "edgedav-worker-1",
                "edgedav-worker-1"
            ]
        );
        let counts: Vec<usize> = workers
            .workers
            .iter()
            .map(|w| w.connections.load(Relaxed))
            .collect();
        assert_eq!(counts, [2, 2]);
        workers.stop();
    }

    #[test]
    fn stopping_drops_what_still_runs() {
        struct Dropped(mpsc::Sender<()>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        let workers = Workers::with_count(1, Duration::ZERO).unwrap();
        let (started, on_start) = mpsc::channel();
        let (dropped, on_drop) = mpsc::channel();
        workers.spawn(async move {
            let _guard = Dropped(dropped);
            hold(started).await;
        });
        on_start.recv().unwrap();
        assert!(on_drop.try_recv().is_err(), "still running");
        workers.stop();
        on_drop
            .try_recv()
            .expect("dropped by the time stop returns");
        assert_eq!(workers.workers[0].connections.load(Relaxed), 0);
    }
}
