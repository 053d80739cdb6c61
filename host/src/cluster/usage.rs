//! Quota usage of a home shared by the hosts of a cluster.
//!
//! * `edgedav_usage` holds a home's committed bytes and files: the first
//!   host that needs them scans the home and inserts them; afterwards every
//!   host updates them with each change, in one statement.
//! * `edgedav_reservations` holds, per home and per host process, what its
//!   uploads in flight have reserved. A reservation is granted in one
//!   transaction that locks the home's usage row (`FOR UPDATE`), adds up the
//!   live reservations of every host and inserts this host's only if all
//!   fits, so uploads through different hosts can never commit more than the
//!   quota.
//! * A host's probe renews its reservations' heartbeat every second; those
//!   of a host that died stop counting after [`RESERVATION_LEASE_SECS`]
//!   and are removed later.

use std::sync::Arc;

use deadpool_postgres::tokio_postgres;

use super::Cluster;
use crate::storage::quota::{Amount, Quota, add, fits};
use crate::storage::{Error, Result};

/// Seconds after its host's last heartbeat that a reservation stops counting.
pub const RESERVATION_LEASE_SECS: i64 = 30;

#[derive(Debug)]
pub struct SharedUsage {
    cluster: Arc<Cluster>,
    /// The home's key: its store and location in it.
    home: String,
}

impl SharedUsage {
    /// The shared counters of `home`, made from `scan` by the first host
    /// that needs them.
    pub async fn open(
        cluster: Arc<Cluster>,
        home: String,
        scan: impl Future<Output = Result<Amount>>,
    ) -> Result<SharedUsage> {
        let usage = SharedUsage { cluster, home };
        let client = usage.client().await?;
        let known = client
            .query_opt(
                "SELECT bytes FROM edgedav_usage WHERE home = $1",
                &[&usage.home],
            )
            .await
            .map_err(|e| usage.failed(e))?
            .is_some();
        if !known {
            let used = scan.await?;
            client
                .execute(
                    "INSERT INTO edgedav_usage (home, bytes, files) VALUES ($1, $2, $3) \
                     ON CONFLICT (home) DO NOTHING",
                    &[&usage.home, &big(used.bytes), &big(used.files)],
                )
                .await
                .map_err(|e| usage.failed(e))?;
        }
        Ok(usage)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.cluster.storage_client().await
    }

    fn failed(&self, e: tokio_postgres::Error) -> Error {
        self.cluster.storage_error("quota usage", e)
    }

