//! The lock table in this process: a `Mutex<HashMap>` keyed by token, so a
//! conflict check and the insertion of the new lock happen under one lock.
//! Expired locks are purged lazily, on the next call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use edgedav_rules::locks::Extent;

use super::{Found, Refused, Which, granted};
use crate::runtime::bindings::edgedav::dav::locks::{ActiveLock, LockError, LockRequest, Scope};

#[derive(Default)]
pub struct MemoryLocks {
    locks: Mutex<HashMap<String, Lock>>,
}

struct Lock {
    /// The store the resource lives in ([`LockScope::store`]).
    store: Arc<str>,
    /// Full name of the locked resource in its store.
    root: String,
    scope: Scope,
    deep: bool,
    owner: Option<String>,
    /// The user who took the lock (none: the unauthenticated zero-config server).
    holder: Option<Arc<str>>,
    expires: Instant,
}

impl Lock {
    fn active(&self, token: &str, now: Instant) -> ActiveLock {
        let left = self.expires.saturating_duration_since(now);
        // Round up so a live lock never reports 0 seconds left.
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        ActiveLock {
            token: token.to_owned(),
            root: self.root.clone(),
            scope: self.scope,
            deep: self.deep,
            owner: self.owner.clone(),
            timeout: Some(secs.try_into().unwrap_or(u32::MAX)),
        }
    }

    fn extent(&self) -> Extent<'_> {
        Extent {
            root: &self.root,
            deep: self.deep,
            exclusive: matches!(self.scope, Scope::Exclusive),
        }
    }

    /// Whether this lock and a requested one (full root in `store`) may not
    /// both be held.
    fn conflicts_with(&self, store: &str, root: &str, request: &LockRequest) -> bool {
        let requested = Extent {
            root,
            deep: request.deep,
            exclusive: matches!(request.scope, Scope::Exclusive),
        };
        &*self.store == store && self.extent().conflicts_with(&requested)
    }
}

impl MemoryLocks {
    pub(super) fn acquire(
        &self,
        store: &str,
        root: String,
        request: LockRequest,
        holder: Option<Arc<str>>,
    ) -> Result<ActiveLock, Refused> {
        let now = Instant::now();
        let mut locks = self.live(now);
        let conflicts: Vec<_> = locks
            .iter()
            .filter(|(_, lock)| lock.conflicts_with(store, &root, &request))
            .map(|(token, lock)| (lock.active(token, now), lock.holder == holder))
            .collect();
        if !conflicts.is_empty() {
            return Err(Refused::Conflicts(conflicts));
        }
        let token = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        let lock = Lock {
            store: Arc::from(store),
            root,
            scope: request.scope,
            deep: request.deep,
            owner: request.owner,
            holder,
            expires: now + granted(request.timeout),
        };
        let active = lock.active(&token, now);
        locks.insert(token, lock);
        Ok(active)
    }

    pub(super) fn refresh(
        &self,
        store: &str,
        holder: &Option<Arc<str>>,
        token: &str,
        timeout: Option<u32>,
    ) -> Result<ActiveLock, LockError> {
        self.with_own_lock(store, holder, token, |locks, now| {
            let lock = locks.get_mut(token).expect("checked by with_own_lock");
            lock.expires = now + granted(timeout);
            lock.active(token, now)
        })
    }

    pub(super) fn release(
        &self,
        store: &str,
        holder: &Option<Arc<str>>,
        token: &str,
    ) -> Result<(), LockError> {
        self.with_own_lock(store, holder, token, |locks, _| {
            locks.remove(token);
        })
    }

    /// Applies `change` to the lock with `token` if `holder` in `store` may.
    fn with_own_lock<T>(
        &self,
        store: &str,
        holder: &Option<Arc<str>>,
        token: &str,
        change: impl FnOnce(&mut HashMap<String, Lock>, Instant) -> T,
    ) -> Result<T, LockError> {
        let now = Instant::now();
        let mut locks = self.live(now);
        match locks.get(token) {
            Some(lock) if &*lock.store == store => {
                if lock.holder != *holder {
                    return Err(LockError::Forbidden);
                }
            }
            _ => return Err(LockError::NoSuchLock),
        }
        Ok(change(&mut locks, now))
    }

    /// Live locks of `store` that `which` selects, with whether `holder` holds them.
    pub(super) fn select(
        &self,
        store: &str,
        holder: &Option<Arc<str>>,
        which: Which<'_>,
    ) -> Vec<Found> {
        let now = Instant::now();
        let locks = self.live(now);
        locks
            .iter()
            .filter(|(_, lock)| &*lock.store == store && which.selects(&lock.extent()))
            .map(|(token, lock)| (lock.active(token, now), lock.holder == *holder))
            .collect()
    }

    /// Makes a lock expire now.
    #[cfg(test)]
    pub(super) fn expire(&self, token: &str) {
        if let Some(lock) = self.live(Instant::now()).get_mut(token) {
            lock.expires = Instant::now();
        }
    }

    /// The table, with expired locks purged.
    fn live(&self, now: Instant) -> std::sync::MutexGuard<'_, HashMap<String, Lock>> {
        // A panic while holding the lock cannot leave the map inconsistent:
        // every mutation is a single insert, remove or field store.
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.retain(|_, lock| lock.expires > now);
        locks
    }
}
