//! The lock table in `.edgedav/locks.json` and the `edgedav:dav/locks` exports.

use super::*;

#[derive(Serialize, Deserialize, Default)]
pub(super) struct LockTable {
    pub(super) locks: Vec<StoredLock>,
}

#[derive(Serialize, Deserialize, Clone)]
pub(super) struct StoredLock {
    pub(super) token: String,
    pub(super) root: String,
    pub(super) exclusive: bool,
    pub(super) deep: bool,
    pub(super) owner: Option<String>,
    pub(super) expires_ms: u64,
}

impl From<&StoredLock> for rules::locks::LockRecord {
    fn from(l: &StoredLock) -> Self {
        rules::locks::LockRecord {
            token: l.token.clone(),
            root: l.root.clone(),
            exclusive: l.exclusive,
            deep: l.deep,
            owner: l.owner.clone(),
            expires_ms: l.expires_ms,
        }
    }
}

pub(super) fn active(l: &StoredLock, now: u64) -> ActiveLock {
    let record = rules::locks::LockRecord::from(l);
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
        timeout: Some(record.seconds_left(now)),
    }
}

impl Store {
    /// The live locks (expired ones dropped).
    pub(super) fn lock_table(&self, now: u64) -> Result<LockTable, String> {
        let mut table: LockTable = match self.read_all(LOCK_TABLE) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| format!("{LOCK_TABLE}: {e}"))?
            }
            Err(ErrorCode::NoEntry) => LockTable::default(),
            Err(e) => return Err(format!("{LOCK_TABLE}: {e:?}")),
        };
        table.locks.retain(|l| l.expires_ms > now);
        Ok(table)
    }

    pub(super) fn save_locks(&self, table: &LockTable) -> Result<(), String> {
        let bytes = serde_json::to_vec(table).map_err(|e| e.to_string())?;
        // A small directory: sweeping it here costs one listing.
        self.sweep(Path::new(INTERNAL_DIR));
        self.write_atomic(Path::new(LOCK_TABLE), &bytes)
            .map_err(|e| format!("{LOCK_TABLE}: {e:?}"))
    }

    /// Live locks matching `keep`. A table that cannot be read is an `io`
    /// error (the handler answers 500): answering "no locks" would let
    /// writes through locked resources.
    pub(super) fn select(
        &self,
        keep: impl Fn(&rules::locks::LockRecord) -> bool,
    ) -> Result<Vec<ActiveLock>, LockError> {
        let now = now_ms();
        let table = self.lock_table(now).map_err(LockError::Io)?;
        Ok(table
            .locks
            .iter()
            .filter(|l| keep(&rules::locks::LockRecord::from(*l)))
            .map(|l| active(l, now))
            .collect())
    }
}

pub(super) fn lock_store() -> Result<Rc<Store>, LockError> {
    store().map_err(|e| LockError::Io(format!("{e:?}")))
}

impl lk::Guest for Component {
    fn acquire(request: LockRequest) -> Result<ActiveLock, LockError> {
        let s = lock_store()?;
        let _guard = s.mutex("locks").map_err(LockError::Io)?;
        let now = now_ms();
        let mut table = s.lock_table(now).map_err(LockError::Io)?;
        let ask = rules::locks::Extent {
            root: &request.root,
            exclusive: matches!(request.scope, Scope::Exclusive),
            deep: request.deep,
        };
        let conflicts: Vec<ActiveLock> = table
            .locks
            .iter()
            .filter(|l| {
                rules::locks::LockRecord::from(*l)
                    .extent()
                    .conflicts_with(&ask)
            })
            .map(|l| active(l, now))
            .collect();
        if !conflicts.is_empty() {
            return Err(LockError::Conflict(conflicts));
        }
        let bytes: [u8; 16] = wasi::random::random::get_random_bytes(16)
            .try_into()
            .expect("16 random bytes");
        let lock = StoredLock {
            token: rules::locks::uuid_urn(bytes),
            root: request.root,
            exclusive: matches!(request.scope, Scope::Exclusive),
            deep: request.deep,
            owner: request.owner,
            expires_ms: now + u64::from(rules::locks::granted_secs(request.timeout)) * 1000,
        };
        let granted = active(&lock, now);
        table.locks.push(lock);
        s.save_locks(&table).map_err(LockError::Io)?;
        Ok(granted)
    }

    fn refresh(token: String, timeout: Option<u32>) -> Result<ActiveLock, LockError> {
        let s = lock_store()?;
        let _guard = s.mutex("locks").map_err(LockError::Io)?;
        let now = now_ms();
        let mut table = s.lock_table(now).map_err(LockError::Io)?;
        let lock = table
            .locks
            .iter_mut()
            .find(|l| l.token == token)
            .ok_or(LockError::NoSuchLock)?;
        lock.expires_ms = now + u64::from(rules::locks::granted_secs(timeout)) * 1000;
        let refreshed = active(lock, now);
        s.save_locks(&table).map_err(LockError::Io)?;
        Ok(refreshed)
    }

    fn release(token: String) -> Result<(), LockError> {
        let s = lock_store()?;
        let _guard = s.mutex("locks").map_err(LockError::Io)?;
        let mut table = s.lock_table(now_ms()).map_err(LockError::Io)?;
        let before = table.locks.len();
        table.locks.retain(|l| l.token != token);
        if table.locks.len() == before {
            return Err(LockError::NoSuchLock);
        }
        s.save_locks(&table).map_err(LockError::Io)
    }

    fn covering(path: String) -> Result<Vec<ActiveLock>, LockError> {
        lock_store()?.select(|l| l.extent().covers(&path))
    }

    fn within(path: String) -> Result<Vec<ActiveLock>, LockError> {
        lock_store()?.select(|l| l.extent().within(&path))
    }
}
