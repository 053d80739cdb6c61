//! Warm instances: an instance that answered a request cleanly may answer
//! the next request of the same tenant.
//!
//! Creating an instance per request (a store, a WASI context, instantiation,
//! the guest's own start-up, tearing it all down) costs more CPU than the
//! WebDAV work of a small GET. The handler keeps no state between requests,
//! so an instance whose call returned normally is as good as new for the
//! next request, with these bounds, which define what isolation is kept:
//!
//! * **Never across tenants.** An instance is only reused for the same
//!   tenant (a user, or that user anonymously, or the open store); requests
//!   that authenticated as nobody are never reused. Whatever a request left
//!   in guest memory can only be seen by a later request of the same tenant,
//!   which could read it from storage anyway.
//! * **Only after a clean end.** A trap, a deadline, an error from the call,
//!   a resource left in the host's table, or a linear memory grown past
//!   [`MAX_WARM_MEMORY`] retires the instance.
//! * **Bounded.** At most [`MAX_USES`] requests per instance, at most
//!   [`MAX_IDLE_PER_TENANT`] idle instances per tenant and [`MAX_IDLE`] in
//!   all, none idle for longer than [`IDLE_TIMEOUT`] (swept on every return).
//!   Idle instances occupy pooling slots beyond `max_instances` (the engine
//!   reserves [`MAX_IDLE`] more), so an admitted request always finds one.
//!
//! `--no-instance-reuse` (config `sandbox.instance_reuse = false`) turns it
//! off: every request then gets a fresh instance, as `wasmtime serve` does.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use crate::metrics;

/// Requests one instance may answer before it is retired.
pub const MAX_USES: u32 = 1000;
/// Idle instances kept per tenant: about the requests of one tenant in
/// flight at once on a small machine.
pub const MAX_IDLE_PER_TENANT: usize = 4;
/// Idle instances kept in all (pooling slots reserved for them).
pub const MAX_IDLE: usize = 32;
/// Longest an instance stays idle.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Linear memory beyond which an instance is not kept: a request that grew
/// the heap (a large listing) should not pin that memory while idle.
pub const MAX_WARM_MEMORY: usize = 16 << 20;

/// Whose requests an instance may answer: a user (with the anonymous flag)
/// or the open store. Built by the access layer from the identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant(Arc<str>);

impl Tenant {
    pub fn new(key: impl Into<Arc<str>>) -> Self {
        Self(key.into())
    }
}

/// Idle instances (or anything else kept warm), oldest first. A list, not
/// a map by tenant: it never holds more than [`MAX_IDLE`], and a scan of
/// that few costs less than hashing the tenant's key.
pub struct WarmPool<I> {
    idle: Mutex<Vec<Idle<I>>>,
}

struct Idle<I> {
    tenant: Tenant,
    instance: I,
    /// When it went idle, and on which thread it answered last.
    since: Instant,
    thread: ThreadId,
}

impl<I> Default for WarmPool<I> {
    fn default() -> Self {
        Self {
            idle: Mutex::new(Vec::with_capacity(MAX_IDLE)),
        }
    }
}

impl<I> WarmPool<I> {
    /// The most recently used idle instance of `tenant`, if any; one last
    /// used on this thread first. A connection stays on its thread (see
    /// `net::workers`), and an instance reused there finds its memory in
    /// that core's caches.
    pub fn take(&self, tenant: &Tenant) -> Option<I> {
        let here = std::thread::current().id();
        let mut idle = self.lock();
        let mut theirs = idle
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, i)| i.tenant == *tenant);
        let (newest, _) = theirs.clone().next()?;
        let at = theirs
            .find(|(_, i)| i.thread == here)
            .map_or(newest, |(at, _)| at);
        let warm = idle.remove(at);
        count_idle(&idle);
        metrics::get().instance_reuses.fetch_add(1, Relaxed);
        Some(warm.instance)
    }

    /// Keeps `warm` for the tenant's next request if there is room, and
    /// drops instances idle for longer than [`IDLE_TIMEOUT`].
    pub fn put(&self, tenant: Tenant, warm: I) {
        let dropped = {
            let mut idle = self.lock();
            let stale = idle
                .iter()
                .take_while(|i| i.since.elapsed() >= IDLE_TIMEOUT)
                .count();
            let mut dropped: Vec<I> = idle.drain(..stale).map(|i| i.instance).collect();
            let mine = idle.iter().filter(|i| i.tenant == tenant).count();
            if idle.len() < MAX_IDLE && mine < MAX_IDLE_PER_TENANT {
                idle.push(Idle {
                    tenant,
                    instance: warm,
                    since: Instant::now(),
                    thread: std::thread::current().id(),
                });
            } else {
                dropped.push(warm);
            }
            count_idle(&idle);
            dropped
        };
        // Instances are torn down outside the lock.
        drop(dropped);
    }

    /// Idle instances kept now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Idle<I>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Publishes the number of idle instances (called under the pool's lock).
fn count_idle<I>(idle: &[Idle<I>]) {
    metrics::get()
        .warm_instances
        .store(i64::try_from(idle.len()).unwrap_or(i64::MAX), Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_go_back_to_their_own_tenant_only() {
        let pool = WarmPool::default();
        let (alice, bob) = (Tenant::new("user:alice"), Tenant::new("user:bob"));
        pool.put(alice.clone(), 1);
        pool.put(alice.clone(), 2);
        assert_eq!(pool.take(&bob), None);
        assert_eq!(pool.take(&alice), Some(2), "most recently used first");
        assert_eq!(pool.take(&alice), Some(1));
        assert_eq!(pool.take(&alice), None);
    }

    #[test]
    fn an_instance_last_used_on_this_thread_comes_first() {
        let pool = Arc::new(WarmPool::default());
        let alice = Tenant::new("user:alice");
        let elsewhere = |instance| {
            let (pool, alice) = (pool.clone(), alice.clone());
            std::thread::spawn(move || pool.put(alice, instance))
                .join()
                .unwrap();
        };
        elsewhere(1);
        pool.put(alice.clone(), 2);
        elsewhere(3);
        assert_eq!(pool.take(&alice), Some(2), "the one used here");
        assert_eq!(pool.take(&alice), Some(3), "then the most recent");
        assert_eq!(pool.take(&alice), Some(1));
        assert_eq!(pool.take(&alice), None);
    }

    #[test]
    fn idle_instances_are_bounded() {
        let pool = WarmPool::default();
        let alice = Tenant::new("user:alice");
        for i in 0..10 {
            pool.put(alice.clone(), i);
        }
        assert_eq!(pool.len(), MAX_IDLE_PER_TENANT);
        for user in 0..100 {
            pool.put(Tenant::new(format!("user:{user}")), user);
        }
        assert_eq!(pool.len(), MAX_IDLE);
    }
}
