//! In-memory WebDAV lock table behind the `edgedav:dav/locks` interface.
//!
//! The handler is stateless, so lock state lives here, in one process: a
//! `Mutex<HashMap>` keyed by token, which makes conflict checks atomic with
//! the insertion of the new lock. Locks do not survive a restart, which RFC
//! 4918 allows (clients refresh or re-lock).
//!
//! Every lock expires: a granted timeout is at most
//! [`edgedav_rules::locks::MAX_TIMEOUT_SECS`]
//! (one hour), and a request for an infinite timeout gets that cap, so a
//! crashed client cannot lock a resource forever. Expired locks are purged
//! lazily, on the next call.
//!
//! **Users.** One table serves every user through a per-request
//! [`LockView`]. A lock is recorded with the store it lives in and its full
//! name there (the home's prefix + the user's path), so users whose homes
//! overlap see each other's locks on the same resources, and users with
//! separate homes never conflict. Each lock records the user who took it:
//! only that user may refresh or release it (`forbidden` otherwise), and the
//! tokens of other users' locks are replaced in `covering`/`within` answers
//! by a fresh random token on every call, so another user can never submit
//! them (the handler still sees the lock, and answers 423).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgedav_rules::locks::{Extent, granted_secs};

use crate::gate::perms::{PermSet, Permissions};
use crate::runtime::bindings::edgedav::dav::locks::{ActiveLock, LockError, LockRequest, Scope};
use crate::storage::home::LockScope;

