//! In-memory WebDAV lock table behind the `edgedav:dav/locks` interface.
//!
//! The handler is stateless, so lock state lives here, in one process: a
//! `Mutex<HashMap>` keyed by token, which makes conflict checks atomic with
//! the insertion of the new lock. Locks do not survive a restart, which RFC
//! 4918 allows (clients refresh or re-lock).
//!
//! Every lock expires: a granted timeout is at most [`MAX_TIMEOUT_SECS`]
//! (one hour), and a request for an infinite timeout gets that cap, so a
//! crashed client cannot lock a resource forever. Expired locks are purged
//! lazily, on the next call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::bindings::edgedav::dav::locks::{ActiveLock, LockError, LockRequest, Scope};

/// The longest timeout granted, in seconds.
pub const MAX_TIMEOUT_SECS: u32 = 3600;

#[derive(Default)]
pub struct LockTable {
    locks: Mutex<HashMap<String, Lock>>,
}

struct Lock {
    root: String,
    scope: Scope,
    deep: bool,
    owner: Option<String>,
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

    /// Whether this lock and a requested one may not both be held.
    fn conflicts_with(&self, request: &LockRequest) -> bool {
        let exclusive =
            matches!(self.scope, Scope::Exclusive) || matches!(request.scope, Scope::Exclusive);
        let overlap = self.root == request.root
            || (self.deep && is_ancestor(&self.root, &request.root))
            || (request.deep && is_ancestor(&request.root, &self.root));
        exclusive && overlap
    }
}

impl LockTable {
    /// Takes a new lock unless a conflicting one exists.
    pub fn acquire(&self, request: LockRequest) -> Result<ActiveLock, LockError> {
        let now = Instant::now();
        let mut locks = self.live(now);
        let conflicts: Vec<ActiveLock> = locks
            .iter()
            .filter(|(_, lock)| lock.conflicts_with(&request))
            .map(|(token, lock)| lock.active(token, now))
            .collect();
        if !conflicts.is_empty() {
            return Err(LockError::Conflict(conflicts));
        }
        let token = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        let lock = Lock {
            root: request.root,
            scope: request.scope,
            deep: request.deep,
            owner: request.owner,
            expires: now + granted(request.timeout),
        };
        let active = lock.active(&token, now);
        locks.insert(token, lock);
        Ok(active)
    }

    /// Restarts a lock's timeout with the newly requested one.
    pub fn refresh(&self, token: &str, timeout: Option<u32>) -> Result<ActiveLock, LockError> {
        let now = Instant::now();
        let mut locks = self.live(now);
        let lock = locks.get_mut(token).ok_or(LockError::NoSuchLock)?;
        lock.expires = now + granted(timeout);
        Ok(lock.active(token, now))
    }

    pub fn release(&self, token: &str) -> Result<(), LockError> {
        let mut locks = self.live(Instant::now());
        locks.remove(token).map(drop).ok_or(LockError::NoSuchLock)
    }

    /// Locks taken on `path` and deep locks on its ancestors.
    pub fn covering(&self, path: &str) -> Vec<ActiveLock> {
        self.select(|lock| lock.root == path || (lock.deep && is_ancestor(&lock.root, path)))
    }

    /// Locks taken on `path` or anything below it.
    pub fn within(&self, path: &str) -> Vec<ActiveLock> {
        self.select(|lock| lock.root == path || is_ancestor(path, &lock.root))
    }

