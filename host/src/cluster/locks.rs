//! The lock table of a cluster, in the database: every host of the cluster
//! sees every lock.
//!
//! * **Acquire** is one transaction: it takes the store's row in
//!   `edgedav_lock_stores` `FOR UPDATE` (so acquisitions on one store are
//!   serialised across hosts, without advisory locks), drops the store's
//!   expired locks, reads the live locks on the path, its ancestors and its
//!   descendants, decides conflicts with the shared rules
//!   (`edgedav_rules::locks`) and inserts the new lock.
//! * **Refresh and release** are single statements, limited to the holder's
//!   own live lock; only when they touch nothing does a second read tell
//!   `forbidden` (someone else's) from `no-such-lock`.
//! * **Time** is the database's: expiry is `now()` there, and the seconds
//!   left are computed there.
//!
//! A database that cannot be reached or fails is the contract's `io` error;
//! the request gate answers 503 first while the database is known to be
//! down (see [`super`]).

use std::sync::Arc;

use deadpool_postgres::tokio_postgres::{self, Row};
use edgedav_rules::locks::{Extent, granted_secs};
use edgedav_rules::path::parent_of;

use super::{Cluster, below};
use crate::locks::{Found, Refused, Which};
use crate::runtime::bindings::edgedav::dav::locks::{ActiveLock, LockError, LockRequest, Scope};

/// The columns [`found`] reads, the seconds left computed by the database.
const COLUMNS: &str = "token, root, exclusive, deep, owner, holder, \
     CEIL(EXTRACT(EPOCH FROM (expires - now())))::BIGINT";

pub struct SharedLocks {
    cluster: Arc<Cluster>,
}