#[derive(Default)]
pub struct LockTable {
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

impl LockTable {
    /// Takes a new lock on `root` (a full name in `store`) unless a
    /// conflicting one exists; conflicts come with whether `holder` holds them.
    fn acquire(
        &self,
        store: &Arc<str>,
        root: String,
        request: LockRequest,
        holder: Option<Arc<str>>,
    ) -> Result<ActiveLock, Vec<(ActiveLock, bool)>> {
        let now = Instant::now();
        let mut locks = self.live(now);
        let conflicts: Vec<_> = locks
            .iter()
            .filter(|(_, lock)| lock.conflicts_with(store, &root, &request))
            .map(|(token, lock)| (lock.active(token, now), lock.holder == holder))
            .collect();
        if !conflicts.is_empty() {
            return Err(conflicts);
        }
        let token = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        let lock = Lock {
            store: store.clone(),
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

    /// Live locks of `store` that `keep` selects, with whether `holder` holds them.
    fn select(
        &self,
        store: &str,
        holder: &Option<Arc<str>>,
        keep: impl Fn(&Lock) -> bool,
    ) -> Vec<(ActiveLock, bool)> {
        let now = Instant::now();
        let locks = self.live(now);
        locks
            .iter()
            .filter(|(_, lock)| &*lock.store == store && keep(lock))
            .map(|(token, lock)| (lock.active(token, now), lock.holder == *holder))
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

/// One user's view of the lock table: paths are relative to their home, and
/// other users' tokens are masked (see the module docs).
#[derive(Clone)]
pub struct LockView {
    table: Arc<LockTable>,
    scope: LockScope,
    holder: Option<Arc<str>>,
    /// Where the user may take locks (a lock is a write: it needs upload or
    /// overwrite permission where the locked entry lives).
    perms: Arc<Permissions>,
}

impl LockView {
    pub fn new(
        table: Arc<LockTable>,
        scope: LockScope,
        holder: Option<Arc<str>>,
        perms: Arc<Permissions>,
    ) -> Self {
        Self {
            table,
            scope,
            holder,
            perms,
        }
    }

    /// The full name in the store of a user's path.
    fn full(&self, path: &str) -> String {
        let prefix = &*self.scope.prefix;
        match (prefix.is_empty(), path == "/") {
            (true, _) => path.to_owned(),
            (false, true) => prefix.to_owned(),
            (false, false) => format!("{prefix}{path}"),
        }
    }

    /// The user's path of a full name; locks on ancestors of the home appear
    /// on the home's root.
    fn user_path(&self, full: &str) -> String {
        let prefix = &*self.scope.prefix;
        if prefix.is_empty() {
            return full.to_owned();
        }
        match full.strip_prefix(prefix) {
            Some("") => "/".to_owned(),
            Some(rest) if rest.starts_with('/') => rest.to_owned(),
            _ => "/".to_owned(),
        }
    }

    /// Rewrites a lock for this user: their path, and a masked token unless
    /// they hold it.
    fn present(&self, mut lock: ActiveLock, own: bool) -> ActiveLock {
        lock.root = self.user_path(&lock.root);
        if !own {
            lock.token = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        }
        lock
    }

    /// Takes a new lock unless a conflicting one exists.
    pub fn acquire(&self, mut request: LockRequest) -> Result<ActiveLock, LockError> {
        let held = self.perms.for_entry(&request.root);
        if !held.intersects(PermSet::UPLOAD.or(PermSet::OVERWRITE)) {
            return Err(LockError::Forbidden);
        }
        let root = self.full(&request.root);
        request.root = root.clone();
        match self
            .table
            .acquire(&self.scope.store, root, request, self.holder.clone())
        {
            Ok(lock) => Ok(self.present(lock, true)),
            Err(conflicts) => Err(LockError::Conflict(
                conflicts
                    .into_iter()
                    .map(|(lock, own)| self.present(lock, own))
                    .collect(),
            )),
        }
    }

    /// Restarts the timeout of one of the user's locks.
    pub fn refresh(&self, token: &str, timeout: Option<u32>) -> Result<ActiveLock, LockError> {
        let lock =
            self.table
                .with_own_lock(&self.scope.store, &self.holder, token, |locks, now| {
                    let lock = locks.get_mut(token).expect("checked by with_own_lock");
                    lock.expires = now + granted(timeout);
                    lock.active(token, now)
                })?;
        Ok(self.present(lock, true))
    }

    /// Removes one of the user's locks.
    pub fn release(&self, token: &str) -> Result<(), LockError> {
        self.table
            .with_own_lock(&self.scope.store, &self.holder, token, |locks, _| {
                locks.remove(token);
            })
    }

    /// Locks taken on `path` and deep locks on its ancestors.
    pub fn covering(&self, path: &str) -> Vec<ActiveLock> {
        let full = self.full(path);
        self.table
            .select(&self.scope.store, &self.holder, |lock| {
                lock.extent().covers(&full)
            })
            .into_iter()
            .map(|(lock, own)| self.present(lock, own))
            .collect()
    }

    /// Locks taken on `path` or anything below it.
    pub fn within(&self, path: &str) -> Vec<ActiveLock> {
        let full = self.full(path);
        self.table
            .select(&self.scope.store, &self.holder, |lock| {
                lock.extent().within(&full)
            })
            .into_iter()
            .map(|(lock, own)| self.present(lock, own))
            .collect()
    }
}

/// The timeout granted for a requested one (the shared cap).
fn granted(requested: Option<u32>) -> Duration {
    Duration::from_secs(granted_secs(requested).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgedav_rules::locks::MAX_TIMEOUT_SECS;

    fn request(root: &str, scope: Scope, deep: bool) -> LockRequest {
        LockRequest {
            root: root.into(),
            scope,
            deep,
            owner: None,
            timeout: Some(60),
        }
    }

    fn view_as(table: &Arc<LockTable>, prefix: &str, holder: Option<&str>) -> LockView {
        LockView::new(
            table.clone(),
            LockScope {
                store: Arc::from("local"),
                prefix: Arc::from(prefix),
            },
            holder.map(Arc::from),
            Arc::new(Permissions::all()),
        )
    }

    fn view() -> LockView {
        view_as(&Arc::new(LockTable::default()), "", None)
    }

    fn roots(mut locks: Vec<ActiveLock>) -> Vec<String> {
        locks.sort_by(|a, b| a.root.cmp(&b.root));
        locks.into_iter().map(|l| l.root).collect()
    }

    #[test]
    fn exclusive_conflicts_with_everything_on_the_same_root() {
        let table = view();
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
        let table = view();
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
        let table = view();
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
        let table = view();
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
        let table = view();
        let lock = table
            .acquire(request("/a", Scope::Exclusive, true))
            .unwrap();
        table
            .table
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
        let table = view();
        let lock = table
            .acquire(request("/a", Scope::Exclusive, false))
            .unwrap();
        table.release(&lock.token).unwrap();
        table
            .acquire(request("/a", Scope::Exclusive, false))
            .unwrap();
    }

    #[test]
    fn users_cannot_use_each_others_locks() {
        let table = Arc::new(LockTable::default());
        let alice = view_as(&table, "/srv/shared", Some("alice"));
        let bob = view_as(&table, "/srv/shared", Some("bob"));
        let lock = alice
            .acquire(request("/doc", Scope::Exclusive, false))
            .unwrap();
        // Bob sees the lock, never its token.
        let seen = bob.covering("/doc");
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].root, "/doc");
        assert_ne!(seen[0].token, lock.token);
        assert_ne!(bob.covering("/doc")[0].token, seen[0].token);
        assert_eq!(alice.covering("/doc")[0].token, lock.token);
        assert!(matches!(
            bob.release(&lock.token),
            Err(LockError::Forbidden)
        ));
        assert!(matches!(
            bob.refresh(&lock.token, None),
            Err(LockError::Forbidden)
        ));
        let Err(LockError::Conflict(blocking)) = bob.acquire(request("/doc", Scope::Shared, false))
        else {
            panic!("bob locked alice's resource");
        };
        assert_ne!(blocking[0].token, lock.token);
        alice.release(&lock.token).unwrap();
    }

    #[test]
    fn homes_map_to_one_namespace() {
        let table = Arc::new(LockTable::default());
        let admin = view_as(&table, "/srv", Some("admin"));
        let carol = view_as(&table, "/srv/carol", Some("carol"));
        let other = view_as(&table, "/srv/dave", Some("dave"));
        let lock = admin
            .acquire(request("/carol", Scope::Exclusive, true))
            .unwrap();
        assert_eq!(lock.root, "/carol");
        // The admin's deep lock on Carol's home covers all of it, seen as "/".
        assert_eq!(roots(carol.covering("/x/y")), ["/"]);
        assert!(
            carol
                .acquire(request("/x", Scope::Exclusive, false))
                .is_err()
        );
        assert!(other.covering("/x").is_empty());
        other
            .acquire(request("/x", Scope::Exclusive, false))
            .unwrap();
        assert_eq!(roots(admin.within("/")), ["/carol", "/dave/x"]);
        // A different store never conflicts.
        let elsewhere = LockView::new(
            table.clone(),
            LockScope {
                store: Arc::from("s3:bucket"),
                prefix: Arc::from("/srv/carol"),
            },
            Some(Arc::from("carol")),
            Arc::new(Permissions::all()),
        );
        elsewhere
            .acquire(request("/x", Scope::Exclusive, false))
            .unwrap();
        assert!(matches!(
            elsewhere.release(&lock.token),
            Err(LockError::NoSuchLock)
        ));
    }

    #[test]
    fn read_only_users_cannot_lock() {
        let table = Arc::new(LockTable::default());
        let reader = LockView::new(
            table,
            LockScope {
                store: Arc::from("local"),
                prefix: Arc::from(""),
            },
            Some(Arc::from("reader")),
            Arc::new(Permissions::all().read_only()),
        );
        assert!(matches!(
            reader.acquire(request("/a", Scope::Shared, false)),
            Err(LockError::Forbidden)
        ));
    }
}