    fn select(&self, keep: impl Fn(&Lock) -> bool) -> Vec<ActiveLock> {
        let now = Instant::now();
        let locks = self.live(now);
        locks
            .iter()
            .filter(|(_, lock)| keep(lock))
            .map(|(token, lock)| lock.active(token, now))
            .collect()
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

/// The timeout granted for a requested one: at least a second, at most the cap.
fn granted(requested: Option<u32>) -> Duration {
    let secs = requested
        .unwrap_or(MAX_TIMEOUT_SECS)
        .clamp(1, MAX_TIMEOUT_SECS);
    Duration::from_secs(secs.into())
}

/// Whether `ancestor` is a proper ancestor of `path` (both normalised).
fn is_ancestor(ancestor: &str, path: &str) -> bool {
    if ancestor == "/" {
        return path != "/";
    }
    path.strip_prefix(ancestor)
        .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(root: &str, scope: Scope, deep: bool) -> LockRequest {
        LockRequest {
            root: root.into(),
            scope,
            deep,
            owner: None,
            timeout: Some(60),
        }
    }

    fn roots(mut locks: Vec<ActiveLock>) -> Vec<String> {
        locks.sort_by(|a, b| a.root.cmp(&b.root));
        locks.into_iter().map(|l| l.root).collect()
    }

    #[test]
    fn ancestry() {
        assert!(is_ancestor("/", "/a"));
        assert!(!is_ancestor("/", "/"));
        assert!(is_ancestor("/a", "/a/b/c"));
        assert!(!is_ancestor("/a", "/a"));
        assert!(!is_ancestor("/a", "/ab"));
    }

    #[test]
    fn exclusive_conflicts_with_everything_on_the_same_root() {
        let table = LockTable::default();
        let first = table.acquire(request("/a", Scope::Shared, false)).unwrap();
        assert!(first.token.starts_with("urn:uuid:"));
        let Err(LockError::Conflict(blocking)) =
            table.acquire(request("/a", Scope::Exclusive, false))
        else {
            panic!("exclusive lock granted over a shared one");
        };
        assert_eq!(blocking.len(), 1);
        assert_eq!(blocking[0].token, first.token);
        table.acquire(request("/a", Scope::Shared, false)).unwrap();
    }

    #[test]
    fn depth_decides_overlap() {
        let table = LockTable::default();
        table
            .acquire(request("/a", Scope::Exclusive, false))
            .unwrap();
        // A shallow lock on /a does not cover /a/b.
        table
            .acquire(request("/a/b", Scope::Exclusive, false))
            .unwrap();
        // A deep request on / would cover both.
        assert!(table.acquire(request("/", Scope::Exclusive, true)).is_err());
        // A deep lock covers descendants.
        table
            .acquire(request("/c", Scope::Exclusive, true))
            .unwrap();
        assert!(
            table
                .acquire(request("/c/d/e", Scope::Shared, false))
                .is_err()
        );
        table
            .acquire(request("/cd", Scope::Exclusive, false))
            .unwrap();
    }

    #[test]
    fn covering_and_within() {
        let table = LockTable::default();
        table.acquire(request("/", Scope::Shared, true)).unwrap();
        table.acquire(request("/a", Scope::Shared, false)).unwrap();
        table
            .acquire(request("/a/b", Scope::Shared, false))
            .unwrap();
        table.acquire(request("/x", Scope::Shared, true)).unwrap();
        assert_eq!(roots(table.covering("/a/b")), ["/", "/a/b"]);
        assert_eq!(roots(table.covering("/a")), ["/", "/a"]);
        assert_eq!(roots(table.within("/a")), ["/a", "/a/b"]);
        assert_eq!(roots(table.within("/")).len(), 4);
    }

    #[test]
    fn timeouts_are_capped_and_refreshed() {
        let table = LockTable::default();
        let mut infinite = request("/a", Scope::Exclusive, false);
        infinite.timeout = None;
        let lock = table.acquire(infinite).unwrap();
        assert_eq!(lock.timeout, Some(MAX_TIMEOUT_SECS));
        let refreshed = table.refresh(&lock.token, Some(10)).unwrap();
        assert_eq!(refreshed.timeout, Some(10));
        assert!(matches!(
            table.refresh("urn:uuid:nope", None),
            Err(LockError::NoSuchLock)
        ));
    }

    #[test]
    fn expired_locks_vanish() {
        let table = LockTable::default();
        let lock = table
            .acquire(request("/a", Scope::Exclusive, true))
            .unwrap();
        table
            .locks
            .lock()
            .unwrap()
            .get_mut(&lock.token)
            .unwrap()
            .expires = Instant::now();
        assert!(table.covering("/a").is_empty());
        table
            .acquire(request("/a/b", Scope::Exclusive, false))
            .unwrap();
        assert!(matches!(
            table.release(&lock.token),
            Err(LockError::NoSuchLock)
        ));
    }

    #[test]
    fn release_frees_the_root() {
        let table = LockTable::default();
        let lock = table
            .acquire(request("/a", Scope::Exclusive, false))
            .unwrap();
        table.release(&lock.token).unwrap();
        table
            .acquire(request("/a", Scope::Exclusive, false))
            .unwrap();
    }
}
