//! Assembles a server from a configuration (a file, or the one the
//! zero-config command line makes) and reloads a file on SIGHUP.
//!
//! What a reload changes: users (passwords, homes, permissions, quotas,
//! bandwidth limits; the users cache starts empty) and TLS certificates.
//! Connections are not touched: requests already running keep the users
//! and certificate they started with. Listeners, the admin listener, the
//! sandbox, logging and the per-binding settings (rate limit, defender,
//! anonymous user, timeouts) need a restart; a reload that changes them
//! says so in the log. A configuration that does not load is refused and
//! the running one stays.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio_rustls::TlsAcceptor;
use tracing::{error, info, warn};
use wasmtime::error::Context;

use crate::cluster::{Cluster, bans, usage};
use crate::config::{self, BindingConfig, Config, SandboxConfig, TlsConfig};
use crate::gate::access::{AuthMode, Endpoint};
use crate::gate::limits::{Defender, RateLimiter};
use crate::gate::users::Users;
use crate::locks::LockTable;
use crate::metrics;
use crate::net::connection::Timeouts;
use crate::net::server::{self, Admin, Listener};
use crate::net::tls::{self, ReloadableCert};
use crate::net::traffic::BodyRate;
use crate::runtime::admission::Admission;
use crate::runtime::{GuestSettings, Runtime, SandboxLimits};
use crate::storage::home::{Home, HomeRegistry};

/// State shared by every binding.
pub struct App {
    pub runtime: Runtime,
    /// The queue for component instances.
    pub admission: Admission,
    pub locks: Arc<LockTable>,
    /// The cluster's database, in cluster mode.
    pub cluster: Option<Arc<Cluster>>,
    pub homes: HomeRegistry,
    /// The current users; replaced whole on reload.
    pub users: ArcSwap<Users>,
    /// The home the zero-config server serves to everyone.
    pub open: Option<Arc<Home>>,
}

fn admission(sandbox: &SandboxConfig) -> Admission {
    Admission::new(
        sandbox.max_instances,
        sandbox.max_instances_per_ip,
        sandbox.instance_wait.0,
    )
}

/// A binding's connection timeouts.
fn timeouts(binding: &BindingConfig) -> Timeouts {
    Timeouts {
        header_read: binding.header_read_timeout.0,
        idle: binding.idle_timeout.0,
        keepalive: binding.keepalive_timeout.0,
    }
}

/// A binding's request-body rate floor.
fn body_rate(binding: &BindingConfig) -> Option<BodyRate> {
    (binding.min_body_rate.0 > 0).then_some(BodyRate {
        min_bytes_per_sec: binding.min_body_rate.0,
        grace: binding.min_body_rate_grace.0,
    })
}

