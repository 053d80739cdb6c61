//! The lock table in SQLite and the `edgedav:dav/locks` exports.

use super::*;

pub(super) fn lock_record(row: &RowResult) -> rules::locks::LockRecord {
    rules::locks::LockRecord {
        token: get_text(row, 0).unwrap_or_default(),
        root: get_text(row, 1).unwrap_or_default(),
        exclusive: get_int(row, 2) != 0,
        deep: get_int(row, 3) != 0,
        owner: get_text(row, 4),
        expires_ms: get_int(row, 5).max(0) as u64,
    }
}

pub(super) fn active(l: &rules::locks::LockRecord, now: i64) -> ActiveLock {
    ActiveLock {
        token: l.token.clone(),
        root: l.root.clone(),
        scope: if l.exclusive {
            Scope::Exclusive
        } else {
            Scope::Shared
        },
        deep: l.deep,
        owner: l.owner.clone(),
        timeout: Some(l.seconds_left(now as u64)),
    }
}

pub(super) fn lock_err(e: Error) -> LockError {
    LockError::Io(format!("{e:?}"))
}

impl Db {
    pub(super) fn locks_where(
        &self,
        cond: &str,
        mut params: Vec<Value>,
        now: i64,
    ) -> Result<Vec<rules::locks::LockRecord>, Error> {
        params.push(int(now));
        let r = self.exec(
            &format!("SELECT {LOCK_COLUMNS} FROM edgedav_locks WHERE ({cond}) AND expires_ms > ?"),
            &params,
        )?;
        Ok(r.rows.iter().map(lock_record).collect())
    }

    /// Live locks taken on `path` or deep on one of its ancestors.
    pub(super) fn covering(
        &self,
        path: &str,
        now: i64,
    ) -> Result<Vec<rules::locks::LockRecord>, Error> {
        let ancestors = ancestors(path);
        let mut params = vec![text(path)];
        params.extend(ancestors.iter().map(|a| text(a)));
        let cond = if ancestors.is_empty() {
            "root = ?".to_owned()
        } else {
            format!(
                "root = ? OR (deep = 1 AND root IN ({}))",
                placeholders(ancestors.len())
            )
        };
        self.locks_where(&cond, params, now)
    }

    /// Live locks taken on `path` or below it.
    pub(super) fn within(
        &self,
        path: &str,
        now: i64,
    ) -> Result<Vec<rules::locks::LockRecord>, Error> {
        let mut params = Vec::new();
        let cond = subtree("root", path, &mut params);
        self.locks_where(&cond, params, now)
    }
}

/// The live locks a query selected, or an `io` error when the database
/// failed (the handler answers 500): answering "no locks" would let writes
/// through locked resources.
pub(super) fn select_locks(
    query: impl FnOnce(&Db, i64) -> Result<Vec<rules::locks::LockRecord>, Error>,
) -> Result<Vec<ActiveLock>, LockError> {
    let now = now_ms();
    let db = db().map_err(lock_err)?;
    let locks = query(&db, now).map_err(lock_err)?;
    Ok(locks.iter().map(|l| active(l, now)).collect())
}

impl lk::Guest for Component {
    fn acquire(request: LockRequest) -> Result<ActiveLock, LockError> {
        let db = db().map_err(lock_err)?;
        let exclusive = matches!(request.scope, Scope::Exclusive);
        let result = db.transaction(|db| {
            let now = now_ms();
            db.exec(
                "DELETE FROM edgedav_locks WHERE expires_ms <= ?",
                &[int(now)],
            )?;
            let ask = rules::locks::Extent {
                root: &request.root,
                exclusive,
                deep: request.deep,
            };
            // Candidates: locks on the root or its ancestors, and (for a deep
            // request) locks below it; the shared rules decide.
            let mut candidates = db.covering(&request.root, now)?;
            candidates.extend(
                db.within(&request.root, now)?
                    .into_iter()
                    .filter(|l| l.root != request.root),
            );
            let conflicts: Vec<ActiveLock> = candidates
                .iter()
                .filter(|l| l.extent().conflicts_with(&ask))
                .map(|l| active(l, now))
                .collect();
            if !conflicts.is_empty() {
                return Ok(Err(LockError::Conflict(conflicts)));
            }
            let bytes: [u8; 16] = wasi::random::random::get_random_bytes(16)
                .try_into()
                .expect("16 random bytes");
            let lock = rules::locks::LockRecord {
                token: rules::locks::uuid_urn(bytes),
                root: request.root.clone(),
                exclusive,
                deep: request.deep,
                owner: request.owner.clone(),
                expires_ms: now as u64
                    + u64::from(rules::locks::granted_secs(request.timeout)) * 1000,
            };
            db.exec(
                &format!("INSERT INTO edgedav_locks ({LOCK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"),
                &[
                    text(&lock.token),
                    text(&lock.root),
                    int(exclusive as i64),
                    int(lock.deep as i64),
                    lock.owner.as_deref().map_or(Value::Null, text),
                    int(lock.expires_ms as i64),
                ],
            )?;
            Ok(Ok(active(&lock, now)))
        });
        result.map_err(lock_err)?
    }

    fn refresh(token: String, timeout: Option<u32>) -> Result<ActiveLock, LockError> {
        let db = db().map_err(lock_err)?;
        let now = now_ms();
        let expires = now + i64::from(rules::locks::granted_secs(timeout)) * 1000;
        // One statement: atomic without a transaction.
        let r = db
            .exec(
                &format!(
                    "UPDATE edgedav_locks SET expires_ms = ? WHERE token = ? AND expires_ms > ? RETURNING {LOCK_COLUMNS}"
                ),
                &[int(expires), text(&token), int(now)],
            )
            .map_err(lock_err)?;
        match r.rows.first() {
            Some(row) => Ok(active(&lock_record(row), now)),
            None => Err(LockError::NoSuchLock),
        }
    }

    fn release(token: String) -> Result<(), LockError> {
        let db = db().map_err(lock_err)?;
        let r = db
            .exec(
                "DELETE FROM edgedav_locks WHERE token = ? AND expires_ms > ? RETURNING token",
                &[text(&token), int(now_ms())],
            )
            .map_err(lock_err)?;
        if r.rows.is_empty() {
            Err(LockError::NoSuchLock)
        } else {
            Ok(())
        }
    }

    fn covering(path: String) -> Result<Vec<ActiveLock>, LockError> {
        select_locks(|db, now| db.covering(&path, now))
    }

    fn within(path: String) -> Result<Vec<ActiveLock>, LockError> {
        select_locks(|db, now| db.within(&path, now))
    }
}
