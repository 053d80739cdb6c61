//! Cluster mode: several stateless hosts over one store, sharing what would
//! otherwise live in one process through PostgreSQL (or CockroachDB: the
//! same wire protocol, and the SQL here keeps to what both run).
//!
//! * **Shared:** WebDAV locks ([`locks`]: a LOCK through one host holds on
//!   every host), quota usage and reservations ([`usage`]), defender bans
//!   ([`bans`]) and the dead properties of S3 homes ([`properties`]). Rate
//!   limits stay per host.
//! * **The database decides time:** lock expiry and bans compare with the
//!   database's `now()`, never a host's clock.
//! * **Schema** created and migrated by each host at start ([`schema`]):
//!   versioned, idempotent, safe when several hosts start at once.
//! * **When the database is unreachable** the host answers the methods that
//!   need lock state with 503 and `Retry-After`; reads (GET, HEAD, OPTIONS)
//!   keep working. A probe every [`PROBE_INTERVAL`] notices when it is back,
//!   and `/healthz` on the admin listener reports it.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use deadpool_postgres::tokio_postgres::{self, NoTls, config::SslMode};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tracing::{info, warn};

use crate::config::ClusterConfig;
use crate::error::{Error, invalid};
use crate::storage;

/// Awaits `$attempt`, a transaction's future, again (a fresh one each
/// time) while the database undoes it, as [`Retry`] decides; the last
/// outcome. A macro, not a function taking a closure: the attempts borrow
/// the caller's client mutably, which an async closure cannot lend across
/// `async_trait`'s `Send` bound.
macro_rules! retried {
    ($attempt:expr) => {{
        let mut retry = $crate::cluster::Retry::default();
        loop {
            let outcome = $attempt.await;
            if let Err(e) = &outcome
                && retry.again(e).await
            {
                continue;
            }
            break outcome;
        }
    }};
}

pub mod bans;
pub mod locks;
pub mod properties;
mod schema;
pub mod usage;

/// How often the database is probed (and shared bans read).
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The database of a cluster, shared by this host's parts.
pub struct Cluster {
    pool: Pool,
    /// This host's name.
    pub node: String,
    /// This process among the cluster's: its name and a random suffix (its
    /// quota reservations are its own, and a restarted host does not
    /// inherit those of the process it replaces).
    pub instance: String,
    /// Whether the last statement or probe reached the database.
    up: AtomicBool,
}

/// The database could not be reached (or failed): the request that needed
/// it is answered 503.
#[derive(Debug)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the cluster database is unavailable: {}", self.0)
    }
}

/// Checks a `[cluster]` section without connecting: the key at fault, and why.
pub fn check(config: &ClusterConfig) -> Result<(), (&'static str, Error)> {
    connection(config).map_err(|e| ("database_url", e))?;
    if !(1..=256).contains(&config.pool_size) {
        return Err(("pool_size", "must be between 1 and 256".into()));
    }
    let timeout = config.statement_timeout.0;
    if timeout < Duration::from_millis(100) || timeout > Duration::from_secs(600) {
        return Err((
            "statement_timeout",
            "must be between 100ms and 10min".into(),
        ));
    }
    if config.node_name.as_deref().is_some_and(str::is_empty) {
        return Err(("node_name", "must not be empty".into()));
    }
    Ok(())
}

/// The connection settings of a `[cluster]` section.
fn connection(config: &ClusterConfig) -> Result<tokio_postgres::Config, Error> {
    let mut pg = tokio_postgres::Config::from_str(&config.database_url)
        .map_err(|e| invalid!("not a PostgreSQL connection string: {e}"))?;
    if pg.get_ssl_mode() == SslMode::Require {
        return Err(
            "sslmode=require: TLS to the database is not supported; keep it on a private \
             network and use sslmode=disable"
                .into(),
        );
    }
    let millis = config.statement_timeout.0.as_millis();
    pg.connect_timeout(config.statement_timeout.0)
        .options(format!("-c statement_timeout={millis}"))
        .application_name("edgedav");
    Ok(pg)
}