/// Serves what `config` describes: loaded from `path`, or made by the
/// command line for the zero-config server (no path, an `open` home, no
/// users, no reloading).
pub async fn serve(path: Option<&Path>, config: Config) -> wasmtime::Result<()> {
    // A component file's bytes are dropped once compiled; the embedded
    // handler is never copied (its precompiled form is what runs).
    let component = match &config.server.component {
        Some(file) => {
            Some(std::fs::read(file).with_context(|| format!("reading {}", file.display()))?)
        }
        None => None,
    };
    let limits = SandboxLimits {
        max_memory: config.sandbox.max_memory.0,
        max_cpu_time: Some(config.sandbox.max_cpu_time.0).filter(|t| !t.is_zero()),
        max_instances: config.sandbox.max_instances,
        instance_reuse: config.sandbox.instance_reuse,
    };
    let runtime = Runtime::new(
        component.as_deref(),
        GuestSettings {
            depth_infinity_limit: config.server.depth_infinity_limit,
        },
        limits,
    )?;
    drop(component);
    let cluster = match &config.cluster {
        Some(cluster) => Some(Cluster::connect(cluster).await?),
        None => None,
    };
    let homes = HomeRegistry::default();
    let users = Users::build(&config.users, &homes, cluster.as_ref())
        .await
        .map_err(wasmtime::Error::msg)?;
    let open = match &config.open {
        Some(spec) => {
            info!(home = ?spec, "serving without authentication");
            Some(homes.open(spec).await.context("opening the store")?)
        }
        None => None,
    };
    let locks = match &cluster {
        Some(cluster) => LockTable::shared(cluster.clone()),
        None => LockTable::default(),
    };
    let app = Arc::new(App {
        runtime,
        admission: admission(&config.sandbox),
        locks: Arc::new(locks),
        cluster,
        homes,
        users: ArcSwap::from_pointee(users),
        open,
    });
    let auth = |binding: &BindingConfig| match app.open {
        Some(_) => AuthMode::Open,
        None => AuthMode::Users {
            anonymous: binding.anonymous_user.clone(),
        },
    };

    let mut listeners = Vec::new();
    let mut lines = Vec::new();
    let mut certs = Vec::new();
    let mut defenders = Vec::new();
    for (i, binding) in config.bindings.iter().enumerate() {
        let tcp = server::bind(binding.listen)
            .await
            .with_context(|| format!("bindings[{i}]: listening on {}", binding.listen))?;
        let address = tcp.local_addr()?;
        let tls = match &binding.tls {
            Some(tls) => {
                let cert = ReloadableCert::load(tls).map_err(wasmtime::Error::msg)?;
                let server_config = tls::server_config(cert.clone(), binding.http2)
                    .map_err(wasmtime::Error::msg)?;
                certs.push((i, cert));
                Some(TlsAcceptor::from(server_config))
            }
            None => None,
        };
        let defender = binding
            .defender
            .as_ref()
            .map(|d| Arc::new(Defender::new(i, d)));
        defenders.extend(defender.clone());
        let endpoint = Arc::new(Endpoint {
            app: app.clone(),
            auth: auth(binding),
            rate_limit: binding.rate_limit.as_ref().map(RateLimiter::new),
            defender,
            trusted_proxies: binding.trusted_proxies.clone(),
            request_timeout: Some(binding.request_timeout.0).filter(|t| !t.is_zero()),
            body_rate: body_rate(binding),
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        lines.push(format!("edgedav listening on {scheme}://{address}"));
        listeners.push(Listener {
            tcp,
            endpoint,
            tls,
            http2: binding.http2,
            timeouts: timeouts(binding),
            max_connections: binding.max_connections as usize,
            max_connections_per_ip: binding.max_connections_per_ip,
        });
    }
    if let Some(cluster) = &app.cluster {
        let defenders = defenders.clone();
        cluster.probe(move |cluster, client| {
            let defenders = defenders.clone();
            async move {
                usage::heartbeat(&client, &cluster.instance).await;
                bans::adopt(&client, &defenders).await;
            }
        });
    }
    let admin = match &config.admin {
        Some(admin) => {
            let tcp = server::bind(admin.listen)
                .await
                .with_context(|| format!("admin: listening on {}", admin.listen))?;
            lines.push(format!(
                "edgedav admin listening on http://{}",
                tcp.local_addr()?
            ));
            Some(Admin {
                tcp,
                defenders,
                cluster: app.cluster.clone(),
            })
        }
        None => None,
    };

    // Stdout is for scripts and tests: the bound addresses, then, for a
    // configuration file (whose bindings may be several), `edgedav ready`.
    let mut stdout = std::io::stdout().lock();
    for line in &lines {
        writeln!(stdout, "{line}")?;
    }
    if path.is_some() {
        writeln!(stdout, "edgedav ready")?;
    }
    stdout.flush()?;
    drop(stdout);
    if let Some(path) = path {
        info!(
            config = %path.display(),
            bindings = config.bindings.len(),
            users = app.users.load().len(),
            "serving"
        );
        tokio::spawn(reload_on_sighup(
            path.to_owned(),
            app.clone(),
            certs,
            config
                .bindings
                .iter()
                .map(|b| (b.listen, b.tls.clone()))
                .collect(),
        ));
    }
    server::serve(
        listeners,
        admin,
        config.server.shutdown_grace.0,
        shutdown_signal(),
    )
    .await?;
    Ok(())
}

/// Reloads users and certificates on every SIGHUP.
async fn reload_on_sighup(
    path: PathBuf,
    app: Arc<App>,
    certs: Vec<(usize, Arc<ReloadableCert>)>,
    started_with: Vec<(SocketAddr, Option<TlsConfig>)>,
) {
    let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        error!("cannot install the SIGHUP handler; reloading is disabled");
        return;
    };
    while hangup.recv().await.is_some() {
        match reload(&path, &app, &certs, &started_with).await {
            Ok(()) => {
                metrics::get()
                    .config_reloads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                info!(config = %path.display(), users = app.users.load().len(), "configuration reloaded");
            }
            Err(e) => {
                metrics::get()
                    .config_reload_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                error!("configuration reload refused, keeping the running one: {e}");
            }
        }
    }
}

async fn reload(
    path: &Path,
    app: &App,
    certs: &[(usize, Arc<ReloadableCert>)],
    started_with: &[(SocketAddr, Option<TlsConfig>)],
) -> crate::error::Result<()> {
    let config = config::load(path)?;
    let listens: Vec<SocketAddr> = config.bindings.iter().map(|b| b.listen).collect();
    let before: Vec<SocketAddr> = started_with.iter().map(|(l, _)| *l).collect();
    if listens != before {
        warn!("listener changes in the configuration take effect only after a restart");
    }
    // Load everything before changing anything.
    let mut new_keys = Vec::new();
    for (i, cert) in certs {
        match config.bindings.get(*i).and_then(|b| b.tls.as_ref()) {
            Some(tls) => new_keys.push((cert, tls::load_certified_key(tls)?)),
            None => {
                warn!("bindings[{i}] no longer has TLS; that takes effect only after a restart")
            }
        }
    }
    let users = Users::build(&config.users, &app.homes, app.cluster.as_ref()).await?;
    for (cert, key) in new_keys {
        cert.set(key);
    }
    app.users.store(Arc::new(users));
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