    pub async fn used(&self) -> Result<Amount> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT bytes, files FROM edgedav_usage WHERE home = $1",
                &[&self.home],
            )
            .await
            .map_err(|e| self.failed(e))?;
        Ok(amount(row.get(0), row.get(1)))
    }

    /// What is used and what every live host has reserved (with `lock`,
    /// the home's usage row is locked until the transaction ends).
    async fn totals(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        lock: bool,
    ) -> Result<(Amount, Amount), tokio_postgres::Error> {
        let used = client
            .query_one(
                if lock {
                    "SELECT bytes, files FROM edgedav_usage WHERE home = $1 FOR UPDATE"
                } else {
                    "SELECT bytes, files FROM edgedav_usage WHERE home = $1"
                },
                &[&self.home],
            )
            .await?;
        let reserved = client
            .query_one(
                "SELECT COALESCE(SUM(bytes), 0)::BIGINT, COALESCE(SUM(files), 0)::BIGINT \
                 FROM edgedav_reservations WHERE home = $1 \
                 AND heartbeat > now() - $2::BIGINT * INTERVAL '1 second'",
                &[&self.home, &RESERVATION_LEASE_SECS],
            )
            .await?;
        Ok((
            amount(used.get(0), used.get(1)),
            amount(reserved.get(0), reserved.get(1)),
        ))
    }

    pub async fn fits(&self, more: Amount, quota: &Quota) -> Result<bool> {
        let client = self.client().await?;
        let (used, reserved) = (self.totals(&client, false).await).map_err(|e| self.failed(e))?;
        Ok(fits(used, reserved, more, quota))
    }

    /// Reserves `more` if it fits beside what every host has reserved.
    pub async fn try_reserve(&self, more: Amount, quota: &Quota) -> Result<bool> {
        let mut client = self.client().await?;
        retried!(self.try_reserve_once(&mut client, more, quota)).map_err(|e| self.failed(e))
    }

    async fn try_reserve_once(
        &self,
        client: &mut deadpool_postgres::Object,
        more: Amount,
        quota: &Quota,
    ) -> Result<bool, tokio_postgres::Error> {
        let tx = queued(client).await?;
        let (used, reserved) = self.totals(&tx, true).await?;
        if !fits(used, reserved, more, quota) {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO edgedav_reservations (home, node, bytes, files, heartbeat) \
             VALUES ($1, $2, $3, $4, now()) ON CONFLICT (home, node) DO UPDATE SET \
             bytes = edgedav_reservations.bytes + EXCLUDED.bytes, \
             files = edgedav_reservations.files + EXCLUDED.files, heartbeat = now()",
            &[
                &self.home,
                &self.cluster.instance,
                &big(more.bytes),
                &big(more.files),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Gives back `reserved` and applies a change of the stored content, in
    /// one transaction.
    pub async fn settle(&self, reserved: Amount, bytes: i128, files: i128) -> Result<()> {
        let mut client = self.client().await?;
        retried!(self.settle_once(&mut client, reserved, bytes, files)).map_err(|e| self.failed(e))
    }

    async fn settle_once(
        &self,
        client: &mut deadpool_postgres::Object,
        reserved: Amount,
        bytes: i128,
        files: i128,
    ) -> Result<(), tokio_postgres::Error> {
        let tx = queued(client).await?;
        // The usage row first, locked, as in `try_reserve`: every change of
        // a home's usage or reservations queues on that row, so they do not
        // deadlock (and, read committed, do not undo one another).
        tx.query_opt(
            "SELECT home FROM edgedav_usage WHERE home = $1 FOR UPDATE",
            &[&self.home],
        )
        .await?;
        if bytes != 0 || files != 0 {
            let clamp =
                |d: i128| i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX });
            tx.execute(
                "UPDATE edgedav_usage SET bytes = GREATEST(bytes + $2, 0), \
                 files = GREATEST(files + $3, 0) WHERE home = $1",
                &[&self.home, &clamp(bytes), &clamp(files)],
            )
            .await?;
        }
        if reserved != Amount::default() {
            tx.execute(
                "UPDATE edgedav_reservations SET bytes = GREATEST(bytes - $3, 0), \
                 files = GREATEST(files - $4, 0) WHERE home = $1 AND node = $2",
                &[
                    &self.home,
                    &self.cluster.instance,
                    &big(reserved.bytes),
                    &big(reserved.files),
                ],
            )
            .await?;
        }
        tx.commit().await
    }
}

/// A transaction of the home's queue: its first statement locks the
/// home's usage row, and every change of the home's usage or reservations
/// takes that lock first, so the lock alone orders them.
///
/// Read committed, whatever the database's default: at serializable or
/// repeatable read isolation PostgreSQL undoes every transaction that waited
/// for the lock while its holder updated the row ("could not serialize
/// access due to concurrent update"), so with thirty uploads queued some ran
/// out of retries and were answered 500. Read committed, a statement after
/// the lock sees everything committed before it, which is all the queue
/// needs. (CockroachDB runs it serializable unless read committed is
/// enabled there; the retries stay for that.)
async fn queued(
    client: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>, tokio_postgres::Error> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
        .start()
        .await
}

/// Renews this host's reservations and removes those of hosts long gone
/// (from the probe).
pub async fn heartbeat(client: &deadpool_postgres::Object, instance: &str) {
    let _ = client
        .execute(
            "UPDATE edgedav_reservations SET heartbeat = now() WHERE node = $1",
            &[&instance],
        )
        .await;
    let _ = client
        .execute(
            "DELETE FROM edgedav_reservations WHERE heartbeat < now() - INTERVAL '10 minutes'",
            &[],
        )
        .await;
}

fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn amount(bytes: i64, files: i64) -> Amount {
    Amount {
        bytes: add(0, bytes.into()),
        files: add(0, files.into()),
    }
}
