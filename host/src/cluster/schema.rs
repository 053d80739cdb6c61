//! The cluster's tables, created and migrated by every host at start.
//!
//! Migrations are numbered and applied in order, each in one transaction
//! that also records its number in `edgedav_schema`; a host applies only
//! those it does not find recorded. When several hosts start at once, the
//! losers of the race fail on the recorded number (a primary key) or on a
//! table that now exists, and try again, finding the work done. No
//! advisory locks (CockroachDB has none); DDL keeps to what it runs too.

use deadpool_postgres::Object;
use deadpool_postgres::tokio_postgres::Error;

/// `(version, statements)`, in order; never edit one that shipped.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE IF NOT EXISTS edgedav_locks (
         token TEXT PRIMARY KEY,
         store TEXT NOT NULL,
         root TEXT NOT NULL,
         exclusive BOOLEAN NOT NULL,
         deep BOOLEAN NOT NULL,
         owner TEXT,
         holder TEXT,
         expires TIMESTAMPTZ NOT NULL
     );
     CREATE INDEX IF NOT EXISTS edgedav_locks_by_root ON edgedav_locks (store, root);
     CREATE TABLE IF NOT EXISTS edgedav_lock_stores (store TEXT PRIMARY KEY);
     CREATE TABLE IF NOT EXISTS edgedav_bans (
         binding INT NOT NULL,
         ip TEXT NOT NULL,
         until TIMESTAMPTZ NOT NULL,
         PRIMARY KEY (binding, ip)
     );",
    ),
    (
        2,
        "CREATE TABLE IF NOT EXISTS edgedav_usage (
         home TEXT PRIMARY KEY,
         bytes BIGINT NOT NULL,
         files BIGINT NOT NULL
     );
     CREATE TABLE IF NOT EXISTS edgedav_reservations (
         home TEXT NOT NULL,
         node TEXT NOT NULL,
         bytes BIGINT NOT NULL,
         files BIGINT NOT NULL,
         heartbeat TIMESTAMPTZ NOT NULL,
         PRIMARY KEY (home, node)
     );",
    ),
    (
        3,
        "CREATE TABLE IF NOT EXISTS edgedav_properties (
         store TEXT NOT NULL,
         path TEXT NOT NULL,
         parent TEXT NOT NULL,
         props TEXT NOT NULL,
         PRIMARY KEY (store, path)
     );
     CREATE INDEX IF NOT EXISTS edgedav_properties_by_parent
         ON edgedav_properties (store, parent);",
    ),
];

/// Applies the migrations this database lacks.
pub async fn migrate(client: &Object) -> Result<(), Error> {
    const ATTEMPTS: usize = 5;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match apply(client).await {
            Ok(()) => return Ok(()),
            // Another host migrated meanwhile: look again.
            Err(_) if attempt < ATTEMPTS => continue,
            Err(e) => return Err(e),
        }
    }
}

async fn apply(client: &Object) -> Result<(), Error> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS edgedav_schema (
                 version INT PRIMARY KEY,
                 applied TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await?;
    for (version, statements) in MIGRATIONS {
        let done = client
            .query_opt(
                "SELECT version FROM edgedav_schema WHERE version = $1",
                &[version],
            )
            .await?
            .is_some();
        if done {
            continue;
        }
        let applied = client
            .batch_execute(&format!(
                "BEGIN;
                 {statements}
                 INSERT INTO edgedav_schema (version) VALUES ({version});
                 COMMIT;"
            ))
            .await;
        if let Err(e) = applied {
            // Leave the connection usable for the next attempt.
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(e);
        }
    }
    Ok(())
}
