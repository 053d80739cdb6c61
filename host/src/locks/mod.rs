//! The WebDAV lock table behind the `edgedav:dav/locks` interface.
//!
//! The handler is stateless, so lock state lives in the host: in this
//! process ([`memory`]: locks do not survive a restart, which RFC 4918
//! allows; clients refresh or re-lock), or, in cluster mode, in the
//! cluster's database ([`crate::cluster::locks`]), shared by every host.
//! Either way a conflict check is atomic with the insertion of the new lock,
//! and the conflict rules are `edgedav_rules::locks`'.
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

use std::sync::Arc;
use std::time::Duration;

use edgedav_rules::locks::{Extent, granted_secs};

use crate::gate::perms::{PermSet, Permissions};
use crate::runtime::bindings::edgedav::dav::locks::{ActiveLock, LockError, LockRequest};
use crate::storage::home::LockScope;

mod memory;

use crate::cluster::Cluster;
use crate::cluster::locks::SharedLocks;

/// Where locks live.
pub enum LockTable {
    /// In this process.
    Memory(memory::MemoryLocks),
    /// In the cluster's database.
    Shared(SharedLocks),
}

impl Default for LockTable {
    fn default() -> Self {
        LockTable::Memory(memory::MemoryLocks::default())
    }
}

/// Which locks a selection wants (full names).
#[derive(Clone, Copy)]
pub enum Which<'a> {
    /// Locks on the path and deep locks on its ancestors.
    Covering(&'a str),
    /// Locks on the path or anything below it.
    Within(&'a str),
}

impl Which<'_> {
    /// Whether a lock of this extent is selected.
    pub fn selects(&self, lock: &Extent<'_>) -> bool {
        match *self {
            Which::Covering(path) => lock.covers(path),
            Which::Within(path) => lock.within(path),
        }
    }
}

/// A lock as a table reports it, with whether the asking user holds it.
pub type Found = (ActiveLock, bool);

/// Why a lock was not granted.
pub enum Refused {
    Conflicts(Vec<Found>),
    Failed(LockError),
}

impl LockTable {
    pub fn shared(cluster: Arc<Cluster>) -> Self {
        LockTable::Shared(SharedLocks::new(cluster))
    }

    /// Takes a new lock on `root` (a full name in `store`) unless a
    /// conflicting one exists.
    async fn acquire(
        &self,
        store: &str,
        root: String,
        request: LockRequest,
        holder: Option<Arc<str>>,
    ) -> Result<ActiveLock, Refused> {
        match self {
            LockTable::Memory(m) => m.acquire(store, root, request, holder),
            LockTable::Shared(s) => s.acquire(store, root, request, holder).await,
        }
    }

    /// Restarts the timeout of `holder`'s lock `token`.
    async fn refresh(
        &self,
        store: &str,
        holder: &Option<Arc<str>>,
        token: &str,
        timeout: Option<u32>,
    ) -> Result<ActiveLock, LockError> {
        match self {
            LockTable::Memory(m) => m.refresh(store, holder, token, timeout),
            LockTable::Shared(s) => s.refresh(store, holder, token, timeout).await,
        }
    }

    /// Removes `holder`'s lock `token`.
    async fn release(
        &self,
        store: &str,
        holder: &Option<Arc<str>>,
        token: &str,
    ) -> Result<(), LockError> {
        match self {
            LockTable::Memory(m) => m.release(store, holder, token),
            LockTable::Shared(s) => s.release(store, holder, token).await,
        }
    }

