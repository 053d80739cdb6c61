//! Quota accounting: bytes and files used by a home.
//!
//! Usage is counted per home (users sharing a home share its usage) and kept
//! in memory. It survives restarts by a **scan on start**: the first time a
//! user with a quota is configured for a home (at start-up or on a reload),
//! the whole home is walked through the storage interface (so it works for
//! any backend) to count its files and bytes. After that the counters follow
//! this server's own operations (uploads, deletes, copies, moves); changes
//! made behind the server's back are picked up at the next start.
//!
//! Uploads in progress *reserve* what they have written beyond the size of
//! the file they replace, so concurrent uploads cannot together overshoot a
//! quota; a reservation is settled on commit and released when the upload is
//! dropped.
//!
//! In cluster mode the counters and reservations of a home live in the
//! cluster's database instead ([`crate::cluster::usage`]), so uploads
//! through different hosts cannot together overshoot it either.

use std::sync::{Arc, Mutex};

use crate::cluster::usage::SharedUsage;
use crate::storage::{Backend, Error, NodeKind, Result};

/// A user's limits (none: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    pub max_bytes: Option<u64>,
    pub max_files: Option<u64>,
}

impl Quota {
    pub fn is_limited(&self) -> bool {
        self.max_bytes.is_some() || self.max_files.is_some()
    }
}

/// Bytes and files, as a pair of signed deltas or unsigned totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Amount {
    pub bytes: u64,
    pub files: u64,
}

/// Usage counters of one home.
#[derive(Debug)]
pub enum Usage {
    /// In this process.
    Local(Mutex<State>),
    /// In the cluster's database.
    Shared(SharedUsage),
}

#[derive(Debug, Default)]
pub struct State {
    used: Amount,
    reserved: Amount,
}

impl Default for Usage {
    fn default() -> Self {
        Usage::Local(Mutex::default())
    }
}

impl Usage {
    /// Counts everything in `backend` (the scan on start).
    pub async fn scan(backend: &dyn Backend) -> Result<Usage> {
        let used = measure(backend, "/").await?;
        Ok(Usage::Local(Mutex::new(State {
            used,
            reserved: Amount::default(),
        })))
    }

    /// What is used (committed content only).
    pub async fn used(&self) -> Result<Amount> {
        match self {
            Usage::Local(state) => Ok(lock(state).used),
            Usage::Shared(shared) => shared.used().await,
        }
    }

    /// Whether `more` would still fit, counting reservations.
    pub async fn fits(&self, more: Amount, quota: &Quota) -> Result<bool> {
        match self {
            Usage::Local(state) => {
                let s = lock(state);
                Ok(fits(s.used, s.reserved, more, quota))
            }
            Usage::Shared(shared) => shared.fits(more, quota).await,
        }
    }

    /// Reserves `more` if it fits.
    pub async fn try_reserve(&self, more: Amount, quota: &Quota) -> Result<bool> {
        match self {
            Usage::Local(state) => {
                let mut s = lock(state);
                if !fits(s.used, s.reserved, more, quota) {
                    return Ok(false);
                }
                s.reserved.bytes += more.bytes;
                s.reserved.files += more.files;
                Ok(true)
            }
            Usage::Shared(shared) => shared.try_reserve(more, quota).await,
        }
    }