impl Cluster {
    /// Connects, creates or migrates the schema, and starts the probe.
    pub async fn connect(config: &ClusterConfig) -> Result<Arc<Self>, Error> {
        let pg = connection(config)?;
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let timeout = Some(config.statement_timeout.0);
        let pool = Pool::builder(manager)
            .max_size(config.pool_size as usize)
            .wait_timeout(timeout)
            .create_timeout(timeout)
            .recycle_timeout(timeout)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| invalid!("the database pool: {e}"))?;
        let node = config.node_name.clone().unwrap_or_else(host_name);
        let instance = format!("{node}/{}", uuid::Uuid::new_v4());
        let cluster = Arc::new(Self {
            pool,
            instance,
            node,
            up: AtomicBool::new(false),
        });
        let client = cluster
            .client()
            .await
            .map_err(|e| invalid!("cluster.database_url: {e}"))?;
        schema::migrate(&client)
            .await
            .map_err(|e| invalid!("cluster: creating the schema: {e}"))?;
        info!(node = %cluster.node, "cluster database ready");
        Ok(cluster)
    }

    /// A connection from the pool.
    pub async fn client(&self) -> Result<Object, Unavailable> {
        match self.pool.get().await {
            Ok(client) => {
                self.up.store(true, Relaxed);
                Ok(client)
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Records a failure to reach the database (or of a statement) and
    /// turns it into [`Unavailable`].
    pub fn failed(&self, e: impl std::fmt::Display) -> Unavailable {
        if self.up.swap(false, Relaxed) {
            warn!(error = %e, "the cluster database became unreachable");
        }
        Unavailable(e.to_string())
    }

    /// A connection, for the storage layer: a database that cannot be
    /// reached is `unavailable` (503).
    pub async fn storage_client(&self) -> Result<Object, storage::Error> {
        (self.client().await).map_err(|e| storage::Error::Unavailable(e.to_string()))
    }

    /// A statement's failure as the storage layer's error, `what` naming the
    /// data: a lost connection also marks the database down and is
    /// `unavailable`.
    pub fn storage_error(&self, what: &str, e: tokio_postgres::Error) -> storage::Error {
        if e.code().is_none() {
            return storage::Error::Unavailable(self.failed(e).to_string());
        }
        storage::Error::Io(format!("{what}: {}", describe(&e)))
    }

    /// Whether the database answered the last statement or probe.
    pub fn is_up(&self) -> bool {
        self.up.load(Relaxed)
    }

    /// Probes the database every [`PROBE_INTERVAL`] (and runs `each` with a
    /// connection, for state read periodically): the host recovers by
    /// itself when the database comes back.
    pub fn probe<F, Fut>(self: &Arc<Self>, each: F)
    where
        F: Fn(Arc<Cluster>, Object) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let cluster = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Ok(client) = cluster.client().await else {
                    continue;
                };
                match client.simple_query("SELECT 1").await {
                    Ok(_) => {
                        if !cluster.up.swap(true, Relaxed) {
                            info!("the cluster database is reachable again");
                        }
                        each(cluster.clone(), client).await;
                    }
                    Err(e) => {
                        cluster.failed(e);
                    }
                }
            }
        });
    }
}

/// How often a transaction the database undid is run again.
pub const ATTEMPTS: u32 = 20;

/// An error that may say the database undid a transaction which may simply
/// run again.
pub trait Undone {
    fn undone(&self) -> bool;
}

impl Undone for tokio_postgres::Error {
    /// A serialization failure (CockroachDB's transactions are serializable
    /// and ask for this under contention; so may PostgreSQL's at that level)
    /// or a deadlock victim.
    fn undone(&self) -> bool {
        use tokio_postgres::error::SqlState;
        self.code().is_some_and(|code| {
            *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
        })
    }
}

/// The retry policy of one transaction: run it again, up to [`ATTEMPTS`]
/// times, while the database undoes it, after a short pause growing and
/// jittered so that transactions that collided do not collide again.
#[derive(Default)]
pub struct Retry {
    tries: u32,
}

impl Retry {
    /// Whether the attempt that ended in `e` is to run again (after the
    /// pause, taken here).
    pub async fn again(&mut self, e: &impl Undone) -> bool {
        if !e.undone() || self.tries >= ATTEMPTS {
            return false;
        }
        self.tries += 1;
        let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 4;
        let millis = (1u64 << self.tries.min(6)) + jitter;
        tokio::time::sleep(Duration::from_millis(millis)).await;
        true
    }
}

/// The prefix of every path below `path`.
pub fn below(path: &str) -> String {
    if path.ends_with('/') {
        path.to_owned()
    } else {
        format!("{path}/")
    }
}

/// A database error with the server's own message (tokio-postgres says
/// only "db error").
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.node).finish()
    }
}

fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}