impl SharedLocks {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        Self { cluster }
    }

    fn failed(&self, e: impl std::fmt::Display) -> LockError {
        LockError::Io(self.cluster.failed(e).to_string())
    }

    /// A statement's failure: a lost connection also marks the database down.
    fn statement(&self, e: tokio_postgres::Error) -> LockError {
        if e.code().is_none() {
            return self.failed(e);
        }
        LockError::Io(format!("the lock table: {}", super::describe(&e)))
    }

    pub async fn acquire(
        &self,
        store: &str,
        root: String,
        request: LockRequest,
        holder: Option<Arc<str>>,
    ) -> Result<ActiveLock, Refused> {
        let mut client = (self.cluster.client().await)
            .map_err(|e| Refused::Failed(LockError::Io(e.to_string())))?;
        match retried!(self.try_acquire(&mut client, store, &root, &request, &holder)) {
            Ok(Ok(lock)) => Ok(lock),
            Ok(Err(conflicts)) => Err(Refused::Conflicts(conflicts)),
            Err(e) => Err(Refused::Failed(self.statement(e))),
        }
    }

    /// One attempt at [`Self::acquire`]'s transaction: the lock, or the
    /// locks in conflict.
    async fn try_acquire(
        &self,
        client: &mut deadpool_postgres::Object,
        store: &str,
        root: &str,
        request: &LockRequest,
        holder: &Option<Arc<str>>,
    ) -> Result<Result<ActiveLock, Vec<Found>>, tokio_postgres::Error> {
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO edgedav_lock_stores (store) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&store],
        )
        .await?;
        tx.query_one(
            "SELECT store FROM edgedav_lock_stores WHERE store = $1 FOR UPDATE",
            &[&store],
        )
        .await?;
        tx.execute(
            "DELETE FROM edgedav_locks WHERE store = $1 AND expires <= now()",
            &[&store],
        )
        .await?;
        let nearby = tx
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM edgedav_locks WHERE store = $1 AND expires > now() \
                     AND (root = ANY($2) OR left(root, length($3)) = $3)"
                ),
                &[&store, &self_and_ancestors(root), &below(root)],
            )
            .await?;
        let requested = Extent {
            root,
            deep: request.deep,
            exclusive: matches!(request.scope, Scope::Exclusive),
        };
        let conflicts: Vec<Found> = nearby
            .iter()
            .map(|row| found(row, holder))
            .filter(|(lock, _)| extent(lock).conflicts_with(&requested))
            .collect();
        if !conflicts.is_empty() {
            return Ok(Err(conflicts));
        }
        let token = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        let secs = i64::from(granted_secs(request.timeout));
        let exclusive = matches!(request.scope, Scope::Exclusive);
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO edgedav_locks \
                     (token, store, root, exclusive, deep, owner, holder, expires) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, now() + $8::BIGINT * INTERVAL '1 second') \
                     RETURNING {COLUMNS}"
                ),
                &[
                    &token,
                    &store,
                    &root,
                    &exclusive,
                    &request.deep,
                    &request.owner,
                    &holder.as_deref(),
                    &secs,
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(Ok(found(&row, holder).0))
    }

    pub async fn refresh(
        &self,
        store: &str,
        holder: &Option<Arc<str>>,
        token: &str,
        timeout: Option<u32>,
    ) -> Result<ActiveLock, LockError> {
        let client = self.cluster.client().await.map_err(|e| self.failed(e))?;
        let secs = i64::from(granted_secs(timeout));
        let row = client
            .query_opt(
                &format!(
                    "UPDATE edgedav_locks SET expires = now() + $4::BIGINT * INTERVAL '1 second' \
                     WHERE token = $1 AND store = $2 AND expires > now() \
                     AND holder IS NOT DISTINCT FROM $3 RETURNING {COLUMNS}"
                ),
                &[&token, &store, &holder.as_deref(), &secs],
            )
            .await
            .map_err(|e| self.statement(e))?;
        match row {
            Some(row) => Ok(found(&row, holder).0),
            None => Err(self.why_not_own(&client, store, token).await),
        }
    }

    pub async fn release(
        &self,
        store: &str,
        holder: &Option<Arc<str>>,
        token: &str,
    ) -> Result<(), LockError> {
        let client = self.cluster.client().await.map_err(|e| self.failed(e))?;
        let removed = client
            .execute(
                "DELETE FROM edgedav_locks WHERE token = $1 AND store = $2 \
                 AND expires > now() AND holder IS NOT DISTINCT FROM $3",
                &[&token, &store, &holder.as_deref()],
            )
            .await
            .map_err(|e| self.statement(e))?;
        match removed {
            0 => Err(self.why_not_own(&client, store, token).await),
            _ => Ok(()),
        }
    }

    /// Why a lock the holder asked about is not theirs: someone else's
    /// (`forbidden`), or none (`no-such-lock`).
    async fn why_not_own(
        &self,
        client: &deadpool_postgres::Object,
        store: &str,
        token: &str,
    ) -> LockError {
        match client
            .query_opt(
                "SELECT token FROM edgedav_locks WHERE token = $1 AND store = $2 \
                 AND expires > now()",
                &[&token, &store],
            )
            .await
        {
            Ok(Some(_)) => LockError::Forbidden,
            Ok(None) => LockError::NoSuchLock,
            Err(e) => self.statement(e),
        }
    }

    pub async fn select(
        &self,
        store: &str,
        holder: &Option<Arc<str>>,
        which: Which<'_>,
    ) -> Result<Vec<Found>, LockError> {
        let client = self.cluster.client().await.map_err(|e| self.failed(e))?;
        let rows = match which {
            Which::Covering(path) => {
                client
                    .query(
                        &format!(
                            "SELECT {COLUMNS} FROM edgedav_locks WHERE store = $1 \
                             AND expires > now() AND root = ANY($2)"
                        ),
                        &[&store, &self_and_ancestors(path)],
                    )
                    .await
            }
            Which::Within(path) => {
                client
                    .query(
                        &format!(
                            "SELECT {COLUMNS} FROM edgedav_locks WHERE store = $1 \
                             AND expires > now() AND (root = $2 OR left(root, length($3)) = $3)"
                        ),
                        &[&store, &path, &below(path)],
                    )
                    .await
            }
        }
        .map_err(|e| self.statement(e))?;
        Ok(rows
            .iter()
            .map(|row| found(row, holder))
            .filter(|(lock, _)| which.selects(&extent(lock)))
            .collect())
    }
}

/// A lock row, with whether `holder` holds it.
fn found(row: &Row, holder: &Option<Arc<str>>) -> Found {
    let exclusive: bool = row.get(2);
    let row_holder: Option<String> = row.get(5);
    let secs: i64 = row.get(6);
    let lock = ActiveLock {
        token: row.get(0),
        root: row.get(1),
        scope: if exclusive {
            Scope::Exclusive
        } else {
            Scope::Shared
        },
        deep: row.get(3),
        owner: row.get(4),
        // A live lock never reports 0 seconds left.
        timeout: Some(secs.clamp(1, i64::from(u32::MAX)) as u32),
    };
    (lock, row_holder.as_deref() == holder.as_deref())
}

fn extent(lock: &ActiveLock) -> Extent<'_> {
    Extent {
        root: &lock.root,
        deep: lock.deep,
        exclusive: matches!(lock.scope, Scope::Exclusive),
    }
}

/// A full name and all its ancestors: the roots of locks that may cover it.
fn self_and_ancestors(path: &str) -> Vec<String> {
    let mut out = vec![path.to_owned()];
    let mut at = path;
    while let Some(parent) = parent_of(at) {
        out.push(parent.to_owned());
        at = parent;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_and_prefixes() {
        assert_eq!(self_and_ancestors("/a/b"), ["/a/b", "/a", "/"]);
        assert_eq!(self_and_ancestors("/"), ["/"]);
        assert_eq!(below("/"), "/");
        assert_eq!(below("/a"), "/a/");
    }
}