    /// The live locks of `store` that `which` selects.
    async fn select(
        &self,
        store: &str,
        holder: &Option<Arc<str>>,
        which: Which<'_>,
    ) -> Result<Vec<Found>, LockError> {
        match self {
            LockTable::Memory(m) => Ok(m.select(store, holder, which)),
            LockTable::Shared(s) => s.select(store, holder, which).await,
        }
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
    pub async fn acquire(&self, mut request: LockRequest) -> Result<ActiveLock, LockError> {
        let held = self.perms.for_entry(&request.root);
        if !held.intersects(PermSet::UPLOAD.or(PermSet::OVERWRITE)) {
            return Err(LockError::Forbidden);
        }
        let root = self.full(&request.root);
        request.root = root.clone();
        match self
            .table
            .acquire(&self.scope.store, root, request, self.holder.clone())
            .await
        {
            Ok(lock) => Ok(self.present(lock, true)),
            Err(Refused::Conflicts(conflicts)) => Err(LockError::Conflict(
                conflicts
                    .into_iter()
                    .map(|(lock, own)| self.present(lock, own))
                    .collect(),
            )),
            Err(Refused::Failed(e)) => Err(e),
        }
    }

    /// Restarts the timeout of one of the user's locks.
    pub async fn refresh(
        &self,
        token: &str,
        timeout: Option<u32>,
    ) -> Result<ActiveLock, LockError> {
        let lock = (self.table)
            .refresh(&self.scope.store, &self.holder, token, timeout)
            .await?;
        Ok(self.present(lock, true))
    }

    /// Removes one of the user's locks.
    pub async fn release(&self, token: &str) -> Result<(), LockError> {
        (self.table)
            .release(&self.scope.store, &self.holder, token)
            .await
    }

    /// Locks taken on `path` and deep locks on its ancestors.
    pub async fn covering(&self, path: &str) -> Result<Vec<ActiveLock>, LockError> {
        self.select(Which::Covering(&self.full(path))).await
    }

    /// Locks taken on `path` or anything below it.
    pub async fn within(&self, path: &str) -> Result<Vec<ActiveLock>, LockError> {
        self.select(Which::Within(&self.full(path))).await
    }

    async fn select(&self, which: Which<'_>) -> Result<Vec<ActiveLock>, LockError> {
        let found = (self.table)
            .select(&self.scope.store, &self.holder, which)
            .await?;
        Ok(found
            .into_iter()
            .map(|(lock, own)| self.present(lock, own))
            .collect())
    }
}

/// The timeout granted for a requested one (the shared cap).
pub(crate) fn granted(requested: Option<u32>) -> Duration {
    Duration::from_secs(granted_secs(requested).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::bindings::edgedav::dav::locks::Scope;
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

    #[tokio::test]
    async fn exclusive_conflicts_with_everything_on_the_same_root() {
        let table = view();
        let first = table
            .acquire(request("/a", Scope::Shared, false))
            .await
            .unwrap();
        assert!(first.token.starts_with("urn:uuid:"));
        let Err(LockError::Conflict(blocking)) =
            table.acquire(request("/a", Scope::Exclusive, false)).await
        else {
            panic!("exclusive lock granted over a shared one");
        };
        assert_eq!(blocking.len(), 1);
        assert_eq!(blocking[0].token, first.token);
        table
            .acquire(request("/a", Scope::Shared, false))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn depth_decides_overlap() {
        let table = view();
        table
            .acquire(request("/a", Scope::Exclusive, false))
            .await
            .unwrap();
        // A shallow lock on /a does not cover /a/b.
        table
            .acquire(request("/a/b", Scope::Exclusive, false))
            .await
            .unwrap();
        // A deep request on / would cover both.
        assert!(
            table
                .acquire(request("/", Scope::Exclusive, true))
                .await
                .is_err()
        );
        // A deep lock covers descendants.
        table
            .acquire(request("/c", Scope::Exclusive, true))
            .await
            .unwrap();
        assert!(
            table
                .acquire(request("/c/d/e", Scope::Shared, false))
                .await
                .is_err()
        );
        table
            .acquire(request("/cd", Scope::Exclusive, false))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn covering_and_within() {
        let table = view();
        table
            .acquire(request("/", Scope::Shared, true))
            .await
            .unwrap();
        table
            .acquire(request("/a", Scope::Shared, false))
            .await
            .unwrap();
        table
            .acquire(request("/a/b", Scope::Shared, false))
            .await
            .unwrap();
        table
            .acquire(request("/x", Scope::Shared, true))
            .await
            .unwrap();
        assert_eq!(roots(table.covering("/a/b").await.unwrap()), ["/", "/a/b"]);
        assert_eq!(roots(table.covering("/a").await.unwrap()), ["/", "/a"]);
        assert_eq!(roots(table.within("/a").await.unwrap()), ["/a", "/a/b"]);
        assert_eq!(roots(table.within("/").await.unwrap()).len(), 4);
    }

    #[tokio::test]
    async fn timeouts_are_capped_and_refreshed() {
        let table = view();
        let mut infinite = request("/a", Scope::Exclusive, false);
        infinite.timeout = None;
        let lock = table.acquire(infinite).await.unwrap();
        assert_eq!(lock.timeout, Some(MAX_TIMEOUT_SECS));
        let refreshed = table.refresh(&lock.token, Some(10)).await.unwrap();
        assert_eq!(refreshed.timeout, Some(10));
        assert!(matches!(
            table.refresh("urn:uuid:nope", None).await,
            Err(LockError::NoSuchLock)
        ));
    }

    #[tokio::test]
    async fn expired_locks_vanish() {
        let table = view();
        let lock = table
            .acquire(request("/a", Scope::Exclusive, true))
            .await
            .unwrap();
        let LockTable::Memory(memory) = &*table.table else {
            unreachable!("tests use the memory table")
        };
        memory.expire(&lock.token);
        assert!(table.covering("/a").await.unwrap().is_empty());
        table
            .acquire(request("/a/b", Scope::Exclusive, false))
            .await
            .unwrap();
        assert!(matches!(
            table.release(&lock.token).await,
            Err(LockError::NoSuchLock)
        ));
    }

    #[tokio::test]
    async fn release_frees_the_root() {
        let table = view();
        let lock = table
            .acquire(request("/a", Scope::Exclusive, false))
            .await
            .unwrap();
        table.release(&lock.token).await.unwrap();
        table
            .acquire(request("/a", Scope::Exclusive, false))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn users_cannot_use_each_others_locks() {
        let table = Arc::new(LockTable::default());
        let alice = view_as(&table, "/srv/shared", Some("alice"));
        let bob = view_as(&table, "/srv/shared", Some("bob"));
        let lock = alice
            .acquire(request("/doc", Scope::Exclusive, false))
            .await
            .unwrap();
        // Bob sees the lock, never its token.
        let seen = bob.covering("/doc").await.unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].root, "/doc");
        assert_ne!(seen[0].token, lock.token);
        assert_ne!(bob.covering("/doc").await.unwrap()[0].token, seen[0].token);
        assert_eq!(alice.covering("/doc").await.unwrap()[0].token, lock.token);
        assert!(matches!(
            bob.release(&lock.token).await,
            Err(LockError::Forbidden)
        ));
        assert!(matches!(
            bob.refresh(&lock.token, None).await,
            Err(LockError::Forbidden)
        ));
        let Err(LockError::Conflict(blocking)) =
            bob.acquire(request("/doc", Scope::Shared, false)).await
        else {
            panic!("bob locked alice's resource");
        };
        assert_ne!(blocking[0].token, lock.token);
        alice.release(&lock.token).await.unwrap();
    }

    #[tokio::test]
    async fn homes_map_to_one_namespace() {
        let table = Arc::new(LockTable::default());
        let admin = view_as(&table, "/srv", Some("admin"));
        let carol = view_as(&table, "/srv/carol", Some("carol"));
        let other = view_as(&table, "/srv/dave", Some("dave"));
        let lock = admin
            .acquire(request("/carol", Scope::Exclusive, true))
            .await
            .unwrap();
        assert_eq!(lock.root, "/carol");
        // The admin's deep lock on Carol's home covers all of it, seen as "/".
        assert_eq!(roots(carol.covering("/x/y").await.unwrap()), ["/"]);
        assert!(
            carol
                .acquire(request("/x", Scope::Exclusive, false))
                .await
                .is_err()
        );
        assert!(other.covering("/x").await.unwrap().is_empty());
        other
            .acquire(request("/x", Scope::Exclusive, false))
            .await
            .unwrap();
        assert_eq!(
            roots(admin.within("/").await.unwrap()),
            ["/carol", "/dave/x"]
        );
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
            .await
            .unwrap();
        assert!(matches!(
            elsewhere.release(&lock.token).await,
            Err(LockError::NoSuchLock)
        ));
    }

    #[tokio::test]
    async fn read_only_users_cannot_lock() {
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
            reader.acquire(request("/a", Scope::Shared, false)).await,
            Err(LockError::Forbidden)
        ));
    }
}