    /// Gives back a reservation (from a drop, so it cannot wait: the
    /// database is told in the background, and a reservation it never
    /// hears of expires with this host).
    pub fn release(self: &Arc<Self>, reserved: Amount) {
        if reserved == Amount::default() {
            return;
        }
        match &**self {
            Usage::Local(state) => {
                let mut s = lock(state);
                s.reserved.bytes = s.reserved.bytes.saturating_sub(reserved.bytes);
                s.reserved.files = s.reserved.files.saturating_sub(reserved.files);
            }
            Usage::Shared(_) => {
                // Outside a runtime (the host shutting down) the reservation
                // is left to expire with this host's heartbeat.
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return;
                };
                let usage = self.clone();
                runtime.spawn(async move {
                    if let Usage::Shared(shared) = &*usage {
                        let _ = shared.settle(reserved, 0, 0).await;
                    }
                });
            }
        }
    }

    /// How far ahead an upload reserves: a reservation in the database is a
    /// transaction, so a streaming upload asks for steps of this much rather
    /// than for each chunk (in memory, exactly what it needs).
    pub fn reservation_step(&self) -> u64 {
        match self {
            Usage::Local(_) => 0,
            Usage::Shared(_) => 4 << 20,
        }
    }

    /// Applies a change of the stored content.
    pub async fn apply(&self, bytes: i128, files: i128) -> Result<()> {
        self.settle(Amount::default(), bytes, files).await
    }

    /// Gives back a reservation and applies a change of the stored content
    /// at once (a commit).
    pub async fn settle(&self, reserved: Amount, bytes: i128, files: i128) -> Result<()> {
        match self {
            Usage::Local(state) => {
                let mut s = lock(state);
                s.reserved.bytes = s.reserved.bytes.saturating_sub(reserved.bytes);
                s.reserved.files = s.reserved.files.saturating_sub(reserved.files);
                s.used.bytes = add(s.used.bytes, bytes);
                s.used.files = add(s.used.files, files);
                Ok(())
            }
            Usage::Shared(shared) => shared.settle(reserved, bytes, files).await,
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `more` fits beside what is used and reserved (nothing more
/// always fits, even over quota).
pub fn fits(used: Amount, reserved: Amount, more: Amount, quota: &Quota) -> bool {
    let within = |used: u64, reserved: u64, more: u64, max: Option<u64>| {
        more == 0 || max.is_none_or(|max| used.saturating_add(reserved).saturating_add(more) <= max)
    };
    within(used.bytes, reserved.bytes, more.bytes, quota.max_bytes)
        && within(used.files, reserved.files, more.files, quota.max_files)
}

pub fn add(value: u64, delta: i128) -> u64 {
    (i128::from(value) + delta).clamp(0, i128::from(u64::MAX)) as u64
}

/// Bytes and files stored at `path` (a file, or a collection and everything
/// below it); nothing when the path does not exist.
pub async fn measure(backend: &dyn Backend, path: &str) -> Result<Amount> {
    let meta = match backend.stat(path).await {
        Ok(meta) => meta,
        Err(Error::NotFound | Error::NotACollection) => return Ok(Amount::default()),
        Err(e) => return Err(e),
    };
    if matches!(meta.kind, NodeKind::File) {
        return Ok(Amount {
            bytes: meta.size,
            files: 1,
        });
    }
    let mut total = Amount::default();
    let mut pending = vec![path.to_owned()];
    while let Some(dir) = pending.pop() {
        let mut cursor = None;
        loop {
            let page = match backend.list_members(&dir, cursor, 1000).await {
                Ok(page) => page,
                // Vanished meanwhile.
                Err(Error::NotFound | Error::NotACollection) => break,
                Err(e) => return Err(e),
            };
            for entry in page.entries {
                match entry.metadata.kind {
                    NodeKind::File => {
                        total.bytes += entry.metadata.size;
                        total.files += 1;
                    }
                    NodeKind::Collection => pending.push(if dir == "/" {
                        format!("/{}", entry.name)
                    } else {
                        format!("{dir}/{}", entry.name)
                    }),
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_count_against_the_quota() {
        let usage = Arc::new(Usage::default());
        let quota = Quota {
            max_bytes: Some(100),
            max_files: Some(2),
        };
        usage.apply(60, 1).await.unwrap();
        assert!(
            usage
                .try_reserve(
                    Amount {
                        bytes: 30,
                        files: 1
                    },
                    &quota
                )
                .await
                .unwrap()
        );
        assert!(
            !usage
                .fits(
                    Amount {
                        bytes: 11,
                        files: 0
                    },
                    &quota
                )
                .await
                .unwrap()
        );
        assert!(
            !usage
                .fits(Amount { bytes: 0, files: 1 }, &quota)
                .await
                .unwrap()
        );
        assert!(
            usage
                .fits(
                    Amount {
                        bytes: 10,
                        files: 0
                    },
                    &quota
                )
                .await
                .unwrap()
        );
        usage.release(Amount {
            bytes: 30,
            files: 1,
        });
        assert!(
            usage
                .fits(
                    Amount {
                        bytes: 40,
                        files: 1
                    },
                    &quota
                )
                .await
                .unwrap()
        );
        usage.apply(-100, -5).await.unwrap();
        assert_eq!(usage.used().await.unwrap(), Amount::default());
        // Nothing more always fits, even over quota.
        usage.apply(500, 0).await.unwrap();
        assert!(usage.fits(Amount::default(), &quota).await.unwrap());
    }
}
